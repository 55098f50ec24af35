#include "approval/approval_store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "testing/state_under_test.h"

namespace tw::approval {
namespace {

Approval Make(const char* id, int64_t expires) {
  return Approval{id, 0, expires, "local", "s", "srv", "pay", R"({"amount":5})", "d",
                  State::kPending, "", 0, "", ThisOwner()};
}

// Every store, Redis on a real redis-server started for the test.
class ApprovalStoreTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (!state_.skip().empty()) GTEST_SKIP() << state_.skip();
  }
  std::unique_ptr<ApprovalStore> Open() {
    auto s = OpenApprovalStore(state_.spec());
    EXPECT_TRUE(s.has_value()) << (s ? "" : s.error().message());
    return s ? std::move(*s) : nullptr;
  }
  testing::StateUnderTest state_{GetParam()};
};

TEST_P(ApprovalStoreTest, ResolvesOnceAndKeepsTheRecord) {
  auto store = Open();
  ASSERT_TRUE(store->Create(Make("a1", 1000)).has_value());
  auto ok = store->Resolve("a1", State::kApproved, "alice", "fine", 10);
  ASSERT_TRUE(ok.has_value()) << ok.error().message();
  EXPECT_EQ(ok->state, State::kApproved);
  auto again = store->Resolve("a1", State::kDenied, "bob", "", 20);
  ASSERT_FALSE(again.has_value());
  EXPECT_NE(again.error().message().find("already approved (by alice)"), std::string::npos);
  auto got = *store->Get("a1");
  EXPECT_EQ(got->resolved_by, "alice");
  EXPECT_EQ(got->reason, "fine");
  EXPECT_FALSE(store->Resolve("nope", State::kApproved, "x", "", 0).has_value());
}

TEST_P(ApprovalStoreTest, AnExpiredApprovalCannotBeApproved) {
  auto store = Open();
  ASSERT_TRUE(store->Create(Make("a2", 100)).has_value());
  auto late = store->Resolve("a2", State::kApproved, "alice", "", 100);
  ASSERT_FALSE(late.has_value());
  EXPECT_NE(late.error().message().find("expired"), std::string::npos);
  EXPECT_TRUE(store->Resolve("a2", State::kExpired, "", "timed out", 100).has_value());
}

TEST_P(ApprovalStoreTest, AbandonsOnlyWhatADeadGatewayHeld) {
  auto store = Open();
  Approval mine = Make("a3", 1000);  // held by this (running) process
  Approval dead = Make("a4", 1000);
  dead.owner = ThisOwner().substr(0, ThisOwner().rfind(':')) + ":999999999";  // no such pid
  Approval elsewhere = Make("a5", 1000);
  elsewhere.owner = "another-host:1";
  for (const auto& a : {mine, dead, elsewhere}) ASSERT_TRUE(store->Create(a).has_value());
  EXPECT_EQ(*store->AbandonOrphans(5), 1);
  EXPECT_EQ((*store->Get("a4"))->state, State::kAbandoned);
  EXPECT_EQ((*store->Get("a3"))->state, State::kPending);
  EXPECT_EQ((*store->Get("a5"))->state, State::kPending);
}

// The stores several gateways can share.
class SharedApprovalStoreTest : public ApprovalStoreTest {};

TEST_P(SharedApprovalStoreTest, ADecisionTakenThroughAnotherGatewayIsSeenAndTakenOnce) {
  auto holder = Open();  // the gateway holding the call
  auto other = Open();   // the one whose console an administrator uses
  Approval a = Make("a6", 1000);
  a.args = R"({"note":"ünïcode \"quoted\"","amount":5})";
  ASSERT_TRUE(holder->Create(a).has_value());
  auto pending = other->List(true);
  ASSERT_TRUE(pending.has_value());
  ASSERT_EQ(pending->size(), 1u);
  EXPECT_EQ(pending->front().args, a.args);
  EXPECT_EQ(pending->front().owner, a.owner);
  // Two administrators decide at once: exactly one decision counts.
  auto approve = other->Resolve("a6", State::kApproved, "alice", "", 10);
  auto deny = holder->Resolve("a6", State::kDenied, "bob", "", 11);
  EXPECT_TRUE(approve.has_value());
  EXPECT_FALSE(deny.has_value());
  EXPECT_EQ((*holder->Get("a6"))->state, State::kApproved);
  EXPECT_EQ((*holder->Get("a6"))->resolved_by, "alice");
  EXPECT_TRUE(other->List(true)->empty());
  ASSERT_EQ(other->List(false)->size(), 1u);
}

// On Redis a decision is announced: the replica holding the call hears it at once.
class RedisApprovalStoreTest : public ApprovalStoreTest {};

TEST_P(RedisApprovalStoreTest, ADecisionTakenElsewhereWakesTheHolderAtOnce) {
  auto holder = Open();
  auto other = Open();
  std::atomic<int> woken{0};
  holder->OnResolved([&] { ++woken; });
  ASSERT_TRUE(holder->Create(Make("a7", 1000)).has_value());
  // The subscription starts on its own thread: until a decision of a probe approval is heard,
  // it is not listening yet.
  ASSERT_TRUE(holder->Create(Make("probe", 1000)).has_value());
  ASSERT_TRUE(other->Resolve("probe", State::kDenied, "x", "", 1).has_value());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  for (int i = 0; woken.load() == 0; ++i) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "no announcement heard";
    ASSERT_TRUE(holder->Create(Make(("p" + std::to_string(i)).c_str(), 1000)).has_value());
    (void)other->Resolve("p" + std::to_string(i), State::kDenied, "x", "", 1);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  const int before = woken.load();
  ASSERT_TRUE(other->Resolve("a7", State::kApproved, "alice", "", 2).has_value());
  while (woken.load() == before) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "a7's decision was not heard";
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  // Stops listening: its thread is joined before it returns, so nothing can be called after.
  holder->OnResolved({});
  const int after = woken.load();
  ASSERT_TRUE(holder->Create(Make("a8", 1000)).has_value());
  ASSERT_TRUE(other->Resolve("a8", State::kDenied, "bob", "", 3).has_value());
  EXPECT_EQ(woken.load(), after);
}

INSTANTIATE_TEST_SUITE_P(Stores, ApprovalStoreTest, ::testing::Values("memory", "sqlite", "redis"));
INSTANTIATE_TEST_SUITE_P(Stores, RedisApprovalStoreTest, ::testing::Values("redis"));
INSTANTIATE_TEST_SUITE_P(Stores, SharedApprovalStoreTest, ::testing::Values("sqlite", "redis"));

}  // namespace
}  // namespace tw::approval
