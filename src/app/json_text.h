// Editing JSON in its text: a client's configuration keeps every comment, blank line and
// indentation it had, except inside the values that are replaced. Reads JSON with comments
// (`//`, `/* */`) and trailing commas, as VS Code, Zed and Cursor write theirs.
#pragma once

#include <boost/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace tw::app {

namespace json = boost::json;

// Parses JSON that may hold comments and trailing commas.
Result<json::value> ParseJsonText(std::string_view text);

// Where the value at `path` (object keys from the root) is in `text`: [begin, end).
struct TextSpan {
  size_t begin = 0;
  size_t end = 0;
};
std::optional<TextSpan> FindValue(std::string_view text, const std::vector<std::string>& path);

// `text` with the value at `path` replaced by `value`, written with two-space indentation
// from the column of the line it starts on. Fails when `path` is not in `text`.
Result<std::string> ReplaceValue(std::string_view text, const std::vector<std::string>& path,
                                 const json::value& value);

// `v` as JSON with two-space indentation (each line after the first starting with `pad`), as
// people write client configurations.
std::string PrettyJson(const json::value& v, const std::string& pad = {});

// The keys of an RFC 6901 pointer ("/projects/~1home/mcpServers" → projects, /home, mcpServers).
std::vector<std::string> PointerKeys(std::string_view pointer);

}  // namespace tw::app
