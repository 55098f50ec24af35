#include "common/sqlite_db.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <thread>

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

// Another process's write lock on the state file, for as long as the object lives.
class OtherProcessLock {
 public:
  explicit OtherProcessLock(const std::string& path) {
    EXPECT_EQ(sqlite3_open(path.c_str(), &db_), SQLITE_OK);
    EXPECT_EQ(sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  }
  void Release() {
    if (db_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    sqlite3_close(db_);
    db_ = nullptr;
  }
  ~OtherProcessLock() { Release(); }

 private:
  sqlite3* db_ = nullptr;
};

// Sets the process-wide busy timeout for one test.
class BusyTimeoutFor {
 public:
  explicit BusyTimeoutFor(std::chrono::milliseconds t) : saved_(SqliteBusyTimeout()) {
    SetSqliteBusyTimeout(t);
  }
  ~BusyTimeoutFor() { SetSqliteBusyTimeout(saved_); }

 private:
  std::chrono::milliseconds saved_;
};

TEST_F(SqliteDbTest, AThreadThatMustNotWaitFailsAtOnceOnALockedFile) {
  BusyTimeoutFor long_wait(std::chrono::minutes(10));  // a regression would hang, not pass
  auto conn = OpenSharedSqlite(path_, "test store", {"CREATE TABLE IF NOT EXISTS t(x)"});
  ASSERT_TRUE(conn) << conn.error().message();
  OtherProcessLock other(path_);
  StatementCache cache;
  {
    SqliteNoWait loop;
    EXPECT_FALSE(SqliteWaitsOnThisThread());
    std::unique_lock lock((*conn)->mu);
    auto begun = BeginImmediateShared(lock, cache, (*conn)->db, "test store", path_);
    ASSERT_FALSE(begun);
    EXPECT_TRUE(IsLockedFailure(begun.error()));
    EXPECT_NE(begun.error().message().find("locked by another process"), std::string::npos)
        << begun.error().message();
    // SQLite's own busy handler does not wait either.
    EXPECT_EQ(sqlite3_exec((*conn)->db, "INSERT INTO t VALUES(1)", nullptr, nullptr, nullptr),
              SQLITE_BUSY);
    // A read never needs the lock (WAL).
    EXPECT_EQ(sqlite3_exec((*conn)->db, "SELECT COUNT(*) FROM t", nullptr, nullptr, nullptr),
              SQLITE_OK);
  }
  EXPECT_TRUE(SqliteWaitsOnThisThread());
}

TEST_F(SqliteDbTest, AWriterWaitingForTheLockLeavesTheConnectionToOthers) {
  auto conn = OpenSharedSqlite(path_, "test store", {"CREATE TABLE IF NOT EXISTS t(x)"});
  ASSERT_TRUE(conn) << conn.error().message();
  OtherProcessLock other(path_);
  std::promise<Result<bool>> result;
  std::thread writer([&] {
    StatementCache cache;
    std::unique_lock lock((*conn)->mu);
    auto begun = BeginImmediateShared(lock, cache, (*conn)->db, "test store", path_);
    if (begun)
      begun = StepCached(cache, (*conn)->db, "INSERT INTO t VALUES(7)", "test store", path_);
    if (begun) begun = StepCached(cache, (*conn)->db, "COMMIT", "test store", path_);
    result.set_value(begun);
  });
  // While the writer waits for the other process, the connection's mutex is free for the
  // readers an event loop runs (which hold it between the writer's tries).
  bool got_it = false;
  for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(4);
       !got_it && std::chrono::steady_clock::now() < deadline;) {
    if ((*conn)->mu.try_lock()) {
      got_it = sqlite3_get_autocommit((*conn)->db) != 0;  // and no transaction is open on it
      (*conn)->mu.unlock();
    }
  }
  EXPECT_TRUE(got_it);
  other.Release();
  auto r = result.get_future().get();
  writer.join();
  EXPECT_TRUE(r) << r.error().message();
}

TEST_F(SqliteDbTest, AWriterGivesUpAfterTheStateTimeoutSayingWhy) {
  BusyTimeoutFor short_wait(std::chrono::milliseconds(100));
  auto conn = OpenSharedSqlite(path_, "test store", {"CREATE TABLE IF NOT EXISTS t(x)"});
  ASSERT_TRUE(conn) << conn.error().message();
  OtherProcessLock other(path_);
  StatementCache cache;
  std::unique_lock lock((*conn)->mu);
  auto begun = BeginImmediateShared(lock, cache, (*conn)->db, "test store", path_);
  ASSERT_FALSE(begun);
  EXPECT_TRUE(IsLockedFailure(begun.error()));
  EXPECT_NE(begun.error().message().find("waited 100 ms, state_timeout"), std::string::npos)
      << begun.error().message();
  EXPECT_TRUE(lock.owns_lock());
}

}  // namespace
}  // namespace tw
