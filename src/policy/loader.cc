#include "policy/loader.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <boost/json.hpp>
#include <fstream>
#include <set>
#include <sstream>

namespace tw::policy {

namespace {

namespace json = boost::json;

// Keys the native schema defines but this build does not enforce yet. Accepting them silently
// would loosen the policy the author wrote, so they are load errors until they are built.
constexpr std::string_view kNotYetSupported[] = {"require", "deny_if", "limits",
                                                 "approval_timeout"};

class Compiler {
 public:
  explicit Compiler(std::vector<Diagnostic>& diags) : diags_(diags) {}

  void Error(const YAML::Node& at, std::string message) {
    const YAML::Mark m = at.Mark();
    diags_.push_back({m.line + 1, m.column + 1, std::move(message)});
  }

  // The scalar text of a node that must be a string; records an error otherwise.
  bool ReadString(const YAML::Node& node, const std::string& where, std::string& out) {
    if (!node.IsScalar()) {
      Error(node, where + " must be a string");
      return false;
    }
    out = node.Scalar();
    return true;
  }

  // Iterates a mapping, reporting duplicate keys; `fn(key, key_node, value_node)`.
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

  std::shared_ptr<Policy> Compile(const YAML::Node& root, std::string_view file_name) {
    auto policy = std::make_shared<Policy>();
    policy->source = std::string(file_name);
    if (!root.IsMap()) {
      Error(root, "a policy must be a mapping (JSON object)");
      return policy;
    }
    bool have_version = false, have_default = false;
    ForEachKey(root, "policy",
               [&](const std::string& key, const YAML::Node& key_node, const YAML::Node& value) {
                 if (key == "version") {
                   have_version = true;
                   if (!value.IsScalar() || value.Scalar() != "1") {
                     Error(value, "version must be \"1\"");
                   }
                 } else if (key == "default") {
                   have_default = true;
                   std::string v;
                   if (!ReadString(value, "default", v)) return;
                   if (v == "allow") {
                     policy->default_action = DefaultAction::kAllow;
                   } else if (v == "deny") {
                     policy->default_action = DefaultAction::kDeny;
                   } else {
                     Error(value, "default must be \"allow\" or \"deny\", not \"" + v + "\"");
                   }
                 } else if (key == "hide") {
                   CompileHide(value, *policy);
                 } else if (key == "tools") {
                   CompileTools(value, *policy);
                 } else if (key == "all_tools") {
                   Error(key_node,
                         "all_tools is not supported by this build yet (its limits would not be "
                         "enforced)");
                 } else {
                   Error(key_node, "unknown key \"" + key + "\"");
                 }
               });
    if (!have_version) Error(root, "missing required key \"version\"");
    if (!have_default) Error(root, "missing required key \"default\"");
    std::stable_sort(policy->globs.begin(), policy->globs.end(),
                     [](const ToolRule& a, const ToolRule& b) {
                       return a.pattern.text().size() > b.pattern.text().size();
                     });
    return policy;
  }

 private:
  void CompileHide(const YAML::Node& value, Policy& policy) {
    if (!value.IsSequence()) {
      Error(value, "hide must be a list of tool names or globs");
      return;
    }
    for (const YAML::Node& item : value) {
      std::string name;
      if (!ReadString(item, "hide[]", name)) continue;
      if (name.empty()) {
        Error(item, "hide: empty tool name");
        continue;
      }
      policy.hide.emplace_back(name);
    }
  }

  void CompileTools(const YAML::Node& value, Policy& policy) {
    if (!value.IsMap()) {
      Error(value, "tools must be a mapping from tool name (or glob) to rule");
      return;
    }
    ForEachKey(
        value, "tools",
        [&](const std::string& name, const YAML::Node& key_node, const YAML::Node& entry) {
          if (name.empty()) {
            Error(key_node, "tools: empty tool name");
            return;
          }
          ToolRule rule{NamePattern(name), Action::kAllow, ""};
          const std::string where = "tools." + name;
          if (entry.IsNull()) {
            // `tool:` with nothing after it in YAML reads as {}.
          } else if (!entry.IsMap()) {
            Error(entry, where + " must be a mapping ({} allows the tool)");
            return;
          } else {
            ForEachKey(
                entry, where,
                [&](const std::string& key, const YAML::Node& k, const YAML::Node& v) {
                  if (key == "action") {
                    std::string a;
                    if (!ReadString(v, where + ".action", a)) return;
                    if (a == "allow") {
                      rule.action = Action::kAllow;
                    } else if (a == "deny") {
                      rule.action = Action::kDeny;
                    } else if (a == "require_approval") {
                      rule.action = Action::kRequireApproval;
                    } else {
                      Error(v, where + ".action must be allow, deny or require_approval, not \"" +
                                   a + "\"");
                    }
                  } else if (key == "reason") {
                    ReadString(v, where + ".reason", rule.reason);
                  } else if (key == "_about") {
                    // Documentation written by scaffolds: accepted and ignored.
                  } else if (std::find(std::begin(kNotYetSupported), std::end(kNotYetSupported),
                                       key) != std::end(kNotYetSupported)) {
                    Error(k, where + "." + key +
                                 " is not supported by this build yet (it would not be enforced)");
                  } else {
                    Error(k, where + ": unknown key \"" + key + "\"");
                  }
                });
          }
          if (rule.pattern.is_glob()) {
            policy.globs.push_back(std::move(rule));
          } else {
            policy.exact.emplace(name, std::move(rule));
          }
        });
  }

  std::vector<Diagnostic>& diags_;
};

// Checks strict JSON syntax (YAML would accept more) and locates the first error.
bool CheckJsonSyntax(std::string_view text, std::vector<Diagnostic>& diags) {
  json::stream_parser parser;
  boost::system::error_code ec;
  size_t consumed = parser.write_some(text.data(), text.size(), ec);
  if (!ec) parser.finish(ec);
  if (!ec) return true;
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
  return false;
}

}  // namespace

Format FormatFromName(std::string_view file_name) {
  return file_name.ends_with(".json") ? Format::kJson : Format::kYaml;
}

CompileResult CompilePolicy(std::string_view text, std::string_view file_name, Format format) {
  CompileResult out;
  if (format == Format::kJson && !CheckJsonSyntax(text, out.diagnostics)) return out;
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    out.diagnostics.push_back({e.mark.line + 1, e.mark.column + 1, e.msg});
    return out;
  }
  Compiler compiler(out.diagnostics);
  auto policy = compiler.Compile(root, file_name);
  if (out.diagnostics.empty()) out.policy = std::move(policy);
  return out;
}

std::string FormatDiagnostics(std::string_view file_name, const std::vector<Diagnostic>& diags) {
  std::ostringstream os;
  for (size_t i = 0; i < diags.size(); ++i) {
    if (i) os << '\n';
    os << file_name << ':' << diags[i].line << ':' << diags[i].column << ": " << diags[i].message;
  }
  return os.str();
}

Result<std::shared_ptr<const Policy>> LoadPolicyFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Fail(Error::NotFound(path + ": cannot open policy file"));
  std::ostringstream buf;
  buf << in.rdbuf();
  CompileResult r = CompilePolicy(buf.str(), path, FormatFromName(path));
  if (!r.policy) return Fail(Error::InvalidArgument(FormatDiagnostics(path, r.diagnostics)));
  return std::shared_ptr<const Policy>(std::move(r.policy));
}

}  // namespace tw::policy
