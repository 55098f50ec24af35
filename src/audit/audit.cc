#include "audit/audit.h"

#include <spdlog/spdlog.h>

#include <atomic>

#include "common/hex.h"
#include "common/random.h"
#include "jsonrpc/message.h"

#include <sqlite3.h>

#include <condition_variable>
#include <fstream>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "audit/shared_trail.h"
#include "common/sqlite_db.h"
#include "pg/pg.h"

namespace tw::audit {

std::string NewRecordId() {
  // 64 random bits drawn once per process, then a counter: unique across processes, and no
  // random-number generation per call (it cost ~10k instructions a call).
  static const std::string prefix = RandomHex(8);
  static std::atomic<uint64_t> next{0};
  std::string id;
  id.reserve(prefix.size() + 16);
  id.append(prefix);
  AppendHex64(id, next.fetch_add(1, std::memory_order_relaxed));
  return id;
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
  if (r.args) {
    o["args"] = *r.args;
  } else if (!r.args_text.empty()) {
    boost::system::error_code ec;
    json::value args = json::parse(r.args_text, ec);
    if (!ec) o["args"] = std::move(args);
  }
  if (r.shadow) {
    o["shadow"] = json::object{{"decision", r.shadow->decision}, {"rule", r.shadow->rule},
                               {"reason", r.shadow->reason}};
  }
  if (!r.tool_class.empty()) {
    const size_t at = r.tool_class.find('@');
    o["class"] = r.tool_class.substr(0, at);
    if (at != std::string::npos) o["classifier"] = r.tool_class.substr(at + 1);
  }
  if (!r.principal.empty()) o["principal"] = r.principal;
  return o;
}

std::string ShadowText(const Record& r) {
  if (!r.shadow) return {};
  return json::serialize(json::object{
      {"decision", r.shadow->decision}, {"rule", r.shadow->rule}, {"reason", r.shadow->reason}});
}

void ReadShadowText(std::string_view stored, Record& r) {
  if (stored.empty()) return;
  boost::system::error_code ec;
  json::value v = json::parse(stored, ec);
  if (ec || !v.is_object()) return;
  auto field = [&](const char* k) -> std::string {
    const json::value* f = v.get_object().if_contains(k);
    return f && f->is_string() ? std::string(f->get_string()) : std::string();
  };
  r.shadow = ShadowDecision{field("decision"), field("rule"), field("reason")};
}

namespace {

// `id` is unique by construction (NewRecordId) and only ever looked up to complete a record,
// which goes by rowid (pending_rows_): no index on it, one B-tree less to write per record.
// (Files made before this kept `id TEXT PRIMARY KEY`; both work.)
constexpr const char* kSchema =
    "CREATE TABLE IF NOT EXISTS audit(id TEXT NOT NULL, ts_ms INTEGER NOT NULL, "
    "grant_name TEXT NOT NULL, session TEXT NOT NULL, server TEXT NOT NULL, tool TEXT NOT NULL, "
    "decision TEXT NOT NULL, rule TEXT NOT NULL, reason TEXT NOT NULL, arg_keys TEXT NOT NULL, "
    "args_digest TEXT NOT NULL, args TEXT, policy_version TEXT NOT NULL, outcome TEXT NOT NULL, "
    "latency_ms INTEGER NOT NULL, shadow TEXT, tool_class TEXT, principal TEXT)";
constexpr const char* kIndex = "CREATE INDEX IF NOT EXISTS audit_ts ON audit(ts_ms)";

// `keys` as a JSON array of strings, written straight out (json::serialize of an array
// would first copy every key into it).
std::string KeysText(const std::vector<std::string>& keys) {
  std::string out = "[";
  json::serializer sr;
  for (size_t i = 0; i < keys.size(); ++i) {
    if (i > 0) out.push_back(',');
    sr.reset(json::string_view(keys[i]));
    jsonrpc::AppendSerialized(out, sr);
  }
  out.push_back(']');
  return out;
}

// The JSON lines mirror, written by a thread of its own: neither an event loop nor the audit
// writer ever writes that file — a reader of `--audit-log -` that stops reading would block the
// write, and with it the loop (every session on it) or the writer (every call's record). Lines
// wait in memory up to kMaxQueued; past that they are dropped and counted in the log (the state
// file, the trail of record, has every one of them).
class LineMirror {
 public:
  explicit LineMirror(const std::string& path) : path_(path), out_(path, std::ios::app) {
    thread_ = std::thread([this] { Run(); });
  }
  ~LineMirror() {  // writes what is queued first
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }
  LineMirror(const LineMirror&) = delete;
  LineMirror& operator=(const LineMirror&) = delete;

