#include "common/sqlite_db.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>

#include "common/random.h"

namespace tw {
namespace {

int PageSize(sqlite3* db) {
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db, "PRAGMA page_size", -1, &st, nullptr);
  const int n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
  sqlite3_finalize(st);
  return n;
}

class SqliteDbTest : public ::testing::Test {
 protected:
  void TearDown() override {
    for (auto suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path_ + suffix);
  }
  std::string path_ = (std::filesystem::temp_directory_path() / ("tw-sqlite-" + RandomHex(6) + ".db")).string();
};

TEST_F(SqliteDbTest, ANewStateFileGetsSmallPagesInWalMode) {
  auto db = OpenSqliteDatabase(path_, "test store", {"CREATE TABLE t(x)"});
  ASSERT_TRUE(db) << db.error().message();
  EXPECT_EQ(PageSize(*db), 2048);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(*db, "PRAGMA journal_mode", -1, &st, nullptr);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)), "wal");
  sqlite3_finalize(st);
  sqlite3_close_v2(*db);
}

TEST_F(SqliteDbTest, AnExistingFileKeepsItsPageSize) {
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &raw), SQLITE_OK);
  sqlite3_exec(raw, "PRAGMA page_size=4096; CREATE TABLE t(x); INSERT INTO t VALUES(1)", nullptr, nullptr, nullptr);
  sqlite3_close(raw);
  auto db = OpenSqliteDatabase(path_, "test store", {});
  ASSERT_TRUE(db) << db.error().message();
  EXPECT_EQ(PageSize(*db), 4096);
  sqlite3_close_v2(*db);
}

}  // namespace
}  // namespace tw
