// Opening the state database (SQLite): every store (counters, audit, approvals, pins, grants)
// keeps its tables in one file, and within a process they share one connection to it.
#pragma once

#include <chrono>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <optional>
#include <unordered_map>

#include "common/result.h"

struct sqlite3;
struct sqlite3_stmt;

namespace tw {

// The SQLite file a state spec names: "sqlite:PATH" → PATH, "memory" → ":memory:" (a private
// in-memory database). Anything else is an error that names the spec.
Result<std::string> SqlitePathForSpec(const std::string& spec);

// How long a SQLite call waits for another process's lock on the state file before it fails
// (`state_timeout`; 5 s unless set). Process-wide; set it before serving.
void SetSqliteBusyTimeout(std::chrono::milliseconds timeout);
std::chrono::milliseconds SqliteBusyTimeout();

// While one is alive, SQLite calls on this thread never wait for a lock: a locked state file
// fails them at once (SQLITE_BUSY). Event loops run under one for their whole life, which is
// what "nothing on the loop waits on storage" rests on: a read never needs a lock in WAL mode,
// a write the loop makes itself is best effort or fails its request at once, and every write
// a call depends on (its record, its charges, its refunds, its approval) is made by the audit
// log's writer thread, which may wait.
class SqliteNoWait {
 public:
  SqliteNoWait();
  ~SqliteNoWait();
  SqliteNoWait(const SqliteNoWait&) = delete;
  SqliteNoWait& operator=(const SqliteNoWait&) = delete;

 private:
  bool previous_;
};
// False on a thread inside a SqliteNoWait.
bool SqliteWaitsOnThisThread();

// Opens (creating the file and its directory if needed) `path` in WAL mode (synchronous
// NORMAL, no automatic checkpoints — the audit log's writer thread does them) with a busy wait
// (SqliteBusyTimeout), and runs `setup` (CREATE TABLE …). Start-up races other processes
// opening the same file (switching to WAL takes a brief exclusive lock): a locked database is
// retried for up to five seconds. `what` names the store in messages. The caller owns the
// handle (sqlite3_close_v2).
Result<sqlite3*> OpenSqliteDatabase(const std::string& path, const std::string& what,
                                    std::initializer_list<const char*> setup);

// One connection to a state file, shared by every store of this process that opens the same
// file (counters, audit trail, approvals, pins, grants). Sharing is what lets the audit log's
// writer charge a call's counters inside the transaction that writes its record (AuditLog::
// Submit, whose step runs CounterStore::TryCharge): one commit for both, for every call of a batch.
// `mu` guards `db` and every statement prepared on it; hold it for each use. It is recursive
// because the writer holds it for a whole batch while the charges it runs take it again; no
// other thread ever sees a transaction open on the connection. The last owner closes it.
struct SqliteConnection {
  sqlite3* db = nullptr;
  std::recursive_mutex mu;
  std::string path;
  SqliteConnection() = default;
  SqliteConnection(const SqliteConnection&) = delete;
  SqliteConnection& operator=(const SqliteConnection&) = delete;
  ~SqliteConnection();
};

// The shared connection to `path` (opened as OpenSqliteDatabase does on first use; one per
// absolute path per process), after running `setup` on it. ":memory:" is never shared: each
// call opens a private in-memory database.
Result<std::shared_ptr<SqliteConnection>> OpenSharedSqlite(const std::string& path,
                                                           const std::string& what,
                                                           std::initializer_list<const char*> setup);

// A prepared statement, finalized when it goes out of scope.
struct SqliteStmt {
  sqlite3_stmt* s = nullptr;
  SqliteStmt() = default;
  SqliteStmt(const SqliteStmt&) = delete;
  SqliteStmt& operator=(const SqliteStmt&) = delete;
  ~SqliteStmt();
};

// Prepared statements kept for the life of a connection, keyed by the address of their SQL
// text (pass string literals): preparing costs more than running most of ours. Not
// thread-safe — guard it with the connection's mutex. Finalizes them on destruction.
// A cached statement in use; reset when it goes out of scope, so that no read stays open.
struct ScopedStmt {
  sqlite3_stmt* s = nullptr;
  explicit ScopedStmt(sqlite3_stmt* stmt) : s(stmt) {}
  ScopedStmt(const ScopedStmt&) = delete;
  ScopedStmt& operator=(const ScopedStmt&) = delete;
  ~ScopedStmt();
  operator sqlite3_stmt*() const { return s; }  // NOLINT: used where the C API wants one
};

class StatementCache {
 public:
  StatementCache() = default;
  StatementCache(const StatementCache&) = delete;
  StatementCache& operator=(const StatementCache&) = delete;
  ~StatementCache();
  // The statement for `sql`, reset and with no bindings; prepared on first use (null if it
  // cannot be: sqlite3_errmsg says why).
  ScopedStmt Get(sqlite3* db, const char* sql);

