#include "oauth/authorization_server.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <algorithm>
#include <boost/json.hpp>
#include <boost/url.hpp>

#include "common/random.h"
#include "oauth/jwt.h"
#include "oauth/principal.h"

namespace tw::oauth {
namespace json = boost::json;
namespace urls = boost::urls;

namespace {

constexpr std::string_view kMetadataPath = "/.well-known/oauth-authorization-server";
constexpr size_t kMaxRedirectUris = 10;
constexpr size_t kMaxUriBytes = 2048;
constexpr size_t kMaxNameBytes = 200;

AsReply JsonReply(int status, const json::value& body) {
  AsReply r;
  r.status = status;
  r.body = json::serialize(body);
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

// application/x-www-form-urlencoded (or a query) into names and values; a repeated name is
// an error (RFC 6749 §3.1: parameters must not be included more than once).
std::optional<std::map<std::string, std::string>> ParseForm(std::string_view text) {
  std::map<std::string, std::string> out;
  if (!urls::parse_query(text)) return std::nullopt;  // valid: the view below cannot throw
  urls::encoding_opts opt;
  opt.space_as_plus = true;
  for (const auto& p : urls::params_view(text, opt)) {  // decoded
    if (p.key.empty()) continue;
    if (!out.emplace(p.key, p.value).second) return std::nullopt;
  }
  return out;
}

std::string Get(const std::map<std::string, std::string>& form, const std::string& key) {
  auto it = form.find(key);
  return it == form.end() ? std::string() : it->second;
}

bool IsLoopbackHost(std::string_view host) {
  return host == "127.0.0.1" || host == "localhost" || host == "[::1]" || host == "::1";
}

// Whether a client may register `uri` to be sent back to: https anywhere, http only on a
// loopback address, or a private-use scheme of a native app (RFC 8252 §7.1) — never a scheme
// a browser runs (javascript:, data:, file:, blob:…), and never with a fragment.
std::optional<std::string> RedirectUriProblem(std::string_view uri) {
  if (uri.size() > kMaxUriBytes) return "longer than 2048 bytes";
  auto u = urls::parse_absolute_uri(uri);
  if (!u) return "not an absolute URI";
  if (u->has_fragment()) return "has a fragment";
  const std::string scheme = u->scheme();
  if (scheme == "https") return u->host().empty() ? std::optional<std::string>("has no host") : std::nullopt;
  if (scheme == "http") {
    return IsLoopbackHost(u->host()) ? std::nullopt
                                     : std::optional<std::string>("http is taken for loopback addresses only");
  }
  static constexpr std::string_view kBrowserSchemes[] = {"javascript", "data", "file", "blob",
                                                         "about", "vbscript", "ws", "wss", "ftp"};
  for (std::string_view s : kBrowserSchemes) {
    if (scheme == s) return "scheme \"" + scheme + "\" is not taken";
  }
  return std::nullopt;  // a native app's own scheme: cursor://…, vscode://…
}

// Whether `given` is one of `registered`: exactly, or — for http on a loopback address — the
// same but for the port, which a native app picks when it listens (RFC 8252 §7.3).
bool RedirectRegistered(const std::vector<std::string>& registered, const std::string& given) {
  if (std::find(registered.begin(), registered.end(), given) != registered.end()) return true;
  auto g = urls::parse_absolute_uri(given);
  if (!g || g->scheme() != "http" || !IsLoopbackHost(g->host())) return false;
  for (const std::string& r : registered) {
    auto u = urls::parse_absolute_uri(r);
    if (u && u->scheme() == "http" && u->host() == g->host() && u->encoded_path() == g->encoded_path() &&
        u->encoded_query() == g->encoded_query()) {
      return true;
    }
  }
  return false;
}

// RFC 7636 §4.1: 43-128 characters of [A-Z a-z 0-9 - . _ ~].
bool ValidVerifier(std::string_view v) {
  if (v.size() < 43 || v.size() > 128) return false;
  return std::all_of(v.begin(), v.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
  });
}

// Constant time: the comparison of a secret-derived value.
bool SameSecret(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

// A grant name from a client's: its letters and digits, lowercased, dashes between words, then
// six random characters ("claude-code-x8f3k2").
std::string GrantNameFor(std::string_view client_name) {
  std::string base;
  for (char c : client_name) {
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
      base.push_back(c);
    } else if (c >= 'A' && c <= 'Z') {
      base.push_back(static_cast<char>(c - 'A' + 'a'));
    } else if (!base.empty() && base.back() != '-') {
      base.push_back('-');
    }
    if (base.size() >= 40) break;
  }
  while (!base.empty() && base.back() == '-') base.pop_back();
  if (base.empty()) base = "oauth-client";
  std::string suffix = RandomBase62(6);
  for (char& c : suffix) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return base + "-" + suffix;
}

// The scopes of `requested` (space-separated) that name something here.
std::vector<std::string> KnownScopes(std::string_view requested, const std::vector<std::string>& servers) {
  std::vector<std::string> out;
  const std::vector<std::string> known = ScopesFor(servers);
  size_t i = 0;
  while (i < requested.size()) {
    const size_t j = std::min(requested.find(' ', i), requested.size());
    const std::string s(requested.substr(i, j - i));
    if (!s.empty() && std::find(known.begin(), known.end(), s) != known.end() &&
        std::find(out.begin(), out.end(), s) == out.end()) {
      out.push_back(s);
    }
    i = j + 1;
  }
  return out;
}

std::string ScopeOfServers(const std::vector<std::string>& servers) {
  if (servers.empty()) return std::string(kScopeAll);
  std::string s;
  for (const std::string& name : servers) {
    if (!s.empty()) s += ' ';
    s.append(kScopeServerPrefix).append(name);
  }
  return s;
}

// Whether `resource` (RFC 8707) is this gateway's: its /mcp, or a server's route under it.
bool OurResource(const std::string& resource, const std::string& base) {
  const std::string ours = ResourceOf(base);
  return resource == ours || resource == ours + "/" ||
         (resource.starts_with(ours + "/") && resource.find_first_of("?#", ours.size()) == std::string::npos);
}

std::string WithParams(const std::string& uri, std::initializer_list<std::pair<std::string_view, std::string_view>> params) {
  urls::url u(uri);
  for (const auto& [k, v] : params) {
    if (!v.empty()) u.params().append({k, v});
  }
  return std::string(u.buffer());
}

}  // namespace

std::string PkceChallenge(std::string_view verifier) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(verifier.data()), verifier.size(), digest);
  return Base64UrlEncode(std::string_view(reinterpret_cast<const char*>(digest), sizeof digest));
}