  void Add(Record r) {
    std::unique_lock lock(mu_);
    if (queue_.size() >= kMaxQueued) {
      ++dropped_;
      return;
    }
    queue_.push_back(std::move(r));
    const bool wake = idle_;
    lock.unlock();
    if (wake) wake_.notify_one();
  }

  // Returns once everything added before the call is written.
  void Flush() {
    std::unique_lock lock(mu_);
    written_.wait(lock, [this] { return queue_.empty() && !writing_; });
  }

 private:
  void Run() {
    std::unique_lock lock(mu_);
    for (;;) {
      idle_ = true;
      wake_.wait(lock, [this] { return stop_ || !queue_.empty(); });
      idle_ = false;
      if (queue_.empty()) return;  // stopping, nothing left
      std::vector<Record> batch;
      batch.swap(queue_);
      const uint64_t dropped = std::exchange(dropped_, 0);
      writing_ = true;
      lock.unlock();
      std::string text;
      for (const Record& r : batch) {
        text += json::serialize(ToJson(r));
        text += '\n';
      }
      out_ << text;
      out_.flush();
      if (dropped > 0) {
        spdlog::warn("audit: {} JSON lines not written to {}: it was not read fast enough (the state "
                     "file has every record)", dropped, path_);
      }
      lock.lock();
      writing_ = false;
      written_.notify_all();
    }
  }

  static constexpr size_t kMaxQueued = 100000;
  const std::string path_;
  std::ofstream out_;  // the mirror thread's only
  std::mutex mu_;
  std::condition_variable wake_, written_;
  std::vector<Record> queue_;  // Guarded by mu_, like the four below.
  uint64_t dropped_ = 0;
  bool idle_ = false, writing_ = false, stop_ = false;
  std::thread thread_;
};

class SqliteAuditLog : public AuditLog, SqliteStoreBase {
 public:
  // `checkpointer` (may be null: no file) is a second connection, for the checkpoint thread only.
  SqliteAuditLog(std::shared_ptr<SqliteConnection> conn, sqlite3* checkpointer, std::string json_lines,
                 const RetentionOptions& retention)
      : SqliteStoreBase(std::move(conn), "audit store"), checkpointer_(checkpointer) {
    if (!json_lines.empty()) mirror_ = std::make_unique<LineMirror>(json_lines);
    if (checkpointer_) retention_ = std::make_unique<Retention>(checkpointer_, path_, retention);
    writer_ = std::thread([this] { WriterLoop(); });
    checkpoints_ = std::thread([this] { CheckpointLoop(); });
  }
  ~SqliteAuditLog() override {
    {
      std::lock_guard lock(queue_mu_);
      stop_ = true;
    }
    queue_cv_.notify_all();
    writer_.join();
    mirror_.reset();  // after the writer, whose batches add lines
    {
      std::lock_guard lock(checkpoint_mu_);
      stop_checkpoints_ = true;
    }
    checkpoint_cv_.notify_all();
    checkpoints_.join();
    if (checkpointer_) sqlite3_close_v2(checkpointer_);
  }

  std::string Unwritable() const override { return retention_ ? retention_->DiskLow() : std::string(); }
  void PruneOnlyThrough(int64_t rowid) override {
    if (retention_) retention_->PruneOnlyThrough(rowid);
  }

  AuditStats Stats() const override {
    AuditStats s;
    s.refused = refused_.load(std::memory_order_relaxed);
    if (retention_) {
      s.pruned = retention_->stats().pruned.load(std::memory_order_relaxed);
      s.file_bytes = retention_->stats().file_bytes.load(std::memory_order_relaxed);
      s.free_bytes = retention_->stats().free_bytes.load(std::memory_order_relaxed);
      s.disk_low = !retention_->DiskLow().empty();
    }
    return s;
  }

  Result<bool> Write(const Record& r) override {
    if (std::string why = Unwritable(); !why.empty()) {
      refused_.fetch_add(1, std::memory_order_relaxed);
      return Fail(Error::Unavailable(why));
    }
    std::lock_guard lock(mu_);
    if (auto ok = InsertLocked(r); !ok) {
      pending_rows_.erase(r.id);
      return ok;
    }
    Mirror(r);
    return true;
  }

