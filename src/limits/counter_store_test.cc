#include "limits/counter_store.h"

#include <atomic>
#include <filesystem>
#include <thread>

#include <gtest/gtest.h>
#include <sqlite3.h>

#include "common/random.h"
#include "redis/redis_client.h"
#include "testing/redis_server.h"

namespace tw::limits {
namespace {

// Runs every test against every store: Redis with a real redis-server started for the test.
class CounterStoreTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "redis") {
      if (testing::RedisServer::Binary().empty()) GTEST_SKIP() << "redis-server is not installed";
      redis_ = std::make_unique<testing::RedisServer>();
      ASSERT_TRUE(redis_->started()) << "redis-server did not start";
      store_ = Open();
    } else if (GetParam() == "sqlite") {
      path_ = (std::filesystem::temp_directory_path() / ("tw-counters-" + RandomHex(8) + ".db"))
                  .string();
      store_ = Open();
    } else {
      store_ = MakeMemoryStore();
    }
  }
  void TearDown() override {
    store_.reset();
    if (!path_.empty()) {
      for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path_ + suffix);
    }
  }
  // Another store on the same state: another connection, as another gateway has.
  std::unique_ptr<CounterStore> Open() {
    auto s = redis_ ? OpenRedisStore(redis_->url()) : OpenSqliteStore(path_);
    EXPECT_TRUE(s.has_value()) << (s ? "" : s.error().message());
    return s ? std::move(*s) : nullptr;
  }

  std::unique_ptr<testing::RedisServer> redis_;
  std::string path_;
  std::unique_ptr<CounterStore> store_;
};

constexpr int64_t kNow = 1'700'000'000'000;
constexpr int64_t kEnd = kNow + 60'000;

TEST_P(CounterStoreTest, AdmitsUpToMaxThenRejectsWithoutCharging) {
  Charge c{"k", 1, 3, kEnd};
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(store_->TryCharge({c}, kNow)->admitted);
  auto r = store_->TryCharge({c}, kNow);
  ASSERT_TRUE(r.has_value());
  EXPECT_FALSE(r->admitted);
  EXPECT_EQ(r->current, 3);
  EXPECT_EQ(*store_->Value("k", kNow), 3);
}