std::string ResourceOf(const std::string& base) { return base + "/mcp"; }

std::vector<std::string> ScopesFor(const std::vector<std::string>& servers) {
  std::vector<std::string> out{std::string(kScopeAll)};
  for (const std::string& s : servers) out.push_back(std::string(kScopeServerPrefix) + s);
  return out;
}

std::string ProtectedResourceMetadata(const std::string& base,
                                      const std::vector<std::string>& authorization_servers,
                                      const std::vector<std::string>& servers) {
  json::array as, scopes;
  for (const std::string& a : authorization_servers) as.emplace_back(a);
  for (const std::string& s : ScopesFor(servers)) scopes.emplace_back(s);
  return json::serialize(json::object{{"resource", ResourceOf(base)},
                                      {"authorization_servers", std::move(as)},
                                      {"scopes_supported", std::move(scopes)},
                                      {"bearer_methods_supported", json::array{"header"}},
                                      {"resource_name", "toolwarden"}});
}

AuthorizationServer::AuthorizationServer(auth::GrantStore& grants, auth::OAuthStore& store,
                                         const Clock& clock, AsOptions options, AsAuditor audit)
    : grants_(grants), store_(store), clock_(clock), options_(options), audit_(std::move(audit)) {}

bool AuthorizationServer::Owns(std::string_view path) {
  return path == kMetadataPath || path.starts_with(std::string(kMetadataPath) + "/") ||
         path == "/oauth/register" || path == "/oauth/authorize" || path == "/oauth/token";
}

AsReply AuthorizationServer::Refuse(std::string_view event, int status, std::string_view error,
                                    std::string reason, std::string_view client,
                                    std::string_view grant) {
  audit_(event, false, grant, client, reason);
  return JsonReply(status, json::object{{"error", error}, {"error_description", reason}});
}

AsReply AuthorizationServer::Handle(const AsRequest& req, const std::vector<std::string>& servers) {
  if (req.path == kMetadataPath || req.path.starts_with(std::string(kMetadataPath) + "/")) {
    if (req.method != "GET") return JsonReply(405, json::object{{"error", "invalid_request"}});
    return Metadata(req, servers);
  }
  if (req.path == "/oauth/authorize") {
    if (req.method != "GET") return JsonReply(405, json::object{{"error", "invalid_request"}});
    return Authorize(req, servers);
  }
  if (req.method != "POST") {
    AsReply r = JsonReply(405, json::object{{"error", "invalid_request"},
                                            {"error_description", "use POST"}});
    r.headers.emplace_back("Allow", "POST");
    return r;
  }
  if (req.path == "/oauth/register") return Register(req);
  return Token(req);
}

