#include "admin/console_sessions.h"

#include <gtest/gtest.h>

#include "redis/redis_client.h"
#include "testing/redis_server.h"

namespace tw::admin {
namespace {

// A fleet's console: two replicas' session tables on one real redis-server.
class SharedConsoleSessionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (testing::RedisServer::Binary().empty()) GTEST_SKIP() << "redis-server is not installed";
    ASSERT_TRUE(redis_.started());
    for (ConsoleSessions* s : {&a_, &b_}) {
      auto c = redis::Client::Open(redis_.url());
      ASSERT_TRUE(c.has_value()) << c.error().message();
      s->ShareThrough(std::move(*c));
    }
  }
  testing::RedisServer redis_;
  ConsoleSessions a_{ConsoleSessions::Options{1000, 5000, 256}};
  ConsoleSessions b_{ConsoleSessions::Options{1000, 5000, 256}};
};

TEST_F(SharedConsoleSessionsTest, ASignInThroughOneReplicaHoldsOnEveryReplica) {
  ConsoleLogin login = a_.Open(10'000);
  auto found = b_.Find(login.id, 10'500);
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->csrf, login.csrf);
  EXPECT_EQ(found->expires_ms, 15'000);
  // Used through b at 10.5 s: still alive through a at 11.4 s (idle 1 s), not at 12.5 s.
  EXPECT_TRUE(a_.Find(login.id, 11'400).has_value());
  EXPECT_FALSE(b_.Find(login.id, 12'500).has_value());
  EXPECT_FALSE(a_.Find(login.id, 12'501).has_value());
  // Not past its lifetime, however busy.
  ConsoleLogin busy = a_.Open(20'000);
  for (int64_t t = 20'000; t < 25'000; t += 500) EXPECT_TRUE(b_.Find(busy.id, t).has_value()) << t;
  EXPECT_FALSE(b_.Find(busy.id, 25'000).has_value());
  // A cookie of the right shape that names nothing, and one of the wrong shape.
  EXPECT_FALSE(a_.Find(std::string(64, 'a'), 20'000).has_value());
  EXPECT_FALSE(a_.Find("short", 20'000).has_value());
  // Only digests are stored.
  auto keys = redis::Client::Open(redis_.url()).value()->Command({"KEYS", "tw:console:*"});
  ASSERT_TRUE(keys.has_value());
  for (const auto& k : keys->elements) EXPECT_EQ(k.str.find(busy.id), std::string::npos);
}

TEST_F(SharedConsoleSessionsTest, SignOutAndResetEndSessionsOnEveryReplica) {
  ConsoleLogin one = a_.Open(1'000), two = a_.Open(1'000), three = b_.Open(1'000);
  b_.Close(one.id);
  EXPECT_FALSE(a_.Find(one.id, 1'100).has_value());
  EXPECT_TRUE(a_.Find(two.id, 1'100).has_value());
  a_.CloseAll();  // the admin token was replaced through a
  EXPECT_FALSE(b_.Find(two.id, 1'200).has_value());
  EXPECT_FALSE(b_.Find(three.id, 1'200).has_value());
}

TEST_F(SharedConsoleSessionsTest, AnUnreachableRedisFindsNoSession) {
  ConsoleLogin login = a_.Open(1'000);
  redis_.Stop();
  EXPECT_FALSE(b_.Find(login.id, 1'100).has_value());
  ConsoleLogin orphan = a_.Open(1'200);  // not stored: its cookie will name nothing
  EXPECT_FALSE(a_.Find(orphan.id, 1'300).has_value());
}

}  // namespace
}  // namespace tw::admin
