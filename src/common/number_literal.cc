#include "common/number_literal.h"

#include <boost/json.hpp>
#include <charconv>
#include <cmath>
#include <cstring>
#include <cstdint>

namespace tw {

namespace {

// A decimal value as sign, significant digits (no leading or trailing zeros) and exponent:
// value = digits × 10^exponent. Zero has no digits.
struct Decimal {
  bool negative = false;
  std::string digits;
  int64_t exponent = 0;
  bool operator==(const Decimal& o) const {
    if (digits.empty() && o.digits.empty()) return true;  // -0 and 0 are one value
    return negative == o.negative && digits == o.digits && exponent == o.exponent;
  }
};

// Reads a JSON number literal (or std::to_chars' shortest form, which has the same grammar
// with an optional '+' in the exponent).
Decimal ToDecimal(std::string_view s) {
  Decimal d;
  size_t i = 0;
  if (i < s.size() && s[i] == '-') {
    d.negative = true;
    ++i;
  }
  int64_t after_point = 0;
  bool point = false;
  for (; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '.') {
      point = true;
    } else if (c >= '0' && c <= '9') {
      if (!(c == '0' && d.digits.empty())) d.digits += c;  // leading zeros say nothing
      if (point) ++after_point;
    } else {
      break;
    }
  }
  int64_t exp = 0;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    bool neg = false;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) neg = s[i++] == '-';
    for (; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i) {
      if (exp < 1'000'000'000) exp = exp * 10 + (s[i] - '0');  // far past any double
    }
    if (neg) exp = -exp;
  }
  d.exponent = exp - after_point;
  while (!d.digits.empty() && d.digits.back() == '0') {
    d.digits.pop_back();
    ++d.exponent;
  }
  return d;
}

bool PlainInteger(std::string_view lit) {
  for (char c : lit) {
    if (c == '.' || c == 'e' || c == 'E') return false;
  }
  return true;
}

}  // namespace

NumberExactness ClassifyNumberLiteral(std::string_view lit) {
  if (PlainInteger(lit)) {
    const char* first = lit.data();
    const char* last = lit.data() + lit.size();
    if (!lit.empty() && lit[0] == '-') {
      int64_t v = 0;
      if (std::from_chars(first, last, v).ec == std::errc()) return NumberExactness::kExact;
    } else {
      uint64_t v = 0;
      if (std::from_chars(first, last, v).ec == std::errc()) return NumberExactness::kExact;
    }
    // Past 64 bits Boost.JSON reads it as a double: judged like any other below.
  }
  // The double Boost.JSON itself reads (its conversion, not another library's, is what is
  // evaluated and forwarded).
  unsigned char buf[256];
  boost::json::static_resource mr(buf, sizeof buf);
  boost::system::error_code ec;
  const boost::json::value v = boost::json::parse(lit, ec, &mr);
  if (ec || !v.is_number()) return NumberExactness::kNonFinite;  // unreadable: refuse
  if (!v.is_double()) return NumberExactness::kExact;
  const double d = v.get_double();
  if (!std::isfinite(d)) return NumberExactness::kNonFinite;
  char shortest[64];
  const auto r = std::to_chars(shortest, shortest + sizeof shortest, d);
  if (r.ec != std::errc()) return NumberExactness::kInexact;
  return ToDecimal(lit) == ToDecimal(std::string_view(shortest, r.ptr - shortest))
             ? NumberExactness::kExact
             : NumberExactness::kInexact;
}

std::optional<NumberFinding> FindInexactNumber(std::string_view text) {
  std::optional<NumberFinding> worst;
  const size_t n = text.size();
  const char* const base = text.data();
  for (size_t i = 0; i < n;) {
    const char c = text[i];
    if (c == '"') {
      // Most of a message is string contents: jump from quote to quote (memchr), and count the
      // backslashes before a quote to tell an escaped one.
      ++i;
      for (;;) {
        const void* q = i < n ? std::memchr(base + i, '"', n - i) : nullptr;
        if (!q) return worst;  // an unterminated string: nothing more to scan
        const size_t at = static_cast<size_t>(static_cast<const char*>(q) - base);
        size_t backslashes = 0;
        while (at - backslashes > i && text[at - backslashes - 1] == '\\') ++backslashes;
        i = at + 1;
        if (backslashes % 2 == 0) break;
      }
      continue;
    }
    if (c != '-' && (c < '0' || c > '9')) {
      ++i;
      continue;
    }
    const size_t start = i;
    bool plain = true;
    for (; i < n; ++i) {
      const char k = text[i];
      if (k >= '0' && k <= '9') continue;
      if (k == '-' || k == '+' || k == '.' || k == 'e' || k == 'E') {
        if (k != '-' || i != start) plain = false;
        continue;
      }
      break;
    }
    const std::string_view lit = text.substr(start, i - start);
    // Up to 18 digits every integer fits an int64: the common case costs nothing more.
    if (plain && lit.size() <= 18) continue;
    const NumberExactness e = ClassifyNumberLiteral(lit);
    if (e == NumberExactness::kExact) continue;
    if (!worst || (e == NumberExactness::kNonFinite && worst->what != NumberExactness::kNonFinite)) {
      worst = NumberFinding{e, std::string(lit.substr(0, 64))};
    }
  }
  return worst;
}

std::string DescribeNumberFinding(const NumberFinding& f) {
  if (f.what == NumberExactness::kNonFinite) {
    return "the number " + f.literal + " is beyond the range of a 64-bit float";
  }
  return "the number " + f.literal +
         " has more precision than a 64-bit float holds (it would be read as a different "
         "value); send at most 17 significant digits";
}

}  // namespace tw
