#include "common/failure_throttle.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

namespace tw {
namespace {

TEST(FailureThrottleTest, BlocksOneAddressPastItsFailuresAndNoOther) {
  FailureThrottle t(3);
  const int64_t t0 = 10 * 60'000 + 5'000;  // 5 s into a minute
  for (int i = 0; i < 3; ++i) {
    EXPECT_FALSE(t.Blocked("10.0.0.1", t0));
    t.Failed("10.0.0.1", t0);
  }
  EXPECT_EQ(t.Blocked("10.0.0.1", t0), 55);
  EXPECT_FALSE(t.Blocked("10.0.0.2", t0)) << "another address is never affected";
  // The next minute starts afresh.
  EXPECT_FALSE(t.Blocked("10.0.0.1", t0 + 55'000));
}

TEST(FailureThrottleTest, StaysBoundedUnderAFloodOfAddresses) {
  FailureThrottle t(1, 100);
  for (int i = 0; i < 1000; ++i) t.Failed(fmt::format("a{}", i), 0);
  // The newest addresses are still tracked.
  EXPECT_TRUE(t.Blocked("a999", 0));
}

}  // namespace
}  // namespace tw
