#include "policy/yaml_reader.h"

#include <boost/json.hpp>
#include <algorithm>
#include <charconv>
#include <cmath>

namespace tw::policy {

// Converts a YAML node to JSON with YAML 1.2 core-schema typing of plain scalars (quoted
// scalars are always strings; `yes` is a string). Integers stay exact (int64, then uint64).
json::value YamlToJson(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return nullptr;
    case YAML::NodeType::Sequence: {
      json::array a;
      for (const auto& item : node) a.push_back(YamlToJson(item));
      return a;
    }
    case YAML::NodeType::Map: {
      json::object o;
      for (auto it = node.begin(); it != node.end(); ++it) {
        o[it->first.Scalar()] = YamlToJson(it->second);
      }
      return o;
    }
    case YAML::NodeType::Scalar:
      break;
  }
  const std::string& s = node.Scalar();
  if (node.Tag() == "!") return json::string(s);  // quoted
  if (s == "null" || s == "~" || s.empty()) return nullptr;
  if (s == "true") return true;
  if (s == "false") return false;
  const char* b = s.data();
  const char* e = s.data() + s.size();
  if (s.find_first_not_of("+-0123456789") == std::string::npos) {
    int64_t i = 0;
    auto r = std::from_chars(b + (s[0] == '+'), e, i);
    if (r.ec == std::errc() && r.ptr == e) return i;
    uint64_t u = 0;
    auto ru = std::from_chars(b + (s[0] == '+'), e, u);
    if (ru.ec == std::errc() && ru.ptr == e) return u;
  }
  double d = 0;
  auto r = std::from_chars(b + (s[0] == '+'), e, d);
  if (r.ec == std::errc() && r.ptr == e && s.find_first_of("0123456789") != std::string::npos &&
      std::isfinite(d)) {
    return d;
  }
  return json::string(s);
}


std::optional<YAML::Node> ParseYaml(std::string_view text, bool strict_json,
                                    std::vector<Diagnostic>& diags) {
  if (strict_json) {
    json::stream_parser parser;
    boost::system::error_code ec;
    size_t consumed = parser.write_some(text.data(), text.size(), ec);
    if (!ec) parser.finish(ec);
    if (ec) {
      consumed = std::min(consumed, text.size());
      int line = 1, column = 1;
      for (size_t i = 0; i < consumed; ++i) {
        if (text[i] == '\n') {
          ++line;
          column = 1;
        } else {
          ++column;
        }
      }
      diags.push_back({line, column, "invalid JSON: " + ec.message()});
      return std::nullopt;
    }
  }
  try {
    return YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    diags.push_back({e.mark.line + 1, e.mark.column + 1, ExplainYamlError(text, e.mark.line, e.msg)});
    return std::nullopt;
  }
}

