// FakeClock: a Clock tests set and advance by hand. Test-only.
#pragma once

#include <atomic>

#include "common/clock.h"

namespace tw::testing {

class FakeClock : public Clock {
 public:
  explicit FakeClock(int64_t now_ms = 1'700'000'000'000) : now_(now_ms) {}
  int64_t NowMs() const override { return now_.load(); }
  void Set(int64_t now_ms) { now_ = now_ms; }
  void Advance(int64_t ms) { now_ += ms; }

 private:
  std::atomic<int64_t> now_;
};

}  // namespace tw::testing