TEST_P(CounterStoreTest, AnAmountOverTheMaxIsRefusedEvenOnANewCounter) {
  auto r = store_->TryCharge({Charge{"big", 5, 3, kEnd}}, kNow);
  ASSERT_TRUE(r.has_value());
  EXPECT_FALSE(r->admitted);
  EXPECT_EQ(r->current, 0);
  EXPECT_EQ(*store_->Value("big", kNow), 0);
  // And after an ended window, the new window's first charge is checked the same way.
  ASSERT_TRUE(store_->TryCharge({Charge{"big", 3, 3, kEnd}}, kNow)->admitted);
  EXPECT_FALSE(store_->TryCharge({Charge{"big", 4, 3, kEnd + 60'000}}, kEnd)->admitted);
  EXPECT_TRUE(store_->TryCharge({Charge{"big", 3, 3, kEnd + 60'000}}, kEnd)->admitted);
  EXPECT_EQ(*store_->Value("big", kEnd), 3);
}

TEST_P(CounterStoreTest, ChargesEveryCounterOrNone) {
  Charge small{"a", 1, 100, kEnd}, full{"b", 5, 5, kEnd};
  ASSERT_TRUE(store_->TryCharge({full}, kNow)->admitted);
  auto r = store_->TryCharge({small, full}, kNow);
  EXPECT_FALSE(r->admitted);
  EXPECT_EQ(r->rejected, 1u);
  EXPECT_EQ(*store_->Value("a", kNow), 0) << "the first counter must not keep its charge";
}

TEST_P(CounterStoreTest, SpendCapsChargeTheAmountExactlyAtTheBoundary) {
  Charge c{"spend", 60, 100, kEnd};
  EXPECT_TRUE(store_->TryCharge({c}, kNow)->admitted);
  c.amount = 41;
  EXPECT_FALSE(store_->TryCharge({c}, kNow)->admitted);
  c.amount = 40;
  EXPECT_TRUE(store_->TryCharge({c}, kNow)->admitted);  // exactly max
  EXPECT_EQ(*store_->Value("spend", kNow), 100);
}

TEST_P(CounterStoreTest, RefundsNeverGoBelowZeroAndIgnoreEndedWindows) {
  Charge c{"r", 2, 10, kEnd};
  ASSERT_TRUE(store_->TryCharge({c}, kNow)->admitted);
  ASSERT_TRUE(store_->Refund({c}, kNow).has_value());
  EXPECT_EQ(*store_->Value("r", kNow), 0);
  ASSERT_TRUE(store_->Refund({c}, kNow).has_value());
  EXPECT_EQ(*store_->Value("r", kNow), 0);
}

TEST_P(CounterStoreTest, AnEndedWindowReadsAsZeroAndStartsOver) {
  Charge c{"w", 1, 1, kEnd};
  ASSERT_TRUE(store_->TryCharge({c}, kNow)->admitted);
  EXPECT_FALSE(store_->TryCharge({c}, kNow)->admitted);
  EXPECT_EQ(*store_->Value("w", kEnd), 0);
  c.expires_ms = kEnd + 60'000;
  EXPECT_TRUE(store_->TryCharge({c}, kEnd)->admitted);
}

TEST_P(CounterStoreTest, ConcurrentCallsAdmitExactlyTheLimit) {
  constexpr int kThreads = 8, kPerThread = 200, kLimit = 937;
  std::atomic<int> admitted{0};
  // sqlite, redis: a store (a connection) per thread, as gateways sharing the state have
  std::vector<std::unique_ptr<CounterStore>> extra;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    CounterStore* s = store_.get();
    if (GetParam() != "memory") {
      extra.push_back(Open());
      s = extra.back().get();
    }
    threads.emplace_back([&, s] {
      for (int i = 0; i < kPerThread; ++i) {
        auto r = s->TryCharge({Charge{"hot", 1, kLimit, kEnd}}, kNow);
        ASSERT_TRUE(r.has_value()) << r.error().message();
        if (r->admitted) ++admitted;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(admitted.load(), kLimit);
  EXPECT_EQ(*store_->Value("hot", kNow), kLimit);
}

TEST_P(CounterStoreTest, ChargesOfOneCounterInOneCallAddUp) {
  auto r = store_->TryCharge({Charge{"dup", 1, 1, kEnd}, Charge{"dup", 1, 1, kEnd}}, kNow);
  ASSERT_TRUE(r.has_value());
  EXPECT_FALSE(r->admitted);
  EXPECT_EQ(r->rejected, 1u);
  EXPECT_EQ(*store_->Value("dup", kNow), 0);
}

TEST_P(CounterStoreTest, ManyCallsAreChargedInTurnEachAllOrNoneAtItsOwnTime) {
  using Call = CounterStore::Call;
  ASSERT_TRUE(store_->TryCharge({Charge{"old", 4, 5, kNow + 10}}, kNow)->admitted);
  auto r = store_->TryChargeMany({
      Call{{Charge{"m", 3, 5, kEnd}}, kNow},
      Call{{Charge{"m", 3, 5, kEnd}}, kNow},                        // 3 + 3 > 5: refused
      Call{{Charge{"n", 1, 9, kEnd}, Charge{"m", 2, 5, kEnd}}, kNow},  // 3 + 2 = 5: fits
      Call{{Charge{"n", 1, 9, kEnd}, Charge{"m", 1, 5, kEnd}}, kNow},  // m full: none charged
      Call{{}, kNow},                                                 // nothing to charge
      Call{{Charge{"old", 4, 5, kNow + 20}}, kNow + 10},  // "old"'s window ended at its time
  });
  ASSERT_EQ(r.size(), 6u);
  for (const auto& x : r) ASSERT_TRUE(x.has_value()) << x.error().message();
  EXPECT_TRUE(r[0]->admitted);
  EXPECT_FALSE(r[1]->admitted);
  EXPECT_EQ(r[1]->current, 3);
  EXPECT_TRUE(r[2]->admitted);
  EXPECT_FALSE(r[3]->admitted);
  EXPECT_EQ(r[3]->rejected, 1u);
  EXPECT_EQ(r[3]->current, 5);
  EXPECT_TRUE(r[4]->admitted);
  EXPECT_TRUE(r[5]->admitted);
  EXPECT_EQ(*store_->Value("m", kNow), 5);
  EXPECT_EQ(*store_->Value("n", kNow), 1);
  EXPECT_EQ(*store_->Value("old", kNow + 10), 4);
}

TEST_P(CounterStoreTest, ABatcherFedByManyThreadsAdmitsExactlyTheLimit) {
  constexpr int kThreads = 8, kPerThread = 100, kLimit = 377;
  std::atomic<int> admitted{0}, answered{0};
  {
    ChargeBatcher batcher(*store_);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&] {
        for (int i = 0; i < kPerThread; ++i) {
          batcher.Charge({Charge{"batched", 1, kLimit, kEnd}}, kNow, [&](Result<ChargeOutcome> r) {
            if (r && r->admitted) ++admitted;
            ++answered;
          });
        }
      });
    }
    for (auto& t : threads) t.join();
  }  // the batcher charges what is queued before it goes
  EXPECT_EQ(answered.load(), kThreads * kPerThread);
  EXPECT_EQ(admitted.load(), kLimit);
  EXPECT_EQ(*store_->Value("batched", kNow), kLimit);
}

INSTANTIATE_TEST_SUITE_P(Stores, CounterStoreTest, ::testing::Values("memory", "sqlite", "redis"));

class RedisStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (testing::RedisServer::Binary().empty()) GTEST_SKIP() << "redis-server is not installed";
    ASSERT_TRUE(server_.started());
    auto s = OpenRedisStore(server_.url());
    ASSERT_TRUE(s) << s.error().message();
    store_ = std::move(*s);
  }
  testing::RedisServer server_;
  std::unique_ptr<CounterStore> store_;
};

TEST_F(RedisStoreTest, WindowsFollowTheGatewaysClockNotTheServers) {
  // A window that ended long ago by the server's clock is still open at the `now` passed.
  constexpr int64_t kPast = 1'000'000, kPastEnd = kPast + 60'000;
  ASSERT_TRUE(store_->TryCharge({Charge{"old", 1, 1, kPastEnd}}, kPast)->admitted);
  EXPECT_FALSE(store_->TryCharge({Charge{"old", 1, 1, kPastEnd}}, kPast + 1)->admitted);
  EXPECT_EQ(*store_->Value("old", kPast + 1), 1);
  EXPECT_EQ(*store_->Value("old", kPastEnd), 0);
}

TEST_F(RedisStoreTest, NumbersADoubleCannotHoldExactlyAreRefusedNotRounded) {
  const int64_t big = (int64_t{1} << 53) + 1;
  auto r = store_->TryCharge({Charge{"n", 1, big, kEnd}}, kNow);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find("2^53"), std::string::npos);
  r = store_->TryCharge({Charge{"n", big, big, kEnd}}, kNow);
  ASSERT_FALSE(r.has_value());
  // Up to 2^53 - 1 counts exactly.
  const int64_t top = (int64_t{1} << 53) - 1;
  ASSERT_TRUE(store_->TryCharge({Charge{"n", top - 1, top, kEnd}}, kNow)->admitted);
  ASSERT_TRUE(store_->TryCharge({Charge{"n", 1, top, kEnd}}, kNow)->admitted);
  EXPECT_FALSE(store_->TryCharge({Charge{"n", 1, top, kEnd}}, kNow)->admitted);
  EXPECT_EQ(*store_->Value("n", kNow), top);
}

TEST_F(RedisStoreTest, ACounterSomeoneElseOverwroteFailsClosed) {
  auto endpoint = redis::ParseUrl(server_.url());
  ASSERT_TRUE(endpoint);
  auto raw = redis::Client::Connect(*endpoint, std::chrono::seconds(2));
  ASSERT_TRUE(raw);
  ASSERT_TRUE((*raw)->Command({"HSET", "tw:counter:x", "v", "lots", "e", "9999999999999"}));
  EXPECT_FALSE(store_->TryCharge({Charge{"x", 1, 10, kEnd}}, kNow).has_value());
  EXPECT_FALSE(store_->Value("x", kNow).has_value());
  ASSERT_TRUE((*raw)->Command({"SET", "tw:counter:y", "1"}));  // the wrong type altogether
  EXPECT_FALSE(store_->TryCharge({Charge{"y", 1, 10, kEnd}}, kNow).has_value());
}

TEST_F(RedisStoreTest, ADeadServerIsAnErrorAndALiveOneAgainIsUsedAgain) {
  ASSERT_TRUE(store_->TryCharge({Charge{"d", 1, 5, kEnd}}, kNow)->admitted);
  server_.Stop();
  auto r = store_->TryCharge({Charge{"d", 1, 5, kEnd}}, kNow);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find("127.0.0.1:" + std::to_string(server_.port())),
            std::string::npos)
      << r.error().message();
  EXPECT_FALSE(store_->Value("d", kNow).has_value());
}

TEST_F(RedisStoreTest, WithAReplicaAChargeCountsOnlyOnceTheReplicaHasIt) {
  testing::RedisServer replica({"--replicaof", "127.0.0.1", std::to_string(server_.port())});
  ASSERT_TRUE(replica.started());
  auto primary = redis::Client::Open(server_.url());
  ASSERT_TRUE(primary.has_value());
  // Until the replica has synchronized, the primary does not list it.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (;;) {
    auto role = (*primary)->Command({"ROLE"});
    if (role && role->elements.size() >= 3 && role->elements[2].elements.size() == 1) break;
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the replica never connected";
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  auto s = OpenRedisStore(server_.url());  // a store that sees the replica from its first charge
  ASSERT_TRUE(s.has_value());
  ASSERT_TRUE((*s)->TryCharge({Charge{"r", 1, 5, kEnd}}, kNow)->admitted);
  auto many = (*s)->TryChargeMany({CounterStore::Call{{Charge{"r", 1, 5, kEnd}}, kNow}});
  ASSERT_TRUE(many[0].has_value()) << many[0].error().message();
  // The replica goes: a charge it cannot acknowledge fails (the call would be denied).
  replica.Stop();
  auto r = (*s)->TryCharge({Charge{"r", 1, 5, kEnd}}, kNow);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find("replicas within 500 ms"), std::string::npos) << r.error().message();
}

TEST_F(RedisStoreTest, AServerThatStopsAnsweringIsAnErrorWithinTheTimeoutNeverAWait) {
  ASSERT_TRUE(store_->TryCharge({Charge{"slow", 1, 5, kEnd}}, kNow)->admitted);
  server_.Pause(true);
  const auto start = std::chrono::steady_clock::now();
  auto r = store_->TryCharge({Charge{"slow", 1, 5, kEnd}}, kNow);
  const auto waited = std::chrono::steady_clock::now() - start;
  server_.Pause(false);
  ASSERT_FALSE(r.has_value()) << "a charge nobody answered must not count as admitted";
  EXPECT_LT(waited, std::chrono::seconds(4)) << "bounded by the client's 2 s timeout";
  // Answering again: the next charge reconnects, and the one that timed out may or may not
  // have been made (never more than once: it is not retried).
  auto again = store_->TryCharge({Charge{"slow", 1, 5, kEnd}}, kNow);
  ASSERT_TRUE(again.has_value()) << again.error().message();
  EXPECT_TRUE(again->admitted);
  const int64_t v = *store_->Value("slow", kNow);
  EXPECT_TRUE(v == 2 || v == 3) << v;
}

TEST(SqliteStoreTest, CountersSurviveReopening) {
  const std::string path =
      (std::filesystem::temp_directory_path() / ("tw-persist-" + RandomHex(8) + ".db")).string();
  {
    auto s = OpenSqliteStore(path);
    ASSERT_TRUE(s.has_value());
    ASSERT_TRUE((*s)->TryCharge({Charge{"p", 7, 10, kEnd}}, kNow)->admitted);
  }
  auto s = OpenSqliteStore(path);
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(*(*s)->Value("p", kNow), 7);
  EXPECT_FALSE((*s)->TryCharge({Charge{"p", 4, 10, kEnd}}, kNow)->admitted);
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);
}

// New state files keep counters in a WITHOUT ROWID table (one b-tree: a charge's upsert
// touches one page fewer); a file made before keeps its table and works the same.
TEST(SqliteStoreTest, NewFilesUseAWithoutRowidTableAndOldFilesKeepTheirs) {
  const std::string fresh =
      (std::filesystem::temp_directory_path() / ("tw-fresh-" + RandomHex(8) + ".db")).string();
  const std::string old =
      (std::filesystem::temp_directory_path() / ("tw-old-" + RandomHex(8) + ".db")).string();
  auto table_sql = [](const std::string& path) {
    sqlite3* db = nullptr;
    std::string sql;
    if (sqlite3_open(path.c_str(), &db) == SQLITE_OK) {
      sqlite3_stmt* st = nullptr;
      sqlite3_prepare_v2(db, "SELECT sql FROM sqlite_master WHERE name = 'counters'", -1, &st,
                         nullptr);
      if (st && sqlite3_step(st) == SQLITE_ROW) {
        sql = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
      }
      sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return sql;
  };
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(old.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db,
                           "CREATE TABLE counters(key TEXT PRIMARY KEY, value INTEGER NOT NULL, "
                           "expires_ms INTEGER NOT NULL);"
                           "INSERT INTO counters VALUES('o', 2, 1700000060000)",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  for (const std::string& path : {fresh, old}) {
    auto s = OpenSqliteStore(path);
    ASSERT_TRUE(s.has_value());
    ASSERT_TRUE((*s)->TryCharge({Charge{"o", 1, 3, kEnd}}, kNow)->admitted);
    EXPECT_EQ(*(*s)->Value("o", kNow), path == old ? 3 : 1);
    EXPECT_EQ((*s)->TryCharge({Charge{"o", 2, 3, kEnd}}, kNow)->admitted, path == fresh);
  }
  EXPECT_NE(table_sql(fresh).find("WITHOUT ROWID"), std::string::npos) << table_sql(fresh);
  EXPECT_EQ(table_sql(old).find("WITHOUT ROWID"), std::string::npos) << table_sql(old);
  for (const std::string& path : {fresh, old}) {
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);
  }
}

TEST(StateSpecTest, ParsesKnownSpecsAndRejectsOthers) {
  EXPECT_TRUE(OpenStateStore("memory").has_value());
  auto bad = OpenStateStore("postgres://x");
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.error().message().find("sqlite:PATH"), std::string::npos);
  auto unwritable = OpenStateStore("sqlite:/proc/nope/state.db");
  EXPECT_FALSE(unwritable.has_value());
  EXPECT_EQ(CounterKey("srv", "c", "grant", "local", 60000), "srv/c/grant:local/60000");
}

}  // namespace
}  // namespace tw::limits
