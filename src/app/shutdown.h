// Graceful shutdown of an HTTP gateway (`serve`, `run --listen`) on SIGINT or SIGTERM: stop
// taking connections and sessions (/readyz turns 503), let the calls in flight finish for up to
// `deadline_ms`, then call `stop` (close sessions, stop servers). A second signal stops at once.
//
// Thread: the io_context's. Must outlive io.run().
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstddef>
#include <cstdint>
#include <functional>

#include "transport/http_server.h"

namespace tw::app {

class GracefulShutdown {
 public:
  GracefulShutdown(boost::asio::io_context& io, transport::HttpServer& server, int64_t deadline_ms,
                   std::function<void()> stop);
  // Starts waiting for the signals.
  void Arm();

 private:
  void Poll();
  // Finishes when nothing is in flight or the deadline has passed; else polls again soon.
  void Settle(size_t in_flight);
  void Finish();

  transport::HttpServer& server_;
  int64_t deadline_ms_;
  std::function<void()> stop_;
  boost::asio::signal_set signals_;
  boost::asio::steady_timer timer_;
  std::chrono::steady_clock::time_point until_;
  bool finished_ = false;
};

}  // namespace tw::app
