#include "audit/audit.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <cstdio>

#include "common/random.h"

#include <sqlite3.h>

#include <condition_variable>
#include <deque>
#include <fstream>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "common/sqlite_db.h"

namespace tw::audit {

std::string NewRecordId() {
  // 64 random bits drawn once per process, then a counter: unique across processes, and no
  // random-number generation per call (it cost ~10k instructions a call).
  static const std::string prefix = RandomHex(8);
  static std::atomic<uint64_t> next{0};
  char counter[17];
  std::snprintf(counter, sizeof counter, "%016llx",
                static_cast<unsigned long long>(next.fetch_add(1, std::memory_order_relaxed)));
  return prefix + counter;
}

json::value ToJson(const Record& r) {
  json::array keys;
  for (const auto& k : r.arg_keys) keys.emplace_back(k);
  json::object o{{"id", r.id},          {"ts_ms", r.ts_ms},         {"grant", r.grant},
                 {"session", r.session}, {"server", r.server},       {"tool", r.tool},
                 {"decision", r.decision}, {"rule", r.rule},         {"reason", r.reason},
                 {"arg_keys", std::move(keys)}, {"args_digest", r.args_digest},
                 {"policy_version", r.policy_version}, {"outcome", r.outcome},
                 {"latency_ms", r.latency_ms}};
  if (r.args) o["args"] = *r.args;
  return o;
}

namespace {

constexpr const char* kSchema =
    "CREATE TABLE IF NOT EXISTS audit(id TEXT PRIMARY KEY, ts_ms INTEGER NOT NULL, "
    "grant_name TEXT NOT NULL, session TEXT NOT NULL, server TEXT NOT NULL, tool TEXT NOT NULL, "
    "decision TEXT NOT NULL, rule TEXT NOT NULL, reason TEXT NOT NULL, arg_keys TEXT NOT NULL, "
    "args_digest TEXT NOT NULL, args TEXT, policy_version TEXT NOT NULL, outcome TEXT NOT NULL, "
    "latency_ms INTEGER NOT NULL)";
constexpr const char* kIndex = "CREATE INDEX IF NOT EXISTS audit_ts ON audit(ts_ms)";

class SqliteAuditLog : public AuditLog {
 public:
  // `checkpointer` (may be null: no file) is a second connection, used by the writer thread only.
  SqliteAuditLog(std::shared_ptr<SqliteConnection> conn, sqlite3* checkpointer, std::string json_lines)
      : conn_(std::move(conn)), db_(conn_->db), checkpointer_(checkpointer), path_(conn_->path),
        db_mu_(conn_->mu) {
    if (!json_lines.empty()) lines_.open(json_lines, std::ios::app);
    writer_ = std::thread([this] { WriterLoop(); });
  }
  ~SqliteAuditLog() override {
    {
      std::lock_guard lock(queue_mu_);
      stop_ = true;
    }
    queue_cv_.notify_all();
    writer_.join();
    if (checkpointer_) sqlite3_close_v2(checkpointer_);
  }

  Result<bool> Write(const Record& r) override {
    std::lock_guard lock(db_mu_);
    if (auto ok = InsertLocked(r); !ok) return ok;
    // Inside a turn (counters charged on this connection, see CounterStore::TryChargeInTurn)
    // the insert is not durable until that transaction commits: commit it now. The turn's
    // staged records stay staged for CommitStaged.
    if (sqlite3_get_autocommit(db_) == 0) {
      if (auto c = StepLocked("COMMIT"); !c) {
        (void)StepLocked("ROLLBACK");
        return Fail(c.error());
      }
    }
    Mirror(r);
    return true;
  }

  const void* Connection() const override { return conn_.get(); }

  void Stage(Record record) override {
    std::lock_guard lock(db_mu_);
    staged_.push_back(std::move(record));
  }

  Result<bool> CommitStaged() override {
    std::lock_guard lock(db_mu_);
    // A transaction already open is the turn's: counters charged by TryChargeInTurn, which
    // this commit makes durable together with the records.
    const bool in_turn = sqlite3_get_autocommit(db_) == 0;
    if (staged_.empty() && !in_turn) return true;
    std::vector<Record> batch;
    batch.swap(staged_);
    if (!in_turn) {
      if (auto r = StepLocked("BEGIN IMMEDIATE"); !r) return Fail(r.error());
    }
    for (const Record& r : batch) {
      if (auto ok = InsertLocked(r); !ok) {
        (void)StepLocked("ROLLBACK");
        return ok;
      }
    }
    if (auto r = StepLocked("COMMIT"); !r) {
      (void)StepLocked("ROLLBACK");
      return Fail(r.error());
    }
    for (const Record& r : batch) Mirror(r);
    return true;
  }

