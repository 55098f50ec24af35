#include "app/session_timers.h"

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <thread>

namespace tw::app {
namespace {

TEST(SessionTimersTest, APendingTimerDoesNotHoldItsLoopOnceCancelled) {
  boost::asio::io_context io;
  SessionTimers timers;
  bool fired = false;
  timers.On(io)(60'000, [&] { fired = true; });  // the aggregate's wait, made long
  std::promise<void> ran;
  std::thread loop([&] {
    io.run();
    ran.set_value();
  });
  timers.CancelAll();
  // Without the cancel, run() would return a minute from now.
  const auto status = ran.get_future().wait_for(std::chrono::seconds(10));
  EXPECT_EQ(status, std::future_status::ready);
  if (status != std::future_status::ready) io.stop();
  loop.join();
  EXPECT_FALSE(fired);
}

TEST(SessionTimersTest, ATimerFiresWhenNotCancelled) {
  boost::asio::io_context io;
  SessionTimers timers;
  bool fired = false;
  timers.On(io)(1, [&] { fired = true; });
  io.run();
  EXPECT_TRUE(fired);
}

}  // namespace
}  // namespace tw::app
