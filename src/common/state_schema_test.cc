#include "common/state_schema.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>

#include "common/random.h"
#include "common/sqlite_db.h"

namespace tw {
namespace {

// One value of a query ("" for none).
std::string Query(sqlite3* db, const char* sql) {
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, sql, -1, &st, nullptr) != SQLITE_OK) return "error";
  std::string out;
  if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0)) {
    out = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
  }
  sqlite3_finalize(st);
  return out;
}

// A file written the way an earlier release wrote it: the statements run as given, nothing
// of this binary's involved.
void WriteRaw(const std::string& path, std::initializer_list<const char*> sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  for (const char* s : sql)
    ASSERT_EQ(sqlite3_exec(db, s, nullptr, nullptr, nullptr), SQLITE_OK) << s;
  sqlite3_close(db);
}

class StateSchemaTest : public ::testing::Test {
 protected:
  void TearDown() override {
    for (auto suffix : {"", "-wal", "-shm", ".schema-v0.bak"})
      std::filesystem::remove(path_ + suffix);
  }
  std::string path_ =
      (std::filesystem::temp_directory_path() / ("tw-schema-" + RandomHex(6) + ".db")).string();
};

TEST_F(StateSchemaTest, ANewFileIsStampedWithTheCurrentVersionAndNoBackup) {
  auto db = OpenSqliteDatabase(path_, "state store", {"CREATE TABLE IF NOT EXISTS t(x)"});
  ASSERT_TRUE(db) << db.error().message();
  EXPECT_EQ(Query(*db, "PRAGMA user_version"), std::to_string(kStateSchemaVersion));
  sqlite3_close_v2(*db);
  EXPECT_FALSE(std::filesystem::exists(path_ + ".schema-v0.bak"));
}

// An approvals table from before `owner` (the first release's layout, user_version unset):
// upgraded in place, its rows kept, the original copied aside first.
TEST_F(StateSchemaTest, AnUnversionedFileIsCopiedAsideThenUpgradedKeepingItsRows) {
  WriteRaw(path_, {"CREATE TABLE approvals(id TEXT PRIMARY KEY, created_ms INTEGER NOT NULL, "
                   "expires_ms INTEGER NOT NULL, grant_name TEXT NOT NULL, session TEXT NOT NULL, "
                   "server TEXT NOT NULL, tool TEXT NOT NULL, args TEXT NOT NULL, "
                   "args_digest TEXT NOT NULL, state TEXT NOT NULL, resolved_by TEXT NOT NULL, "
                   "resolved_ms INTEGER NOT NULL, reason TEXT NOT NULL)",
                   "INSERT INTO approvals VALUES('ap_1',1,2,'ci','s','github','merge','{}','d',"
                   "'pending','',0,'')"});
  auto db = OpenSqliteDatabase(path_, "approval store", {});
  ASSERT_TRUE(db) << db.error().message();
  EXPECT_EQ(Query(*db, "PRAGMA user_version"), std::to_string(kStateSchemaVersion));
  EXPECT_EQ(Query(*db, "SELECT id || ':' || owner || ':' || state FROM approvals"),
            "ap_1::pending");
  sqlite3_close_v2(*db);

  const std::string backup = path_ + ".schema-v0.bak";
  ASSERT_TRUE(std::filesystem::exists(backup));
  sqlite3* old = nullptr;
  ASSERT_EQ(sqlite3_open_v2(backup.c_str(), &old, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  EXPECT_EQ(Query(old, "PRAGMA user_version"), "0");
  EXPECT_EQ(Query(old, "SELECT count(*) FROM pragma_table_info('approvals') WHERE name='owner'"),
            "0");
  EXPECT_EQ(Query(old, "SELECT id FROM approvals"), "ap_1");
  sqlite3_close(old);

  // Opening it again changes nothing more.
  auto again = OpenSqliteDatabase(path_, "approval store", {});
  ASSERT_TRUE(again) << again.error().message();
  EXPECT_EQ(Query(*again, "SELECT count(*) FROM approvals"), "1");
  sqlite3_close_v2(*again);
}

TEST_F(StateSchemaTest, AFileFromANewerToolwardenIsRefusedAndLeftUntouched) {
  const std::string newer = std::to_string(kStateSchemaVersion + 1);
  const std::string stamp = "PRAGMA user_version=" + newer;
  WriteRaw(path_, {"CREATE TABLE future(x)", stamp.c_str()});
  const auto before = std::filesystem::file_size(path_);

  auto db = OpenSqliteDatabase(path_, "state store", {"CREATE TABLE IF NOT EXISTS counters(k)"});
  ASSERT_FALSE(db);
  EXPECT_EQ(db.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(
      db.error().message().find("written by a newer toolwarden (state schema version " + newer),
      std::string::npos)
      << db.error().message();
  EXPECT_NE(db.error().message().find("this toolwarden knows up to " +
                                      std::to_string(kStateSchemaVersion)),
            std::string::npos);

  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open_v2(path_.c_str(), &raw, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  EXPECT_EQ(Query(raw, "PRAGMA user_version"), newer);
  EXPECT_EQ(Query(raw, "SELECT count(*) FROM sqlite_master WHERE name='counters'"), "0");
  sqlite3_close(raw);
  EXPECT_EQ(std::filesystem::file_size(path_), before);
}

}  // namespace
}  // namespace tw
