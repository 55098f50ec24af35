#include "auth/grant_store.h"
#include "auth/grant_store_internal.h"

#include <sqlite3.h>

#include <algorithm>
#include <mutex>
#include <unordered_map>
#include <utility>

#include "common/canonical_json.h"
#include "common/change_epoch.h"
#include "common/random.h"
#include "common/sqlite_db.h"
#include "jsonrpc/message.h"
#include "policy/policy.h"
#include "redis/redis_client.h"

namespace tw::auth {

namespace {

constexpr const char* kColumns =
    "name, servers, policies, created_ms, expires_ms, revoked_ms, last_used_ms, principal, client";

Grant Row(sqlite3_stmt* s) {
  Grant g;
  g.name = ColumnText(s, 0);
  g.servers = ServersFromJson(ColumnText(s, 1));
  g.policies = PoliciesFromJson(ColumnText(s, 2));
  g.created_ms = sqlite3_column_int64(s, 3);
  g.expires_ms = sqlite3_column_int64(s, 4);
  g.revoked_ms = sqlite3_column_int64(s, 5);
  g.last_used_ms = sqlite3_column_int64(s, 6);
  g.principal = ColumnText(s, 7);
  g.client = ColumnText(s, 8);
  return g;
}

// Authentication is served from memory: active grants by token hash, filled from the store
// on first use and dropped whenever any process changes a grant (ChangeEpoch beside the state
// file; every write below bumps it before and after its commit). A request of `serve` so
// costs a hash and a lookup — no SQLite read, no wait on the connection the audit writer
// holds while it commits — and a revocation made anywhere still refuses the next request.
class SqliteGrantStore : public GrantStore, SqliteStoreBase {
 public:
  SqliteGrantStore(std::shared_ptr<SqliteConnection> conn, std::unique_ptr<ChangeEpoch> epoch)
      : SqliteStoreBase(std::move(conn), "grant store"), epoch_(std::move(epoch)) {}

  Result<std::string> Create(const Grant& g, int64_t now_ms) override {
    if (auto ok = CheckNewGrantName(g.name); !ok) return Fail(ok.error());
    std::lock_guard lock(mu_);
    const EpochBumps bumps(*epoch_);
    const std::string token = NewToken(kGrantPrefix);
    // A revoked grant of the same name is replaced; an active one is not.
    SqliteStmt st;
    sqlite3_prepare_v2(
        db_,
        "INSERT INTO grants(name, token_hash, servers, policies, created_ms, expires_ms, "
        "revoked_ms, last_used_ms, principal, client) VALUES(?1,?2,?3,?4,?5,?6,0,0,?7,?8) "
        "ON CONFLICT(name) DO UPDATE SET token_hash=excluded.token_hash, "
        "servers=excluded.servers, policies=excluded.policies, created_ms=excluded.created_ms, "
        "expires_ms=excluded.expires_ms, revoked_ms=0, last_used_ms=0, "
        "principal=excluded.principal, client=excluded.client WHERE revoked_ms<>0",
        -1, &st.s, nullptr);
    const std::string hash = TokenHash(token), servers = ServersJson(g.servers),
                      policies = PoliciesJson(g.policies);
    sqlite3_bind_text(st.s, 1, g.name.c_str(), -1, SQLITE_STATIC);
    sqlite3_bind_text(st.s, 2, hash.c_str(), -1, SQLITE_STATIC);
    sqlite3_bind_text(st.s, 3, servers.c_str(), -1, SQLITE_STATIC);
    sqlite3_bind_text(st.s, 4, policies.c_str(), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st.s, 5, now_ms);
    sqlite3_bind_int64(st.s, 6, g.expires_ms);
    sqlite3_bind_text(st.s, 7, g.principal.c_str(), -1, SQLITE_STATIC);
    sqlite3_bind_text(st.s, 8, g.client.c_str(), -1, SQLITE_STATIC);
    if (sqlite3_step(st.s) != SQLITE_DONE) return Fail(Err());
    if (sqlite3_changes(db_) == 0) {
      return Fail(Error::InvalidArgument("a grant named \"" + g.name +
                                       "\" already exists (revoke it first to replace it)"));
    }
    return token;
  }

  Result<std::vector<Grant>> List() override {
    std::lock_guard lock(mu_);
    SqliteStmt st;
    sqlite3_prepare_v2(db_, (std::string("SELECT ") + kColumns + " FROM grants ORDER BY name").c_str(),
                       -1, &st.s, nullptr);
    std::vector<Grant> out;
    int rc;
    while ((rc = sqlite3_step(st.s)) == SQLITE_ROW) out.push_back(Row(st.s));
    if (rc != SQLITE_DONE) return Fail(Err());
    return out;
  }

