#include "auth/oauth_store.h"

#include <sqlite3.h>

#include <mutex>

#include "auth/grant_store.h"
#include "auth/grant_store_internal.h"
#include "common/random.h"
#include "common/sqlite_db.h"

namespace tw::auth {
namespace {

class SqliteOAuthStore : public OAuthStore, SqliteStoreBase {
 public:
  explicit SqliteOAuthStore(std::shared_ptr<SqliteConnection> conn)
      : SqliteStoreBase(std::move(conn), "OAuth store") {}

  Result<OAuthClient> Register(OAuthClient c, int64_t now_ms, int64_t max_clients) override {
    std::lock_guard lock(mu_);
    // Registration is open to anyone who can reach the gateway: a client that never finished
    // a sign-in within a day makes room for new ones.
    SqliteStmt prune;
    sqlite3_prepare_v2(db_,
                       "DELETE FROM oauth_clients WHERE created_ms < ?1 AND id NOT IN "
                       "(SELECT client_id FROM oauth_refresh)",
                       -1, &prune.s, nullptr);
    sqlite3_bind_int64(prune.s, 1, now_ms - 24 * 3600 * 1000);
    if (sqlite3_step(prune.s) != SQLITE_DONE) return Fail(Err());
    SqliteStmt count;
    sqlite3_prepare_v2(db_, "SELECT COUNT(*) FROM oauth_clients", -1, &count.s, nullptr);
    if (sqlite3_step(count.s) != SQLITE_ROW) return Fail(Err());
    if (sqlite3_column_int64(count.s, 0) >= max_clients) {
      return Fail(Error::LimitExceeded("the authorization server holds its most clients (" +
                                       std::to_string(max_clients) + ")"));
    }
    c.id = "twc_" + RandomBase62(22);
    c.created_ms = now_ms;
    SqliteStmt st;
    sqlite3_prepare_v2(db_,
                       "INSERT INTO oauth_clients(id, name, redirect_uris, created_ms) "
                       "VALUES(?1,?2,?3,?4)",
                       -1, &st.s, nullptr);
    const std::string uris = ServersJson(c.redirect_uris);
    sqlite3_bind_text(st.s, 1, c.id.c_str(), -1, SQLITE_STATIC);
    sqlite3_bind_text(st.s, 2, c.name.c_str(), -1, SQLITE_STATIC);
    sqlite3_bind_text(st.s, 3, uris.c_str(), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st.s, 4, now_ms);
    if (sqlite3_step(st.s) != SQLITE_DONE) return Fail(Err());
    return c;
  }

  Result<std::optional<OAuthClient>> Client(const std::string& id) override {
    std::lock_guard lock(mu_);
    SqliteStmt st;
    sqlite3_prepare_v2(db_, "SELECT id, name, redirect_uris, created_ms FROM oauth_clients WHERE id=?1",
                       -1, &st.s, nullptr);
    sqlite3_bind_text(st.s, 1, id.c_str(), -1, SQLITE_STATIC);
    const int rc = sqlite3_step(st.s);
    if (rc == SQLITE_DONE) return std::optional<OAuthClient>();
    if (rc != SQLITE_ROW) return Fail(Err());
    OAuthClient c;
    c.id = ColumnText(st.s, 0);
    c.name = ColumnText(st.s, 1);
    c.redirect_uris = ServersFromJson(ColumnText(st.s, 2));
    c.created_ms = sqlite3_column_int64(st.s, 3);
    return std::optional<OAuthClient>(std::move(c));
  }

  Result<std::string> SaveCode(const AuthorizationCode& code) override {
    const std::string secret = "twcode_" + RandomBase62(43);
    const std::string hash = TokenHash(secret);
    std::lock_guard lock(mu_);
    SqliteStmt gc;
    sqlite3_prepare_v2(db_, "DELETE FROM oauth_codes WHERE expires_ms < ?1", -1, &gc.s, nullptr);
    sqlite3_bind_int64(gc.s, 1, code.expires_ms - 3600 * 1000);
    if (sqlite3_step(gc.s) != SQLITE_DONE) return Fail(Err());
    SqliteStmt st;
    sqlite3_prepare_v2(db_,
                       "INSERT INTO oauth_codes(code_hash, client_id, grant_name, redirect_uri, "
                       "challenge, resource, scope, expires_ms) VALUES(?1,?2,?3,?4,?5,?6,?7,?8)",
                       -1, &st.s, nullptr);
    int i = 1;
    for (const std::string* v : {&hash, &code.client_id, &code.grant, &code.redirect_uri,
                                 &code.challenge, &code.resource, &code.scope}) {
      sqlite3_bind_text(st.s, i++, v->c_str(), -1, SQLITE_STATIC);
    }
    sqlite3_bind_int64(st.s, i, code.expires_ms);
    if (sqlite3_step(st.s) != SQLITE_DONE) return Fail(Err());
    return secret;
  }

  Result<std::optional<AuthorizationCode>> TakeCode(const std::string& code, int64_t now_ms) override {
    const std::string hash = TokenHash(code);
    std::lock_guard lock(mu_);
    SqliteStmt st;
    sqlite3_prepare_v2(db_,
                       "DELETE FROM oauth_codes WHERE code_hash=?1 RETURNING client_id, grant_name, "
                       "redirect_uri, challenge, resource, scope, expires_ms",
                       -1, &st.s, nullptr);
    sqlite3_bind_text(st.s, 1, hash.c_str(), -1, SQLITE_STATIC);
    const int rc = sqlite3_step(st.s);
    if (rc == SQLITE_DONE) return std::optional<AuthorizationCode>();
    if (rc != SQLITE_ROW) return Fail(Err());
    AuthorizationCode c;
    c.client_id = ColumnText(st.s, 0);
    c.grant = ColumnText(st.s, 1);
    c.redirect_uri = ColumnText(st.s, 2);
    c.challenge = ColumnText(st.s, 3);
    c.resource = ColumnText(st.s, 4);
    c.scope = ColumnText(st.s, 5);
    c.expires_ms = sqlite3_column_int64(st.s, 6);
    sqlite3_step(st.s);  // finish the statement so that the delete is done
    if (now_ms >= c.expires_ms) return std::optional<AuthorizationCode>();
    return std::optional<AuthorizationCode>(std::move(c));
  }

