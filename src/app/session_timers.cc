#include "app/session_timers.h"

#include <boost/asio/post.hpp>

namespace tw::app {

gateway::Scheduler SessionTimers::On(boost::asio::io_context& io) {
  return [this, &io](int64_t delay_ms, std::function<void()> fn) {
    auto timer =
        std::make_shared<boost::asio::steady_timer>(io, std::chrono::milliseconds(delay_ms));
    {
      std::lock_guard lock(mu_);
      std::erase_if(timers_, [](const auto& t) { return t.expired(); });
      timers_.push_back(timer);
    }
    timer->async_wait([timer, fn = std::move(fn)](boost::system::error_code ec) {
      if (!ec) fn();
    });
  };
}

void SessionTimers::CancelAll() {
  std::lock_guard lock(mu_);
  for (auto& weak : timers_) {
    if (auto timer = weak.lock()) {
      boost::asio::post(timer->get_executor(), [timer] { timer->cancel(); });
    }
  }
  timers_.clear();
}

}  // namespace tw::app
