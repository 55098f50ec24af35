#include "common/sqlite_db.h"

#include "common/state_schema.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include <fmt/format.h>
#include <sqlite3.h>

namespace tw {

SqliteStmt::~SqliteStmt() { sqlite3_finalize(s); }

std::string ColumnText(sqlite3_stmt* s, int col) {
  const unsigned char* t = sqlite3_column_text(s, col);
  return t ? reinterpret_cast<const char*>(t) : "";
}

Result<bool> ExecSql(sqlite3* db, const char* sql, const std::string& what, const std::string& path) {
  char* msg = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &msg) != SQLITE_OK) {
    std::string m = msg ? msg : sqlite3_errmsg(db);
    sqlite3_free(msg);
    return Fail(Error::Unavailable(what + " " + path + ": " + m));
  }
  return true;
}

namespace {

std::atomic<int64_t> g_busy_timeout_ms{5000};
thread_local bool t_no_wait = false;

// The step of the `attempt`th wait for a lock, and how long the attempts before it waited:
// 20, 40, 80, 160, 320, 640 µs, then 1 ms each. SQLite's own busy timeout sleeps in steps of
// 1, 2, 5, 10… ms, so a lock held for 50 µs by another process's writer would cost a call
// milliseconds.
int64_t StepUs(int attempt) { return attempt < 6 ? int64_t{20} << attempt : 1000; }
int64_t WaitedUs(int attempt) {
  return attempt <= 6 ? 20 * ((int64_t{1} << attempt) - 1) : 1260 + int64_t{attempt - 6} * 1000;
}

// SQLite's busy handler: waits for another connection's lock up to the busy timeout, never on
// a thread inside a SqliteNoWait.
int BusyWait(void*, int attempt) {
  if (t_no_wait) return 0;  // SQLITE_BUSY at once
  if (WaitedUs(attempt) >= g_busy_timeout_ms.load(std::memory_order_relaxed) * 1000) return 0;
  std::this_thread::sleep_for(std::chrono::microseconds(StepUs(attempt)));
  return 1;
}

constexpr const char* kLockedMarker = "the state file is locked by another process";

// Runs start-up statements. Start-up races other processes opening the same file (switching
// to WAL takes a brief exclusive lock): a locked database is retried for up to five seconds.
Result<bool> RunSetup(sqlite3* db, std::initializer_list<const char*> statements,
                      const std::string& what, const std::string& path) {
  for (const char* sql : statements) {
    Result<bool> r = ExecSql(db, sql, what, path);
    for (int i = 0; !r && r.error().message().find("locked") != std::string::npos && i < 50; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      r = ExecSql(db, sql, what, path);
    }
    if (!r) return r;
  }
  return true;
}

}  // namespace

void SetSqliteBusyTimeout(std::chrono::milliseconds timeout) {
  g_busy_timeout_ms.store(std::max<int64_t>(0, timeout.count()), std::memory_order_relaxed);
}

std::chrono::milliseconds SqliteBusyTimeout() {
  return std::chrono::milliseconds(g_busy_timeout_ms.load(std::memory_order_relaxed));
}

SqliteNoWait::SqliteNoWait() : previous_(t_no_wait) { t_no_wait = true; }
SqliteNoWait::~SqliteNoWait() { t_no_wait = previous_; }
bool SqliteWaitsOnThisThread() { return !t_no_wait; }

Result<bool> BeginImmediateShared(std::unique_lock<std::recursive_mutex>& lock,
                                  StatementCache& cache, sqlite3* db, const std::string& what,
                                  const std::string& path) {
  const bool waits = SqliteWaitsOnThisThread();
  const int64_t limit_us = g_busy_timeout_ms.load(std::memory_order_relaxed) * 1000;
  SqliteNoWait one_try;  // SQLite's own handler would wait with `lock` held
  for (int attempt = 0;; ++attempt) {
    int rc;
    {
      ScopedStmt st = cache.Get(db, "BEGIN IMMEDIATE");
      rc = st ? sqlite3_step(st) : SQLITE_ERROR;
    }
    if (rc == SQLITE_DONE) return true;
    if (rc != SQLITE_BUSY) {
      return Fail(
          Error::Unavailable(what + " " + path + ": BEGIN IMMEDIATE: " + sqlite3_errmsg(db)));
    }
    if (!waits || WaitedUs(attempt) >= limit_us) {
      return Fail(Error::Timeout(fmt::format("{} {}: {} (waited {} ms, state_timeout)", what, path,
                                             kLockedMarker, waits ? limit_us / 1000 : 0)));
    }
    lock.unlock();
    std::this_thread::sleep_for(std::chrono::microseconds(StepUs(attempt)));
    lock.lock();
  }
}

bool IsLockedFailure(const Error& error) { return error.code() == ErrorCode::kTimeout; }

