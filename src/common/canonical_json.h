// Canonical JSON (RFC 8785 style) and SHA-256 digests of it.
//
// Canonical form: no whitespace, object members sorted by key (byte order of UTF-8, which
// equals RFC 8785's UTF-16 order for every key without characters beyond the BMP), numbers
// normalized (an integral double is written as an integer: 1.0 → 1; others in the shortest
// form that round-trips), strings as Boost.JSON escapes them. Two documents that differ only in
// whitespace, key order or number spelling have the same canonical form.
#pragma once

#include <string>
#include <string_view>

#include <boost/json.hpp>

namespace tw {

enum class ArrayOrder {
  kKeep,    // arrays are sequences (arguments: order matters)
  kSorted,  // arrays are sets (tool definitions: `required`, `enum` … order is not meaning)
};

std::string CanonicalJson(const boost::json::value& v, ArrayOrder arrays = ArrayOrder::kKeep);

// Lower-case hex SHA-256 of `data`.
std::string Sha256Hex(std::string_view data);

}  // namespace tw