  // A grant that authenticated since the last change is answered from memory: a session opens
  // with the grant its request just authenticated as, and needs no read of the file for it.
  Result<std::optional<Grant>> Get(const std::string& name) override {
    if (std::shared_ptr<const Grant> cached = Cached(by_name_, name, epoch_->Load())) {
      return std::optional<Grant>(*cached);
    }
    std::lock_guard lock(mu_);
    return GetLocked(name);
  }

  Result<Grant> Revoke(const std::string& name, int64_t now_ms) override {
    std::lock_guard lock(mu_);
    const EpochBumps bumps(*epoch_);
    SqliteStmt st;
    sqlite3_prepare_v2(db_, "UPDATE grants SET revoked_ms=?2 WHERE name=?1 AND revoked_ms=0", -1,
                       &st.s, nullptr);
    sqlite3_bind_text(st.s, 1, name.c_str(), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st.s, 2, now_ms);
    if (sqlite3_step(st.s) != SQLITE_DONE) return Fail(Err());
    if (sqlite3_changes(db_) == 0) {
      return Fail(Error::NotFound("no active grant named \"" + name + "\""));
    }
    auto g = GetLocked(name);
    if (!g) return Fail(g.error());
    return **g;
  }

  Result<Verdict> Authenticate(const std::string& token, int64_t now_ms) override {
    Verdict v;
    if (auto refused = RefusedByShape(token)) {
      v.refusal = *refused;
      return v;
    }
    const std::string hash = TokenHash(token);
    // The epoch before the read, so that a change committed meanwhile outdates what is read.
    const uint64_t epoch = epoch_->Load();
    if (std::shared_ptr<const Grant> cached = Cached(cache_, hash, epoch)) {
      Grant g = *cached;
      if (g.expires_ms != 0 && now_ms >= g.expires_ms) {
        v.refusal = Refusal::kExpired;
        return v;
      }
      if (now_ms - g.last_used_ms >= 60000) StampUse(hash, g, now_ms);
      v.grant = std::move(g);
      return v;
    }
    // Every MCP request of `serve` comes through here: the statements are prepared once.
    static const std::string kByHash = std::string("SELECT ") + kColumns + ", 0 FROM grants WHERE token_hash=?1";
    static const std::string kByAccessToken =
        "SELECT g.name, g.servers, g.policies, g.created_ms, g.expires_ms, g.revoked_ms, "
        "g.last_used_ms, g.principal, g.client, t.expires_ms FROM grant_tokens t JOIN grants g ON "
        "g.name = t.grant_name AND g.created_ms = t.grant_created_ms "
        "WHERE t.token_hash=?1";
    const bool access = token.starts_with(kAccessTokenPrefix);
    std::lock_guard lock(mu_);
    ScopedStmt st = stmts_.Get(db_, access ? kByAccessToken.c_str() : kByHash.c_str());
    sqlite3_bind_text(st.s, 1, hash.c_str(), -1, SQLITE_STATIC);
    const int rc = sqlite3_step(st.s);
    if (rc == SQLITE_DONE) {
      v.refusal = Refusal::kUnknown;
      return v;
    }
    if (rc != SQLITE_ROW) return Fail(Err());
    Grant g = Row(st.s);
    if (const int64_t token_expiry = sqlite3_column_int64(st.s, 9); token_expiry != 0) {
      // An access token lives until its own expiry, never past its grant's.
      g.expires_ms = g.expires_ms == 0 ? token_expiry : std::min(g.expires_ms, token_expiry);
    }
    if (g.revoked_ms != 0) {
      v.refusal = Refusal::kRevoked;
      return v;
    }
    if (g.expires_ms != 0 && now_ms >= g.expires_ms) {
      v.refusal = Refusal::kExpired;
      return v;
    }
    if (now_ms - g.last_used_ms >= 60000 && StampLocked(g.name, now_ms)) g.last_used_ms = now_ms;
    Remember(hash, epoch, g, /*by_name=*/!access);
    v.grant = std::move(g);
    return v;
  }