Result<sqlite3*> OpenSqliteDatabase(const std::string& path, const std::string& what,
                                    std::initializer_list<const char*> setup) {
  std::error_code ec;
  if (const auto parent = std::filesystem::path(path).parent_path(); !parent.empty()) {
    std::filesystem::create_directories(parent, ec);
  }
  // Before SQLite initializes (its first open): no global memory statistics. With them on (the
  // Debian build's default) every sqlite3_malloc and sqlite3_free takes a process-wide mutex —
  // ~50 lock/unlock pairs per audited call, for figures nothing here reads.
  static const bool configured = [] {
    (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);  // SQLITE_MISUSE once initialized: harmless
    return true;
  }();
  (void)configured;
  sqlite3* db = nullptr;
  // NOMUTEX: every store guards its connection with its own mutex; SQLite need not lock again.
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr) !=
      SQLITE_OK) {
    std::string m = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close_v2(db);
    return Fail(Error::Unavailable("cannot open " + what + " " + path + ": " + m));
  }
  sqlite3_busy_handler(db, BusyWait, nullptr);
  // A file from a newer toolwarden is refused before anything here writes to it (even a
  // pragma that changes nothing bumps the file's change counter).
  if (auto version = ReadStateSchemaVersion(db); version && *version > kStateSchemaVersion) {
    sqlite3_close_v2(db);
    return Fail(NewerSchemaError(path, *version));
  }
  // No automatic checkpoints: a checkpoint fsyncs, and these connections commit on a gateway's
  // event-loop thread. The audit log's writer thread checkpoints the file from a connection of
  // its own, and SQLite checkpoints when the last connection closes.
  // A new state file gets 2 KiB pages (a file that exists keeps its own): every commit appends
  // each page it changed to the WAL, and a call's audit row, its indexes and its counters are
  // a few bytes each — half-size pages halve the bytes written per commit. +5 % realistic
  // throughput, −5 % CPU per call, 5-8 % slower audit scans (docs/benchmarks.md, "SQLite page
  // size"; bench/page-size.sh, which sets TOOLWARDEN_SQLITE_PAGE_SIZE to compare).
  static const std::string page_size = [] {
    const char* v = std::getenv("TOOLWARDEN_SQLITE_PAGE_SIZE");
    const int n = v ? std::atoi(v) : 0;
    const bool ok = n >= 512 && n <= 65536 && (n & (n - 1)) == 0;
    return std::string("PRAGMA page_size=") + (ok ? std::to_string(n) : std::string("2048"));
  }();
  if (auto r = ExecSql(db, page_size.c_str(), what, path); !r) {
    sqlite3_close_v2(db);
    return Fail(r.error());
  }
  // A new file gives free pages back on request (audit.max_size: audit/retention.h); a file
  // that exists keeps its own setting (changing it takes a VACUUM).
  std::initializer_list<const char*> pragmas = {"PRAGMA auto_vacuum=INCREMENTAL",
                                                "PRAGMA journal_mode=WAL",
                                                "PRAGMA synchronous=NORMAL",
                                                "PRAGMA wal_autocheckpoint=0"};
  if (auto r = RunSetup(db, pragmas, what, path); !r) {
    sqlite3_close_v2(db);
    return Fail(r.error());
  }
  // The layout's version is checked (and an older file upgraded) before any store creates or
  // reads a table: a newer file is refused untouched (common/state_schema.h).
  if (auto r = UpgradeStateSchema(db, what, path); !r) {
    sqlite3_close_v2(db);
    return Fail(r.error());
  }
  if (auto r = RunSetup(db, setup, what, path); !r) {
    sqlite3_close_v2(db);
    return Fail(r.error());
  }
  return db;
}

Result<std::string> SqlitePathForSpec(const std::string& spec) {
  if (spec == "memory") return std::string(":memory:");
  if (spec.starts_with("sqlite:") && spec.size() > 7) return spec.substr(7);
  return Fail(Error::InvalidArgument("--state \"" + spec + "\": expected sqlite:PATH, redis://HOST:PORT/DB or memory"));
}

StatementCache::~StatementCache() {
  for (auto& [sql, stmt] : stmts_) sqlite3_finalize(stmt);
}

ScopedStmt::~ScopedStmt() {
  if (s) {
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
  }
}

ScopedStmt StatementCache::Get(sqlite3* db, const char* sql) {
  auto it = stmts_.find(sql);
  if (it != stmts_.end()) return ScopedStmt(it->second);
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr) != SQLITE_OK) {
    sqlite3_finalize(stmt);
    return ScopedStmt(nullptr);
  }
  stmts_.emplace(sql, stmt);
  return ScopedStmt(stmt);
}

