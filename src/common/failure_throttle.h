// FailureThrottle: a brake on guessing credentials, per client address.
//
// Each address gets a one-minute window of failed attempts; past `max_per_minute` failures an
// address is refused (the caller answers 429) until its window ends — without its credentials
// being checked, so guessing costs the guesser and not the store. Other addresses are never
// affected: a correct token from elsewhere is never refused because someone else guessed.
// At most `max_addresses` addresses are tracked; when full, windows that have ended are
// forgotten first, then the whole table (a flood of addresses gets each its fresh window,
// which is what one address alone gets every minute).
//
// Thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace tw {

class FailureThrottle {
 public:
  explicit FailureThrottle(int max_per_minute = 20, size_t max_addresses = 100000)
      : max_per_minute_(max_per_minute), max_addresses_(max_addresses) {}

  // Seconds until `address` may try again, or nullopt when it may try now.
  std::optional<int64_t> Blocked(std::string_view address, int64_t now_ms) const;
  // Counts a failed attempt from `address`.
  void Failed(std::string_view address, int64_t now_ms);

 private:
  struct Window {
    int64_t minute = 0;
    int failures = 0;
  };
  int max_per_minute_;
  size_t max_addresses_;
  mutable std::mutex mu_;
  // Looked up by string_view without building a string (every authenticated request asks).
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, Window, Hash, std::equal_to<>> windows_;  // Guarded by mu_
};

}  // namespace tw