  void Complete(const std::string& id, const std::string& outcome, int64_t latency_ms) override {
    bool full = false;
    {
      std::lock_guard lock(queue_mu_);
      queue_.push_back({id, outcome, latency_ms});
      full = queue_.size() >= kBatch;
    }
    // The writer wakes on its own every 50 ms; waking it for every outcome would cost a futex
    // and a context switch per call.
    if (full) queue_cv_.notify_one();
    if (lines_.is_open()) {
      std::lock_guard l(pending_mu_);
      auto it = pending_lines_.find(id);
      if (it != pending_lines_.end()) {
        it->second.outcome = outcome;
        it->second.latency_ms = latency_ms;
        std::lock_guard l2(lines_mu_);
        lines_ << json::serialize(ToJson(it->second)) << '\n';
        lines_.flush();
        pending_lines_.erase(it);
      }
    }
  }

  void Flush() override {
    std::unique_lock lock(queue_mu_);
    flush_requested_ = true;
    queue_cv_.notify_one();
    queue_cv_.wait(lock, [this] { return queue_.empty() && !writing_; });
  }

 private:
  // Runs a statement without results (BEGIN, COMMIT…). Requires db_mu_.
  Result<bool> StepLocked(const char* sql) { return StepCached(stmts_, db_, sql, "audit store", path_); }

  // Inserts one record. Requires db_mu_.
  Result<bool> InsertLocked(const Record& r) {
    ScopedStmt st = stmts_.Get(
        db_,
        "INSERT INTO audit(id, ts_ms, grant_name, session, server, tool, decision, rule, reason, "
        "arg_keys, args_digest, args, policy_version, outcome, latency_ms) "
        "VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15)");
    json::array keys;
    for (const auto& k : r.arg_keys) keys.emplace_back(k);
    const std::string keys_text = json::serialize(keys);
    const std::string args_text = r.args ? json::serialize(*r.args) : "";
    int i = 1;
    sqlite3_bind_text(st.s, i++, r.id.c_str(), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st.s, i++, r.ts_ms);
    for (const std::string* v : {&r.grant, &r.session, &r.server, &r.tool, &r.decision, &r.rule,
                                 &r.reason, &keys_text, &r.args_digest}) {
      sqlite3_bind_text(st.s, i++, v->c_str(), -1, SQLITE_STATIC);
    }
    if (r.args) {
      sqlite3_bind_text(st.s, i++, args_text.c_str(), -1, SQLITE_STATIC);
    } else {
      sqlite3_bind_null(st.s, i++);
    }
    sqlite3_bind_text(st.s, i++, r.policy_version.c_str(), -1, SQLITE_STATIC);
    sqlite3_bind_text(st.s, i++, r.outcome.c_str(), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st.s, i++, r.latency_ms);
    if (sqlite3_step(st.s) != SQLITE_DONE) {
      return Fail(Error::Unavailable("audit store " + path_ + ": " + sqlite3_errmsg(db_)));
    }
    return true;
  }

  // The JSON lines mirror: complete records now, pending ones when their outcome arrives.
  void Mirror(const Record& r) {
    if (!lines_.is_open()) return;
    if (r.outcome != "pending") {
      std::lock_guard l(lines_mu_);
      lines_ << json::serialize(ToJson(r)) << '\n';
      lines_.flush();
    } else {
      std::lock_guard l(pending_mu_);
      pending_lines_[r.id] = r;
    }
  }

  struct Update {
    std::string id, outcome;
    int64_t latency_ms;
  };

  // Applies outcome updates in batched transactions: one commit for everything queued.
  void WriterLoop() {
    std::unique_lock lock(queue_mu_);
    for (;;) {
      queue_cv_.wait_for(lock, std::chrono::milliseconds(50),
                         [this] { return stop_ || flush_requested_ || queue_.size() >= kBatch; });
      if (queue_.empty()) {
        flush_requested_ = false;
        queue_cv_.notify_all();
        if (stop_) return;
        MaybeCheckpoint(lock);
        continue;
      }
      std::deque<Update> batch;
      batch.swap(queue_);
      writing_ = true;
      lock.unlock();
      {
        std::lock_guard db_lock(db_mu_);
        // A savepoint when the gateway's turn is open (it commits these with it).
        WriteTxn txn(stmts_, db_, "audit store", path_);
        (void)txn.Begin();
        SqliteStmt st;
        sqlite3_prepare_v2(db_, "UPDATE audit SET outcome = ?2, latency_ms = ?3 WHERE id = ?1", -1,
                           &st.s, nullptr);
        for (const Update& u : batch) {
          sqlite3_bind_text(st.s, 1, u.id.c_str(), -1, SQLITE_STATIC);
          sqlite3_bind_text(st.s, 2, u.outcome.c_str(), -1, SQLITE_STATIC);
          sqlite3_bind_int64(st.s, 3, u.latency_ms);
          sqlite3_step(st.s);
          sqlite3_reset(st.s);
        }
        if (auto r = txn.Commit(); !r) spdlog::error("audit: {}", r.error().message());
      }
      lock.lock();
      writing_ = false;
      queue_cv_.notify_all();
      MaybeCheckpoint(lock);
    }
  }

