// Who may use the gateway: grants (agents) and admin tokens (people and the web console).
//
// A grant is a name, the servers it may use (all when empty), optional per-server policies that
// replace a server's default, and an optional expiry. Its token — "tw_" + 43 base62 characters
// (256 random bits) — is shown once, when it is created; the store keeps only its SHA-256. Admin
// tokens ("twa_" + 43) are kept the same way. Revoked grants stay listed (with when) so the
// audit trail's grant names keep meaning something; a revoked name can be created again.
//
// Thread-safe; several processes share the file: a running `serve` sees a grant created or
// revoked by `toolwarden grants …` at its next request. Authentication answers from memory
// while no grant has changed anywhere (a change epoch beside the state file, see
// common/change_epoch.h); a change made to the file by other means than toolwarden (the sqlite3
// shell) is seen after the next change made through it, or a restart.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace tw::auth {

struct Grant {
  std::string name;
  std::vector<std::string> servers;            // empty: every server
  std::map<std::string, std::string> policies;  // server → policy file replacing its default
  int64_t created_ms = 0;
  int64_t expires_ms = 0;  // 0: never
  int64_t revoked_ms = 0;  // 0: active
  int64_t last_used_ms = 0;
  // The person the grant acts for (`grants create --principal`, or whoever consented to an
  // OAuth client): policies name it (`principals:`), limits count per it (`scope: principal`),
  // the audit records it. Empty: nobody in particular.
  std::string principal;
  // The OAuth client the built-in authorization server issued the grant to ("" for a grant
  // made by hand): its name as it registered.
  std::string client;

  bool MayUse(const std::string& server) const;
};

// The prefix of the built-in authorization server's access tokens (the rest as a grant token's).
inline constexpr std::string_view kAccessTokenPrefix = "twat_";

// Why a token was refused (never says which grant it might have been).
enum class Refusal { kMissing, kMalformed, kUnknown, kRevoked, kExpired };
std::string_view RefusalText(Refusal r);

// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive); nullopt for
// any other scheme or shape. An empty header gives an empty token.
std::optional<std::string> BearerToken(std::string_view authorization);

// Grant names: 1-64 of [A-Za-z0-9._-].
bool ValidGrantName(const std::string& name);

class GrantStore {
 public:
  virtual ~GrantStore() = default;

  // Creates `grant` (name, servers, policies, expires_ms) and returns its token. Fails if an
  // active grant has that name.
  virtual Result<std::string> Create(const Grant& grant, int64_t now_ms) = 0;
  virtual Result<std::vector<Grant>> List() = 0;
  virtual Result<std::optional<Grant>> Get(const std::string& name) = 0;
  // Revokes an active grant; fails when there is none by that name.
  virtual Result<Grant> Revoke(const std::string& name, int64_t now_ms) = 0;
  // The grant a bearer token belongs to, or why not. Records the use (at most once a minute).
  // Errors other than refusals (the store is unreachable) come back as Error.
  struct Verdict {
    std::optional<Grant> grant;
    Refusal refusal = Refusal::kUnknown;  // when !grant
  };
  virtual Result<Verdict> Authenticate(const std::string& token, int64_t now_ms) = 0;

  // OAuth access tokens of the built-in authorization server (oauth/authorization_server.h):
  // a token ("twat_" + 43) of the active grant `grant`, valid until `expires_ms` (and never
  // past the grant's own expiry or revocation), kept as its SHA-256. `family` names the chain
  // of refresh tokens it came from, so that a replayed refresh token can end the whole chain
  // (RevokeFamily). Authenticate takes these tokens beside the grant's own.
  virtual Result<std::string> IssueAccessToken(const std::string& grant, const std::string& family,
                                               int64_t expires_ms, int64_t now_ms) = 0;
  // Ends every access token of `family`; how many were live.
  virtual Result<int64_t> RevokeFamily(const std::string& family, int64_t now_ms) = 0;

  // Admin tokens. EnsureAdminToken creates one when none exists and returns it (once);
  // otherwise nullopt. ResetAdminTokens replaces every admin token with a new one.
  virtual Result<std::optional<std::string>> EnsureAdminToken(int64_t now_ms) = 0;
  virtual Result<std::string> ResetAdminTokens(int64_t now_ms) = 0;
  virtual Result<bool> IsAdminToken(const std::string& token) = 0;
};

// "memory" or "sqlite:PATH" (tables `grants` and `admin_tokens` in the state database).
Result<std::unique_ptr<GrantStore>> OpenGrantStore(const std::string& spec);

// The SHA-256 (hex) a token is stored as.
std::string TokenHash(const std::string& token);

// Parses "30d", "12h", "90m" into milliseconds (for --expires).
Result<int64_t> ParseExpiry(const std::string& text);

}  // namespace tw::auth
