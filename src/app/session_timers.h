// SessionTimers: the timers sessions schedule (gateway::Scheduler — the aggregate's wait for
// slow servers at initialize), each on its session's loop, all cancelled when the gateway
// stops: a pending timer is work that would keep its loop running, and the process with it,
// until it fires.
//
// Thread-safe: sessions on every loop schedule, the stopping thread cancels.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <memory>
#include <mutex>
#include <vector>

#include "gateway/aggregate_session.h"

namespace tw::app {

class SessionTimers {
 public:
  // A scheduler whose timers run on `io`.
  gateway::Scheduler On(boost::asio::io_context& io);
  // Cancels every pending timer (on its own loop); their functions never run.
  void CancelAll();

 private:
  std::mutex mu_;
  std::vector<std::weak_ptr<boost::asio::steady_timer>> timers_;  // Guarded by mu_.
};

}  // namespace tw::app
