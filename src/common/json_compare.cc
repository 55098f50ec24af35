#include "common/json_compare.h"

#include <cmath>
#include <cstdint>

namespace tw {

namespace json = boost::json;

namespace {

bool IsInteger(const json::value& v) { return v.is_int64() || v.is_uint64(); }

// Compares an integer with a finite double exactly.
int CompareIntDouble(const json::value& i, double d) {
  // 2^63 and 2^64 are exact doubles; beyond them every int64/uint64 is smaller.
  constexpr double kTwo63 = 9223372036854775808.0;
  constexpr double kTwo64 = 18446744073709551616.0;
  const double fl = std::floor(d);
  const bool has_fraction = d != fl;
  if (i.is_int64()) {
    const int64_t x = i.get_int64();
    if (fl >= kTwo63) return -1;
    if (fl < -kTwo63) return 1;
    const int64_t f = static_cast<int64_t>(fl);
    if (x != f) return x < f ? -1 : 1;
    return has_fraction ? -1 : 0;
  }
  const uint64_t x = i.get_uint64();
  if (fl < 0) return 1;
  if (fl >= kTwo64) return -1;
  const uint64_t f = static_cast<uint64_t>(fl);
  if (x != f) return x < f ? -1 : 1;
  return has_fraction ? -1 : 0;
}

int CompareIntegers(const json::value& a, const json::value& b) {
  if (a.is_int64() && b.is_int64()) {
    return a.get_int64() < b.get_int64() ? -1 : a.get_int64() > b.get_int64() ? 1 : 0;
  }
  if (a.is_uint64() && b.is_uint64()) {
    return a.get_uint64() < b.get_uint64() ? -1 : a.get_uint64() > b.get_uint64() ? 1 : 0;
  }
  // One int64, one uint64.
  if (a.is_int64()) {
    const int64_t x = a.get_int64();
    if (x < 0) return -1;
    const uint64_t ux = static_cast<uint64_t>(x), y = b.get_uint64();
    return ux < y ? -1 : ux > y ? 1 : 0;
  }
  return -CompareIntegers(b, a);
}

}  // namespace

std::optional<int> CompareNumbers(const json::value& a, const json::value& b) {
  if (!a.is_number() || !b.is_number()) return std::nullopt;
  if (IsInteger(a) && IsInteger(b)) return CompareIntegers(a, b);
  if (a.is_double() && b.is_double()) {
    const double x = a.get_double(), y = b.get_double();
    if (std::isnan(x) || std::isnan(y)) return std::nullopt;
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (a.is_double()) {
    if (std::isnan(a.get_double())) return std::nullopt;
    if (std::isinf(a.get_double())) return a.get_double() < 0 ? -1 : 1;
    return -CompareIntDouble(b, a.get_double());
  }
  if (std::isnan(b.get_double())) return std::nullopt;
  if (std::isinf(b.get_double())) return b.get_double() < 0 ? 1 : -1;
  return CompareIntDouble(a, b.get_double());
}

bool JsonEquals(const json::value& a, const json::value& b) {
  if (a.is_number() && b.is_number()) return CompareNumbers(a, b) == 0;
  if (a.kind() != b.kind()) return false;
  if (a.is_array()) {
    const auto &x = a.get_array(), &y = b.get_array();
    if (x.size() != y.size()) return false;
    for (size_t i = 0; i < x.size(); ++i) {
      if (!JsonEquals(x[i], y[i])) return false;
    }
    return true;
  }
  if (a.is_object()) {
    const auto &x = a.get_object(), &y = b.get_object();
    if (x.size() != y.size()) return false;
    for (const auto& kv : x) {
      const json::value* other = y.if_contains(kv.key());
      if (!other || !JsonEquals(kv.value(), *other)) return false;
    }
    return true;
  }
  return a == b;
}

}  // namespace tw