AsReply AuthorizationServer::Metadata(const AsRequest& req, const std::vector<std::string>& servers) const {
  json::array scopes;
  for (const std::string& s : ScopesFor(servers)) scopes.emplace_back(s);
  json::object m{{"issuer", req.base},
                 {"authorization_endpoint", req.base + "/oauth/authorize"},
                 {"token_endpoint", req.base + "/oauth/token"},
                 {"registration_endpoint", req.base + "/oauth/register"},
                 {"response_types_supported", json::array{"code"}},
                 {"response_modes_supported", json::array{"query"}},
                 {"grant_types_supported", json::array{"authorization_code", "refresh_token"}},
                 {"code_challenge_methods_supported", json::array{"S256"}},
                 {"token_endpoint_auth_methods_supported", json::array{"none"}},
                 {"scopes_supported", std::move(scopes)},
                 {"authorization_response_iss_parameter_supported", true}};
  if (fetch_document_) m["client_id_metadata_document_supported"] = true;
  return JsonReply(200, m);
}

Result<auth::OAuthClient> AuthorizationServer::ClientFromDocument(const std::string& url) {
  auto u = urls::parse_absolute_uri(url);
  if (!u || url.size() > kMaxUriBytes || u->scheme() != "https" || u->has_fragment() || u->has_userinfo() ||
      u->path().empty() || u->path() == "/") {
    return Fail(Error::InvalidArgument("a client_id URL must be https, with a path, without a fragment"));
  }
  auto text = fetch_document_(url);
  if (!text) return Fail(Error::InvalidArgument("the client's metadata document: " + text.error().message()));
  boost::system::error_code ec;
  json::value doc = json::parse(*text, ec);
  if (ec || !doc.is_object()) return Fail(Error::InvalidArgument("the client's metadata document is not a JSON object"));
  const json::object& o = doc.as_object();
  const json::value* id = o.if_contains("client_id");
  if (!id || !id->is_string() || id->as_string() != url) {
    return Fail(Error::InvalidArgument("the client's metadata document names another client_id"));
  }
  auth::OAuthClient c;
  c.id = url;
  if (const json::value* name = o.if_contains("client_name"); name && name->is_string() && name->as_string().size() <= kMaxNameBytes) {
    c.name = std::string(name->as_string());
  }
  if (c.name.empty()) c.name = std::string(u->host());
  const json::value* uris = o.if_contains("redirect_uris");
  if (!uris || !uris->is_array() || uris->as_array().empty() || uris->as_array().size() > kMaxRedirectUris) {
    return Fail(Error::InvalidArgument("the client's metadata document must list 1 to 10 redirect_uris"));
  }
  for (const json::value& r : uris->as_array()) {
    if (!r.is_string() || RedirectUriProblem(r.as_string())) {
      return Fail(Error::InvalidArgument("the client's metadata document has a redirect URI that is not taken"));
    }
    c.redirect_uris.emplace_back(r.as_string());
  }
  return c;
}

