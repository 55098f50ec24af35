#include "catalog/pin_store.h"

#include <sqlite3.h>

#include <filesystem>
#include <map>
#include <mutex>

#include "common/canonical_json.h"
#include "common/sqlite_db.h"
#include "redis/redis_client.h"

namespace tw::catalog {

PinnedDefinition PinDefinition(const json::object& tool) {
  json::object copy = tool;
  copy.erase("_meta");  // transport metadata, not what the model reads
  PinnedDefinition d;
  d.canonical = CanonicalJson(copy, ArrayOrder::kSorted);
  d.hash = Sha256Hex(d.canonical);
  return d;
}

namespace {

class MemoryPinStore : public PinStore {
 public:
  Result<Observation> Observe(const std::string& server, const std::string& tool,
                              const std::string& hash, const std::string& definition,
                              int64_t now_ms, const std::string& note) override {
    std::lock_guard lock(mu_);
    auto [it, fresh] = pins_.try_emplace({server, tool});
    Pin& p = it->second;
    if (fresh) {
      p.server = server;
      p.tool = tool;
      if (!note.empty()) {
        p.pending_hash = hash;
        p.pending_definition = definition;
        p.pending_note = note;
        p.changed_ms = now_ms;
        return Observation::kChanged;
      }
      p.hash = hash;
      p.definition = definition;
      p.pinned_ms = now_ms;
      return Observation::kPinned;
    }
    if (p.hash == hash && !p.hash.empty()) return Observation::kUnchanged;
    if (p.pending_hash != hash) {
      p.pending_hash = hash;
      p.pending_definition = definition;
      p.pending_note = note;
      p.changed_ms = now_ms;
    }
    return Observation::kChanged;
  }

  Result<std::optional<Pin>> Get(const std::string& server, const std::string& tool) override {
    std::lock_guard lock(mu_);
    auto it = pins_.find({server, tool});
    if (it == pins_.end()) return std::optional<Pin>();
    return std::optional<Pin>(it->second);
  }

  Result<std::vector<Pin>> List(const std::string& server) override {
    std::lock_guard lock(mu_);
    std::vector<Pin> out;
    for (const auto& [key, p] : pins_) {
      if (server.empty() || key.first == server) out.push_back(p);
    }
    return out;
  }

  Result<int> Accept(const std::string& server, const std::string& tool, int64_t now_ms) override {
    std::lock_guard lock(mu_);
    int n = 0;
    for (auto& [key, p] : pins_) {
      if (key.first != server || (!tool.empty() && key.second != tool) || !p.pending_hash) continue;
      p.hash = *p.pending_hash;
      p.definition = *p.pending_definition;
      p.pinned_ms = now_ms;
      p.pending_hash.reset();
      p.pending_definition.reset();
      p.pending_note.clear();
      ++n;
    }
    return n;
  }

 private:
  std::mutex mu_;
  std::map<std::pair<std::string, std::string>, Pin> pins_;  // Guarded by mu_.
};

// The columns Row() reads, in its order: spelled once.
constexpr const char* kPinColumns =
    "SELECT server, tool, hash, definition, pinned_ms, pending_hash, pending_definition, "
    "pending_note, changed_ms";

class SqlitePinStore : public PinStore, SqliteStoreBase {
 public:
  explicit SqlitePinStore(std::shared_ptr<SqliteConnection> conn)
      : SqliteStoreBase(std::move(conn), "pin store") {}

  Result<bool> Exec(const char* sql) { return ExecSql(db_, sql, "pin store", path_); }

  Result<Observation> Observe(const std::string& server, const std::string& tool,
                              const std::string& hash, const std::string& definition,
                              int64_t now_ms, const std::string& note) override {
    std::lock_guard lock(mu_);
    WriteTxn txn(stmts_, db_, what_, path_);
    if (auto r = txn.Begin(); !r) return Fail(r.error());
    auto existing = GetLocked(server, tool);
    if (!existing) return Fail(existing.error());
    Observation result;
    const char* sql;
    if (!*existing) {
      result = note.empty() ? Observation::kPinned : Observation::kChanged;
      sql = note.empty()
                ? "INSERT INTO pins(server, tool, hash, definition, pinned_ms) VALUES(?1,?2,?3,?4,?5)"
                : "INSERT INTO pins(server, tool, hash, definition, pinned_ms, pending_hash, "
                  "pending_definition, pending_note, changed_ms) VALUES(?1,?2,'','',0,?3,?4,?6,?5)";
    } else if ((*existing)->hash == hash && !hash.empty()) {
      (void)txn.Commit();
      return Observation::kUnchanged;
    } else if ((*existing)->pending_hash == hash) {
      (void)txn.Commit();
      return Observation::kChanged;
    } else {
      result = Observation::kChanged;
      sql = "UPDATE pins SET pending_hash=?3, pending_definition=?4, changed_ms=?5, "
            "pending_note=?6 WHERE server=?1 AND tool=?2";
    }
    SqliteStmt st;
    sqlite3_prepare_v2(db_, sql, -1, &st.s, nullptr);
    sqlite3_bind_text(st.s, 1, server.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st.s, 2, tool.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st.s, 3, hash.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st.s, 4, definition.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st.s, 5, now_ms);
    sqlite3_bind_text(st.s, 6, note.c_str(), -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st.s) != SQLITE_DONE) {
      return Fail(Err());
    }
    if (auto r = txn.Commit(); !r) return Fail(r.error());
    return result;
  }

