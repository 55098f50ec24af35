#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace tw {

// Appends `n` bytes to `out` as lowercase hex, two digits per byte, most significant first.
inline void AppendHex(std::string& out, const unsigned char* bytes, size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (size_t i = 0; i < n; ++i) {
    out.push_back(kHex[bytes[i] >> 4]);
    out.push_back(kHex[bytes[i] & 15]);
  }
}

// Appends `v` as 16 lowercase hex digits (zero-padded, big-endian): the same text as
// printf("%016llx"), without the format parsing.
inline void AppendHex64(std::string& out, uint64_t v) {
  unsigned char bytes[8];
  for (int i = 7; i >= 0; --i) {
    bytes[i] = static_cast<unsigned char>(v & 0xff);
    v >>= 8;
  }
  AppendHex(out, bytes, sizeof bytes);
}

}  // namespace tw