AsReply AuthorizationServer::Register(const AsRequest& req) {
  constexpr std::string_view kEvent = "oauth.register";
  boost::system::error_code ec;
  json::value doc = json::parse(req.body, ec);
  if (ec || !doc.is_object()) {
    return Refuse(kEvent, 400, "invalid_client_metadata", "the registration is not a JSON object");
  }
  const json::object& o = doc.as_object();
  auth::OAuthClient client;
  if (const json::value* name = o.if_contains("client_name")) {
    if (!name->is_string() || name->as_string().size() > kMaxNameBytes) {
      return Refuse(kEvent, 400, "invalid_client_metadata", "client_name must be a string of at most 200 bytes");
    }
    client.name = std::string(name->as_string());
  }
  const json::value* uris = o.if_contains("redirect_uris");
  if (!uris || !uris->is_array() || uris->as_array().empty() ||
      uris->as_array().size() > kMaxRedirectUris) {
    return Refuse(kEvent, 400, "invalid_redirect_uri", "redirect_uris must list 1 to 10 URIs");
  }
  for (const json::value& u : uris->as_array()) {
    if (!u.is_string()) return Refuse(kEvent, 400, "invalid_redirect_uri", "a redirect URI is not a string");
    if (auto problem = RedirectUriProblem(u.as_string())) {
      return Refuse(kEvent, 400, "invalid_redirect_uri",
                    "redirect URI " + std::string(u.as_string().subview(0, 200)) + ": " + *problem);
    }
    client.redirect_uris.emplace_back(u.as_string());
  }
  if (const json::value* types = o.if_contains("grant_types"); types && types->is_array()) {
    for (const json::value& t : types->as_array()) {
      if (!t.is_string() || (t.as_string() != "authorization_code" && t.as_string() != "refresh_token")) {
        return Refuse(kEvent, 400, "invalid_client_metadata",
                      "grant_types: only authorization_code and refresh_token are taken");
      }
    }
  }
  if (client.name.empty()) client.name = "MCP client";
  auto saved = store_.Register(client, clock_.NowMs(), options_.max_clients);
  if (!saved) {
    const bool full = saved.error().code() == ErrorCode::kLimitExceeded;
    return Refuse(kEvent, full ? 503 : 500, "temporarily_unavailable", saved.error().message());
  }
  audit_(kEvent, true, {}, saved->name, {});
  json::array registered;
  for (const std::string& u : saved->redirect_uris) registered.emplace_back(u);
  // A public client: PKCE proves the token request comes from who started the sign-in, so
  // there is no secret to keep (and none to leak from a laptop).
  return JsonReply(201, json::object{{"client_id", saved->id},
                                     {"client_id_issued_at", saved->created_ms / 1000},
                                     {"client_name", saved->name},
                                     {"redirect_uris", std::move(registered)},
                                     {"grant_types", json::array{"authorization_code", "refresh_token"}},
                                     {"response_types", json::array{"code"}},
                                     {"token_endpoint_auth_method", "none"}});
}

AsReply AuthorizationServer::Authorize(const AsRequest& req, const std::vector<std::string>& servers) {
  constexpr std::string_view kEvent = "oauth.authorize";
  auto form = ParseForm(req.query);
  if (!form) return Refuse(kEvent, 400, "invalid_request", "the query is malformed or repeats a parameter");
  const std::string client_id = Get(*form, "client_id");
  Result<std::optional<auth::OAuthClient>> client = std::optional<auth::OAuthClient>();
  if (fetch_document_ && client_id.starts_with("https://")) {
    auto described = ClientFromDocument(client_id);
    if (!described) return Refuse(kEvent, 400, "invalid_client", described.error().message());
    client = std::optional<auth::OAuthClient>(std::move(*described));
  } else {
    client = store_.Client(client_id);
  }
  if (!client) return Refuse(kEvent, 503, "temporarily_unavailable", client.error().message());
  if (!*client) return Refuse(kEvent, 400, "invalid_client", "unknown client_id");
  const std::string redirect = Get(*form, "redirect_uri");
  const std::vector<std::string>& registered = (*client)->redirect_uris;
  if (!(redirect.empty() ? registered.size() == 1 : RedirectRegistered(registered, redirect))) {
    // Never sent anywhere the client did not register: shown here instead.
    return Refuse(kEvent, 400, "invalid_request", "redirect_uri is not one the client registered",
                  (*client)->name);
  }
  const std::string target = redirect.empty() ? registered.front() : redirect;
  const std::string state = Get(*form, "state");
  auto back = [&](std::string_view error, std::string reason) {
    audit_(kEvent, false, {}, (*client)->name, reason);
    AsReply r;
    r.status = 302;
    r.headers.emplace_back("Location", WithParams(target, {{"error", error},
                                                           {"error_description", reason},
                                                           {"state", state},
                                                           {"iss", req.base}}));
    return r;
  };
  if (Get(*form, "response_type") != "code") {
    return back("unsupported_response_type", "response_type must be code");
  }
  const std::string challenge = Get(*form, "code_challenge");
  if (Get(*form, "code_challenge_method") != "S256" || challenge.size() != 43 ||
      !Base64UrlDecode(challenge)) {
    return back("invalid_request", "PKCE with code_challenge_method S256 is required");
  }
  std::string resource = Get(*form, "resource");
  if (resource.empty()) resource = ResourceOf(req.base);
  if (!OurResource(resource, req.base)) {
    return back("invalid_target", "resource is not this gateway (" + ResourceOf(req.base) + ")");
  }
  PendingConsent p;
  p.client = std::move(**client);
  p.redirect_uri = target;
  p.state = state;
  p.challenge = challenge;
  p.resource = ResourceOf(req.base);
  p.scopes = KnownScopes(Get(*form, "scope"), servers);
  p.expires_ms = clock_.NowMs() + options_.consent_ttl_ms;
  p.id = RandomBase62(32);
  {
    std::lock_guard lock(mu_);
    const int64_t now = clock_.NowMs();
    std::erase_if(pending_, [&](const auto& kv) { return kv.second.expires_ms <= now; });
    // Anyone may start a sign-in: when too many wait, the oldest gives way (a person whose
    // sign-in was pushed out starts it again), so a flood cannot lock the consent screen.
    while (pending_.size() >= options_.max_pending) {
      auto oldest = std::min_element(pending_.begin(), pending_.end(), [](const auto& a, const auto& b) {
        return a.second.expires_ms < b.second.expires_ms;
      });
      pending_.erase(oldest);
    }
    pending_[p.id] = p;
  }
  AsReply r;
  r.status = 302;
  r.headers.emplace_back("Location", "/ui/#/consent/" + p.id);
  return r;
}

