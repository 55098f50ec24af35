// Comparing JSON values as a policy or a schema means them: numbers by value, exactly across
// int64, uint64 and double (1 == 1.0; 2^63 is no double's neighbour); everything else by
// structure.
#pragma once

#include <boost/json.hpp>
#include <optional>

namespace tw {

// Three-way comparison of two JSON numbers, exact across int64/uint64/double. nullopt when
// either is not a number or is NaN.
std::optional<int> CompareNumbers(const boost::json::value& a, const boost::json::value& b);
// Equality of JSON values: numbers numerically (1 == 1.0), everything else structurally.
bool JsonEquals(const boost::json::value& a, const boost::json::value& b);

}  // namespace tw
