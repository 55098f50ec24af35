// Test-only: the event loop of a guard's group commit (GuardDeps::group_commit), run by
// hand. The audit writer posts completions from its thread; the test runs them on its own,
// when it chooses — so it can look at what is (not yet) forwarded, answered or committed.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>

#include "gateway/tool_call_guard.h"

namespace tw::testing {

class ManualLoop {
 public:
  // For GuardDeps::group_commit. The loop must outlive the guard's records in flight.
  std::function<gateway::LoopPoster()> Poster() {
    return [this]() -> gateway::LoopPoster {
      return [this](std::function<void()> fn) {
        {
          std::lock_guard lock(mu_);
          posted_.push_back(std::move(fn));
        }
        cv_.notify_all();
      };
    };
  }

  // Runs what was posted, waiting (up to 10 s) until `count` functions have run. Returns how
  // many ran.
  size_t Run(size_t count) {
    size_t ran = 0;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (ran < count) {
      std::function<void()> fn;
      {
        std::unique_lock lock(mu_);
        if (!cv_.wait_until(lock, deadline, [this] { return !posted_.empty(); })) break;
        fn = std::move(posted_.front());
        posted_.pop_front();
      }
      fn();
      ++ran;
    }
    return ran;
  }

  // Functions posted and not run yet.
  size_t waiting() {
    std::lock_guard lock(mu_);
    return posted_.size();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> posted_;
};

}  // namespace tw::testing