std::string ExplainYamlError(std::string_view text, int line, const std::string& parser_message) {
  // The line the parser stopped on, and the one before it (where a missing `}` or a wrong
  // indentation usually is).
  auto line_at = [&](int n) -> std::string_view {
    size_t start = 0;
    for (int i = 0; i < n && start != std::string_view::npos; ++i) {
      start = text.find('\n', start);
      if (start != std::string_view::npos) ++start;
    }
    if (start == std::string_view::npos || start > text.size()) return {};
    const size_t end = text.find('\n', start);
    return text.substr(start, end == std::string_view::npos ? text.size() - start : end - start);
  };
  auto indented_with_tab = [](std::string_view l) {
    const size_t first = l.find_first_not_of(" \t");
    return l.substr(0, first == std::string_view::npos ? l.size() : first).find('\t') !=
           std::string_view::npos;
  };
  std::string why;
  if (indented_with_tab(line_at(line)) || (line > 0 && indented_with_tab(line_at(line - 1)))) {
    why = "a tab indents this line or the one above: YAML indents with spaces only";
  } else if (parser_message == YAML::ErrorMsg::END_OF_MAP_FLOW) {
    why = "a \"{\" is never closed: a \"}\" is missing before this point";
  } else if (parser_message == YAML::ErrorMsg::END_OF_SEQ_FLOW) {
    why = "a \"[\" is never closed: a \"]\" is missing before this point";
  } else if (parser_message == YAML::ErrorMsg::MAP_VALUE || parser_message == YAML::ErrorMsg::MAP_KEY ||
             parser_message == YAML::ErrorMsg::END_OF_MAP) {
    why = "this \"key: value\" does not line up with its neighbours: check its indentation and "
          "the line above (a key's value is indented more than the key; keys of one mapping "
          "line up)";
  } else if (parser_message == YAML::ErrorMsg::END_OF_SEQ || parser_message == YAML::ErrorMsg::BLOCK_ENTRY) {
    why = "this \"- item\" does not line up with the other items of its list: check its "
          "indentation";
  } else if (parser_message == YAML::ErrorMsg::EOF_IN_SCALAR) {
    why = "a quoted string is never closed";
  } else if (parser_message.starts_with(YAML::ErrorMsg::INVALID_ESCAPE)) {
    why = "an unknown escape in a double-quoted string (write \\\\ for a backslash, or use single "
          "quotes, which have no escapes)";
  }
  if (why.empty()) return "YAML syntax: " + parser_message;
  return "YAML syntax: " + why + " (the parser says: " + parser_message + ")";
}

bool YamlReader::ReadString(const YAML::Node& node, const std::string& where, std::string& out) {
  if (!node.IsScalar()) {
    Error(node, where + " must be a string");
    return false;
  }
  out = node.Scalar();
  return true;
}

bool YamlReader::ReadInt(const YAML::Node& node, const std::string& where, int64_t min,
                         int64_t& out) {
  json::value v = node.IsScalar() ? YamlToJson(node) : json::value(nullptr);
  if (!v.is_int64() || v.get_int64() < min) {
    Error(node, where + " must be a whole number" + (min > 0 ? " greater than 0" : ""));
    return false;
  }
  out = v.get_int64();
  return true;
}

bool YamlReader::ReadBool(const YAML::Node& node, const std::string& where, bool& out) {
  json::value v = node.IsScalar() ? YamlToJson(node) : json::value(nullptr);
  if (!v.is_bool()) {
    Error(node, where + " must be true or false");
    return false;
  }
  out = v.get_bool();
  return true;
}

bool YamlReader::ReadStrings(const YAML::Node& node, const std::string& where,
                             std::vector<std::string>& out) {
  if (!node.IsSequence()) {
    Error(node, where + " must be a list of strings");
    return false;
  }
  bool ok = true;
  for (size_t i = 0; i < node.size(); ++i) {
    std::string s;
    if (ReadString(node[i], where + "[" + std::to_string(i) + "]", s)) {
      out.push_back(std::move(s));
    } else {
      ok = false;
    }
  }
  return ok;
}

std::string DidYouMean(std::string_view word, const std::vector<std::string_view>& known) {
  auto lower = [](char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); };
  // Levenshtein distance, one row at a time.
  auto distance = [&](std::string_view a, std::string_view b) {
    std::vector<size_t> row(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
      size_t diagonal = row[0];
      row[0] = i;
      for (size_t j = 1; j <= b.size(); ++j) {
        const size_t up = row[j];
        row[j] = std::min({row[j] + 1, row[j - 1] + 1,
                           diagonal + (lower(a[i - 1]) == lower(b[j - 1]) ? 0 : 1)});
        diagonal = up;
      }
    }
    return row[b.size()];
  };
  std::string_view best;
  size_t best_distance = 3;
  for (std::string_view candidate : known) {
    const size_t d = distance(word, candidate);
    if (d < best_distance && d * 2 < std::max(word.size(), candidate.size())) {
      best = candidate;
      best_distance = d;
    }
  }
  if (best.empty()) return {};
  return " (did you mean \"" + std::string(best) + "\"?)";
}

}  // namespace tw::policy
