// What the grant stores (SQLite in grant_store.cc, Redis in redis_grant_store.cc) share: the
// shape of tokens and the text form of a grant's servers and policies. Not for other folders.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/grant_store.h"

namespace tw::auth {

inline constexpr std::string_view kGrantPrefix = "tw_";
inline constexpr std::string_view kAdminPrefix = "twa_";
inline constexpr size_t kTokenChars = 43;

// `prefix` followed by kTokenChars base62 characters.
bool WellFormedToken(const std::string& token, std::string_view prefix);
// Why a grant token is refused before any store is asked (missing, malformed), or nullopt.
std::optional<Refusal> RefusedByShape(const std::string& token);
// `prefix` + 256 random bits in base62.
std::string NewToken(std::string_view prefix);
std::string ServersJson(const std::vector<std::string>& servers);
std::string PoliciesJson(const std::map<std::string, std::string>& policies);
// The inverse of the two above; what is not of the expected shape is left out.
std::vector<std::string> ServersFromJson(std::string_view text);
std::map<std::string, std::string> PoliciesFromJson(std::string_view text);
// `name`, or an error saying what a grant name must be.
Result<std::string> CheckNewGrantName(const std::string& name);

// The store on the Redis server of `url` (redis://…).
Result<std::unique_ptr<GrantStore>> OpenRedisGrantStore(const std::string& url);

}  // namespace tw::auth