std::optional<PendingConsent> AuthorizationServer::Pending(const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = pending_.find(id);
  if (it == pending_.end() || it->second.expires_ms <= clock_.NowMs()) return std::nullopt;
  return it->second;
}

Result<std::string> AuthorizationServer::Decide(const std::string& id, const ConsentChoice& choice,
                                                const std::vector<std::string>& servers,
                                                const std::string& base) {
  for (const std::string& s : choice.servers) {
    if (std::find(servers.begin(), servers.end(), s) == servers.end()) {
      return Fail(Error::InvalidArgument("no server named \"" + s + "\""));
    }
  }
  PendingConsent p;
  {
    std::lock_guard lock(mu_);
    auto it = pending_.find(id);
    if (it == pending_.end() || it->second.expires_ms <= clock_.NowMs()) {
      return Fail(Error::NotFound("this sign-in is over (expired or already answered)"));
    }
    p = std::move(it->second);
    pending_.erase(it);
  }
  if (!choice.approve) {
    audit_("oauth.consent", false, {}, p.client.name, "denied by " + choice.principal);
    return WithParams(p.redirect_uri, {{"error", "access_denied"},
                                       {"error_description", "the sign-in was declined"},
                                       {"state", p.state},
                                       {"iss", base}});
  }
  auth::Grant g;
  g.name = GrantNameFor(p.client.name);
  g.servers = choice.servers;
  g.expires_ms = choice.expires_ms;
  g.principal = choice.principal;
  g.client = p.client.name;
  const int64_t now = clock_.NowMs();
  // The grant's own token is never shown: the client holds OAuth tokens only.
  if (auto made = grants_.Create(g, now); !made) return Fail(made.error());
  auth::AuthorizationCode code;
  code.client_id = p.client.id;
  code.grant = g.name;
  code.redirect_uri = p.redirect_uri;
  code.challenge = p.challenge;
  code.resource = p.resource;
  code.scope = ScopeOfServers(g.servers);
  code.expires_ms = now + options_.code_ttl_ms;
  auto secret = store_.SaveCode(code);
  if (!secret) return Fail(secret.error());
  audit_("oauth.consent", true, g.name, p.client.name, {});
  return WithParams(p.redirect_uri, {{"code", *secret}, {"state", p.state}, {"iss", base}});
}

AsReply AuthorizationServer::Token(const AsRequest& req) {
  constexpr std::string_view kEvent = "oauth.token";
  if (!req.content_type.starts_with("application/x-www-form-urlencoded")) {
    return Refuse(kEvent, 400, "invalid_request", "the token request must be application/x-www-form-urlencoded");
  }
  auto form = ParseForm(req.body);
  if (!form) return Refuse(kEvent, 400, "invalid_request", "the body is malformed or repeats a parameter");
  const std::string type = Get(*form, "grant_type");
  if (type == "authorization_code") return ExchangeCode(*form, req.base);
  if (type == "refresh_token") return Refresh(*form, req.base);
  return Refuse(kEvent, 400, "unsupported_grant_type", "grant_type must be authorization_code or refresh_token");
}

