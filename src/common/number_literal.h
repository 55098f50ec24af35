// Exact numbers: whether a JSON number literal means what the gateway will forward.
//
// Boost.JSON reads an integer literal that fits 64 bits exactly and every other literal as a
// double. A policy compares that double, and the gateway forwards that double — so a literal
// whose decimal value differs from the double's (`100.0000000000000001` is read as 100, a 20-
// digit integer loses its last digits) would be decided on one value and mean another to a
// server that reads it more precisely, and `1e999` would be forwarded as `Infinity`, which is
// not JSON. A literal is *exact* when its decimal value equals the decimal value of the double
// Boost.JSON reads from it (0.1 is exact: the shortest decimal of that double is 0.1 again).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace tw {

enum class NumberExactness {
  kExact,      // what is evaluated and forwarded is the literal's value
  kInexact,    // finite, but the literal has more precision than a 64-bit float
  kNonFinite,  // beyond a 64-bit float's range (would become ±Infinity)
};

// Classifies one JSON number literal (assumed syntactically valid JSON).
NumberExactness ClassifyNumberLiteral(std::string_view literal);

struct NumberFinding {
  NumberExactness what = NumberExactness::kExact;
  std::string literal;  // the first literal of that kind (at most 64 characters kept)
};

// Scans JSON text (valid or not) for number literals outside strings and returns the worst
// finding (non-finite before inexact), or nullopt when every literal is exact. Linear in the
// text; literals that are plain integers of at most 18 digits cost no conversion.
std::optional<NumberFinding> FindInexactNumber(std::string_view json_text);

// A sentence for an error message: "the number 1e999 is beyond a 64-bit float's range", …
std::string DescribeNumberFinding(const NumberFinding& finding);

}  // namespace tw
