// Signing in: who an MCP request's Authorization header names (grant tokens, the built-in
// authorization server's access tokens, an identity provider's JWTs), the built-in
// authorization server's consent, and what a session learns of its caller. docs/oauth.md.
#include <spdlog/spdlog.h>

#include <algorithm>

#include <boost/url.hpp>

#include "app/gateway.h"
#include "common/canonical_json.h"
#include "common/random.h"
#include "oauth/jwt.h"
#include "redis/redis_client.h"
#include "transport/http_client.h"

namespace tw::app {

namespace {

// A compact JWS: three base64url parts. Grant and access tokens have no dot.
bool LooksLikeJwt(std::string_view token) { return std::count(token.begin(), token.end(), '.') == 2; }

// How many identity-provider callers are remembered before the table starts over (a session
// opened meanwhile re-authenticates its next request and is remembered again).
constexpr size_t kMaxCallers = 100'000;

}  // namespace

std::vector<std::string> Gateway::ServerList() const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (const auto& [name, rt] : servers_) out.push_back(name);
  return out;
}

Result<bool> Gateway::OpenSignIn() {
  if (config_.access != config::Access::kTokens) return true;
  for (const auto& [name, sc] : config_.servers) {
    if (!sc.per_principal_credentials || credentials_) continue;
    // Found now, not at a person's first session: a missing key is the operator's to fix.
    auto key = auth::CredentialKey::Load(config_.auth.credential_key_file);
    if (!key) return Fail(Error::InvalidArgument("servers." + name + ".credentials: per_principal: " + key.error().message()));
    auto store = auth::OpenCredentialStore(state_spec_, *key);
    if (!store) return Fail(store.error().Context("servers." + name + ".credentials: per_principal"));
    credentials_ = std::move(*store);
  }
  const config::AuthConfig& a = config_.auth;
  const bool redis_state = redis::IsRedisUrl(state_spec_);
  if (a.builtin.value_or(!redis_state)) {
    if (redis_state) {
      return Fail(Error::InvalidArgument(
          "auth.builtin: the built-in authorization server keeps its tokens in a SQLite state; "
          "with a Redis state, sign agents in through an identity provider (auth.oidc)"));
    }
    auto store = auth::OpenOAuthStore(state_spec_);
    if (!store) return Fail(store.error());
    oauth_store_ = std::move(*store);
    oauth::AsOptions o;
    o.access_ttl_ms = a.access_token_ttl_ms;
    o.refresh_ttl_ms = a.refresh_token_ttl_ms;
    as_ = std::make_unique<oauth::AuthorizationServer>(
        *grants_, *oauth_store_, clock_, o,
        [this](std::string_view e, bool ok, std::string_view g, std::string_view c, std::string_view r) {
          AuditSignIn(e, ok, g, c, r);
        });
    if (a.client_metadata.enabled) {
      as_->SetDocumentFetcher([this](const std::string& url) { return FetchClientDocument(url); });
    }
  }
  if (a.oidc) {
    oauth::IssuerOptions o;
    o.issuer = a.oidc->issuer;
    o.audiences = a.oidc->audiences;
    if (o.audiences.empty()) o.audiences = {oauth::ResourceOf(a.public_url)};
    o.jwks_uri = a.oidc->jwks_uri;
    o.principal_claim = a.oidc->principal_claim;
    o.email_claim = a.oidc->email_claim;
    o.groups_claim = a.oidc->groups_claim;
    issuer_ = std::make_unique<oauth::TrustedIssuer>(o, [](const std::string& url) -> Result<std::string> {
      auto r = transport::FetchSync("GET", url, {{"Accept", "application/json"}}, "",
                                    std::chrono::seconds(10));
      if (!r) return Fail(r.error());
      if (r->status != 200) {
        return Fail(Error::Unavailable(url + " answered HTTP " + std::to_string(r->status)));
      }
      return std::move(r->body);
    });
  }
  return true;
}