AsReply AuthorizationServer::ExchangeCode(const std::map<std::string, std::string>& form,
                                          const std::string& base) {
  constexpr std::string_view kEvent = "oauth.token";
  const std::string verifier = Get(form, "code_verifier");
  if (!ValidVerifier(verifier)) return Refuse(kEvent, 400, "invalid_request", "code_verifier is missing or malformed");
  auto code = store_.TakeCode(Get(form, "code"), clock_.NowMs());
  if (!code) return Refuse(kEvent, 503, "temporarily_unavailable", code.error().message());
  if (!*code) return Refuse(kEvent, 400, "invalid_grant", "the code is unknown, expired or used");
  const auth::AuthorizationCode& c = **code;
  if (Get(form, "client_id") != c.client_id) {
    return Refuse(kEvent, 400, "invalid_grant", "the code was issued to another client", {}, c.grant);
  }
  if (Get(form, "redirect_uri") != c.redirect_uri) {
    return Refuse(kEvent, 400, "invalid_grant", "redirect_uri differs from the authorization request", {}, c.grant);
  }
  if (!SameSecret(PkceChallenge(verifier), c.challenge)) {
    return Refuse(kEvent, 400, "invalid_grant", "code_verifier does not match the code_challenge", {}, c.grant);
  }
  if (const std::string resource = Get(form, "resource"); !resource.empty() && !OurResource(resource, base)) {
    return Refuse(kEvent, 400, "invalid_target", "resource is not this gateway", {}, c.grant);
  }
  return IssueTokens(std::string(kEvent), c.grant, c.client_id, RandomBase62(22), c.resource, c.scope);
}

AsReply AuthorizationServer::Refresh(const std::map<std::string, std::string>& form,
                                     const std::string& base) {
  constexpr std::string_view kEvent = "oauth.refresh";
  const int64_t now = clock_.NowMs();
  auto taken = store_.TakeRefresh(Get(form, "refresh_token"), now);
  if (!taken) return Refuse(kEvent, 503, "temporarily_unavailable", taken.error().message());
  if (taken->replayed) {
    // A refresh token used twice was copied: end the chain, access tokens included.
    (void)store_.RevokeRefreshFamily(taken->family);
    (void)grants_.RevokeFamily(taken->family, now);
    return Refuse(kEvent, 400, "invalid_grant", "the refresh token was used before; its sign-in is ended");
  }
  if (!taken->grant) return Refuse(kEvent, 400, "invalid_grant", "the refresh token is unknown or expired");
  const auth::RefreshGrant& g = *taken->grant;
  if (Get(form, "client_id") != g.client_id) {
    return Refuse(kEvent, 400, "invalid_grant", "the refresh token was issued to another client", {}, g.grant);
  }
  if (const std::string resource = Get(form, "resource"); !resource.empty() && !OurResource(resource, base)) {
    return Refuse(kEvent, 400, "invalid_target", "resource is not this gateway", {}, g.grant);
  }
  return IssueTokens(std::string(kEvent), g.grant, g.client_id, g.family, g.resource, g.scope);
}

AsReply AuthorizationServer::IssueTokens(const std::string& event, const std::string& grant,
                                         const std::string& client, const std::string& family,
                                         const std::string& resource, const std::string& scope) {
  const int64_t now = clock_.NowMs();
  auto current = grants_.Get(grant);
  if (!current) return Refuse(event, 503, "temporarily_unavailable", current.error().message());
  if (!*current || (*current)->revoked_ms != 0 ||
      ((*current)->expires_ms != 0 && now >= (*current)->expires_ms)) {
    return Refuse(event, 400, "invalid_grant", "the grant was revoked or expired", {}, grant);
  }
  int64_t access_expiry = now + options_.access_ttl_ms;
  int64_t refresh_expiry = now + options_.refresh_ttl_ms;
  if ((*current)->expires_ms != 0) {
    access_expiry = std::min(access_expiry, (*current)->expires_ms);
    refresh_expiry = std::min(refresh_expiry, (*current)->expires_ms);
  }
  auto access = grants_.IssueAccessToken(grant, family, access_expiry, now);
  if (!access) return Refuse(event, 400, "invalid_grant", access.error().message(), {}, grant);
  auth::RefreshGrant r{client, grant, family, resource, scope, refresh_expiry};
  auto refresh = store_.SaveRefresh(r, now);
  if (!refresh) return Refuse(event, 503, "temporarily_unavailable", refresh.error().message(), {}, grant);
  audit_(event, true, grant, (*current)->client, {});
  return JsonReply(200, json::object{{"access_token", *access},
                                     {"token_type", "Bearer"},
                                     {"expires_in", (access_expiry - now + 999) / 1000},
                                     {"refresh_token", *refresh},
                                     {"scope", scope}});
}

}  // namespace tw::oauth
