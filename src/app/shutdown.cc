#include "app/shutdown.h"

#include <spdlog/spdlog.h>

#include <csignal>

namespace tw::app {

GracefulShutdown::GracefulShutdown(boost::asio::io_context& io, transport::HttpServer& server,
                                   int64_t deadline_ms, std::function<void()> stop)
    : server_(server),
      deadline_ms_(deadline_ms),
      stop_(std::move(stop)),
      signals_(io, SIGINT, SIGTERM),
      timer_(io) {}

void GracefulShutdown::Arm() {
  signals_.async_wait([this](boost::system::error_code ec, int sig) {
    if (ec) return;
    server_.Drain();
    until_ = std::chrono::steady_clock::now() + std::chrono::milliseconds(deadline_ms_);
    // A second signal stops at once. (Registered before polling: Poll may finish right away,
    // and a wait registered after Finish would keep the loop alive.)
    signals_.async_wait([this](boost::system::error_code e2, int) {
      if (e2) return;
      spdlog::warn("second signal: stopping now");
      Finish();
    });
    server_.CountInFlight([this, sig](size_t in_flight) {
      spdlog::info("received signal {}; draining ({} request(s) in flight, up to {} ms)", sig,
                   in_flight, deadline_ms_);
      Settle(in_flight);
    });
  });
}

void GracefulShutdown::Poll() {
  if (finished_) return;
  server_.CountInFlight([this](size_t in_flight) { Settle(in_flight); });
}

void GracefulShutdown::Settle(size_t in_flight) {
  if (finished_) return;
  if (in_flight == 0 || std::chrono::steady_clock::now() >= until_) {
    if (in_flight > 0) spdlog::warn("shutdown deadline passed with {} request(s) in flight", in_flight);
    Finish();
    return;
  }
  timer_.expires_after(std::chrono::milliseconds(50));
  timer_.async_wait([this](boost::system::error_code e) {
    if (!e) Poll();
  });
}

void GracefulShutdown::Finish() {
  if (finished_) return;
  finished_ = true;
  boost::system::error_code ignored;
  signals_.cancel(ignored);
  timer_.cancel();
  spdlog::info("closing sessions and stopping servers");
  stop_();
}

}  // namespace tw::app