  const void* Connection() const override { return conn_.get(); }

  void Submit(Record record, std::function<void(Record&)> in_txn,
              std::function<void(bool ok)> done) override {
    if (retention_ && !retention_->DiskLow().empty()) {
      // The reserve is kept for the outcomes of calls already forwarded: nothing new is
      // decided into a file that may not be able to hold its record.
      refused_.fetch_add(1, std::memory_order_relaxed);
      if (done) done(false);
      return;
    }
    std::unique_lock lock(queue_mu_);
    const auto now = std::chrono::steady_clock::now();
    const bool quiet = now - last_submit_ > kQuiet;
    last_submit_ = now;
    // No other call between its record and its answer: calls made one at a time, as an agent
    // makes them, however close together.
    const bool alone = open_calls_ == 0;
    const bool opens = record.outcome == "pending";
    open_calls_ += opens ? 1 : 0;
    if ((quiet || alone) && idle_ && jobs_.empty() && inline_writes_ == 0) {
      // A lone call: a hop to the writer thread and back would only add two wake-ups to its
      // latency, and there is nothing to batch it with.
      ++inline_writes_;
      lock.unlock();
      std::vector<Job> one;
      one.push_back({std::move(record), std::move(in_txn), std::move(done)});
      one.front().opens = opens;
      // On an event loop (SqliteNoWait) neither a state file locked by another process nor the
      // connection in another thread's hands is waited for here: the writer thread waits instead.
      const bool written = WriteBatch(one, {}, /*defer_if_locked=*/!SqliteWaitsOnThisThread());
      if (written) Finished(one);
      lock.lock();
      --inline_writes_;
      if (written) {
        flushed_cv_.notify_all();
        return;
      }
      jobs_.push_back(std::move(one.front()));
      const bool wake = idle_;
      lock.unlock();
      if (wake) queue_cv_.notify_one();
      return;
    }
    jobs_.push_back({std::move(record), std::move(in_txn), std::move(done)});
    jobs_.back().opens = opens;
    // A writer busy with a batch takes this one when it ends, without a wake-up (a futex
    // call and a context switch saved per call under load).
    const bool wake = idle_;
    lock.unlock();
    if (wake) queue_cv_.notify_one();
  }

  void Run(std::function<void()> in_txn, std::function<void(bool ok)> done) override {
    Job job;
    job.has_record = false;
    job.in_txn = [f = std::move(in_txn)](Record&) { f(); };
    job.done = std::move(done);
    std::unique_lock lock(queue_mu_);
    jobs_.push_back(std::move(job));
    const bool wake = idle_;
    lock.unlock();
    if (wake) queue_cv_.notify_one();
  }

  void Complete(const std::string& id, const std::string& outcome, int64_t latency_ms) override {
    bool full = false;
    {
      std::lock_guard lock(queue_mu_);
      updates_.push_back({id, outcome, latency_ms});
      if (open_calls_ > 0) --open_calls_;
      full = updates_.size() >= kBatch && idle_;
    }
    // Outcomes ride with the next batch of records; on their own the writer applies them
    // every 50 ms — waking it for each would cost a futex and a context switch per call.
    if (full) queue_cv_.notify_one();
    if (mirror_) {
      std::unique_lock l(pending_mu_);
      auto it = pending_lines_.find(id);
      if (it != pending_lines_.end()) {
        Record r = std::move(it->second);
        pending_lines_.erase(it);
        l.unlock();
        r.outcome = outcome;
        r.latency_ms = latency_ms;
        mirror_->Add(std::move(r));
      }
    }
  }

  void Flush() override {
    std::unique_lock lock(queue_mu_);
    flush_requested_ = true;
    queue_cv_.notify_one();
    flushed_cv_.wait(lock, [this] {
      return jobs_.empty() && updates_.empty() && !writing_ && inline_writes_ == 0;
    });
    lock.unlock();
    if (mirror_) mirror_->Flush();
  }

 private:
  // Runs a statement without results (BEGIN, COMMIT…). Requires mu_.
  Result<bool> StepLocked(const char* sql) { return Exec(sql); }