  Result<std::string> SaveRefresh(const RefreshGrant& g, int64_t now_ms) override {
    const std::string token = "twrt_" + RandomBase62(43);
    const std::string hash = TokenHash(token);
    std::lock_guard lock(mu_);
    SqliteStmt gc;
    sqlite3_prepare_v2(db_, "DELETE FROM oauth_refresh WHERE expires_ms < ?1", -1, &gc.s, nullptr);
    sqlite3_bind_int64(gc.s, 1, now_ms - 24 * 3600 * 1000);
    if (sqlite3_step(gc.s) != SQLITE_DONE) return Fail(Err());
    SqliteStmt st;
    sqlite3_prepare_v2(db_,
                       "INSERT INTO oauth_refresh(token_hash, client_id, grant_name, family, "
                       "resource, scope, expires_ms, used_ms) VALUES(?1,?2,?3,?4,?5,?6,?7,0)",
                       -1, &st.s, nullptr);
    int i = 1;
    for (const std::string* v : {&hash, &g.client_id, &g.grant, &g.family, &g.resource, &g.scope}) {
      sqlite3_bind_text(st.s, i++, v->c_str(), -1, SQLITE_STATIC);
    }
    sqlite3_bind_int64(st.s, i, g.expires_ms);
    if (sqlite3_step(st.s) != SQLITE_DONE) return Fail(Err());
    return token;
  }

  Result<Taken> TakeRefresh(const std::string& token, int64_t now_ms) override {
    const std::string hash = TokenHash(token);
    std::lock_guard lock(mu_);
    // One statement marks the token used: of two requests with it (two processes included),
    // one gets it, the other finds it used and ends the chain.
    SqliteStmt st;
    sqlite3_prepare_v2(db_,
                       "UPDATE oauth_refresh SET used_ms=?2 WHERE token_hash=?1 AND used_ms=0 "
                       "RETURNING client_id, grant_name, family, resource, scope, expires_ms",
                       -1, &st.s, nullptr);
    sqlite3_bind_text(st.s, 1, hash.c_str(), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st.s, 2, now_ms);
    const int rc = sqlite3_step(st.s);
    Taken t;
    if (rc == SQLITE_DONE) {
      auto family = QueryText(db_, "SELECT family FROM oauth_refresh WHERE token_hash=?1", {hash});
      if (family) {
        t.replayed = true;
        t.family = *family;
      }
      return t;
    }
    if (rc != SQLITE_ROW) return Fail(Err());
    RefreshGrant g;
    g.client_id = ColumnText(st.s, 0);
    g.grant = ColumnText(st.s, 1);
    g.family = ColumnText(st.s, 2);
    g.resource = ColumnText(st.s, 3);
    g.scope = ColumnText(st.s, 4);
    g.expires_ms = sqlite3_column_int64(st.s, 5);
    sqlite3_step(st.s);
    if (now_ms >= g.expires_ms) return t;
    t.grant = std::move(g);
    return t;
  }

  Result<int64_t> RevokeRefreshFamily(const std::string& family) override {
    std::lock_guard lock(mu_);
    SqliteStmt st;
    sqlite3_prepare_v2(db_, "DELETE FROM oauth_refresh WHERE family=?1", -1, &st.s, nullptr);
    sqlite3_bind_text(st.s, 1, family.c_str(), -1, SQLITE_STATIC);
    if (sqlite3_step(st.s) != SQLITE_DONE) return Fail(Err());
    return static_cast<int64_t>(sqlite3_changes(db_));
  }
};

}  // namespace

Result<std::unique_ptr<OAuthStore>> OpenOAuthStore(const std::string& spec) {
  auto path = SqlitePathForSpec(spec);
  if (!path) return Fail(path.error());
  auto conn = OpenSharedSqlite(
      *path, "OAuth store",
      {"CREATE TABLE IF NOT EXISTS oauth_clients(id TEXT PRIMARY KEY, name TEXT NOT NULL, "
       "redirect_uris TEXT NOT NULL, created_ms INTEGER NOT NULL)",
       "CREATE TABLE IF NOT EXISTS oauth_codes(code_hash TEXT PRIMARY KEY, client_id TEXT NOT "
       "NULL, grant_name TEXT NOT NULL, redirect_uri TEXT NOT NULL, challenge TEXT NOT NULL, "
       "resource TEXT NOT NULL, scope TEXT NOT NULL, expires_ms INTEGER NOT NULL)",
       "CREATE TABLE IF NOT EXISTS oauth_refresh(token_hash TEXT PRIMARY KEY, client_id TEXT NOT "
       "NULL, grant_name TEXT NOT NULL, family TEXT NOT NULL, resource TEXT NOT NULL, scope TEXT "
       "NOT NULL, expires_ms INTEGER NOT NULL, used_ms INTEGER NOT NULL)",
       "CREATE INDEX IF NOT EXISTS oauth_refresh_by_family ON oauth_refresh(family)"});
  if (!conn) return Fail(conn.error());
  return std::unique_ptr<OAuthStore>(std::make_unique<SqliteOAuthStore>(std::move(*conn)));
}

}  // namespace tw::auth
