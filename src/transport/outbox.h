// WriteOutbox: writes the queued messages of a pipe (the stdio wrapper's stdout, a stdio
// upstream's stdin) until the queue is empty, everything queued at the time in ONE gathered
// write. One write per message cost a system call and, worse, a wake-up of the reader per
// message: with several calls in flight, the stdio wrapper spent a third of its CPU in the
// scheduler (docs/benchmarks.md, "The stdio wrapper"). The first message still goes out at
// once — the write starts when the caller queues it — only those queued during a write wait
// for the next.
//
// Contract: `outbox` is owned by the caller, appended to by it at any time between writes (the
// same thread), and empty when this returns. On a write error the messages not written are
// dropped and the error returned. Thread: the stream's executor.
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <deque>
#include <string>
#include <vector>

namespace tw::transport {

template <typename Stream>
boost::asio::awaitable<boost::system::error_code> WriteOutbox(Stream& stream,
                                                              std::deque<std::string>& outbox) {
  std::vector<std::string> batch;
  std::vector<boost::asio::const_buffer> buffers;
  while (!outbox.empty()) {
    batch.assign(std::make_move_iterator(outbox.begin()), std::make_move_iterator(outbox.end()));
    outbox.clear();
    buffers.clear();
    for (const std::string& m : batch) buffers.push_back(boost::asio::buffer(m));
    auto [ec, n] = co_await boost::asio::async_write(
        stream, buffers, boost::asio::as_tuple(boost::asio::use_awaitable));
    if (ec) {
      outbox.clear();
      co_return ec;
    }
  }
  co_return boost::system::error_code{};
}

}  // namespace tw::transport
