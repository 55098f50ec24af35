#include "policy/yaml_reader.h"

#include <boost/json.hpp>
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
    diags.push_back({e.mark.line + 1, e.mark.column + 1, e.msg});
    return std::nullopt;
  }
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

}  // namespace tw::policy
