#include "transport/outbox.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <csignal>
#include <optional>
#include <string>

namespace tw::transport {
namespace {

namespace asio = boost::asio;

std::string ReadAll(int fd) {
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  return out;
}

// Everything queued goes out in order, including what is queued while a write is under way.
TEST(WriteOutboxTest, WritesEveryQueuedMessageInOrderAndEmptiesTheQueue) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  asio::io_context io;
  asio::posix::stream_descriptor out(io, fds[1]);
  std::deque<std::string> outbox{"one\n", "two\n"};
  std::optional<boost::system::error_code> result;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        auto pending = WriteOutbox(out, outbox);
        outbox.push_back("three\n");  // queued before the coroutine first runs
        result = co_await std::move(pending);
      },
      asio::detached);
  // A message queued from another handler while the first write is in flight.
  asio::post(io, [&] { outbox.push_back("four\n"); });
  io.run();
  ASSERT_TRUE(result.has_value());
  EXPECT_FALSE(*result) << result->message();
  EXPECT_TRUE(outbox.empty());
  out.close();
  EXPECT_EQ(ReadAll(fds[0]), "one\ntwo\nthree\nfour\n");
  ::close(fds[0]);
}

// A reader that went away: the error is returned and nothing is left queued.
TEST(WriteOutboxTest, AFailedWriteReturnsTheErrorAndDropsTheRest) {
  std::signal(SIGPIPE, SIG_IGN);
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  ::close(fds[0]);
  asio::io_context io;
  asio::posix::stream_descriptor out(io, fds[1]);
  std::deque<std::string> outbox{"lost\n", "also lost\n"};
  std::optional<boost::system::error_code> result;
  asio::co_spawn(
      io, [&]() -> asio::awaitable<void> { result = co_await WriteOutbox(out, outbox); },
      asio::detached);
  io.run();
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(*result, asio::error::broken_pipe);
  EXPECT_TRUE(outbox.empty());
}

}  // namespace
}  // namespace tw::transport