  // Inserts one record. Requires mu_.
  Result<bool> InsertLocked(const Record& r) {
    ScopedStmt st = stmts_.Get(
        db_,
        "INSERT INTO audit(id, ts_ms, grant_name, session, server, tool, decision, rule, reason, "
        "arg_keys, args_digest, args, policy_version, outcome, latency_ms, shadow, tool_class, "
        "principal) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18)");
    const std::string keys_text = KeysText(r.arg_keys);
    const std::string serialized = r.args ? json::serialize(*r.args) : std::string();
    const std::string& args_text = r.args ? serialized : r.args_text;
    int i = 1;
    // With their lengths: SQLite would otherwise strlen each of the dozen texts of every record.
    auto text = [&](const std::string& v) {
      sqlite3_bind_text(st.s, i++, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
    };
    text(r.id);
    sqlite3_bind_int64(st.s, i++, r.ts_ms);
    for (const std::string* v : {&r.grant, &r.session, &r.server, &r.tool, &r.decision, &r.rule,
                                 &r.reason, &keys_text, &r.args_digest}) {
      text(*v);
    }
    if (!args_text.empty()) {
      text(args_text);
    } else {
      sqlite3_bind_null(st.s, i++);
    }
    text(r.policy_version);
    text(r.outcome);
    sqlite3_bind_int64(st.s, i++, r.latency_ms);
    const std::string shadow_text = ShadowText(r);
    for (const std::string* v : {&shadow_text, &r.tool_class, &r.principal}) {
      if (v->empty()) {
        sqlite3_bind_null(st.s, i++);
      } else {
        text(*v);
      }
    }
    if (sqlite3_step(st.s) != SQLITE_DONE) {
      return Fail(Err());
    }
    if (r.outcome == "pending") pending_rows_[r.id] = sqlite3_last_insert_rowid(db_);
    return true;
  }

  // The JSON lines mirror: complete records now, pending ones when their outcome arrives.
  void Mirror(const Record& r) {
    if (!mirror_) return;
    if (r.outcome != "pending") {
      mirror_->Add(r);
    } else {
      std::lock_guard l(pending_mu_);
      pending_lines_[r.id] = r;
    }
  }

  struct Job {
    Record record;
    std::function<void(Record&)> in_txn;
    std::function<void(bool)> done;
    bool ok = true;
    bool has_record = true;  // false: a Run, whose `in_txn` is all it writes
    bool opens = false;      // counted in open_calls_ when submitted
  };
  struct Update {
    std::string id, outcome;
    int64_t latency_ms;
  };

  // Takes everything queued and writes it in one transaction: each submitted record (with what
  // its `in_txn` writes) in a savepoint of its own, so that one failing insert costs only its
  // own call, then the outcome updates. Under load the batch grows by itself: what arrives
  // while one commits makes the next.
  void WriterLoop() {
    std::unique_lock lock(queue_mu_);
    for (;;) {
      idle_ = true;
      queue_cv_.wait_for(lock, std::chrono::milliseconds(50), [this] {
        return stop_ || flush_requested_ || !jobs_.empty() || updates_.size() >= kBatch;
      });
      idle_ = false;
      if (jobs_.empty() && updates_.empty()) {
        open_calls_ = 0;  // 50 ms without a record or an outcome: whatever is open is not busy
        flush_requested_ = false;
        flushed_cv_.notify_all();
        if (stop_) return;
        continue;
      }
      std::vector<Job> jobs;
      jobs.swap(jobs_);
      std::vector<Update> updates;
      updates.swap(updates_);
      writing_ = true;
      lock.unlock();
      WriteBatch(jobs, updates);
      Finished(jobs);
      lock.lock();
      writing_ = false;
      flushed_cv_.notify_all();
    }
  }

  // After the batch: the JSON lines mirror, then each job's `done`.
  void Finished(std::vector<Job>& jobs) {
    int closed = 0;  // calls that will not be completed after all: not written, or denied in_txn
    for (Job& j : jobs) {
      if (j.ok && j.has_record) Mirror(j.record);
      closed += j.opens && (!j.ok || j.record.outcome != "pending") ? 1 : 0;
    }
    if (closed > 0) {
      std::lock_guard lock(queue_mu_);
      open_calls_ = std::max(0, open_calls_ - closed);
    }
    for (Job& j : jobs) {
      if (j.done) j.done(j.ok);
    }
  }

  // One transaction; sets each job's ok. Takes mu_ for its whole length — except while it
  // waits for another process's write lock (BeginImmediateShared) — so no other thread sees
  // the transaction open. Returns false, having done nothing, when `defer_if_locked` and the
  // file or the connection is taken (another process's write lock; another thread — the writer
  // committing a batch, another loop — using the connection): the caller hands the jobs to the
  // writer thread instead of waiting.
  bool WriteBatch(std::vector<Job>& jobs, const std::vector<Update>& updates,
                  bool defer_if_locked = false) {
    std::unique_lock db_lock(mu_, std::defer_lock);
    if (!defer_if_locked) {
      db_lock.lock();
    } else if (!db_lock.try_lock()) {
      return false;
    }
    auto fail_all = [&](const Error& e) {
      spdlog::error("audit: {}", e.message());
      for (Job& j : jobs) {
        j.ok = false;
        pending_rows_.erase(j.record.id);
      }
    };
    if (auto r = BeginImmediateShared(db_lock, stmts_, db_, what_, path_); !r) {
      if (defer_if_locked && IsLockedFailure(r.error())) return false;
      fail_all(r.error());
      return true;
    }
    if (jobs.size() == 1 && updates.empty()) {
      // Alone in its transaction: no savepoint needed to keep anything else.
      Job& j = jobs[0];
      if (j.in_txn) j.in_txn(j.record);
      Result<bool> ok = true;
      if (j.has_record) ok = InsertLocked(j.record);
      if (ok) ok = StepLocked("COMMIT");
      if (!ok) {
        (void)StepLocked("ROLLBACK");
        fail_all(ok.error());
      }
      return true;
    }
    for (Job& j : jobs) {
      if (auto r = StepLocked("SAVEPOINT call"); !r) {
        (void)StepLocked("ROLLBACK");
        fail_all(r.error());
        return true;
      }
      if (j.in_txn) j.in_txn(j.record);
      if (auto ok = j.has_record ? InsertLocked(j.record) : Result<bool>(true); !ok) {
        spdlog::error("audit: {}", ok.error().message());
        j.ok = false;
        (void)StepLocked("ROLLBACK TO call");
      }
      (void)StepLocked("RELEASE call");
    }
    if (!updates.empty()) {
      ScopedStmt st = stmts_.Get(db_, "UPDATE audit SET outcome = ?2, latency_ms = ?3 WHERE rowid = ?1");
      for (const Update& u : updates) {
        auto row = pending_rows_.find(u.id);
        if (row == pending_rows_.end()) continue;  // not a pending record of this process
        sqlite3_reset(st.s);
        sqlite3_bind_int64(st.s, 1, row->second);
        sqlite3_bind_text(st.s, 2, u.outcome.data(), static_cast<int>(u.outcome.size()), SQLITE_STATIC);
        sqlite3_bind_int64(st.s, 3, u.latency_ms);
        sqlite3_step(st.s);
        pending_rows_.erase(row);
      }
    }
    if (auto r = StepLocked("COMMIT"); !r) {
      (void)StepLocked("ROLLBACK");
      fail_all(r.error());
    }
    for (const Job& j : jobs) {
      if (!j.ok) pending_rows_.erase(j.record.id);
    }
    return true;
  }

  static constexpr size_t kBatch = 256;

  // Moves the WAL into the database file every 200 ms, on a thread of its own so that batches
  // never wait for it (the connections that write never checkpoint, sqlite_db.h).
  void CheckpointLoop() {
    std::unique_lock lock(checkpoint_mu_);
    for (;;) {
      if (checkpoint_cv_.wait_for(lock, std::chrono::milliseconds(200), [this] { return stop_checkpoints_; })) {
        return;
      }
      if (!checkpointer_) {
        // In memory (--state memory): nothing outlives the process anyway; keep the newest
        // records only, so a long-running gateway does not grow without bound.
        std::lock_guard db_lock(mu_);
        ExecSql(db_, "DELETE FROM audit WHERE rowid <= (SELECT MAX(rowid) FROM audit) - 100000",
                "audit store", path_);
        continue;
      }
      int wal_frames = 0, copied = 0;
      sqlite3_wal_checkpoint_v2(checkpointer_, nullptr, SQLITE_CHECKPOINT_PASSIVE, &wal_frames, &copied);
      // Under steady writes a passive checkpoint never catches up with the end of the WAL, and
      // the WAL only starts over once it has: past ~8 MB, briefly hold writers back (RESTART)
      // so it can. Most frames are already copied by then, so the pause is short.
      if (wal_frames > 4000) {
        sqlite3_wal_checkpoint_v2(checkpointer_, nullptr, SQLITE_CHECKPOINT_RESTART, &wal_frames, &copied);
      }
      retention_->Tick(std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count());
    }
  }

  sqlite3* checkpointer_;  // the checkpoint thread's only
  std::unique_ptr<Retention> retention_;  // on checkpointer_; null in memory
  std::atomic<uint64_t> refused_{0};
  // Where each record still waiting for its outcome is (Complete). Guarded by mu_.
  std::unordered_map<std::string, int64_t> pending_rows_;

  std::mutex queue_mu_;
  std::condition_variable queue_cv_;    // wakes the writer
  std::condition_variable flushed_cv_;  // wakes Flush() callers
  std::vector<Job> jobs_;        // Guarded by queue_mu_, like everything down to writer_.
  std::vector<Update> updates_;
  bool stop_ = false;
  bool flush_requested_ = false;
  bool writing_ = false;
  bool idle_ = false;  // the writer waits for work (Submit wakes it)
  int inline_writes_ = 0;  // batches of one written by Submit's caller
  // Calls submitted as allowed ("pending") whose outcome has not come (Complete) — a hint for
  // writing inline, never for correctness: a call that ends without Complete (its session
  // gone before its record was written) keeps it above zero, which only means fewer inline
  // writes until the writer next finds nothing to do (WriterLoop resets it).
  int open_calls_ = 0;
  std::chrono::steady_clock::time_point last_submit_;
  // A call submitted this long after the one before is written on its caller's thread.
  static constexpr auto kQuiet = std::chrono::microseconds(250);
  std::thread writer_;

  std::mutex checkpoint_mu_;
  std::condition_variable checkpoint_cv_;
  bool stop_checkpoints_ = false;  // Guarded by checkpoint_mu_.
  std::thread checkpoints_;

  std::unique_ptr<LineMirror> mirror_;  // null without a JSON lines file
  std::mutex pending_mu_;
  std::unordered_map<std::string, Record> pending_lines_;  // Guarded by pending_mu_.
};

std::string PathOf(const std::string& spec) {
  return spec.starts_with("sqlite:") ? spec.substr(7) : std::string();
}

}  // namespace

Result<std::unique_ptr<AuditLog>> OpenAuditLog(const std::string& state_spec,
                                               const std::string& json_lines_path,
                                               const RetentionOptions& retention) {
  const std::string path = state_spec == "memory" ? ":memory:" : PathOf(state_spec);
  if (path.empty()) {
    return Fail(Error::InvalidArgument("--state \"" + state_spec + "\": expected sqlite:PATH or memory"));
  }
  if (!json_lines_path.empty()) {
    std::ofstream probe(json_lines_path, std::ios::app);
    if (!probe) return Fail(Error::Unavailable("cannot write the audit log " + json_lines_path));
  }
  // The shared connection never checkpoints (sqlite_db.h): the writer thread does, between
  // batches, from a connection of its own.
  auto conn = OpenSharedSqlite(path, "audit store", {kSchema, kIndex});
  if (!conn) return Fail(conn.error());
  sqlite3* checkpointer = nullptr;
  if (path != ":memory:") {
    auto c = OpenSqliteDatabase(path, "audit store", {});
    if (!c) return Fail(c.error());
    checkpointer = *c;
  }
  return std::unique_ptr<AuditLog>(
      std::make_unique<SqliteAuditLog>(std::move(*conn), checkpointer, json_lines_path, retention));
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

// The shadow, class and principal columns at `col`, `col + 1` and `col + 2` into `r`.
void ReadShadowAndClass(sqlite3_stmt* st, int col, Record& r) {
  if (sqlite3_column_type(st, col) != SQLITE_NULL) ReadShadowText(ColumnText(st, col), r);
  if (sqlite3_column_type(st, col + 1) != SQLITE_NULL) r.tool_class = ColumnText(st, col + 1);
  if (sqlite3_column_type(st, col + 2) != SQLITE_NULL) r.principal = ColumnText(st, col + 2);
}

// The columns ReadRow reads, in its order.
constexpr const char* kSelectRecords =
    "SELECT id, ts_ms, grant_name, session, server, tool, decision, rule, reason, arg_keys, "
    "args_digest, args, policy_version, outcome, latency_ms, shadow, tool_class, principal FROM audit";

// One row of kSelectRecords into `r`.
void ReadRow(sqlite3_stmt* st, Record& r) {
  r.id = ColumnText(st, 0);
  r.ts_ms = sqlite3_column_int64(st, 1);
  r.grant = ColumnText(st, 2);
  r.session = ColumnText(st, 3);
  r.server = ColumnText(st, 4);
  r.tool = ColumnText(st, 5);
  r.decision = ColumnText(st, 6);
  r.rule = ColumnText(st, 7);
  r.reason = ColumnText(st, 8);
  boost::system::error_code ec;
  json::value keys = json::parse(ColumnText(st, 9), ec);
  if (!ec && keys.is_array()) {
    for (const auto& k : keys.get_array()) {
      if (k.is_string()) r.arg_keys.emplace_back(k.get_string());
    }
  }
  r.args_digest = ColumnText(st, 10);
  if (sqlite3_column_type(st, 11) != SQLITE_NULL) {
    json::value args = json::parse(ColumnText(st, 11), ec);
    if (!ec) r.args = std::move(args);
  }
  r.policy_version = ColumnText(st, 12);
  r.outcome = ColumnText(st, 13);
  r.latency_ms = sqlite3_column_int64(st, 14);
  ReadShadowAndClass(st, 15, r);
}

// Opens the audit store of `state_spec` for one query.
Result<sqlite3*> OpenForQuery(const std::string& state_spec) {
  const std::string path = PathOf(state_spec);
  if (path.empty()) return Fail(Error::InvalidArgument("audit queries need --state sqlite:PATH"));
  return OpenSqliteDatabase(path, "audit store", {kSchema, kIndex});
}

}  // namespace

Result<std::vector<Record>> QueryAudit(const std::string& state_spec, const Query& q) {
  if (pg::IsPostgresUrl(state_spec)) return QueryShared(state_spec, q);
  auto db = OpenForQuery(state_spec);
  if (!db) return Fail(db.error());
  SqliteStmt st;
  sqlite3_prepare_v2(*db,
                     (std::string(kSelectRecords) +
                      kWhere + " ORDER BY ts_ms DESC, rowid DESC LIMIT ?7 OFFSET ?8")
                         .c_str(),
                     -1, &st.s, nullptr);
  BindWhere(st.s, q);
  sqlite3_bind_int(st.s, 7, q.limit);
  sqlite3_bind_int64(st.s, 8, q.offset);
  std::vector<Record> out;
  while (sqlite3_step(st.s) == SQLITE_ROW) {
    Record r;
    ReadRow(st.s, r);
    out.push_back(std::move(r));
  }
  sqlite3_close_v2(*db);
  return out;
}

Result<int64_t> ScanAudit(const std::string& state_spec, const Query& q,
                          const std::function<bool(Record&)>& each) {
  if (pg::IsPostgresUrl(state_spec)) return ScanShared(state_spec, q, each);
  auto db = OpenForQuery(state_spec);
  if (!db) return Fail(db.error());
  SqliteStmt st;
  sqlite3_prepare_v2(*db,
                     (std::string(kSelectRecords) +
                      kWhere + " ORDER BY ts_ms, rowid")
                         .c_str(),
                     -1, &st.s, nullptr);
  BindWhere(st.s, q);
  int64_t n = 0;
  Record r;
  int rc;
  while ((rc = sqlite3_step(st.s)) == SQLITE_ROW) {
    r = Record{};
    ReadRow(st.s, r);
    ++n;
    if (!each(r)) break;
  }
  Result<int64_t> out = n;
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
    out = Fail(Error::Unavailable(std::string("reading the audit store: ") + sqlite3_errmsg(*db)));
  }
  sqlite3_close_v2(*db);
  return out;
}

Result<int64_t> CountAudit(const std::string& state_spec, const Query& q) {
  if (pg::IsPostgresUrl(state_spec)) return CountShared(state_spec, q);
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
  if (pg::IsPostgresUrl(state_spec)) return HistogramShared(state_spec, q, bucket_ms);
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
