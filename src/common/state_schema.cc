#include "common/state_schema.h"

#include <sqlite3.h>

#include <filesystem>

#include "common/sqlite_db.h"

namespace tw {
namespace {

bool HasTable(sqlite3* db, const char* table) {
  return QueryText(db, "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?1", {table})
      .has_value();
}

bool HasColumn(sqlite3* db, const char* table, const char* column) {
  return QueryText(db, "SELECT 1 FROM pragma_table_info(?1) WHERE name=?2", {table, column})
      .has_value();
}

// One step up. A migration touches only tables that exist: the stores create the ones that
// do not, in the current layout, after the upgrade.
struct Migration {
  int to;
  Result<bool> (*apply)(sqlite3* db, const std::string& what, const std::string& path);
};

// 0 → 1: files from before versions were recorded. Approvals gained their owner (the gateway
// that holds the call) after the table's first release.
Result<bool> AddApprovalOwner(sqlite3* db, const std::string& what, const std::string& path) {
  if (!HasTable(db, "approvals") || HasColumn(db, "approvals", "owner")) return true;
  return ExecSql(db, "ALTER TABLE approvals ADD COLUMN owner TEXT NOT NULL DEFAULT ''", what, path);
}

// 1 → 2: audit records gained the would-be decision of a shadow policy and the tool's class.
Result<bool> AddAuditShadowAndClass(sqlite3* db, const std::string& what, const std::string& path) {
  if (!HasTable(db, "audit")) return true;
  for (const char* column : {"shadow", "tool_class"}) {
    if (HasColumn(db, "audit", column)) continue;
    const std::string sql = std::string("ALTER TABLE audit ADD COLUMN ") + column + " TEXT";
    if (auto r = ExecSql(db, sql.c_str(), what, path); !r) return r;
  }
  return true;
}

// 2 → 3: grants gained the person they act for and the OAuth client they were issued to;
// audit records the principal behind each call.
Result<bool> AddPrincipals(sqlite3* db, const std::string& what, const std::string& path) {
  const std::pair<const char*, const char*> kColumns[] = {
      {"grants", "principal TEXT NOT NULL DEFAULT ''"},
      {"grants", "client TEXT NOT NULL DEFAULT ''"},
      {"audit", "principal TEXT"}};
  for (const auto& [table, column] : kColumns) {
    const std::string name(column, std::string_view(column).find(' '));
    if (!HasTable(db, table) || HasColumn(db, table, name.c_str())) continue;
    const std::string sql = std::string("ALTER TABLE ") + table + " ADD COLUMN " + column;
    if (auto r = ExecSql(db, sql.c_str(), what, path); !r) return r;
  }
  return true;
}

constexpr Migration kMigrations[] = {
    {1, AddApprovalOwner},
    {2, AddAuditShadowAndClass},
    {3, AddPrincipals},
};
static_assert(std::size(kMigrations) == kStateSchemaVersion, "one migration per version");

bool IsEmpty(sqlite3* db) { return !QueryText(db, "SELECT 1 FROM sqlite_master LIMIT 1"); }

Result<bool> SetVersion(sqlite3* db, int version, const std::string& what,
                        const std::string& path) {
  const std::string sql = "PRAGMA user_version=" + std::to_string(version);
  return ExecSql(db, sql.c_str(), what, path);
}

}  // namespace

Error NewerSchemaError(const std::string& path, int version) {
  return Error::InvalidArgument(
      path + " was written by a newer toolwarden (state schema version " + std::to_string(version) +
      "; this toolwarden knows up to " + std::to_string(kStateSchemaVersion) +
      "). Upgrade toolwarden, or restore a backup this version made (toolwarden state restore); "
      "the file was not changed");
}

Result<int> ReadStateSchemaVersion(sqlite3* db) {
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, nullptr) != SQLITE_OK) {
    return Fail(Error::Unavailable(std::string("PRAGMA user_version: ") + sqlite3_errmsg(db)));
  }
  const int rc = sqlite3_step(s);
  const int version = rc == SQLITE_ROW ? sqlite3_column_int(s, 0) : 0;
  sqlite3_finalize(s);
  if (rc != SQLITE_ROW) {
    return Fail(Error::Unavailable(std::string("PRAGMA user_version: ") + sqlite3_errmsg(db)));
  }
  return version;
}

Result<bool> UpgradeStateSchema(sqlite3* db, const std::string& what, const std::string& path) {
  auto version = ReadStateSchemaVersion(db);
  if (!version) return Fail(version.error());
  if (*version == kStateSchemaVersion) return true;
  if (*version > kStateSchemaVersion) return Fail(NewerSchemaError(path, *version));
  const bool in_memory = path == ":memory:";
  // The copy is made outside the transaction (VACUUM INTO cannot run inside one); a file two
  // processes open at once may be copied by both, to the same name, with the same content.
  if (!in_memory && !IsEmpty(db)) {
    const std::string backup = path + ".schema-v" + std::to_string(*version) + ".bak";
    std::error_code ec;
    if (!std::filesystem::exists(backup, ec)) {
      if (auto copied = CopySqliteDatabase(db, backup); !copied) {
        return Fail(Error::Unavailable(what + " " + path + ": before upgrading its schema: " +
                                       copied.error().message()));
      }
    }
  }
  if (auto r = ExecSql(db, "BEGIN IMMEDIATE", what, path); !r) return r;
  auto fail = [&](const Error& e) -> Result<bool> {
    (void)ExecSql(db, "ROLLBACK", what, path);
    return Fail(Error::Unavailable(what + " " + path + ": upgrading its schema: " + e.message()));
  };
  version = ReadStateSchemaVersion(db);  // another process may have upgraded it meanwhile
  if (!version) return fail(version.error());
  if (*version > kStateSchemaVersion) {
    (void)ExecSql(db, "ROLLBACK", what, path);
    return Fail(NewerSchemaError(path, *version));
  }
  for (const Migration& m : kMigrations) {
    if (m.to <= *version) continue;
    if (auto r = m.apply(db, what, path); !r) return fail(r.error());
  }
  if (auto r = SetVersion(db, kStateSchemaVersion, what, path); !r) return fail(r.error());
  return ExecSql(db, "COMMIT", what, path);
}

}  // namespace tw
