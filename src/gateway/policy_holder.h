// PolicyHolder: the current policy snapshot, replaced whole on reload.
//
// Readers take a shared_ptr to an immutable Policy and keep it for the whole call, so a reload
// in the middle of a call cannot show it half of each policy. Thread-safe: Current() and
// Replace() may race freely (std::atomic<std::shared_ptr>).
#pragma once

#include <atomic>
#include <memory>

#include "policy/policy.h"

namespace tw::gateway {

class PolicyHolder {
 public:
  explicit PolicyHolder(std::shared_ptr<const policy::Policy> initial)
      : current_(std::move(initial)) {}

  std::shared_ptr<const policy::Policy> Current() const { return current_.load(); }
  void Replace(std::shared_ptr<const policy::Policy> next) {
    current_.store(std::move(next));
    reloads_.fetch_add(1);
  }
  // Counts reloads that were refused because the new file was invalid.
  void CountFailedReload() { failed_reloads_.fetch_add(1); }

  uint64_t reloads() const { return reloads_.load(); }
  uint64_t failed_reloads() const { return failed_reloads_.load(); }

 private:
  std::atomic<std::shared_ptr<const policy::Policy>> current_;
  std::atomic<uint64_t> reloads_{0};
  std::atomic<uint64_t> failed_reloads_{0};
};

}  // namespace tw::gateway
