// The state file's schema version and the migrations between versions.
//
// A state file (SQLite) records the layout it was written with in `PRAGMA user_version`.
// Every connection checks it when it opens the file (OpenSqliteDatabase):
//   - a new, empty file is stamped with kStateSchemaVersion;
//   - an older file is copied to PATH.schema-vN.bak (N: its version; once) and brought up to
//     date, one migration after another, in one write transaction, so that two processes
//     opening it at once migrate it once;
//   - a newer file (written by a newer toolwarden) is refused with a message that names both
//     versions, and left untouched: an older binary never writes a layout it does not know.
// A file from before versions were recorded reads as version 0.
#pragma once

#include <string>

#include "common/result.h"

struct sqlite3;

namespace tw {

// The layout this binary writes. Raise it with a migration in state_schema.cc.
inline constexpr int kStateSchemaVersion = 3;

// The file's recorded version (0: none recorded).
Result<int> ReadStateSchemaVersion(sqlite3* db);

// Checks and, if older, upgrades the file open on `db` (see above). `what` and `path` name it
// in messages.
Result<bool> UpgradeStateSchema(sqlite3* db, const std::string& what, const std::string& path);

// The refusal for a file whose version is newer than this binary's (also used by `state
// restore` before it copies anything).
Error NewerSchemaError(const std::string& path, int version);

}  // namespace tw
