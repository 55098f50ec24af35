// Reading YAML (and JSON, through YAML) documents with positions: shared by the policy loader
// and the gateway config loader. Every problem becomes a Diagnostic with its line and column;
// readers collect them all instead of stopping at the first.
#pragma once

#include <yaml-cpp/yaml.h>

#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "jsonrpc/message.h"
#include "policy/loader.h"

namespace tw::policy {

// Converts a YAML node to JSON with YAML 1.2 core-schema typing of plain scalars (quoted
// scalars are always strings; `yes` is a string). Integers stay exact (int64, then uint64).
json::value YamlToJson(const YAML::Node& node);

// Parses `text` as YAML; with `strict_json`, first checks that it is strict JSON (YAML would
// accept more) and locates the first error. Returns nullopt after adding a diagnostic.
std::optional<YAML::Node> ParseYaml(std::string_view text, bool strict_json,
                                    std::vector<Diagnostic>& diags);

// The YAML parser's `parser_message` about 0-based `line` of `text`, said so that a person
// can act on it: what is usually wrong there (a tab, an unclosed bracket, an indentation that
// does not line up), with the parser's own words after it.
std::string ExplainYamlError(std::string_view text, int line, const std::string& parser_message);

// " (did you mean \"x\"?)" for the one of `known` closest to `word` — within the edit distance
// a slip of the fingers makes (at most 2, and less than half the word's length; case ignored)
// — or "" when none is that close.
std::string DidYouMean(std::string_view word, const std::vector<std::string_view>& known);

// Typed reads that report what is wrong, where.
class YamlReader {
 public:
  explicit YamlReader(std::vector<Diagnostic>& diags) : diags_(diags) {}
  virtual ~YamlReader() = default;

  void Error(const YAML::Node& at, std::string message) {
    const YAML::Mark m = at.Mark();
    diags_.push_back({m.line + 1, m.column + 1, std::move(message)});
  }
  // Every string read goes through here (a reader may transform it, e.g. expand variables).
  virtual bool ReadString(const YAML::Node& node, const std::string& where, std::string& out);
  // A whole number in [min, INT64_MAX].
  bool ReadInt(const YAML::Node& node, const std::string& where, int64_t min, int64_t& out);
  bool ReadBool(const YAML::Node& node, const std::string& where, bool& out);
  // A sequence of strings.
  bool ReadStrings(const YAML::Node& node, const std::string& where, std::vector<std::string>& out);

  // Iterates a mapping, reporting non-string and duplicate keys; fn(key, key_node, value).
  template <typename Fn>
  void ForEachKey(const YAML::Node& map, const std::string& where, Fn fn) {
    std::set<std::string> seen;
    for (auto it = map.begin(); it != map.end(); ++it) {
      if (!it->first.IsScalar()) {
        Error(it->first, where + ": keys must be strings");
        continue;
      }
      const std::string key = it->first.Scalar();
      if (!seen.insert(key).second) {
        Error(it->first, where + ": duplicate key \"" + key + "\"");
        continue;
      }
      fn(key, it->first, it->second);
    }
  }

  size_t error_count() const { return diags_.size(); }

 private:
  std::vector<Diagnostic>& diags_;
};

}  // namespace tw::policy