  static constexpr size_t kBatch = 256;
  // Moves the WAL into the database file, off the gateway's thread (the connections that write
  // on it never checkpoint), at most every 200 ms.
  void MaybeCheckpoint(std::unique_lock<std::mutex>& lock) {
    const auto now = std::chrono::steady_clock::now();
    if (now - last_checkpoint_ < std::chrono::milliseconds(200)) return;
    if (!checkpointer_) {
      // In memory (--state memory): nothing outlives the process anyway; keep the newest
      // records only, so a long-running gateway does not grow without bound.
      last_checkpoint_ = now;
      lock.unlock();
      {
        std::lock_guard db_lock(db_mu_);
        ExecSql(db_,
                "DELETE FROM audit WHERE rowid <= (SELECT MAX(rowid) FROM audit) - 100000",
                "audit store", path_);
      }
      lock.lock();
      return;
    }
    last_checkpoint_ = now;
    lock.unlock();
    int wal_frames = 0, copied = 0;
    sqlite3_wal_checkpoint_v2(checkpointer_, nullptr, SQLITE_CHECKPOINT_PASSIVE, &wal_frames, &copied);
    // Under steady writes a passive checkpoint never catches up with the end of the WAL, and the
    // WAL only starts over once it has: past ~16 MB, briefly hold writers back (RESTART) so it
    // can. Most frames are already copied by then, so the pause is short.
    if (wal_frames > 4000) {
      sqlite3_wal_checkpoint_v2(checkpointer_, nullptr, SQLITE_CHECKPOINT_RESTART, &wal_frames, &copied);
    }
    lock.lock();
  }

  std::shared_ptr<SqliteConnection> conn_;  // shared with the other stores on the file
  sqlite3* db_;
  sqlite3* checkpointer_;  // the writer thread's only
  std::chrono::steady_clock::time_point last_checkpoint_;  // writer thread only
  std::string path_;
  std::mutex& db_mu_;  // the connection's; guards db_, stmts_ and staged_
  StatementCache stmts_;
  std::vector<Record> staged_;

  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::deque<Update> queue_;  // Guarded by queue_mu_.
  bool stop_ = false;         // Guarded by queue_mu_.
  bool flush_requested_ = false;
  bool writing_ = false;
  std::thread writer_;