  Result<std::string> IssueAccessToken(const std::string& grant, const std::string& family,
                                       int64_t expires_ms, int64_t now_ms) override {
    std::lock_guard lock(mu_);
    auto g = GetLocked(grant);
    if (!g) return Fail(g.error());
    if (!*g || (*g)->revoked_ms != 0 || ((*g)->expires_ms != 0 && now_ms >= (*g)->expires_ms)) {
      return Fail(Error::NotFound("no active grant named \"" + grant + "\""));
    }
    const std::string token = NewToken(kAccessTokenPrefix);
    const std::string hash = TokenHash(token);
    // Tokens a day past their expiry are of no use to anyone: dropped as new ones are made.
    ScopedStmt gc = stmts_.Get(db_, "DELETE FROM grant_tokens WHERE expires_ms < ?1");
    sqlite3_bind_int64(gc.s, 1, now_ms - 24 * 3600 * 1000);
    if (sqlite3_step(gc.s) != SQLITE_DONE) return Fail(Err());
    ScopedStmt st = stmts_.Get(
        db_,
        "INSERT INTO grant_tokens(token_hash, grant_name, grant_created_ms, family, created_ms, "
        "expires_ms) VALUES(?1,?2,?3,?4,?5,?6)");
    sqlite3_bind_text(st.s, 1, hash.c_str(), -1, SQLITE_STATIC);
    sqlite3_bind_text(st.s, 2, grant.c_str(), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st.s, 3, (*g)->created_ms);
    sqlite3_bind_text(st.s, 4, family.c_str(), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st.s, 5, now_ms);
    sqlite3_bind_int64(st.s, 6, expires_ms);
    if (sqlite3_step(st.s) != SQLITE_DONE) return Fail(Err());
    return token;
  }

  Result<int64_t> RevokeFamily(const std::string& family, int64_t now_ms) override {
    std::lock_guard lock(mu_);
    const EpochBumps bumps(*epoch_);
    ScopedStmt st = stmts_.Get(db_, "DELETE FROM grant_tokens WHERE family=?1 AND expires_ms>?2");
    sqlite3_bind_text(st.s, 1, family.c_str(), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st.s, 2, now_ms);
    if (sqlite3_step(st.s) != SQLITE_DONE) return Fail(Err());
    return static_cast<int64_t>(sqlite3_changes(db_));
  }

  Result<std::optional<std::string>> EnsureAdminToken(int64_t now_ms) override {
    std::lock_guard lock(mu_);
    SqliteStmt st;
    sqlite3_prepare_v2(db_, "SELECT COUNT(*) FROM admin_tokens", -1, &st.s, nullptr);
    if (sqlite3_step(st.s) != SQLITE_ROW) return Fail(Err());
    if (sqlite3_column_int64(st.s, 0) > 0) return std::optional<std::string>();
    auto token = InsertAdminLocked(now_ms);
    if (!token) return Fail(token.error());
    return std::optional<std::string>(*token);
  }

  Result<std::string> ResetAdminTokens(int64_t now_ms) override {
    std::lock_guard lock(mu_);
    if (auto r = ExecSql(db_, "DELETE FROM admin_tokens", "grant store", path_); !r) {
      return Fail(r.error());
    }
    return InsertAdminLocked(now_ms);
  }

  Result<bool> IsAdminToken(const std::string& token) override {
    if (!WellFormedToken(token, kAdminPrefix)) return false;
    const std::string hash = TokenHash(token);
    std::lock_guard lock(mu_);
    SqliteStmt st;
    sqlite3_prepare_v2(db_, "SELECT 1 FROM admin_tokens WHERE token_hash=?1", -1, &st.s, nullptr);
    sqlite3_bind_text(st.s, 1, hash.c_str(), -1, SQLITE_STATIC);
    const int rc = sqlite3_step(st.s);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return Fail(Err());
  }

 private:
  // Bumps the epoch on construction and destruction: around a write and its commit.
  struct EpochBumps {
    explicit EpochBumps(ChangeEpoch& e) : epoch(e) { epoch.Bump(); }
    ~EpochBumps() { epoch.Bump(); }
    EpochBumps(const EpochBumps&) = delete;
    EpochBumps& operator=(const EpochBumps&) = delete;
    ChangeEpoch& epoch;
  };

  using GrantMap = std::unordered_map<std::string, std::shared_ptr<const Grant>>;

  // The cached active grant under `key` in `map` (cache_: by token hash; by_name_: by name),
  // if the cache is still of `epoch` (emptied otherwise).
  std::shared_ptr<const Grant> Cached(const GrantMap& map, const std::string& key,
                                      uint64_t epoch) {
    std::lock_guard lock(cache_mu_);
    if (!CacheOfLocked(epoch)) return nullptr;
    auto it = map.find(key);
    return it == map.end() ? nullptr : it->second;
  }

  // Whether the cache is of `epoch`; empties it (and makes it of `epoch`) when it is not.
  bool CacheOfLocked(uint64_t epoch) {  // Requires cache_mu_.
    if (cache_epoch_ == epoch) return true;
    cache_.clear();
    by_name_.clear();
    cache_epoch_ = epoch;
    return false;
  }

