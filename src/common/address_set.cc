#include "common/address_set.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>
#include <optional>

namespace tw {

namespace {

struct Address {
  std::array<uint8_t, 16> bytes{};
  bool v6 = false;
};

// An address in text; an IPv4-mapped IPv6 address becomes its IPv4 address.
std::optional<Address> ParseAddress(std::string_view text) {
  if (text.empty() || text.size() > 45) return std::nullopt;
  const std::string z(text);
  Address a;
  if (inet_pton(AF_INET, z.c_str(), a.bytes.data()) == 1) return a;
  if (inet_pton(AF_INET6, z.c_str(), a.bytes.data()) != 1) return std::nullopt;
  static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(a.bytes.data(), kMapped, sizeof kMapped) == 0) {
    std::memmove(a.bytes.data(), a.bytes.data() + 12, 4);
    std::memset(a.bytes.data() + 4, 0, 12);
    return a;
  }
  a.v6 = true;
  return a;
}

// True when the first `prefix` bits of `a` and `b` agree.
bool SamePrefix(const std::array<uint8_t, 16>& a, const std::array<uint8_t, 16>& b, int prefix) {
  const int whole = prefix / 8, rest = prefix % 8;
  if (std::memcmp(a.data(), b.data(), static_cast<size_t>(whole)) != 0) return false;
  if (rest == 0) return true;
  const uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (a[whole] & mask) == (b[whole] & mask);
}

}  // namespace

Result<AddressSet> AddressSet::Parse(const std::vector<std::string>& entries) {
  AddressSet set;
  for (const std::string& entry : entries) {
    auto bad = [&entry](std::string_view why) {
      return Fail(Error::InvalidArgument("\"" + entry + "\" " + std::string(why)));
    };
    const size_t slash = entry.find('/');
    const auto address = ParseAddress(std::string_view(entry).substr(0, slash));
    if (!address) return bad("is not an IP address or CIDR range (10.0.0.5, 10.0.0.0/8, fd00::/8)");
    Range r;
    r.bytes = address->bytes;
    r.v6 = address->v6;
    const int bits = r.v6 ? 128 : 32;
    r.prefix = bits;
    if (slash != std::string::npos) {
      const std::string_view digits = std::string_view(entry).substr(slash + 1);
      int n = -1;
      const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
      if (ec != std::errc() || end != digits.data() + digits.size() || digits.empty() || n < 0 ||
          n > bits) {
        return bad("has a prefix length that is not 0-" + std::to_string(bits));
      }
      r.prefix = n;
      std::array<uint8_t, 16> masked = r.bytes;
      for (int i = n; i < bits; ++i) masked[i / 8] &= static_cast<uint8_t>(~(0x80 >> (i % 8)));
      if (masked != r.bytes) return bad("has bits set past its prefix length");
    }
    set.ranges_.push_back(r);
  }
  return set;
}

bool AddressSet::Contains(std::string_view address) const {
  if (ranges_.empty()) return false;
  const auto a = ParseAddress(address);
  if (!a) return false;
  for (const Range& r : ranges_) {
    if (r.v6 == a->v6 && SamePrefix(r.bytes, a->bytes, r.prefix)) return true;
  }
  return false;
}

}  // namespace tw
