#include "common/failure_throttle.h"

#include <iterator>

namespace tw {

std::optional<int64_t> FailureThrottle::Blocked(std::string_view address, int64_t now_ms) const {
  const int64_t minute = now_ms / 60'000;
  std::lock_guard lock(mu_);
  auto it = windows_.find(address);
  if (it == windows_.end() || it->second.minute != minute ||
      it->second.failures < max_per_minute_) {
    return std::nullopt;
  }
  return (minute + 1) * 60 - now_ms / 1000;
}

void FailureThrottle::Failed(std::string_view address, int64_t now_ms) {
  const int64_t minute = now_ms / 60'000;
  std::lock_guard lock(mu_);
  auto it = windows_.find(address);
  if (it == windows_.end()) {
    if (windows_.size() >= max_addresses_) {
      std::erase_if(windows_, [&](const auto& kv) { return kv.second.minute != minute; });
      if (windows_.size() >= max_addresses_) windows_.clear();
    }
    it = windows_.emplace(std::string(address), Window{minute, 0}).first;
  }
  if (it->second.minute != minute) it->second = Window{minute, 0};
  ++it->second.failures;
}

}  // namespace tw
