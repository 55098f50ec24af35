#include "approval/approval_store.h"

#include <gtest/gtest.h>

namespace tw::approval {
namespace {

Approval Make(const char* id, int64_t expires) {
  return Approval{id, 0, expires, "local", "s", "srv", "pay", R"({"amount":5})", "d",
                  State::kPending, "", 0, "", ThisOwner()};
}

TEST(ApprovalStoreTest, ResolvesOnceAndKeepsTheRecord) {
  auto store = std::move(*OpenApprovalStore("memory"));
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

TEST(ApprovalStoreTest, AnExpiredApprovalCannotBeApproved) {
  auto store = std::move(*OpenApprovalStore("memory"));
  ASSERT_TRUE(store->Create(Make("a2", 100)).has_value());
  auto late = store->Resolve("a2", State::kApproved, "alice", "", 100);
  ASSERT_FALSE(late.has_value());
  EXPECT_NE(late.error().message().find("expired"), std::string::npos);
  EXPECT_TRUE(store->Resolve("a2", State::kExpired, "", "timed out", 100).has_value());
}

TEST(ApprovalStoreTest, AbandonsOnlyWhatADeadGatewayHeld) {
  auto store = std::move(*OpenApprovalStore("memory"));
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

}  // namespace
}  // namespace tw::approval
