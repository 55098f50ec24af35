// TOML client configurations (Codex's ~/.codex/config.toml) read as JSON values and edited in
// their text, the way json_text.h does for JSON: only the values init changes are rewritten,
// so comments, ordering and formatting everywhere else survive.
#pragma once

#include <boost/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace tw::app {

namespace json = boost::json;

// The document as a JSON value: tables become objects, arrays arrays; strings, integers,
// floats and booleans keep their type; dates and times become their TOML text. The error
// names the line and column.
Result<json::value> ParseTomlText(std::string_view text);

// Makes the table at `table` (e.g. {"mcp_servers", "docs"}) hold `entry`'s values, editing
// the text key by key: a key whose value differs has that value's text replaced in place, a
// key `entry` lacks has its line removed, a key the table lacks is added on a line after the
// table's last key. Values init writes are strings, arrays of strings and tables of strings
// (written inline). A table written inline (`docs = { … }`) takes replacements but no new or
// removed keys. The caller checks that the result reads back as intended.
Result<std::string> SetTomlTable(std::string_view text, const std::vector<std::string>& table,
                                 const json::object& entry);

}  // namespace tw::app