Result<bool> StepCached(StatementCache& cache, sqlite3* db, const char* sql, const std::string& what,
                        const std::string& path) {
  ScopedStmt st = cache.Get(db, sql);
  if (!st || sqlite3_step(st) != SQLITE_DONE) {
    return Fail(Error::Unavailable(what + " " + path + ": " + sql + ": " + sqlite3_errmsg(db)));
  }
  return true;
}

SqliteConnection::~SqliteConnection() {
  if (db) sqlite3_close_v2(db);
}

Result<std::shared_ptr<SqliteConnection>> OpenSharedSqlite(const std::string& path,
                                                           const std::string& what,
                                                           std::initializer_list<const char*> setup) {
  static std::mutex registry_mu;
  static std::unordered_map<std::string, std::weak_ptr<SqliteConnection>> registry;
  std::shared_ptr<SqliteConnection> conn;
  {
    std::lock_guard lock(registry_mu);
    std::string key;
    if (path != ":memory:") {
      std::error_code ec;
      key = std::filesystem::weakly_canonical(std::filesystem::absolute(path, ec), ec).string();
      if (ec || key.empty()) key = path;
      if (auto it = registry.find(key); it != registry.end()) conn = it->second.lock();
    }
    if (!conn) {
      auto db = OpenSqliteDatabase(path, what, {});
      if (!db) return Fail(db.error());
      conn = std::make_shared<SqliteConnection>();
      conn->db = *db;
      conn->path = path;
      if (!key.empty()) registry[key] = conn;
    }
  }
  std::lock_guard lock(conn->mu);
  if (auto r = RunSetup(conn->db, setup, what, path); !r) return Fail(r.error());
  return conn;
}

WriteTxn::WriteTxn(StatementCache& cache, sqlite3* db, std::string what, std::string path)
    : cache_(cache), db_(db), what_(std::move(what)), path_(std::move(path)) {}

Result<bool> WriteTxn::Begin() {
  nested_ = sqlite3_get_autocommit(db_) == 0;
  auto r = StepCached(cache_, db_, nested_ ? "SAVEPOINT tw_write" : "BEGIN IMMEDIATE", what_, path_);
  begun_ = r.has_value();
  return r;
}

Result<bool> WriteTxn::Commit() {
  auto r = StepCached(cache_, db_, nested_ ? "RELEASE tw_write" : "COMMIT", what_, path_);
  done_ = r.has_value();
  return r;
}

WriteTxn::~WriteTxn() {
  if (!begun_ || done_) return;
  if (nested_) {
    (void)StepCached(cache_, db_, "ROLLBACK TO tw_write", what_, path_);
    (void)StepCached(cache_, db_, "RELEASE tw_write", what_, path_);
  } else {
    (void)StepCached(cache_, db_, "ROLLBACK", what_, path_);
  }
}

SqliteStoreBase::SqliteStoreBase(std::shared_ptr<SqliteConnection> conn, std::string what)
    : conn_(std::move(conn)), mu_(conn_->mu), db_(conn_->db), path_(conn_->path), what_(std::move(what)) {}

Error SqliteStoreBase::Err(std::string_view doing) const {
  return Error::Unavailable(what_ + " " + path_ + ": " +
                            (doing.empty() ? std::string() : std::string(doing) + ": ") +
                            sqlite3_errmsg(db_));
}

Result<bool> SqliteStoreBase::Exec(const char* sql) { return StepCached(stmts_, db_, sql, what_, path_); }

std::optional<std::string> QueryText(sqlite3* db, const char* sql,
                                     std::initializer_list<std::string_view> params) {
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, sql, -1, &st, nullptr) != SQLITE_OK) return std::nullopt;
  int i = 1;
  for (std::string_view p : params) {
    sqlite3_bind_text(st, i++, p.data(), static_cast<int>(p.size()), SQLITE_TRANSIENT);
  }
  std::optional<std::string> out;
  if (sqlite3_step(st) == SQLITE_ROW) out = ColumnText(st, 0);
  sqlite3_finalize(st);
  return out;
}

Result<bool> CopySqliteDatabase(sqlite3* db, const std::string& target) {
  sqlite3_stmt* st = nullptr;
  int rc = sqlite3_prepare_v2(db, "VACUUM INTO ?1", -1, &st, nullptr);
  if (rc == SQLITE_OK) {
    sqlite3_bind_text(st, 1, target.c_str(), -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(st);
  }
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) {
    return Fail(Error::Unavailable("writing " + target + ": " + sqlite3_errmsg(db)));
  }
  // As private as the original (grant hashes, the audit trail): its permissions, not the umask's.
  std::error_code ec;
  const char* source = sqlite3_db_filename(db, "main");
  if (source != nullptr && *source != '\0') {
    const auto perms = std::filesystem::status(source, ec).permissions();
    if (!ec) std::filesystem::permissions(target, perms, ec);
  }
  if (ec) return Fail(Error::Unavailable("setting the permissions of " + target + ": " + ec.message()));
  return true;
}

}  // namespace tw
