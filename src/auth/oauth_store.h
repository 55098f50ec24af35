// What the built-in OAuth authorization server keeps (oauth/authorization_server.h): the
// clients that registered (RFC 7591), authorization codes between the consent and the token
// request, and refresh tokens. Codes and refresh tokens are kept as SHA-256 only and are
// single-use: a code is deleted when exchanged; a refresh token is marked used when rotated,
// and using it again ends its whole chain (`family`) — the stolen-token case of OAuth 2.1
// §4.3.1. Access tokens live in the GrantStore (IssueAccessToken), which authenticates them.
//
// Tables `oauth_clients`, `oauth_codes`, `oauth_refresh` of the state database. Thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace tw::auth {

struct OAuthClient {
  std::string id;  // "twc_" + 22 base62 (assigned by Register)
  std::string name;
  std::vector<std::string> redirect_uris;
  int64_t created_ms = 0;
};

// The consent's result, bound to the request it answers (PKCE, redirect, resource).
struct AuthorizationCode {
  std::string client_id;
  std::string grant;
  std::string redirect_uri;
  std::string challenge;  // S256 code_challenge
  std::string resource;   // RFC 8707
  std::string scope;
  int64_t expires_ms = 0;
};

struct RefreshGrant {
  std::string client_id;
  std::string grant;
  std::string family;  // the chain's id; its access tokens carry it too
  std::string resource;
  std::string scope;
  int64_t expires_ms = 0;
};

class OAuthStore {
 public:
  virtual ~OAuthStore() = default;
  // Registers a client; its id is made here. Fails past `max_clients` registered.
  virtual Result<OAuthClient> Register(OAuthClient client, int64_t now_ms, int64_t max_clients) = 0;
  virtual Result<std::optional<OAuthClient>> Client(const std::string& id) = 0;

  // Keeps a code for `code` (its hash) until it expires or is taken.
  virtual Result<std::string> SaveCode(const AuthorizationCode& code) = 0;
  // The code's binding, deleted in the same step (a second exchange finds nothing); nullopt
  // when unknown or expired.
  virtual Result<std::optional<AuthorizationCode>> TakeCode(const std::string& code, int64_t now_ms) = 0;

  // A new refresh token for `grant`.
  virtual Result<std::string> SaveRefresh(const RefreshGrant& grant, int64_t now_ms) = 0;
  struct Taken {
    std::optional<RefreshGrant> grant;  // the token was live and is now used
    bool replayed = false;              // it was used before: its family is to be ended
    std::string family;                 // when replayed
  };
  virtual Result<Taken> TakeRefresh(const std::string& token, int64_t now_ms) = 0;
  // Ends every refresh token of `family`.
  virtual Result<int64_t> RevokeRefreshFamily(const std::string& family) = 0;
};

// "sqlite:PATH" (the state database) or "memory".
Result<std::unique_ptr<OAuthStore>> OpenOAuthStore(const std::string& spec);

}  // namespace tw::auth