  std::mutex lines_mu_;
  std::ofstream lines_;
  std::mutex pending_mu_;
  std::unordered_map<std::string, Record> pending_lines_;  // Guarded by pending_mu_.
};

std::string PathOf(const std::string& spec) {
  return spec.starts_with("sqlite:") ? spec.substr(7) : std::string();
}

}  // namespace

Result<std::unique_ptr<AuditLog>> OpenAuditLog(const std::string& state_spec,
                                               const std::string& json_lines_path) {
  const std::string path = state_spec == "memory" ? ":memory:" : PathOf(state_spec);
  if (path.empty()) {
    return Fail(Error::InvalidArgument("--state \"" + state_spec + "\": expected sqlite:PATH or memory"));
  }
  if (!json_lines_path.empty()) {
    std::ofstream probe(json_lines_path, std::ios::app);
    if (!probe) return Fail(Error::Unavailable("cannot write the audit log " + json_lines_path));
  }
  // Records are written on the gateway's thread, where nothing checkpoints (sqlite_db.h); the
  // writer thread checkpoints the file from a connection of its own.
  auto conn = OpenSharedSqlite(path, "audit store", {kSchema, kIndex});
  if (!conn) return Fail(conn.error());
  sqlite3* checkpointer = nullptr;
  if (path != ":memory:") {
    auto c = OpenSqliteDatabase(path, "audit store", {});
    if (!c) return Fail(c.error());
    checkpointer = *c;
  }
  return std::unique_ptr<AuditLog>(
      std::make_unique<SqliteAuditLog>(std::move(*conn), checkpointer, json_lines_path));
}

namespace {

// The WHERE clause every audit query shares (parameters ?1-?6).
constexpr const char* kWhere =
    " WHERE ts_ms >= ?1 AND (?2 = 0 OR ts_ms < ?2) AND (?3 = '' OR grant_name = ?3) "
    "AND (?4 = '' OR server = ?4) AND (?5 = '' OR tool = ?5) AND (?6 = '' OR decision = ?6)";

void BindWhere(sqlite3_stmt* st, const Query& q) {
  sqlite3_bind_int64(st, 1, q.since_ms);
  sqlite3_bind_int64(st, 2, q.until_ms);
  int i = 3;
  for (const std::string* v : {&q.grant, &q.server, &q.tool, &q.decision}) {
    sqlite3_bind_text(st, i++, v->c_str(), -1, SQLITE_TRANSIENT);
  }
}

// Opens the audit store of `state_spec` for one query.
Result<sqlite3*> OpenForQuery(const std::string& state_spec) {
  const std::string path = PathOf(state_spec);
  if (path.empty()) return Fail(Error::InvalidArgument("audit queries need --state sqlite:PATH"));
  return OpenSqliteDatabase(path, "audit store", {kSchema, kIndex});
}

}  // namespace

Result<std::vector<Record>> QueryAudit(const std::string& state_spec, const Query& q) {
  auto db = OpenForQuery(state_spec);
  if (!db) return Fail(db.error());
  SqliteStmt st;
  sqlite3_prepare_v2(*db,
                     (std::string("SELECT id, ts_ms, grant_name, session, server, tool, decision, rule, reason, "
                                  "arg_keys, args_digest, args, policy_version, outcome, latency_ms FROM audit") +
                      kWhere + " ORDER BY ts_ms DESC, rowid DESC LIMIT ?7 OFFSET ?8")
                         .c_str(),
                     -1, &st.s, nullptr);
  BindWhere(st.s, q);
  sqlite3_bind_int(st.s, 7, q.limit);
  sqlite3_bind_int64(st.s, 8, q.offset);
  std::vector<Record> out;
  while (sqlite3_step(st.s) == SQLITE_ROW) {
    Record r;
    r.id = ColumnText(st.s, 0);
    r.ts_ms = sqlite3_column_int64(st.s, 1);
    r.grant = ColumnText(st.s, 2);
    r.session = ColumnText(st.s, 3);
    r.server = ColumnText(st.s, 4);
    r.tool = ColumnText(st.s, 5);
    r.decision = ColumnText(st.s, 6);
    r.rule = ColumnText(st.s, 7);
    r.reason = ColumnText(st.s, 8);
    boost::system::error_code ec;
    json::value keys = json::parse(ColumnText(st.s, 9), ec);
    if (!ec && keys.is_array()) {
      for (const auto& k : keys.get_array()) {
        if (k.is_string()) r.arg_keys.emplace_back(k.get_string());
      }
    }
    r.args_digest = ColumnText(st.s, 10);
    if (sqlite3_column_type(st.s, 11) != SQLITE_NULL) r.args = json::parse(ColumnText(st.s, 11), ec);
    r.policy_version = ColumnText(st.s, 12);
    r.outcome = ColumnText(st.s, 13);
    r.latency_ms = sqlite3_column_int64(st.s, 14);
    out.push_back(std::move(r));
  }
  sqlite3_close_v2(*db);
  return out;
}

Result<int64_t> CountAudit(const std::string& state_spec, const Query& q) {
  auto db = OpenForQuery(state_spec);
  if (!db) return Fail(db.error());
  SqliteStmt st;
  sqlite3_prepare_v2(*db, (std::string("SELECT COUNT(*) FROM audit") + kWhere).c_str(), -1, &st.s,
                     nullptr);
  BindWhere(st.s, q);
  int64_t n = sqlite3_step(st.s) == SQLITE_ROW ? sqlite3_column_int64(st.s, 0) : 0;
  sqlite3_close_v2(*db);
  return n;
}

Result<std::vector<Bucket>> AuditHistogram(const std::string& state_spec, const Query& q,
                                           int64_t bucket_ms) {
  if (bucket_ms <= 0) return Fail(Error::InvalidArgument("the bucket must be positive"));
  auto db = OpenForQuery(state_spec);
  if (!db) return Fail(db.error());
  SqliteStmt st;
  sqlite3_prepare_v2(*db,
                     (std::string("SELECT (ts_ms / ?7) * ?7 AS b, SUM(decision = 'allow'), "
                                  "SUM(decision = 'deny'), SUM(decision = 'approval') FROM audit") +
                      kWhere + " GROUP BY b ORDER BY b")
                         .c_str(),
                     -1, &st.s, nullptr);
  BindWhere(st.s, q);
  sqlite3_bind_int64(st.s, 7, bucket_ms);
  std::vector<Bucket> out;
  while (sqlite3_step(st.s) == SQLITE_ROW) {
    out.push_back({sqlite3_column_int64(st.s, 0), sqlite3_column_int64(st.s, 1),
                   sqlite3_column_int64(st.s, 2), sqlite3_column_int64(st.s, 3)});
  }
  sqlite3_close_v2(*db);
  return out;
}

}  // namespace tw::audit
