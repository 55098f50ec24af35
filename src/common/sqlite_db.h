// Opening the state database (SQLite): shared by the counter and pin stores, which keep their
// tables in one file.
#pragma once

#include <initializer_list>
#include <string>

#include "common/result.h"

struct sqlite3;
struct sqlite3_stmt;

namespace tw {

// The SQLite file a state spec names: "sqlite:PATH" → PATH, "memory" → ":memory:" (a private
// in-memory database). Anything else is an error that names the spec.
Result<std::string> SqlitePathForSpec(const std::string& spec);

// Opens (creating the file and its directory if needed) `path` in WAL mode with a busy
// timeout, and runs `setup` (CREATE TABLE …). Start-up races other processes opening the same
// file (switching to WAL takes a brief exclusive lock): a locked database is retried for up to
// five seconds. `what` names the store in messages. The caller owns the handle
// (sqlite3_close_v2).
Result<sqlite3*> OpenSqliteDatabase(const std::string& path, const std::string& what,
                                    std::initializer_list<const char*> setup);

// A prepared statement, finalized when it goes out of scope.
struct SqliteStmt {
  sqlite3_stmt* s = nullptr;
  SqliteStmt() = default;
  SqliteStmt(const SqliteStmt&) = delete;
  SqliteStmt& operator=(const SqliteStmt&) = delete;
  ~SqliteStmt();
};

// Column `col` of the current row as text ("" for NULL).
std::string ColumnText(sqlite3_stmt* s, int col);

// Runs one statement; the error names `what` and `path`.
Result<bool> ExecSql(sqlite3* db, const char* sql, const std::string& what, const std::string& path);

}  // namespace tw
