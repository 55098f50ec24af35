#include "oauth/issuer.h"

#include "common/canonical_json.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <chrono>

namespace tw::oauth {
namespace json = boost::json;

namespace {

int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string TrimSlash(std::string s) {
  while (!s.empty() && s.back() == '/') s.pop_back();
  return s;
}

}  // namespace

bool Principal::ScopeAllows(std::string_view server) const {
  for (const std::string& s : scopes) {
    if (s == kScopeAll) return true;
    if (s.size() == kScopeServerPrefix.size() + server.size() && s.starts_with(kScopeServerPrefix) &&
        std::string_view(s).substr(kScopeServerPrefix.size()) == server) {
      return true;
    }
  }
  return false;
}

bool Principal::AnyScope() const {
  return std::any_of(scopes.begin(), scopes.end(), [](const std::string& s) {
    return s == kScopeAll || (s.starts_with(kScopeServerPrefix) && s.size() > kScopeServerPrefix.size());
  });
}

Result<Discovery> Discover(const std::string& issuer, const Fetcher& fetch) {
  // OpenID Connect Discovery first (every IdP named in the README serves it), then RFC 8414.
  const std::string base = TrimSlash(issuer);
  std::string why;
  for (const char* suffix : {"/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"}) {
    auto body = fetch(base + suffix);
    if (!body) {
      why = body.error().message();
      continue;
    }
    boost::system::error_code ec;
    json::value doc = json::parse(*body, ec);
    if (ec || !doc.is_object()) {
      why = base + suffix + " is not a JSON object";
      continue;
    }
    const json::object& o = doc.as_object();
    const json::value* iss = o.if_contains("issuer");
    if (!iss || !iss->is_string() || iss->as_string() != issuer) {
      return Fail(Error::InvalidArgument("the discovery document at " + base + suffix +
                                         " names another issuer than \"" + issuer + "\""));
    }
    auto text = [&](std::string_view key) {
      const json::value* v = o.if_contains(key);
      return v && v->is_string() ? std::string(v->as_string()) : std::string();
    };
    Discovery d{text("jwks_uri"), text("authorization_endpoint"), text("token_endpoint")};
    if (d.jwks_uri.empty()) {
      return Fail(Error::InvalidArgument("the discovery document at " + base + suffix +
                                         " has no jwks_uri"));
    }
    return d;
  }
  return Fail(Error::Unavailable("discovery at " + base + ": " + why));
}

Result<Principal> MapClaims(const json::object& claims, const IssuerOptions& options) {
  Principal p;
  auto text = [&](const std::string& name) -> std::string {
    const json::value* v = name.empty() ? nullptr : claims.if_contains(name);
    return v && v->is_string() ? std::string(v->as_string()) : std::string();
  };
  p.subject = text(options.principal_claim);
  if (p.subject.empty()) {
    return Fail(Error::InvalidArgument("the token has no \"" + options.principal_claim +
                                       "\" claim to name its principal"));
  }
  p.email = text(options.email_claim);
  p.issuer = text("iss");
  p.client_id = text("client_id");
  if (p.client_id.empty()) p.client_id = text("azp");
  auto words = [](std::string_view s, std::vector<std::string>& out) {
    size_t i = 0;
    while (i < s.size()) {
      const size_t j = std::min(s.find(' ', i), s.size());
      if (j > i) out.emplace_back(s.substr(i, j - i));
      i = j + 1;
    }
  };
  if (const json::value* g = claims.if_contains(options.groups_claim)) {
    if (g->is_array()) {
      for (const json::value& e : g->as_array()) {
        if (e.is_string()) p.groups.emplace_back(e.as_string());
      }
    } else if (g->is_string()) {
      words(g->as_string(), p.groups);
    }
  }
  std::sort(p.groups.begin(), p.groups.end());
  p.groups.erase(std::unique(p.groups.begin(), p.groups.end()), p.groups.end());
  if (const json::value* s = claims.if_contains("scope"); s && s->is_string()) {
    words(s->as_string(), p.scopes);
  } else if (const json::value* scp = claims.if_contains("scp"); scp && scp->is_array()) {
    for (const json::value& e : scp->as_array()) {
      if (e.is_string()) p.scopes.emplace_back(e.as_string());
    }
  }
  return p;
}

TrustedIssuer::TrustedIssuer(IssuerOptions options, Fetcher fetch)
    : options_(std::move(options)), fetch_(std::move(fetch)), jwks_uri_(options_.jwks_uri) {
  thread_ = std::thread([this] { Run(); });
}

TrustedIssuer::TrustedIssuer(IssuerOptions options, KeySet keys) : options_(std::move(options)) {
  keys_ = std::make_shared<const KeySet>(std::move(keys));
  fetched_ms_ = WallMs();
}

TrustedIssuer::~TrustedIssuer() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool TrustedIssuer::ready() const {
  std::lock_guard lock(mu_);
  return keys_ != nullptr;
}

std::string TrustedIssuer::last_error() const {
  std::lock_guard lock(mu_);
  return last_error_;
}

void TrustedIssuer::SetKeys(KeySet keys) {
  std::lock_guard lock(mu_);
  keys_ = std::make_shared<const KeySet>(std::move(keys));
  verified_.clear();
  fetched_ms_ = WallMs();
}

Result<Principal> TrustedIssuer::Authenticate(std::string_view token, int64_t now_ms) {
  std::shared_ptr<const KeySet> keys;
  const std::string digest = Sha256Hex(token);
  {
    std::lock_guard lock(mu_);
    keys = keys_;
    if (auto it = verified_.find(digest); it != verified_.end()) {
      if (now_ms < it->second.expires_ms) return *it->second.principal;
      verified_.erase(it);
    }
  }
  if (!keys) {
    return Fail(Error::Unavailable("the signing keys of " + options_.issuer + " are not known yet"));
  }
  Expectation expect{options_.issuer, options_.audiences, now_ms / 1000, options_.leeway_s};
  Verified v = Verify(token, *keys, expect);
  if (v.refusal == JwtRefusal::kUnknownKey && fetch_) {
    // The provider may have rotated its keys: the set is fetched again (not more often than
    // min_refetch_ms) and the client asked to come back meanwhile. A key still unknown to a
    // set fetched after it was first asked for is refused.
    auto decoded = Decode(token);
    const std::string kid = decoded ? decoded->kid : std::string();
    std::lock_guard lock(mu_);
    if (unknown_kids_.size() >= 1024) unknown_kids_.clear();
    const int64_t first_asked = unknown_kids_.try_emplace(kid, WallMs()).first->second;
    if (fetched_ms_ <= first_asked) {
      refetch_ = true;
      wake_.notify_all();
      return Fail(Error::Unavailable("fetching the signing keys of " + options_.issuer + " again"));
    }
  }
  if (!v.ok()) return Fail(Error::InvalidArgument(v.reason));
  auto p = MapClaims(v.claims, options_);
  if (!p) return Fail(Error::InvalidArgument(p.error().message()));
  const double exp = v.claims.at("exp").to_number<double>();  // CheckClaims made sure of it
  std::lock_guard lock(mu_);
  if (keys_ == keys) {  // else the set changed meanwhile: not remembered against the new one
    if (verified_.size() >= 10'000) verified_.clear();
    verified_[digest] = {std::make_shared<const Principal>(*p),
                         static_cast<int64_t>(exp * 1000) + options_.leeway_s * 1000};
  }
  return p;
}

void TrustedIssuer::FetchOnce() {
  std::string uri;
  {
    std::lock_guard lock(mu_);
    uri = jwks_uri_;
  }
  std::string error;
  std::optional<Discovery> discovered;
  {
    std::lock_guard lock(mu_);
    if (uri.empty() || discovery_.token_endpoint.empty()) discovered.emplace();
  }
  if (discovered) {
    auto found = Discover(options_.issuer, fetch_);
    if (found) {
      discovered = *found;
      if (uri.empty()) uri = found->jwks_uri;
    } else {
      discovered.reset();
      if (uri.empty()) error = found.error().message();  // a configured jwks_uri does without it
    }
  }
  std::shared_ptr<const KeySet> keys;
  if (error.empty()) {
    auto body = fetch_(uri);
    if (!body) {
      error = "fetching " + uri + ": " + body.error().message();
    } else if (auto set = KeySet::Parse(*body); !set) {
      error = uri + ": " + set.error().message();
    } else {
      for (const std::string& s : set->skipped) spdlog::warn("oidc: {}: key skipped: {}", uri, s);
      if (set->keys.empty()) {
        error = uri + " has no key that can verify an access token";
      } else {
        keys = std::make_shared<const KeySet>(std::move(*set));
      }
    }
  }
  std::lock_guard lock(mu_);
  fetched_ms_ = WallMs();
  refetch_ = false;
  if (discovered) discovery_ = *discovered;
  if (!error.empty()) {
    // Keys already known stay: an unreachable provider does not sign anybody out.
    if (error != last_error_) spdlog::error("oidc: {}", error);
    last_error_ = error;
    return;
  }
  jwks_uri_ = uri;
  keys_ = std::move(keys);
  verified_.clear();
  last_error_.clear();
}

Discovery TrustedIssuer::endpoints() const {
  std::lock_guard lock(mu_);
  return discovery_;
}

Result<Principal> TrustedIssuer::VerifyIdToken(std::string_view token, const std::string& client_id,
                                               const std::string& nonce, int64_t now_ms) {
  std::shared_ptr<const KeySet> keys;
  {
    std::lock_guard lock(mu_);
    keys = keys_;
  }
  if (!keys) return Fail(Error::Unavailable("the signing keys of " + options_.issuer + " are not known yet"));
  Verified v = Verify(token, *keys, Expectation{options_.issuer, {client_id}, now_ms / 1000, options_.leeway_s});
  if (!v.ok()) return Fail(Error::InvalidArgument("the ID token: " + v.reason));
  const json::value* n = v.claims.if_contains("nonce");
  if (!n || !n->is_string() || n->as_string() != nonce) {
    return Fail(Error::InvalidArgument("the ID token does not carry this sign-in's nonce"));
  }
  return MapClaims(v.claims, options_).map_error([](const Error& e) { return Error::InvalidArgument(e.message()); });
}

void TrustedIssuer::Run() {
  for (;;) {
    {
      std::unique_lock lock(mu_);
      for (;;) {
        if (stop_) return;
        // Not known yet: tried again soon; asked for (an unknown key): once min_refetch_ms have
        // passed since the last fetch; else at the refresh interval.
        const int64_t due = fetched_ms_ == 0 ? 0
                            : !keys_       ? fetched_ms_ + std::min<int64_t>(options_.min_refetch_ms, 2000)
                            : refetch_     ? fetched_ms_ + options_.min_refetch_ms
                                           : fetched_ms_ + options_.refresh_ms;
        const int64_t now = WallMs();
        if (now >= due) break;
        wake_.wait_for(lock, std::chrono::milliseconds(due - now));
      }
    }
    FetchOnce();
  }
}

}  // namespace tw::oauth