  Result<std::optional<Pin>> Get(const std::string& server, const std::string& tool) override {
    std::lock_guard lock(mu_);
    return GetLocked(server, tool);
  }

  Result<std::vector<Pin>> List(const std::string& server) override {
    std::lock_guard lock(mu_);
    SqliteStmt st;
    sqlite3_prepare_v2(db_,
                       (std::string(kPinColumns) +
                        " FROM pins WHERE ?1 = '' OR server = ?1 ORDER BY server, tool")
                           .c_str(),
                       -1, &st.s, nullptr);
    sqlite3_bind_text(st.s, 1, server.c_str(), -1, SQLITE_TRANSIENT);
    std::vector<Pin> out;
    int rc;
    while ((rc = sqlite3_step(st.s)) == SQLITE_ROW) out.push_back(Row(st.s));
    if (rc != SQLITE_DONE) return Fail(Err());
    return out;
  }

  Result<int> Accept(const std::string& server, const std::string& tool, int64_t now_ms) override {
    std::lock_guard lock(mu_);
    SqliteStmt st;
    sqlite3_prepare_v2(db_,
                       "UPDATE pins SET hash = pending_hash, definition = pending_definition, "
                       "pinned_ms = ?3, pending_hash = NULL, pending_definition = NULL, "
                       "pending_note = '' WHERE server = ?1 AND (?2 = '' OR tool = ?2) "
                       "AND pending_hash IS NOT NULL",
                       -1, &st.s, nullptr);
    sqlite3_bind_text(st.s, 1, server.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st.s, 2, tool.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st.s, 3, now_ms);
    if (sqlite3_step(st.s) != SQLITE_DONE) {
      return Fail(Err());
    }
    return sqlite3_changes(db_);
  }

 private:
  static Pin Row(sqlite3_stmt* s) {
    Pin p;
    p.server = ColumnText(s, 0);
    p.tool = ColumnText(s, 1);
    p.hash = ColumnText(s, 2);
    p.definition = ColumnText(s, 3);
    p.pinned_ms = sqlite3_column_int64(s, 4);
    if (sqlite3_column_type(s, 5) != SQLITE_NULL) {
      p.pending_hash = ColumnText(s, 5);
      p.pending_definition = ColumnText(s, 6);
    }
    p.pending_note = ColumnText(s, 7);
    p.changed_ms = sqlite3_column_int64(s, 8);
    return p;
  }

  Result<std::optional<Pin>> GetLocked(const std::string& server, const std::string& tool) {
    SqliteStmt st;
    sqlite3_prepare_v2(db_,
                       (std::string(kPinColumns) + " FROM pins WHERE server = ?1 AND tool = ?2")
                           .c_str(),
                       -1, &st.s, nullptr);
    sqlite3_bind_text(st.s, 1, server.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st.s, 2, tool.c_str(), -1, SQLITE_TRANSIENT);
    const int rc = sqlite3_step(st.s);
    if (rc == SQLITE_ROW) return std::optional<Pin>(Row(st.s));
    if (rc == SQLITE_DONE) return std::optional<Pin>();
    return Fail(Err());
  }
};

}  // namespace

std::unique_ptr<PinStore> MakeMemoryPinStore() { return std::make_unique<MemoryPinStore>(); }

Result<std::unique_ptr<PinStore>> OpenPinStore(const std::string& spec) {
  if (spec == "memory") return MakeMemoryPinStore();
  if (redis::IsRedisUrl(spec)) return OpenRedisPinStore(spec);
  if (!spec.starts_with("sqlite:") || spec.size() <= 7) {
    return Fail(Error::InvalidArgument("--state \"" + spec +
                                       "\": expected sqlite:PATH, redis://HOST:PORT/DB or memory"));
  }
  const std::string path = spec.substr(7);
  auto conn = OpenSharedSqlite(
      path, "pin store",
      {"CREATE TABLE IF NOT EXISTS pins(server TEXT NOT NULL, tool TEXT NOT NULL, "
       "hash TEXT NOT NULL, definition TEXT NOT NULL, pinned_ms INTEGER NOT NULL, "
       "pending_hash TEXT, pending_definition TEXT, pending_note TEXT NOT NULL DEFAULT '', "
       "changed_ms INTEGER NOT NULL DEFAULT 0, PRIMARY KEY(server, tool))"});
  if (!conn) return Fail(conn.error());
  return std::unique_ptr<PinStore>(std::make_unique<SqlitePinStore>(std::move(*conn)));
}

}  // namespace tw::catalog
