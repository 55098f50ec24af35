// Who is behind a call, as an identity provider's access token says: the person (or service)
// and their groups, the scopes the token carries. Policies name principals and groups
// (policy::Identity); the audit records the principal.
#pragma once

#include <string>
#include <vector>

namespace tw::oauth {

// The scope that lets a token use every server its principal may use, and the prefix of the
// one that names a single server ("mcp:github").
inline constexpr std::string_view kScopeAll = "mcp";
inline constexpr std::string_view kScopeServerPrefix = "mcp:";

struct Principal {
  std::string subject;              // the claim the config maps to the principal (default sub)
  std::string email;                // empty when the token has none
  std::vector<std::string> groups;  // sorted, unique
  std::vector<std::string> scopes;  // as the token lists them
  std::string issuer;
  std::string client_id;  // `client_id` or `azp`, when the token says

  // Whether the token's scopes let it use `server` ("mcp", or "mcp:<server>").
  bool ScopeAllows(std::string_view server) const;
  // Whether the token's scopes allow any server at all.
  bool AnyScope() const;
  bool operator==(const Principal&) const = default;
};

}  // namespace tw::oauth
