// AddressSet: IP addresses and CIDR ranges ("10.0.0.5", "10.0.0.0/8", "::1", "fd00::/8"), for
// the proxies whose X-Forwarded-For a gateway trusts. An IPv4-mapped IPv6 address
// ("::ffff:10.0.0.5") is the IPv4 address it maps. Immutable once parsed; thread-safe to read.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace tw {

class AddressSet {
 public:
  AddressSet() = default;
  // Each entry an address or ADDRESS/PREFIX (0-32 for IPv4, 0-128 for IPv6; host bits must be
  // zero). The error names the first entry that is neither.
  static Result<AddressSet> Parse(const std::vector<std::string>& entries);
  // True when `address` (as text, without brackets or port) is in one of the ranges.
  bool Contains(std::string_view address) const;
  bool empty() const { return ranges_.empty(); }

 private:
  struct Range {
    std::array<uint8_t, 16> bytes{};  // IPv4 in the first 4
    bool v6 = false;
    int prefix = 0;
  };
  std::vector<Range> ranges_;
};

}  // namespace tw
