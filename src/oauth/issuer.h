// A trusted issuer of access tokens (`auth.oidc`): a company identity provider (Keycloak, Okta,
// Entra, Google, …) found by OpenID Connect discovery, whose signing keys (JWKS) are fetched
// and kept fresh by a thread of its own, so that the event loops that check tokens never wait
// on the network.
//
// Keys: fetched at start, again every `refresh_ms`, and again (at most every
// `min_refetch_ms`) when a token names a key the set does not have — the provider rotated its
// keys. While the keys are not known yet, or a refetch for an unknown key is under way, a token
// is answered Unavailable (the gateway says 503 with Retry-After: the client comes back),
// never accepted; once the set is fresh and still lacks the key, the token is refused.
//
// A token verified once is remembered (by its SHA-256, until it expires or the keys change),
// so that an agent's requests after the first cost a hash and a lookup.
//
// Thread-safe. The fetcher is called from the issuer's thread only.
#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/result.h"
#include "oauth/jwt.h"
#include "oauth/principal.h"

namespace tw::oauth {

struct IssuerOptions {
  std::string issuer;                  // as the tokens' `iss` says it, exactly
  std::vector<std::string> audiences;  // a token's `aud` must name one
  std::string jwks_uri;                // empty: found by discovery at the issuer
  // Claims mapped to the principal.
  std::string principal_claim = "sub";
  std::string email_claim = "email";
  std::string groups_claim = "groups";  // an array of strings, or one space-separated string
  int64_t refresh_ms = 10 * 60'000;
  int64_t min_refetch_ms = 10'000;
  int64_t leeway_s = 60;
};

// GET url → body; an error for anything but a 200.
using Fetcher = std::function<Result<std::string>(const std::string& url)>;

// What the discovery document (OpenID Connect Discovery, else RFC 8414) says, checked to name
// the same issuer: where the keys are, and — for the console's sign-in — where a person signs
// in and where the code is exchanged.
struct Discovery {
  std::string jwks_uri;
  std::string authorization_endpoint;
  std::string token_endpoint;
};
Result<Discovery> Discover(const std::string& issuer, const Fetcher& fetch);

// The claims of a verified token as a principal, by the options' mapping. Fails when the
// principal claim is missing or empty.
Result<Principal> MapClaims(const boost::json::object& claims, const IssuerOptions& options);

class TrustedIssuer {
 public:
  // Starts the key thread (its first fetch right away).
  TrustedIssuer(IssuerOptions options, Fetcher fetch);
  // For tests: keys given, no thread.
  TrustedIssuer(IssuerOptions options, KeySet keys);
  ~TrustedIssuer();
  TrustedIssuer(const TrustedIssuer&) = delete;
  TrustedIssuer& operator=(const TrustedIssuer&) = delete;

  // The principal a token names. Error kInvalidArgument: refused (the message says why, never
  // the token); kUnavailable: the keys are not known yet or are being fetched again.
  Result<Principal> Authenticate(std::string_view token, int64_t now_ms);

  const IssuerOptions& options() const { return options_; }
  // For the 401's metadata and /readyz: whether keys were ever fetched, and the last failure.
  bool ready() const;
  std::string last_error() const;
  // Replaces the keys (tests: a rotation).
  void SetKeys(KeySet keys);
  // The discovery document's endpoints (empty until it was fetched).
  Discovery endpoints() const;
  // An OpenID Connect ID token (the console's sign-in): signed by the provider, for
  // `client_id`, carrying `nonce`; its claims mapped as an access token's are.
  Result<Principal> VerifyIdToken(std::string_view token, const std::string& client_id,
                                  const std::string& nonce, int64_t now_ms);

 private:
  void Run();
  void FetchOnce();

  const IssuerOptions options_;
  Fetcher fetch_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::shared_ptr<const KeySet> keys_;  // Guarded by mu_.
  std::string jwks_uri_;                // Guarded by mu_.
  Discovery discovery_;                 // Guarded by mu_.
  std::string last_error_;              // Guarded by mu_.
  int64_t fetched_ms_ = 0;              // Guarded by mu_: when the last fetch ended
  bool refetch_ = false;                // Guarded by mu_.
  // Keys tokens named that the set lacked, with when first asked for. Guarded by mu_.
  std::map<std::string, int64_t> unknown_kids_;
  // Tokens verified against the current key set, by SHA-256, until they expire: an agent
  // sends the same token with every request, and a signature check costs tens of
  // microseconds. Emptied when the set changes (a key taken out stops its tokens at once).
  struct Remembered {
    std::shared_ptr<const Principal> principal;
    int64_t expires_ms;
  };
  std::unordered_map<std::string, Remembered> verified_;  // Guarded by mu_.
  bool stop_ = false;                   // Guarded by mu_.
  std::thread thread_;
};

}  // namespace tw::oauth