Result<std::string> Gateway::FetchClientDocument(const std::string& url) {
  const int64_t now = clock_.NowMs();
  {
    std::lock_guard lock(callers_mu_);
    if (auto it = documents_.find(url); it != documents_.end() && now - it->second.first < 3600'000) {
      return it->second.second;
    }
    // The fetch holds the home loop (at most 3 s): at most 30 a minute, whoever asks.
    std::erase_if(document_fetches_, [&](int64_t t) { return now - t >= 60'000; });
    if (document_fetches_.size() >= 30) {
      return Fail(Error::Unavailable("too many client metadata documents fetched this minute"));
    }
    document_fetches_.push_back(now);
  }
  const config::AuthConfig::ClientMetadata& cm = config_.auth.client_metadata;
  transport::GuardedFetch fetch;
  fetch.ca_file = cm.ca_file;
  if (!cm.private_addresses) fetch.address_allowed = transport::IsPublicAddress;
  auto reply = transport::FetchGuarded(url, fetch);
  if (!reply) return Fail(reply.error());
  if (reply->status != 200) return Fail(Error::Unavailable(url + " answered HTTP " + std::to_string(reply->status)));
  std::lock_guard lock(callers_mu_);
  if (documents_.size() >= 1000) documents_.clear();
  documents_[url] = {now, reply->body};
  return std::move(reply->body);
}

std::optional<transport::HttpServerOptions::OAuth> Gateway::OAuthOptions() {
  if (config_.access != config::Access::kTokens || (!as_ && !issuer_)) return std::nullopt;
  transport::HttpServerOptions::OAuth o;
  o.public_url = config_.auth.public_url;
  o.resource_metadata = [this](const std::string& base) {
    // The company's provider when there is one: people sign in where they always do.
    std::vector<std::string> servers = issuer_ ? std::vector<std::string>{issuer_->options().issuer}
                                               : std::vector<std::string>{base};
    return oauth::ProtectedResourceMetadata(base, servers, ServerList());
  };
  o.owns = [this](std::string_view path) { return as_ && oauth::AuthorizationServer::Owns(path); };
  return o;
}

// Records one sign-in event or refusal: by the audit writer's thread, so that a state file
// locked by another process never holds the loop.
void Gateway::SubmitAuthRecord(audit::Record r) {
  r.id = audit::NewRecordId();
  r.ts_ms = clock_.NowMs();
  audit_->Submit(std::move(r), {}, [](bool ok) {
    if (!ok) spdlog::error("audit: the record of a sign-in or a refused authentication could not be written");
  });
}

void Gateway::AuditSignIn(std::string_view event, bool ok, std::string_view grant,
                          std::string_view client, std::string_view reason) {
  audit::Record r;
  r.grant = grant.empty() ? "(oauth)" : std::string(grant);
  r.server = "(oauth)";
  r.tool = std::string(event);
  r.decision = ok ? "allow" : "deny";
  r.rule = "oauth";
  r.reason = client.empty() ? std::string(reason)
                            : "client \"" + std::string(client) + "\"" +
                                  (reason.empty() ? std::string() : ": " + std::string(reason));
  r.outcome = ok ? "ok" : "not_forwarded";
  SubmitAuthRecord(std::move(r));
}

Result<std::string> Gateway::Authenticate(std::string_view authorization, std::string_view route) {
  std::string token;
  std::string refusal;
  if (std::optional<std::string> bearer = auth::BearerToken(authorization)) {
    token = std::move(*bearer);
  } else {
    refusal = "the Authorization header must use the Bearer scheme";
  }
  const int64_t now = clock_.NowMs();
  if (refusal.empty() && issuer_ && LooksLikeJwt(token)) {
    auto p = issuer_->Authenticate(token, now);
    if (!p && p.error().code() == ErrorCode::kUnavailable) {
      spdlog::warn("authentication: {}", p.error().message());
      return Fail(Error::Unavailable("the identity provider's keys are being fetched"));
    }
    if (!p) {
      refusal = p.error().message();
    } else if (!p->AnyScope() || (!route.empty() && !p->ScopeAllows(route))) {
      refusal = !p->AnyScope() ? "the token carries no mcp scope"
                               : "the token's scopes do not include mcp:" + std::string(route);
      AuditSignIn("oauth.scope", false, "idp:" + p->subject, p->client_id, refusal);
      return Fail(Error::PermissionDenied(refusal));
    } else {
      // The caller is the principal, and what its token's scopes reach: a token for one
      // server is a caller of its own, so it never opens the others through a session of a
      // broader token of the same person.
      CallerInfo who;
      who.grant.name = "idp:" + p->subject;
      who.grant.principal = p->subject;
      who.grant.client = p->client_id;
      if (!p->ScopeAllows("")) {
        std::vector<std::string> servers;
        for (const std::string& s : p->scopes) {
          if (s.starts_with(oauth::kScopeServerPrefix)) servers.push_back(s.substr(oauth::kScopeServerPrefix.size()));
        }
        std::sort(servers.begin(), servers.end());
        who.grant.servers = servers;
        std::string list;
        for (const std::string& s : servers) list.append(list.empty() ? "#" : ",").append(s);
        who.grant.name += list;
      }
      who.groups = p->groups;
      std::string name = who.grant.name;
      std::lock_guard lock(callers_mu_);
      if (callers_.size() >= kMaxCallers && !callers_.contains(name)) callers_.clear();
      callers_[name] = std::make_shared<const CallerInfo>(std::move(who));
      return name;
    }
  }
  if (refusal.empty()) {
    auto verdict = grants_->Authenticate(token, now);
    if (!verdict) {
      spdlog::error("authentication: {}", verdict.error().message());
      return Fail(Error::Unavailable("the grant store is unavailable"));
    }
    if (verdict->grant) return verdict->grant->name;
    refusal = std::string(auth::RefusalText(verdict->refusal));
  }
  // Refusals are audited — never with the token.
  audit::Record r;
  r.decision = "deny";
  r.rule = "authentication";
  r.reason = refusal;
  r.outcome = "not_forwarded";
  SubmitAuthRecord(std::move(r));
  unauthorized_.fetch_add(1, std::memory_order_relaxed);
  return Fail(Error::InvalidArgument(refusal));
}

Result<Gateway::CallerInfo> Gateway::CallerOf(const std::string& name) {
  if (name.starts_with("idp:")) {
    std::lock_guard lock(callers_mu_);
    auto it = callers_.find(name);
    if (it == callers_.end()) return Fail(Error::NotFound("unknown caller"));
    return *it->second;
  }
  auto grant = grants_->Get(name);
  if (!grant) return Fail(Error::Unavailable(grant.error().message()));
  if (!*grant) return Fail(Error::NotFound("unknown grant"));
  CallerInfo c;
  c.grant = std::move(**grant);
  return c;
}

std::shared_ptr<const auth::Headers> Gateway::CredentialsFor(const std::string& server,
                                                             const std::string& principal) {
  if (principal.empty()) return nullptr;
  if (!credentials_) {
    auto key = auth::CredentialKey::Load(config_.auth.credential_key_file);
    if (!key) {
      spdlog::error("server {}: credentials: per_principal, but {}", server, key.error().message());
      return nullptr;
    }
    auto store = auth::OpenCredentialStore(state_spec_, *key);
    if (!store) {
      spdlog::error("server {}: {}", server, store.error().message());
      return nullptr;
    }
    credentials_ = std::move(*store);
  }
  auto headers = credentials_->Get(server, principal);
  if (!headers) {
    spdlog::error("server {}: the credentials of {}: {}", server, principal, headers.error().message());
    return nullptr;
  }
  if (!*headers) return nullptr;
  return std::make_shared<const auth::Headers>(std::move(**headers));
}

gateway::Caller Gateway::CallerFor(const CallerInfo& info) {
  gateway::Caller c(info.grant.name);
  c.principal = info.grant.principal;
  c.groups = info.groups;
  return c;
}

bool Gateway::ServerAdmits(const config::ServerConfig& server, const CallerInfo& caller) {
  if (server.principals.empty() && server.groups.empty()) return true;
  const std::string& who = caller.grant.principal;
  if (!who.empty() && std::find(server.principals.begin(), server.principals.end(), who) != server.principals.end()) {
    return true;
  }
  return std::any_of(caller.groups.begin(), caller.groups.end(), [&](const std::string& g) {
    return std::find(server.groups.begin(), server.groups.end(), g) != server.groups.end();
  });
}

std::string Gateway::SsoName() {
  if (!issuer_ || config_.auth.oidc->console.client_id.empty()) return {};
  return issuer_->options().issuer;
}

Result<std::string> Gateway::SsoStart(const std::string& base, const std::string& return_to,
                                      const std::string& browser) {
  if (SsoName().empty()) return Fail(Error::NotFound("the console signs in with the admin token only"));
  const oauth::Discovery d = issuer_->endpoints();
  if (d.authorization_endpoint.empty() || d.token_endpoint.empty()) {
    return Fail(Error::Unavailable("the identity provider's discovery document is not known yet"));
  }
  SsoPending p{RandomBase62(43), RandomBase62(22), return_to, browser, clock_.NowMs() + 10 * 60'000};
  const std::string state = RandomBase62(32);
  boost::urls::url url(d.authorization_endpoint);
  const config::OidcConfig::Console& c = config_.auth.oidc->console;
  url.params().append({"response_type", "code"});
  url.params().append({"client_id", c.client_id});
  url.params().append({"redirect_uri", base + "/api/login/sso/callback"});
  url.params().append({"scope", c.scopes});
  url.params().append({"state", state});
  url.params().append({"nonce", p.nonce});
  url.params().append({"code_challenge", oauth::PkceChallenge(p.verifier)});
  url.params().append({"code_challenge_method", "S256"});
  std::lock_guard lock(callers_mu_);
  const int64_t now = clock_.NowMs();
  std::erase_if(sso_, [&](const auto& kv) { return kv.second.expires_ms <= now; });
  if (sso_.size() >= 1000) sso_.erase(sso_.begin());
  sso_[state] = std::move(p);
  return std::string(url.buffer());
}

Result<Gateway::SsoUser> Gateway::SsoFinish(const std::string& base, const std::string& code,
                                            const std::string& state, const std::string& browser) {
  if (SsoName().empty()) return Fail(Error::NotFound("the console signs in with the admin token only"));
  SsoPending p;
  {
    std::lock_guard lock(callers_mu_);
    auto it = sso_.find(state);
    if (it == sso_.end() || it->second.expires_ms <= clock_.NowMs()) {
      return Fail(Error::InvalidArgument("this sign-in is over (expired, or not started here)"));
    }
    p = std::move(it->second);
    sso_.erase(it);
  }
  if (browser.empty() || !admin::ConsoleSessions::SameSecret(browser, p.browser)) {
    return Fail(Error::InvalidArgument("this sign-in was started in another browser"));
  }
  const config::OidcConfig::Console& c = config_.auth.oidc->console;
  boost::urls::url form;
  form.params().append({"grant_type", "authorization_code"});
  form.params().append({"code", code});
  form.params().append({"redirect_uri", base + "/api/login/sso/callback"});
  form.params().append({"client_id", c.client_id});
  form.params().append({"code_verifier", p.verifier});
  if (!c.client_secret.empty()) form.params().append({"client_secret", c.client_secret});
  // On the home loop, once per person signing in to the console: bounded by a short timeout.
  auto reply = transport::FetchSync("POST", issuer_->endpoints().token_endpoint,
                                    {{"Content-Type", "application/x-www-form-urlencoded"}, {"Accept", "application/json"}},
                                    std::string(form.encoded_query()), std::chrono::seconds(5));
  if (!reply) return Fail(Error::Unavailable("the identity provider's token endpoint: " + reply.error().message()));
  boost::system::error_code ec;
  json::value body = json::parse(reply->body, ec);
  const json::value* id_token = !ec && body.is_object() ? body.as_object().if_contains("id_token") : nullptr;
  if (reply->status != 200 || !id_token || !id_token->is_string()) {
    const json::value* error = !ec && body.is_object() ? body.as_object().if_contains("error") : nullptr;
    return Fail(Error::InvalidArgument("the identity provider refused the code" +
                                       (error && error->is_string() ? " (" + std::string(error->as_string()) + ")"
                                                                    : std::string())));
  }
  auto who = issuer_->VerifyIdToken(id_token->as_string(), c.client_id, p.nonce, clock_.NowMs());
  if (!who) return Fail(who.error());
  if (std::find(who->groups.begin(), who->groups.end(), c.admins_group) == who->groups.end()) {
    return Fail(Error::PermissionDenied(who->subject + " is not in the " + c.admins_group + " group"));
  }
  return SsoUser{who->subject, p.return_to};
}

Result<json::object> Gateway::PendingConsent(const std::string& id) {
  if (!as_) return Fail(Error::Unavailable("this gateway has no built-in authorization server"));
  std::optional<oauth::PendingConsent> p = as_->Pending(id);
  if (!p) return Fail(Error::NotFound("this sign-in is over (expired or already answered)"));
  json::array scopes, redirect, servers;
  for (const std::string& s : p->scopes) scopes.emplace_back(s);
  for (const std::string& s : ServerList()) servers.emplace_back(s);
  return json::object{{"client", p->client.name},
                      {"client_id", p->client.id},
                      {"redirect_uri", p->redirect_uri},
                      {"scopes", std::move(scopes)},
                      {"servers", std::move(servers)},
                      {"expires_ms", p->expires_ms}};
}

Result<std::string> Gateway::AnswerConsent(const std::string& id, const ConsentAnswer& answer) {
  if (!as_) return Fail(Error::Unavailable("this gateway has no built-in authorization server"));
  oauth::ConsentChoice choice{answer.approve, answer.servers, answer.expires_ms, answer.principal};
  return as_->Decide(id, choice, ServerList(), answer.base);
}

}  // namespace tw::app
