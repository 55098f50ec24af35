#include "audit/shared_trail.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <set>
#include <thread>

#include "common/random.h"
#include "common/sqlite_db.h"
#include "pg/pg.h"
#include "testing/postgres_server.h"

namespace tw::audit {
namespace {

namespace fs = std::filesystem;

// One real PostgreSQL server for the suite (initdb takes a second or two); each test its own
// database in it.
class SharedTrailTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (testing::PostgresServer::BinDir().empty()) return;
    server_ = new testing::PostgresServer();
    // Accepting connections is not yet ready for queries: ask until it answers.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (server_->started() && std::chrono::steady_clock::now() < deadline) {
      auto c = pg::Connection::Open(server_->url());
      if (c && (*c)->Exec("SELECT 1")) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    if (server_ == nullptr) GTEST_SKIP() << "PostgreSQL is not installed";
    ASSERT_TRUE(server_->started()) << "postgres did not start";
    const std::string db = "t" + RandomHex(6);
    auto admin = pg::Connection::Open(server_->url());
    ASSERT_TRUE(admin.has_value()) << admin.error().message();
    ASSERT_TRUE((*admin)->Exec("CREATE DATABASE " + db));
    url_ = server_->url();
    url_.replace(url_.rfind('/') + 1, std::string::npos, db);
    dir_ = fs::temp_directory_path() / ("tw-ship-" + RandomHex(6));
    fs::create_directories(dir_);
    auto log = OpenAuditLog(LocalSpec(), "", RetentionOptions{.min_free_bytes = 0});
    ASSERT_TRUE(log.has_value());
    log_ = std::move(*log);
  }
  void TearDown() override {
    log_.reset();
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  std::string LocalSpec() const { return "sqlite:" + (dir_ / "audit.db").string(); }
  Record Make(const std::string& tool, int64_t ts, const std::string& outcome = "ok") {
    Record r;
    r.id = NewRecordId();
    r.ts_ms = ts;
    r.grant = "agent";
    r.session = "s";
    r.server = "github";
    r.tool = tool;
    r.decision = "allow";
    r.rule = "default";
    r.reason = "ünïcode \"reason\"";
    r.arg_keys = {"repo", "a \"quoted\" key"};
    r.args_digest = "d";
    r.outcome = outcome;
    return r;
  }
  std::unique_ptr<Shipper> NewShipper(int64_t* through = nullptr) {
    ShipperOptions o;
    o.local_path = (dir_ / "audit.db").string();
    o.url = url_;
    o.replica = "r1";
    o.interval_ms = 3'600'000;  // passes only when the test asks (ShipOnce)
    auto s = std::make_unique<Shipper>(o, [through](int64_t t) {
      if (through) *through = t;
    });
    EXPECT_TRUE(s->Start().has_value());
    return s;
  }
  int64_t Rows() {
    auto c = pg::Connection::Open(url_);
    auto r = (*c)->Exec("SELECT COUNT(*), COUNT(DISTINCT id) FROM toolwarden_audit");
    EXPECT_EQ((*r)[0][0], (*r)[0][1]) << "a record shipped twice is one row";
    return std::stoll(*(*r)[0][0]);
  }

  static testing::PostgresServer* server_;
  std::string url_;
  fs::path dir_;
  std::unique_ptr<AuditLog> log_;
};
testing::PostgresServer* SharedTrailTest::server_ = nullptr;

TEST_F(SharedTrailTest, ShippedRecordsAreQueriedAsTheLocalOnesWere) {
  Record with_args = Make("create_issue", 1'000);
  with_args.args = json::parse(R"({"repo":"tw","n":12345678901234})");
  ASSERT_TRUE(log_->Write(with_args));
  ASSERT_TRUE(log_->Write(Make("delete_repo", 2'000)));
  Record denied = Make("delete_repo", 3'000, "not_forwarded");
  denied.decision = "deny";
  ASSERT_TRUE(log_->Write(denied));
  int64_t through = -1;
  auto shipper = NewShipper(&through);
  EXPECT_EQ(through, 0) << "nothing may be pruned before it is shipped";
  auto n = shipper->ShipOnce(10'000);
  ASSERT_TRUE(n.has_value()) << n.error().message();
  EXPECT_EQ(*n, 3);
  EXPECT_EQ(through, 3);
  auto local = QueryAudit(LocalSpec(), Query{});
  auto shared = QueryAudit(url_, Query{});
  ASSERT_TRUE(shared.has_value()) << shared.error().message();
  ASSERT_EQ(shared->size(), local->size());
  for (size_t i = 0; i < local->size(); ++i) {
    EXPECT_EQ(json::serialize(ToJson((*shared)[i])), json::serialize(ToJson((*local)[i])));
  }
  Query deny;
  deny.decision = "deny";
  EXPECT_EQ(*CountAudit(url_, deny), 1);
  auto buckets = AuditHistogram(url_, Query{}, 2'000);
  ASSERT_TRUE(buckets.has_value());
  ASSERT_EQ(buckets->size(), 2u);
  EXPECT_EQ((*buckets)[0].allow, 1);
  EXPECT_EQ((*buckets)[1].allow + (*buckets)[1].deny, 2);
  EXPECT_EQ(*shipper->ShipOnce(10'000), 0);
  EXPECT_EQ(Rows(), 3);
}

TEST_F(SharedTrailTest, ReplayScansTheTrailOldestFirstInPagesByKey) {
  for (int i = 0; i < 7; ++i) ASSERT_TRUE(log_->Write(Make(i % 2 ? "a" : "b", 1'000 + (i / 2) * 10)));
  auto shipper = NewShipper(nullptr);
  ASSERT_TRUE(shipper->ShipOnce(10'000));
  std::vector<int64_t> seen;
  std::set<std::string> ids;
  auto n = ScanShared(url_, Query{}, [&](Record& r) {
    seen.push_back(r.ts_ms);
    ids.insert(r.id);
    return true;
  }, /*page=*/2);
  ASSERT_TRUE(n.has_value()) << n.error().message();
  EXPECT_EQ(*n, 7);
  EXPECT_EQ(ids.size(), 7u) << "pages neither skip nor repeat records of one instant";
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
  Query only_a;
  only_a.tool = "a";
  int stopped = 0;
  EXPECT_EQ(*ScanAudit(url_, only_a, [&](Record&) { return ++stopped < 2; }), 2);
}

TEST_F(SharedTrailTest, APendingCallIsShippedAgainWithItsOutcomeAndHoldsPruningUntilThen) {
  Record open = Make("long_job", 1'000, "pending");
  ASSERT_TRUE(log_->Write(open));
  ASSERT_TRUE(log_->Write(Make("quick", 2'000)));
  int64_t through = -1;
  auto shipper = NewShipper(&through);
  ASSERT_EQ(*shipper->ShipOnce(5'000), 2);
  EXPECT_EQ(through, 0) << "the pending record's row may not be pruned yet";
  log_->Complete(open.id, "ok", 1234);
  log_->Flush();
  ASSERT_TRUE(shipper->ShipOnce(6'000).has_value());
  EXPECT_EQ(through, 2);
  Query q;
  q.tool = "long_job";
  auto rows = QueryAudit(url_, q);
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ(rows->front().outcome, "ok");
  EXPECT_EQ(rows->front().latency_ms, 1234);
  EXPECT_EQ(Rows(), 2);
}

TEST_F(SharedTrailTest, AReplicaThatLostItsPlaceShipsAgainWithoutDuplicates) {
  for (int i = 0; i < 1200; ++i) ASSERT_TRUE(log_->Write(Make("t", i)));
  {
    auto shipper = NewShipper();
    // A backlog goes in batches.
    EXPECT_EQ(*shipper->ShipOnce(2'000'000), 500);
    EXPECT_EQ(shipper->stats().backlog.load(), 700);
  }
  // As after a kill -9 between the shared commit and noting it locally: it starts over.
  {
    auto db = OpenSqliteDatabase((dir_ / "audit.db").string(), "test", {});
    ASSERT_TRUE(db.has_value());
    ASSERT_TRUE(ExecSql(*db, "DELETE FROM audit_shipped", "test", ""));
    sqlite3_close_v2(*db);
  }
  auto again = NewShipper();
  int64_t total = 0;
  for (int64_t n; (n = *again->ShipOnce(2'000'000)) > 0;) total += n;
  EXPECT_EQ(total, 1200);
  EXPECT_EQ(Rows(), 1200);
}

TEST_F(SharedTrailTest, AnUnreachableTrailKeepsEverythingLocalAndSaysWhy) {
  ASSERT_TRUE(log_->Write(Make("t", 1)));
  ShipperOptions o;
  o.local_path = (dir_ / "audit.db").string();
  o.url = "postgresql://toolwarden@127.0.0.1:1/nowhere";
  o.interval_ms = 3'600'000;
  int64_t through = -1;
  Shipper s(o, [&](int64_t t) { through = t; });
  ASSERT_TRUE(s.Start().has_value());
  auto n = s.ShipOnce(10);
  ASSERT_FALSE(n.has_value());
  EXPECT_NE(n.error().message().find("127.0.0.1"), std::string::npos) << n.error().message();
  EXPECT_EQ(through, 0);
  EXPECT_EQ(QueryAudit(LocalSpec(), Query{})->size(), 1u);
}

TEST(SharedTrailUrlTest, APasswordInTheUrlIsRefusedWithoutBeingEchoed) {
  auto c = pg::Connection::Open("postgresql://tw:hunter2@127.0.0.1:5432/audit");
  ASSERT_FALSE(c.has_value());
  EXPECT_NE(c.error().message().find("PGPASSWORD"), std::string::npos);
  EXPECT_EQ(c.error().message().find("hunter2"), std::string::npos);
  EXPECT_FALSE(pg::Connection::Open("mysql://x/y").has_value());
}

}  // namespace
}  // namespace tw::audit