 private:
  std::unordered_map<const char*, sqlite3_stmt*> stmts_;
};

// Runs a statement without results (BEGIN, COMMIT, DELETE …) through `cache`, prepared once;
// the error names `what` and `path`. Guard it like the cache.
Result<bool> StepCached(StatementCache& cache, sqlite3* db, const char* sql, const std::string& what,
                        const std::string& path);

// A write transaction that nests. Outside a transaction: BEGIN IMMEDIATE … COMMIT (the write
// lock up front, so a read-check-write inside is atomic for every process on the file). Inside
// one (the audit writer's batch, see SqliteConnection): a savepoint, whose changes commit with the
// enclosing transaction. Rolled back unless Commit() succeeded. Requires the connection's
// mutex for its whole life; statements come from `cache`.
class WriteTxn {
 public:
  WriteTxn(StatementCache& cache, sqlite3* db, std::string what, std::string path);
  WriteTxn(const WriteTxn&) = delete;
  WriteTxn& operator=(const WriteTxn&) = delete;
  ~WriteTxn();
  Result<bool> Begin();
  Result<bool> Commit();
  // True when Begin() found a transaction open (this one is a savepoint inside it).
  bool nested() const { return nested_; }

 private:
  StatementCache& cache_;
  sqlite3* db_;
  std::string what_, path_;
  bool begun_ = false, nested_ = false, done_ = false;
};

// BEGIN IMMEDIATE on a shared connection whose mutex `lock` holds: waits up to
// SqliteBusyTimeout for another process's write lock — with `lock` released between tries, so
// the connection's other users (an event loop's reads) are never held behind that wait — and
// returns with `lock` held and the transaction open. On a thread that does not wait
// (SqliteNoWait), one try. The error says the file is locked and for how long it waited.
Result<bool> BeginImmediateShared(std::unique_lock<std::recursive_mutex>& lock,
                                  StatementCache& cache, sqlite3* db, const std::string& what,
                                  const std::string& path);
// True when `error` is BeginImmediateShared's "locked" failure (nothing was done).
bool IsLockedFailure(const Error& error);

// What every store on the shared state file keeps: its connection, the connection's mutex and
// handle, its own prepared statements, and errors that name the store and the file. A store
// derives from it and holds `mu_` for every use of `db_` and `stmts_`.
class SqliteStoreBase {
 protected:
  // `what` names the store in messages ("state store", "approval store", …).
  SqliteStoreBase(std::shared_ptr<SqliteConnection> conn, std::string what);
  // Unavailable: "<what> <path>: [<doing>: ]<SQLite's message>". Requires mu_.
  Error Err(std::string_view doing = {}) const;
  // Runs one statement without results (BEGIN, COMMIT, …) through stmts_. Requires mu_.
  Result<bool> Exec(const char* sql);

  std::shared_ptr<SqliteConnection> conn_;  // shared with the other stores on the file
  std::recursive_mutex& mu_;                // the connection's
  sqlite3* const db_;                       // Guarded by mu_.
  const std::string path_;
  const std::string what_;
  StatementCache stmts_;  // Guarded by mu_.
};

// Column `col` of the current row as text ("" for NULL).
std::string ColumnText(sqlite3_stmt* s, int col);

// The first column of the first row `sql` gives, with `params` bound as ?1, ?2… (text);
// nullopt when there is no row or the statement fails. For small lookups outside the stores.
std::optional<std::string> QueryText(sqlite3* db, const char* sql,
                                     std::initializer_list<std::string_view> params = {});

// Writes a consistent, compacted copy of the database open on `db` to `target` (VACUUM INTO:
// one read transaction, so others may keep writing; `target` must not exist), with the
// original file's permissions.
Result<bool> CopySqliteDatabase(sqlite3* db, const std::string& target);

// Runs one statement; the error names `what` and `path`.
Result<bool> ExecSql(sqlite3* db, const char* sql, const std::string& what, const std::string& path);

}  // namespace tw
