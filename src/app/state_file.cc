#include "app/state_file.h"

#include <sqlite3.h>

#include <boost/json.hpp>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <memory>
#include <vector>

#include "app/cli_common.h"
#include "common/clock.h"
#include "common/random.h"
#include "common/sqlite_db.h"
#include "common/state_schema.h"

namespace tw::app {
namespace {

namespace fs = std::filesystem;

// The tables a toolwarden state file may hold; a file with none of them is not one.
constexpr const char* kStateTables[] = {"counters", "audit",        "approvals",    "pins",
                                        "grants",   "admin_tokens", "audit_shipped"};

struct Db {
  sqlite3* db = nullptr;
  ~Db() { sqlite3_close_v2(db); }
};

Result<std::unique_ptr<Db>> OpenRaw(const std::string& path, int flags) {
  auto d = std::make_unique<Db>();
  if (sqlite3_open_v2(path.c_str(), &d->db, flags, nullptr) != SQLITE_OK) {
    return Fail(Error::Unavailable("cannot open " + path + ": " +
                                   (d->db ? sqlite3_errmsg(d->db) : "out of memory")));
  }
  return d;
}

std::string One(sqlite3* db, const std::string& sql) {
  return QueryText(db, sql.c_str()).value_or(std::string());
}

// Each toolwarden table the file holds, with its row count.
std::vector<std::pair<std::string, int64_t>> Tables(sqlite3* db) {
  std::vector<std::pair<std::string, int64_t>> out;
  for (const char* t : kStateTables) {
    if (!QueryText(db, "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?1", {t})) continue;
    out.emplace_back(t, std::atoll(One(db, std::string("SELECT count(*) FROM ") + t).c_str()));
  }
  return out;
}

int Problem(const std::string& message, int code = kExitInvalid) {
  std::cerr << "toolwarden state: " << message << "\n";
  return code;
}

// The SQLite path of a resolved state spec, or why the command does not apply to it.
Result<std::string> FilePath(const std::string& spec) {
  if (spec.starts_with("redis://") || spec.starts_with("rediss://") ||
      spec.starts_with("redis+sentinel://")) {
    return Fail(Error::InvalidArgument(
        "the state is on Redis (" + spec.substr(0, spec.find(':')) +
        "): back it up with Redis's own tools (BGSAVE, a replica); these commands work on a "
        "SQLite state file"));
  }
  if (spec == "memory") {
    return Fail(Error::InvalidArgument("the state is in memory: there is no file to back up"));
  }
  return SqlitePathForSpec(spec);
}

int64_t FileBytes(const std::string& path) {
  std::error_code ec;
  int64_t n = 0;
  for (const char* suffix : {"", "-wal"}) {
    const auto size = fs::file_size(path + suffix, ec);
    if (!ec) n += static_cast<int64_t>(size);
  }
  return n;
}

int Info(const std::string& path, bool as_json) {
  if (!fs::exists(path)) return Problem("no state file at " + path);
  auto d = OpenRaw(path, SQLITE_OPEN_READONLY);
  if (!d) return Problem(d.error().message(), kExitUnavailable);
  auto version = ReadStateSchemaVersion((*d)->db);
  if (!version) return Problem(path + ": " + version.error().message(), kExitUnavailable);
  const auto tables = Tables((*d)->db);
  const int64_t bytes = FileBytes(path);
  if (as_json) {
    boost::json::object rows;
    for (const auto& [name, n] : tables) rows[name] = n;
    std::cout << boost::json::serialize(
                     boost::json::object{{"path", path},
                                         {"schema_version", *version},
                                         {"supported_schema_version", kStateSchemaVersion},
                                         {"bytes", bytes},
                                         {"rows", std::move(rows)}})
              << "\n";
    return kExitOk;
  }
  std::cout << "state file       " << path << "\n"
            << "schema version   " << *version
            << (*version == kStateSchemaVersion ? ""
                : *version < kStateSchemaVersion
                    ? " (older: upgraded when a gateway opens it)"
                    : " (newer than this toolwarden's " + std::to_string(kStateSchemaVersion) + ")")
            << "\n"
            << "size             " << bytes << " bytes\n";
  std::vector<std::vector<std::string>> rows{{"TABLE", "ROWS"}};
  for (const auto& [name, n] : tables) rows.push_back({name, std::to_string(n)});
  PrintTable(std::cout, rows);
  return kExitOk;
}

int Backup(const std::string& path, const StateFileOptions& o) {
  if (!fs::exists(path)) return Problem("no state file at " + path);
  const std::string target = fs::absolute(o.file).string();
  if (fs::exists(target) && !o.force) {
    return Problem(o.file + " exists: choose another name, or add --force to replace it");
  }
  if (fs::absolute(path) == target) return Problem("the backup cannot be the state file itself");
  auto d = OpenRaw(path, SQLITE_OPEN_READONLY);
  if (!d) return Problem(d.error().message(), kExitUnavailable);
  sqlite3_busy_timeout((*d)->db, 5000);
  const std::string tmp = target + ".tmp-" + RandomHex(4);
  if (auto r = CopySqliteDatabase((*d)->db, tmp); !r) {
    fs::remove(tmp);
    return Problem(r.error().message(), kExitUnavailable);
  }
  std::error_code ec;
  fs::rename(tmp, target, ec);
  if (ec) {
    fs::remove(tmp);
    return Problem("writing " + o.file + ": " + ec.message(), kExitUnavailable);
  }
  auto copy = OpenRaw(target, SQLITE_OPEN_READONLY);
  int64_t rows = 0;
  const auto tables = copy ? Tables((*copy)->db) : decltype(Tables(nullptr)){};
  for (const auto& t : tables) rows += t.second;
  std::cout << "backed up " << path << " to " << o.file << " (schema version "
            << One((*d)->db, "PRAGMA user_version") << ", " << rows << " rows in " << tables.size()
            << " tables, " << FileBytes(target) << " bytes)\n";
  return kExitOk;
}

// Checks that `file` is a backup this binary can restore: an intact SQLite file with
// toolwarden's tables and a schema it knows.
Result<std::unique_ptr<Db>> OpenBackup(const std::string& file) {
  auto src = OpenRaw(file, SQLITE_OPEN_READONLY);
  if (!src) return Fail(src.error());
  sqlite3* db = (*src)->db;
  const std::string check = One(db, "PRAGMA quick_check");
  if (check != "ok") {
    return Fail(Error::InvalidArgument(file + " is not an intact SQLite file" +
                                       (check.empty() ? "" : " (" + check + ")")));
  }
  if (Tables(db).empty()) {
    return Fail(Error::InvalidArgument(file + " holds none of toolwarden's tables: not a state "
                                              "backup"));
  }
  auto version = ReadStateSchemaVersion(db);
  if (!version) return Fail(version.error());
  if (*version > kStateSchemaVersion) return Fail(NewerSchemaError(file, *version));
  return src;
}

std::string Stamp() {
  std::string t = FormatTime(SystemClock().NowMs());  // 2026-12-07T12:00:00Z
  for (char& c : t) {
    if (c == ':') c = '-';
  }
  return t;
}

int Restore(const std::string& path, const StateFileOptions& o) {
  auto src = OpenBackup(o.file);
  if (!src) return Problem(src.error().message());
  const bool existed = fs::exists(path);
  if (!existed && fs::path(path).has_parent_path()) {
    std::error_code ec;
    fs::create_directories(fs::path(path).parent_path(), ec);
  }
  auto dst = OpenRaw(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  if (!dst) return Problem(dst.error().message(), kExitUnavailable);
  sqlite3* db = (*dst)->db;
  // The exclusive lock, kept until the connection closes. Every connection to a WAL file holds
  // a shared lock on it for its whole life, so a running gateway makes this fail at once.
  sqlite3_busy_timeout(db, 0);
  if (sqlite3_exec(db, "PRAGMA locking_mode=EXCLUSIVE; BEGIN EXCLUSIVE; COMMIT", nullptr, nullptr,
                   nullptr) != SQLITE_OK) {
    return Problem(path +
                       " is open in another process (a running gateway?): stop it, then "
                       "restore; nothing was changed",
                   kExitUnavailable);
  }
  std::string kept;
  if (existed && !Tables(db).empty()) {
    kept = path + ".before-restore-" + Stamp();
    if (auto r = CopySqliteDatabase(db, kept); !r) return Problem(r.error().message(), kExitUnavailable);
  }
  sqlite3_backup* b = sqlite3_backup_init(db, "main", (*src)->db, "main");
  const int rc = b ? sqlite3_backup_step(b, -1) : SQLITE_ERROR;
  sqlite3_backup_finish(b);
  if (rc != SQLITE_DONE) {
    return Problem("copying " + o.file + " into " + path + ": " + sqlite3_errmsg(db) +
                       (kept.empty() ? "" : "; the previous file is kept as " + kept),
                   kExitUnavailable);
  }
  const std::string version = One((*src)->db, "PRAGMA user_version");
  dst->reset();
  src->reset();
  // Opened as a gateway opens it: WAL mode back on, an older schema upgraded.
  auto reopened = OpenSqliteDatabase(path, "state store", {});
  if (!reopened) return Problem(reopened.error().message(), kExitUnavailable);
  sqlite3_close_v2(*reopened);
  std::cout << "restored " << o.file << " into " << path << " (schema version " << version
            << (std::stoi(version) < kStateSchemaVersion
                    ? ", upgraded to " + std::to_string(kStateSchemaVersion)
                    : std::string())
            << ")" << (kept.empty() ? "" : "; the previous file is kept as " + kept) << "\n";
  return kExitOk;
}

}  // namespace

int StateFileCommand(const std::string& action, const StateFileOptions& options) {
  auto path = FilePath(options.state);
  if (!path) return Problem(path.error().message());
  if (action == "info") return Info(*path, options.json);
  if (action == "backup") return Backup(*path, options);
  return Restore(*path, options);
}

}  // namespace tw::app