  // Caches an active grant read at `epoch`, unless the epoch has moved on since.
  // An access token's entry carries the token's expiry, so it is not the grant by name.
  void Remember(const std::string& hash, uint64_t epoch, const Grant& g, bool by_name) {
    std::lock_guard lock(cache_mu_);
    if (cache_epoch_ != epoch || epoch != epoch_->Load()) return;
    auto entry = std::make_shared<const Grant>(g);
    cache_[hash] = entry;
    if (by_name) by_name_[g.name] = std::move(entry);
  }

  // Records a cached grant's use. Best effort and never waited for: skipped (tried again on a
  // later request) while another thread holds the connection, as the audit writer does while
  // it commits a batch.
  void StampUse(const std::string& hash, Grant& g, int64_t now_ms) {
    std::unique_lock lock(mu_, std::try_to_lock);
    if (!lock.owns_lock() || !StampLocked(g.name, now_ms)) return;
    g.last_used_ms = now_ms;
    std::lock_guard cache_lock(cache_mu_);
    auto it = cache_.find(hash);
    if (it == cache_.end()) return;
    const std::shared_ptr<const Grant> before = std::exchange(it->second, std::make_shared<const Grant>(g));
    if (auto named = by_name_.find(g.name); named != by_name_.end() && named->second == before) {
      named->second = it->second;
    }
  }

  bool StampLocked(const std::string& name, int64_t now_ms) {  // Requires mu_.
    ScopedStmt up = stmts_.Get(db_, "UPDATE grants SET last_used_ms=?2 WHERE name=?1");
    sqlite3_bind_text(up.s, 1, name.c_str(), -1, SQLITE_STATIC);
    sqlite3_bind_int64(up.s, 2, now_ms);
    return sqlite3_step(up.s) == SQLITE_DONE;  // last use is informational
  }

  Result<std::optional<Grant>> GetLocked(const std::string& name) {
    SqliteStmt st;
    sqlite3_prepare_v2(db_, (std::string("SELECT ") + kColumns + " FROM grants WHERE name=?1").c_str(),
                       -1, &st.s, nullptr);
    sqlite3_bind_text(st.s, 1, name.c_str(), -1, SQLITE_STATIC);
    const int rc = sqlite3_step(st.s);
    if (rc == SQLITE_DONE) return std::optional<Grant>();
    if (rc != SQLITE_ROW) return Fail(Err());
    return std::optional<Grant>(Row(st.s));
  }

  Result<std::string> InsertAdminLocked(int64_t now_ms) {
    const std::string token = NewToken(kAdminPrefix);
    const std::string hash = TokenHash(token);
    SqliteStmt st;
    sqlite3_prepare_v2(db_, "INSERT INTO admin_tokens(token_hash, created_ms) VALUES(?1,?2)", -1,
                       &st.s, nullptr);
    sqlite3_bind_text(st.s, 1, hash.c_str(), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st.s, 2, now_ms);
    if (sqlite3_step(st.s) != SQLITE_DONE) return Fail(Err());
    return token;
  }

  const std::unique_ptr<ChangeEpoch> epoch_;
  std::mutex cache_mu_;
  uint64_t cache_epoch_ = 0;  // Guarded by cache_mu_.
  GrantMap cache_;    // Guarded by cache_mu_.
  GrantMap by_name_;  // The same entries by grant name. Guarded by cache_mu_.
};

}  // namespace

bool WellFormedToken(const std::string& token, std::string_view prefix) {
  if (token.size() != prefix.size() + kTokenChars || !token.starts_with(prefix)) return false;
  return std::all_of(token.begin() + static_cast<long>(prefix.size()), token.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
  });
}

std::optional<Refusal> RefusedByShape(const std::string& token) {
  if (token.empty()) return Refusal::kMissing;
  if (!WellFormedToken(token, kGrantPrefix) && !WellFormedToken(token, kAccessTokenPrefix)) {
    return Refusal::kMalformed;
  }
  return std::nullopt;
}

std::string NewToken(std::string_view prefix) {
  return std::string(prefix) + RandomBase62(kTokenChars);
}

std::string ServersJson(const std::vector<std::string>& servers) {
  json::array a;
  for (const auto& s : servers) a.emplace_back(s);
  return json::serialize(a);
}

std::string PoliciesJson(const std::map<std::string, std::string>& policies) {
  json::object o;
  for (const auto& [k, v] : policies) o[k] = v;
  return json::serialize(o);
}

