// Charges against a remote counter store (Redis, a real redis-server): batched off the loop
// (limits::ChargeBatcher), then recorded — a limit holds exactly, a Redis that is gone denies
// (or, with state_fail_mode open, lets through with a record saying so), and a charge whose
// record cannot be written is given back.
#include <gtest/gtest.h>

#include <filesystem>

#include "audit/audit.h"
#include "common/random.h"
#include "gateway/tool_call_guard.h"
#include "limits/counter_store.h"
#include "policy/loader.h"
#include "testing/fake_clock.h"
#include "testing/manual_loop.h"
#include "testing/redis_server.h"

namespace tw::gateway {
namespace {

class RemoteChargeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (testing::RedisServer::Binary().empty()) GTEST_SKIP() << "redis-server is not installed";
    ASSERT_TRUE(redis_.started());
    auto p = policy::CompilePolicy(
        R"({"version":"1","default":"deny","tools":{"echo":{"limits":[{"counter":"echo","window":"day","max":3}]}}})",
        "p.json", policy::FileFormat::kJson);
    ASSERT_TRUE(p.policy);
    policy_ = p.policy;
    store_ = std::move(*limits::OpenRedisStore(redis_.url()));
    ASSERT_TRUE(store_->Remote());
    batcher_ = std::make_unique<limits::ChargeBatcher>(*store_);
    dir_ = std::filesystem::temp_directory_path() / ("tw-remote-" + RandomHex(6));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    guard_.reset();
    batcher_.reset();
    audit_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  void Open(StateFailMode mode, int64_t min_free_bytes = 0) {
    audit_ = std::move(*audit::OpenAuditLog("sqlite:" + (dir_ / "audit.db").string(), "",
                                            audit::RetentionOptions{.min_free_bytes = min_free_bytes}));
    guard_ = std::make_unique<ToolCallGuard>(GuardDeps{.policies = [this] { return policy_; },
                                                       .counters = store_.get(),
                                                       .clock = &clock_,
                                                       .fail_mode = mode,
                                                       .server = "srv",
                                                       .audit = audit_.get(),
                                                       .group_commit = loop_.Poster(),
                                                       .batcher = batcher_.get()});
  }
  // Decides calls at once, as several loops would, then waits for their records.
  std::vector<GuardOutcome> Decide(int n) {
    std::vector<GuardOutcome> out;
    for (int i = 0; i < n; ++i) {
      out.push_back(guard_->Check(mcp::ToolCall{"echo", json::object{}}, policy::Identity{"bot", "s1", {}}));
      EXPECT_EQ(out.back().next, GuardOutcome::Next::kAwaitRecord);
      EXPECT_TRUE(out.back().admission.entries.empty()) << "nothing is charged on the loop";
    }
    size_t done = 0;
    for (auto& o : out) guard_->AwaitDurable(o, [&done] { ++done; });
    EXPECT_EQ(loop_.Run(out.size()), out.size());
    EXPECT_EQ(done, out.size());
    for (auto& o : out) guard_->Finish(o);
    return out;
  }
  int64_t Counted() {
    return *store_->Value(limits::CounterKey("srv", "echo", "grant", "bot",
                                             clock_.NowMs() / 86'400'000 * 86'400'000),
                          clock_.NowMs());
  }

  testing::RedisServer redis_;
  std::shared_ptr<const policy::Policy> policy_;
  testing::FakeClock clock_{1'700'000'000'000};
  testing::ManualLoop loop_;
  std::unique_ptr<limits::CounterStore> store_;
  std::unique_ptr<limits::ChargeBatcher> batcher_;
  std::unique_ptr<audit::AuditLog> audit_;
  std::unique_ptr<ToolCallGuard> guard_;
  std::filesystem::path dir_;
};

TEST_F(RemoteChargeTest, BatchedChargesHoldALimitExactlyAndAreRecorded) {
  Open(StateFailMode::kClosed);
  auto out = Decide(5);
  int allowed = 0;
  for (auto& o : out) allowed += o.decision.verdict == policy::Verdict::kAllow ? 1 : 0;
  EXPECT_EQ(allowed, 3);
  for (auto& o : out) {
    if (o.decision.verdict != policy::Verdict::kAllow) {
      EXPECT_NE(o.decision.reason.find("echo"), std::string::npos) << o.decision.reason;
    }
  }
  audit_->Flush();
  audit::Query allow;
  allow.decision = "allow";
  EXPECT_EQ(*audit::CountAudit("sqlite:" + (dir_ / "audit.db").string(), allow), 3);
  EXPECT_EQ(*audit::CountAudit("sqlite:" + (dir_ / "audit.db").string(), audit::Query{}), 5);
}

TEST_F(RemoteChargeTest, ARedisThatIsGoneDeniesUnlessTheServerChoseOpen) {
  Open(StateFailMode::kClosed);
  redis_.Stop();
  auto closed = Decide(1);
  EXPECT_EQ(closed[0].decision.verdict, policy::Verdict::kDeny);
  EXPECT_EQ(closed[0].decision.rule, "state");
  EXPECT_EQ(closed[0].decision.retry_after_s, 2);
  Open(StateFailMode::kOpen);
  auto open = Decide(1);
  EXPECT_EQ(open[0].decision.verdict, policy::Verdict::kAllow);
  audit_->Flush();
  auto records = audit::QueryAudit("sqlite:" + (dir_ / "audit.db").string(), audit::Query{});
  ASSERT_TRUE(records.has_value());
  ASSERT_FALSE(records->empty());
  EXPECT_EQ(records->front().rule, "state_fail_mode");
  EXPECT_EQ(records->front().decision, "allow");
}

TEST_F(RemoteChargeTest, AChargeWhoseRecordCannotBeWrittenIsGivenBack) {
  Open(StateFailMode::kClosed, /*min_free_bytes=*/INT64_MAX / 2);  // the disk is "full"
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (audit_->Unwritable().empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  auto out = Decide(1);
  EXPECT_EQ(out[0].decision.verdict, policy::Verdict::kDeny);
  EXPECT_NE(out[0].decision.reason.find("audit disk is nearly full"), std::string::npos);
  // The refund goes through the audit writer (off the loop): wait for it.
  audit_->Flush();
  EXPECT_EQ(Counted(), 0);
}

}  // namespace
}  // namespace tw::gateway
