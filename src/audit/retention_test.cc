#include "audit/retention.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <future>

#include "audit/audit.h"
#include "common/random.h"
#include "common/sqlite_db.h"

namespace tw::audit {
namespace {

namespace fs = std::filesystem;

class RetentionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("tw-retention-" + RandomHex(6));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Spec() const { return "sqlite:" + (dir_ / "audit.db").string(); }

  // `n` records, one a second from `first_ts`, through the audit log itself.
  void Fill(int n, int64_t first_ts) {
    auto log = OpenAuditLog(Spec(), "", RetentionOptions{.min_free_bytes = 0});
    ASSERT_TRUE(log.has_value()) << log.error().message();
    Record shape;
    shape.grant = "g";
    shape.server = "github";
    shape.tool = "create_issue";
    shape.decision = "allow";
    shape.rule = "default";
    shape.arg_keys = {"repo", "title", "body"};
    shape.outcome = "ok";
    for (int i = 0; i < n; ++i) {
      Record r = shape;
      r.id = NewRecordId();
      r.ts_ms = first_ts + i * 1000;
      r.session = std::to_string(i % 7);
      r.args_digest = RandomHex(32);
      r.args = json::object{{"repo", "api"}, {"title", i}};
      ASSERT_TRUE((*log)->Write(r).has_value());
    }
  }
  // A connection of the test's own, as the maintenance thread has.
  sqlite3* Open() {
    auto db = OpenSqliteDatabase((dir_ / "audit.db").string(), "test", {});
    EXPECT_TRUE(db.has_value());
    return db ? *db : nullptr;
  }
  int64_t Count(sqlite3* db, const char* where = "1") {
    sqlite3_stmt* st = nullptr;
    std::string sql = "SELECT COUNT(*) FROM audit WHERE ";
    sql += where;
    sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr);
    sqlite3_step(st);
    const int64_t n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
  }
  fs::path dir_;
};

TEST_F(RetentionTest, RecordsOlderThanTheRetentionGoAndNothingElse) {
  Fill(100, 1'000'000);  // ts 1,000 s … 1,099 s
  sqlite3* db = Open();
  Retention r(db, (dir_ / "audit.db").string(), {.max_age_ms = 30'000, .min_free_bytes = 0});
  EXPECT_EQ(r.Prune(1'099'000 + 1), 70u);  // kept: the last 30 s
  EXPECT_EQ(Count(db), 30);
  EXPECT_EQ(Count(db, "ts_ms < 1069001"), 0);
  EXPECT_EQ(r.Prune(1'099'000 + 1), 0u);
  EXPECT_EQ(r.stats().pruned.load(), 70u);
  sqlite3_close_v2(db);
}

TEST_F(RetentionTest, ArgumentValuesAreErasedOnceOldAndTheRecordsStay) {
  Fill(100, 1'000'000);  // ts 1,000 s … 1,099 s
  sqlite3* db = Open();
  Retention r(db, (dir_ / "audit.db").string(), {.arguments_max_age_ms = 30'000, .min_free_bytes = 0});
  r.Tick(1'099'000 + 1);
  EXPECT_EQ(Count(db), 100) << "every record stays";
  EXPECT_EQ(Count(db, "args IS NOT NULL"), 30) << "the last 30 s keep their values";
  EXPECT_EQ(Count(db, "args IS NOT NULL AND ts_ms < 1069001"), 0);
  EXPECT_EQ(Count(db, "arg_keys = '[\"repo\",\"title\",\"body\"]'"), 100) << "keys and digests stay";
  // Later passes start where the last stopped, and erase what aged since.
  r.Tick(1'099'000 + 10'001);
  EXPECT_EQ(Count(db, "args IS NOT NULL"), 20);
  EXPECT_EQ(r.stats().pruned.load(), 0u);
  sqlite3_close_v2(db);
}

TEST_F(RetentionTest, ArgumentValuesNotYetShippedAreKeptUntilTheyAre) {
  Fill(50, 0);
  sqlite3* db = Open();
  Retention r(db, (dir_ / "audit.db").string(), {.arguments_max_age_ms = 1, .min_free_bytes = 0});
  r.PruneOnlyThrough(20);
  r.Tick(1'000'000'000);
  EXPECT_EQ(Count(db, "args IS NOT NULL"), 30);
  r.PruneOnlyThrough(50);
  r.Tick(1'000'000'000 + 1000);  // the next prune is due a second later
  EXPECT_EQ(Count(db, "args IS NOT NULL"), 0);
  sqlite3_close_v2(db);
}

TEST_F(RetentionTest, OnlyWhatASharedStoreAlreadyHasIsPruned) {
  Fill(50, 0);
  sqlite3* db = Open();
  Retention r(db, (dir_ / "audit.db").string(), {.max_age_ms = 1, .min_free_bytes = 0});
  r.PruneOnlyThrough(20);  // rowids 1-20 were shipped
  EXPECT_EQ(r.Prune(1'000'000'000), 20u);
  EXPECT_EQ(Count(db), 30);
  sqlite3_close_v2(db);
}

TEST_F(RetentionTest, AFileOverItsSizeLimitLosesItsOldestRecordsAndShrinks) {
  Fill(20'000, 0);
  const auto before = fs::file_size(dir_ / "audit.db");
  ASSERT_GT(before, 3u << 20) << "the test needs a file well over its limit";
  sqlite3* db = Open();
  const int64_t limit = 1 << 20;
  Retention r(db, (dir_ / "audit.db").string(), {.max_bytes = limit, .min_free_bytes = 0});
  const uint64_t gone = r.Prune(0);
  EXPECT_GT(gone, 10'000u);
  const int64_t left = Count(db);
  EXPECT_EQ(left + static_cast<int64_t>(gone), 20'000);
  // The newest stay: the oldest left is exactly the first not pruned.
  std::string oldest = "ts_ms = ";
  oldest += std::to_string(static_cast<int64_t>(gone) * 1000);
  EXPECT_EQ(Count(db, oldest.c_str()), 1);
  sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_TRUNCATE, nullptr, nullptr);
  EXPECT_LE(static_cast<int64_t>(fs::file_size(dir_ / "audit.db")), limit);
  EXPECT_LE(r.stats().file_bytes.load(), limit);
  sqlite3_close_v2(db);
}

TEST_F(RetentionTest, ANearlyFullDiskRefusesNewCallsWithAReasonAndKeepsTheFileWhole) {
  // More free space than any disk has: the threshold bites at once.
  RetentionOptions options{.min_free_bytes = INT64_MAX / 2};
  options.prune_every_ms = 1;
  auto log = OpenAuditLog(Spec(), "", options);
  ASSERT_TRUE(log.has_value());
  // The maintenance thread checks the disk within a tick (200 ms); poll with a deadline.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while ((*log)->Unwritable().empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_NE((*log)->Unwritable().find("audit disk is nearly full"), std::string::npos)
      << (*log)->Unwritable();
  Record rec;
  rec.id = NewRecordId();
  rec.decision = "allow";
  std::promise<bool> done;
  (*log)->Submit(rec, {}, [&](bool ok) { done.set_value(ok); });
  EXPECT_FALSE(done.get_future().get());
  EXPECT_FALSE((*log)->Write(rec).has_value());
  const AuditStats s = (*log)->Stats();
  EXPECT_TRUE(s.disk_low);
  EXPECT_EQ(s.refused, 2u);
  EXPECT_GT(s.free_bytes, 0);
  log->reset();
  sqlite3* db = Open();
  EXPECT_EQ(Count(db), 0);
  sqlite3_close_v2(db);
}

}  // namespace
}  // namespace tw::audit