std::vector<std::string> ServersFromJson(std::string_view text) {
  std::vector<std::string> out;
  boost::system::error_code ec;
  json::value servers = json::parse(text, ec);
  if (!ec && servers.is_array()) {
    for (const auto& v : servers.get_array()) {
      if (v.is_string()) out.emplace_back(v.get_string());
    }
  }
  return out;
}

std::map<std::string, std::string> PoliciesFromJson(std::string_view text) {
  std::map<std::string, std::string> out;
  boost::system::error_code ec;
  json::value policies = json::parse(text, ec);
  if (!ec && policies.is_object()) {
    for (const auto& kv : policies.get_object()) {
      if (kv.value().is_string()) out[kv.key()] = std::string(kv.value().get_string());
    }
  }
  return out;
}

Result<std::string> CheckNewGrantName(const std::string& name) {
  if (ValidGrantName(name)) return name;
  return Fail(Error::InvalidArgument("grant name \"" + name +
                                     "\" must be 1-64 letters, digits, '.', '_' or '-'"));
}

bool Grant::MayUse(const std::string& server) const {
  return servers.empty() || std::find(servers.begin(), servers.end(), server) != servers.end();
}

std::string_view RefusalText(Refusal r) {
  switch (r) {
    case Refusal::kMissing:
      return "missing bearer token";
    case Refusal::kMalformed:
      return "malformed bearer token";
    case Refusal::kUnknown:
      return "unknown token";
    case Refusal::kRevoked:
      return "token revoked";
    case Refusal::kExpired:
      return "token expired";
  }
  return "refused";
}

std::optional<std::string> BearerToken(std::string_view authorization) {
  if (authorization.empty()) return std::string();
  const size_t space = authorization.find(' ');
  if (space == std::string_view::npos) return std::nullopt;
  std::string scheme(authorization.substr(0, space));
  for (char& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (scheme != "bearer") return std::nullopt;
  std::string_view token = authorization.substr(space + 1);
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
  return std::string(token);
}

bool ValidGrantName(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           c == '.' || c == '_' || c == '-';
  });
}

std::string TokenHash(const std::string& token) { return Sha256Hex(token); }

Result<int64_t> ParseExpiry(const std::string& text) {
  auto ms = policy::ParseDurationMs(text);
  if (!ms || *ms <= 0) {
    return Fail(Error::InvalidArgument("--expires \"" + text +
                                       "\": expected a duration such as 12h, 30d or 90m"));
  }
  return *ms;
}

Result<std::unique_ptr<GrantStore>> OpenGrantStore(const std::string& spec) {
  if (redis::IsRedisUrl(spec)) return OpenRedisGrantStore(spec);
  auto path = SqlitePathForSpec(spec);
  if (!path) return Fail(path.error());
  auto conn = OpenSharedSqlite(
      *path, "grant store",
      {"CREATE TABLE IF NOT EXISTS grants(name TEXT PRIMARY KEY, token_hash TEXT NOT NULL, "
       "servers TEXT NOT NULL, policies TEXT NOT NULL, created_ms INTEGER NOT NULL, "
       "expires_ms INTEGER NOT NULL, revoked_ms INTEGER NOT NULL, last_used_ms INTEGER NOT NULL, "
       "principal TEXT NOT NULL DEFAULT '', client TEXT NOT NULL DEFAULT '')",
       "CREATE UNIQUE INDEX IF NOT EXISTS grants_by_token ON grants(token_hash)",
       // OAuth access tokens: `grant_created_ms` ties a token to one life of its grant's name
       // (a name revoked and created again does not inherit the old one's tokens).
       "CREATE TABLE IF NOT EXISTS grant_tokens(token_hash TEXT PRIMARY KEY, grant_name TEXT "
       "NOT NULL, grant_created_ms INTEGER NOT NULL, family TEXT NOT NULL, created_ms INTEGER "
       "NOT NULL, expires_ms INTEGER NOT NULL)",
       "CREATE INDEX IF NOT EXISTS grant_tokens_by_family ON grant_tokens(family)",
       "CREATE TABLE IF NOT EXISTS admin_tokens(token_hash TEXT PRIMARY KEY, "
       "created_ms INTEGER NOT NULL)"});
  if (!conn) return Fail(conn.error());
  // Beside the state file; a database in memory has no other process to tell.
  auto epoch = ChangeEpoch::Open(*path == ":memory:" ? std::string() : *path + "-grants-epoch");
  if (!epoch) return Fail(epoch.error());
  return std::unique_ptr<GrantStore>(
      std::make_unique<SqliteGrantStore>(std::move(*conn), std::move(*epoch)));
}

}  // namespace tw::auth
