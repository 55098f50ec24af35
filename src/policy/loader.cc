#include "policy/loader.h"

#include "policy/yaml_reader.h"

#include "common/canonical_json.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <boost/json.hpp>
#include <yaml-cpp/yaml.h>

namespace tw::policy {

namespace {

// The policy compilers' reader: the shared YAML reads plus conditions and counter names.
class Reader : public YamlReader {
 public:
  explicit Reader(std::vector<Diagnostic>& diags) : YamlReader(diags) {}

  // `mode: enforce | shadow` (native format): true for shadow.
  bool ReadShadowMode(const YAML::Node& v, const std::string& where) {
    std::string m;
    if (!ReadString(v, where + ".mode", m)) return false;
    if (m == "shadow") return true;
    if (m != "enforce") {
      Error(v, where + ".mode must be enforce or shadow, not \"" + m + "\"" +
                   DidYouMean(m, {"enforce", "shadow"}));
    }
    return false;
  }

  // A condition mapping {path, op, value}; `where` names it in messages. With `shadow`, the
  // mapping may also say `mode: shadow`, which sets *shadow.
  std::optional<Condition> ReadCondition(const YAML::Node& node, const std::string& where,
                                         bool* shadow = nullptr) {
    if (!node.IsMap()) {
      Error(node, where + " must be a mapping with path, op and value");
      return std::nullopt;
    }
    std::optional<ArgPath> path;
    std::optional<Op> op;
    YAML::Node value_node(YAML::NodeType::Undefined), op_node(YAML::NodeType::Undefined);
    bool ok = true;
    ForEachKey(node, where, [&](const std::string& key, const YAML::Node& k, const YAML::Node& v) {
      if (key == "path") {
        std::string text;
        if (!ReadString(v, where + ".path", text)) return;
        auto p = ArgPath::Parse(text);
        if (!p) {
          Error(v, where + ".path: " + p.error().message());
          ok = false;
          return;
        }
        path = std::move(*p);
      } else if (key == "op") {
        std::string text;
        if (!ReadString(v, where + ".op", text)) return;
        op = ParseOp(text);
        op_node = v;
        if (!op) {
          Error(v, where + ".op: unknown operator \"" + text + "\"" + DidYouMean(text, OpNames()));
          ok = false;
        }
      } else if (key == "value") {
        value_node = v;
      } else if (key == "mode" && shadow) {
        *shadow = ReadShadowMode(v, where);
      } else {
        Error(k, where + ": unknown key \"" + key + "\"" +
                     DidYouMean(key, shadow ? std::vector<std::string_view>{"path", "op", "value", "mode"}
                                            : std::vector<std::string_view>{"path", "op", "value"}));
        ok = false;
      }
    });
    if (!node["path"]) Error(node, where + ": missing \"path\"");
    if (!node["op"]) Error(node, where + ": missing \"op\"");
    if (!path || !op || !ok) return std::nullopt;
    json::value value = nullptr;
    if (value_node) {
      value = YamlToJson(value_node);
    } else if (*op != Op::kExists) {
      Error(node, where + ": missing \"value\"");
      return std::nullopt;
    } else {
      value = true;  // `exists` without a value means exists: true
    }
    auto c = MakeCondition(std::move(*path), *op, std::move(value));
    if (!c) {
      Error(value_node ? value_node : node, where + ": " + c.error().message());
      return std::nullopt;
    }
    return std::move(*c);
  }

  // Registers a counter name; reports a duplicate.
  void ClaimCounter(const std::string& counter, const YAML::Node& at, const std::string& where) {
    auto [it, inserted] = counters_.emplace(counter, where);
    if (!inserted) {
      Error(at, "duplicate counter \"" + counter + "\" (also used by " + it->second + ")");
    }
  }

 private:
  std::map<std::string, std::string> counters_;
};

// Which format a policy is written in. An explicit `format: toolwarden | intercept` decides;
// otherwise the whole file does: tool entries with `rules` are Intercept's, entries with any
// other key are toolwarden's (empty entries say nothing), `all_tools` is toolwarden's. A file
// with both is neither — one `rules:` key must not turn a whole native file into another
// format — and gets an error that says where each format shows and how to say which is meant.
enum class Shape { kNative, kIntercept, kMixed };
Shape ChooseShape(const YAML::Node& root, Reader& r) {
  if (!root.IsMap()) return Shape::kNative;
  if (const YAML::Node marker = root["format"]) {
    const std::string v = marker.IsScalar() ? marker.Scalar() : "";
    if (v == "toolwarden") return Shape::kNative;
    if (v == "intercept") return Shape::kIntercept;
    r.Error(marker, "format must be \"toolwarden\" or \"intercept\", not \"" + v + "\"" +
                        DidYouMean(v, {"toolwarden", "intercept"}));
    return Shape::kMixed;
  }
  std::optional<std::pair<std::string, YAML::Node>> intercept, native;
  if (const YAML::Node all = root["all_tools"]) native.emplace("all_tools", all);
  const YAML::Node tools = root["tools"];
  if (tools && tools.IsMap()) {
    for (auto it = tools.begin(); it != tools.end(); ++it) {
      if (!it->second.IsMap()) continue;
      const std::string name = it->first.IsScalar() ? it->first.Scalar() : "?";
      for (auto kv = it->second.begin(); kv != it->second.end(); ++kv) {
        const std::string key = kv->first.IsScalar() ? kv->first.Scalar() : "";
        if (key == "rules") {
          if (!intercept) intercept.emplace("tools." + name + ".rules", kv->first);
        } else if (key != "_about" && !native) {
          native.emplace("tools." + name + "." + key, kv->first);
        }
      }
    }
  }
  if (intercept && native) {
    r.Error(intercept->second,
            intercept->first + " is Intercept's format, and " + native->first +
                " toolwarden's: a policy is written in one of them. Add \"format: intercept\" "
                "or \"format: toolwarden\" at the top to say which this file is");
    return Shape::kMixed;
  }
  return intercept ? Shape::kIntercept : Shape::kNative;
}

// ---------------------------------------------------------------- the native format

class NativeCompiler {
 public:
  // `shadow_view`: compile the parts marked `mode: shadow` as if they enforced (the would-be
  // policy); otherwise they are left out (the enforcing one).
  NativeCompiler(Reader& r, bool shadow_view) : r_(r), shadow_view_(shadow_view) {}

  // True once a part marked `mode: shadow` was seen (then the file has a would-be policy).
  bool saw_shadow() const { return saw_shadow_; }

  std::shared_ptr<Policy> Compile(const YAML::Node& root, std::string_view file_name) {
    auto policy = std::make_shared<Policy>();
    policy->source = std::string(file_name);
    policy->format = Format::kNative;
    if (!root.IsMap()) {
      r_.Error(root, "a policy must be a mapping (JSON object)");
      return policy;
    }
    bool have_version = false, have_default = false;
    r_.ForEachKey(root, "policy", [&](const std::string& key, const YAML::Node& k,
                                      const YAML::Node& value) {
      if (key == "version") {
        have_version = true;
        if (!value.IsScalar() || value.Scalar() != "1") r_.Error(value, "version must be \"1\"");
      } else if (key == "default") {
        have_default = true;
        std::string v;
        if (!r_.ReadString(value, "default", v)) return;
        if (v == "allow") {
          policy->default_action = DefaultAction::kAllow;
        } else if (v == "deny") {
          policy->default_action = DefaultAction::kDeny;
        } else {
          r_.Error(value, "default must be \"allow\" or \"deny\", not \"" + v + "\"");
        }
      } else if (key == "mode") {
        policy->shadow_only = r_.ReadShadowMode(value, "policy");
      } else if (key == "hide") {
        CompileHide(value, *policy);
      } else if (key == "tools") {
        CompileTools(value, *policy);
      } else if (key == "classes") {
        CompileClasses(value, *policy);
      } else if (key == "all_tools") {
        CompileAllTools(value, *policy);
      } else if (key == "description" || key == "_about" || key == "format") {
        // Documentation, and the format marker (ChooseShape read it).
      } else {
        r_.Error(k, "unknown key \"" + key + "\"" +
                        DidYouMean(key, {"version", "default", "mode", "hide", "tools", "classes",
                                         "all_tools", "description", "format"}));
      }
    });
    if (!have_version) r_.Error(root, "missing required key \"version\"");
    if (!have_default) r_.Error(root, "missing required key \"default\"");
    std::stable_sort(policy->globs.begin(), policy->globs.end(),
                     [](const ToolRule& a, const ToolRule& b) {
                       return a.pattern.text().size() > b.pattern.text().size();
                     });
    return policy;
  }

 private:
  // A part marked `mode: shadow` is kept only in the shadow view.
  bool Keep(bool shadow) {
    saw_shadow_ = saw_shadow_ || shadow;
    return !shadow || shadow_view_;
  }

  void CompileHide(const YAML::Node& value, Policy& policy) {
    if (!value.IsSequence()) {
      r_.Error(value, "hide must be a list of tool names or globs");
      return;
    }
    for (const YAML::Node& item : value) {
      std::string name;
      if (!r_.ReadString(item, "hide[]", name)) continue;
      if (name.empty()) {
        r_.Error(item, "hide: empty tool name");
        continue;
      }
      policy.hide.emplace_back(name);
    }
  }

  void CompileAllTools(const YAML::Node& value, Policy& policy) {
    if (!value.IsMap()) {
      r_.Error(value, "all_tools must be a mapping (with limits, require or deny_if)");
      return;
    }
    r_.ForEachKey(value, "all_tools", [&](const std::string& key, const YAML::Node& k,
                                          const YAML::Node& v) {
      if (key == "limits") {
        CompileLimits(v, "all_tools", policy.all_tools);
      } else if (key == "require" || key == "deny_if") {
        CompileChecks(v, "all_tools", key, std::string(), policy.all_tools);
      } else if (key == "principals") {
        r_.ReadStrings(v, "all_tools.principals", policy.all_tools.principals);
      } else if (key == "groups") {
        r_.ReadStrings(v, "all_tools.groups", policy.all_tools.groups);
      } else if (key == "_about") {
      } else {
        r_.Error(k, "all_tools: unknown key \"" + key + "\"" +
                        DidYouMean(key, {"limits", "require", "deny_if", "principals", "groups"}));
      }
    });
  }

  void CompileTools(const YAML::Node& value, Policy& policy) {
    if (!value.IsMap()) {
      r_.Error(value, "tools must be a mapping from tool name (or glob) to rule");
      return;
    }
    r_.ForEachKey(value, "tools", [&](const std::string& name, const YAML::Node& key_node,
                                      const YAML::Node& entry) {
      if (name.empty()) {
        r_.Error(key_node, "tools: empty tool name");
        return;
      }
      ToolRule rule{NamePattern(name)};
      if (!CompileEntry(entry, rule)) return;
      if (rule.pattern.is_glob()) {
        policy.globs.push_back(std::move(rule));
      } else {
        policy.exact.emplace(name, std::move(rule));
      }
    });
  }

  // `classes: {Destructive: {action: require_approval}, High: {...}}`: entries like a tool's,
  // keyed by one of the classifier's categories or risks.
  void CompileClasses(const YAML::Node& value, Policy& policy) {
    if (!value.IsMap()) {
      r_.Error(value, "classes must be a mapping from a category or risk to a rule");
      return;
    }
    const std::span<const std::string_view> names = ClassNames();
    r_.ForEachKey(value, "classes", [&](const std::string& name, const YAML::Node& key_node,
                                        const YAML::Node& entry) {
      if (!IsCategoryName(name) && !IsRiskName(name)) {
        r_.Error(key_node, "classes: \"" + name +
                               "\" is not a category (Read, Write, Execute, Financial, "
                               "Destructive) or a risk (Low, Medium, High, Critical)" +
                               DidYouMean(name, {names.begin(), names.end()}));
        return;
      }
      ToolRule rule{NamePattern(name, NamePattern::Kind::kLiteral)};
      rule.name = "classes." + name;
      if (!CompileEntry(entry, rule)) return;
      policy.classes.emplace(name, std::move(rule));
    });
  }

  // A tool entry's body into `rule` (whose name says where it is). False when the entry is
  // left out: invalid, or `mode: shadow` outside the shadow view.
  bool CompileEntry(const YAML::Node& entry, ToolRule& rule) {
    const std::string& where = rule.name;
    if (entry.IsNull()) return true;  // `tool:` with nothing after it in YAML reads as {}.
    if (!entry.IsMap()) {
      r_.Error(entry, where + " must be a mapping ({} allows the tool)");
      return false;
    }
    bool shadow = false;
    YAML::Node require(YAML::NodeType::Undefined), deny_if(YAML::NodeType::Undefined);
    r_.ForEachKey(entry, where, [&](const std::string& key, const YAML::Node& k,
                                    const YAML::Node& v) {
      if (key == "action") {
        std::string a;
        if (!r_.ReadString(v, where + ".action", a)) return;
        if (a == "allow") {
          rule.action = Action::kAllow;
        } else if (a == "deny") {
          rule.action = Action::kDeny;
        } else if (a == "require_approval") {
          rule.action = Action::kRequireApproval;
        } else {
          r_.Error(v, where + ".action must be allow, deny or require_approval, not \"" + a +
                          "\"" + DidYouMean(a, {"allow", "deny", "require_approval"}));
        }
      } else if (key == "reason") {
        r_.ReadString(v, where + ".reason", rule.reason);
      } else if (key == "mode") {
        shadow = r_.ReadShadowMode(v, where);
      } else if (key == "require") {
        require = v;
      } else if (key == "deny_if") {
        deny_if = v;
      } else if (key == "limits") {
        CompileLimits(v, where, rule);
      } else if (key == "approval_timeout") {
        std::string text;
        if (!r_.ReadString(v, where + ".approval_timeout", text)) return;
        auto ms = ParseDurationMs(text);
        if (!ms) {
          r_.Error(v, where + ".approval_timeout: " + ms.error().message());
        } else {
          rule.approval_timeout_ms = *ms;
        }
      } else if (key == "principals") {
        r_.ReadStrings(v, where + ".principals", rule.principals);
      } else if (key == "groups") {
        r_.ReadStrings(v, where + ".groups", rule.groups);
      } else if (key == "_about") {
        // Documentation written by scaffolds: accepted and ignored.
      } else {
        r_.Error(k, where + ": unknown key \"" + key + "\"" +
                        DidYouMean(key, {"action", "reason", "mode", "require", "deny_if", "limits",
                                         "approval_timeout", "principals", "groups"}));
      }
    });
    // Checks run require-first whatever the key order in the file.
    if (require) CompileChecks(require, where, "require", rule.reason, rule);
    if (deny_if) CompileChecks(deny_if, where, "deny_if", rule.reason, rule);
    return Keep(shadow);
  }

  void CompileChecks(const YAML::Node& list, const std::string& where, const std::string& key,
                     const std::string& reason, ToolRule& rule) {
    if (!list.IsSequence()) {
      r_.Error(list, where + "." + key + " must be a list of conditions");
      return;
    }
    for (size_t i = 0; i < list.size(); ++i) {
      const std::string name = where + "." + key + "[" + std::to_string(i) + "]";
      bool shadow = false;
      auto c = r_.ReadCondition(list[i], name, &shadow);
      if (!c || !Keep(shadow)) continue;
      rule.checks.push_back(Check{key == "require" ? Check::Kind::kRequire : Check::Kind::kDenyIf,
                                  std::move(*c), name, reason});
    }
  }

  void CompileLimits(const YAML::Node& list, const std::string& where, ToolRule& rule) {
    if (!list.IsSequence()) {
      r_.Error(list, where + ".limits must be a list");
      return;
    }
    for (size_t i = 0; i < list.size(); ++i) {
      const std::string name = where + ".limits[" + std::to_string(i) + "]";
      const YAML::Node& node = list[i];
      if (!node.IsMap()) {
        r_.Error(node, name + " must be a mapping");
        continue;
      }
      Limit limit;
      limit.rule = name;
      bool ok = true, have_counter = false, have_window = false, have_max = false;
      bool have_increment = false, shadow = false;
      r_.ForEachKey(node, name, [&](const std::string& key, const YAML::Node& k,
                                    const YAML::Node& v) {
        if (key == "mode") {
          shadow = r_.ReadShadowMode(v, name);
        } else if (key == "counter") {
          have_counter = r_.ReadString(v, name + ".counter", limit.counter);
          if (have_counter && limit.counter.empty()) {
            r_.Error(v, name + ".counter must not be empty");
            ok = false;
          } else if (have_counter) {
            r_.ClaimCounter(limit.counter, v, name);
          }
        } else if (key == "window") {
          std::string text;
          if (!r_.ReadString(v, name + ".window", text)) return;
          auto w = ParseWindow(text);
          if (!w) {
            r_.Error(v, name + ".window: " + w.error().message());
            ok = false;
          } else {
            limit.window = *w;
            have_window = true;
          }
        } else if (key == "max") {
          have_max = r_.ReadInt(v, name + ".max", 1, limit.max);
          ok = ok && have_max;
        } else if (key == "scope") {
          std::string s;
          if (!r_.ReadString(v, name + ".scope", s)) return;
          if (s == "grant") {
            limit.scope = Scope::kGrant;
          } else if (s == "session") {
            limit.scope = Scope::kSession;
          } else if (s == "global") {
            limit.scope = Scope::kGlobal;
          } else if (s == "principal") {
            limit.scope = Scope::kPrincipal;
          } else {
            r_.Error(v, name + ".scope must be grant, session, principal or global, not \"" + s + "\"" +
                            DidYouMean(s, {"grant", "session", "principal", "global"}));
            ok = false;
          }
        } else if (key == "increment") {
          have_increment = true;
          ok = r_.ReadInt(v, name + ".increment", 1, limit.increment) && ok;
        } else if (key == "increment_from") {
          std::string text;
          if (!r_.ReadString(v, name + ".increment_from", text)) return;
          auto p = ArgPath::Parse(text);
          if (!p) {
            r_.Error(v, name + ".increment_from must start with \"args.\", got \"" + text + "\"");
            ok = false;
          } else {
            limit.increment_from = std::move(*p);
          }
        } else if (key == "refund_on_error") {
          bool refund = false;
          if (r_.ReadBool(v, name + ".refund_on_error", refund)) {
            limit.refund = refund ? RefundOn::kAnyError : RefundOn::kNever;
          }
        } else {
          r_.Error(k, name + ": unknown key \"" + key + "\"" +
                          DidYouMean(key, {"counter", "window", "max", "scope", "increment",
                                           "increment_from", "refund_on_error", "mode"}));
          ok = false;
        }
      });
      if (!have_counter) r_.Error(node, name + ": missing \"counter\"");
      if (!have_window && !node["window"]) r_.Error(node, name + ": missing \"window\"");
      if (!have_max && !node["max"]) r_.Error(node, name + ": missing \"max\"");
      if (have_increment && limit.increment_from) {
        r_.Error(node, name + ": use increment or increment_from, not both");
        ok = false;
      }
      if (ok && have_counter && have_window && have_max && Keep(shadow)) {
        rule.limits.push_back(std::move(limit));
      }
    }
  }

  Reader& r_;
  const bool shadow_view_;
  bool saw_shadow_ = false;
};

// ---------------------------------------------------------------- Intercept's format
// Semantics as Intercept's POLICY.md documents them: rules in order (tool rules, then "*");
// `deny` rules deny unconditionally; `evaluate` rules need every condition; a state condition
// `lt V` / `lte V` on the rule's own counter is a limit of V-1 / V (global, refunded when the
// upstream answers with a JSON-RPC error); `rate_limit: N/window` is shorthand for one.

class InterceptCompiler {
 public:
  explicit InterceptCompiler(Reader& r) : r_(r) {}

  std::shared_ptr<Policy> Compile(const YAML::Node& root, std::string_view file_name) {
    auto policy = std::make_shared<Policy>();
    policy->source = std::string(file_name);
    policy->format = Format::kIntercept;
    policy->default_action = DefaultAction::kAllow;
    bool have_version = false, have_tools = false;
    r_.ForEachKey(root, "policy", [&](const std::string& key, const YAML::Node& k,
                                      const YAML::Node& value) {
      if (key == "version") {
        have_version = true;
        if (!value.IsScalar() || value.Scalar() != "1") {
          r_.Error(value, "version must be \"1\", got \"" +
                              (value.IsScalar() ? value.Scalar() : std::string("?")) + "\"");
        }
      } else if (key == "description") {
        std::string ignored;
        r_.ReadString(value, "description", ignored);
      } else if (key == "format") {
        // The marker: ChooseShape read it.
      } else if (key == "default") {
        std::string v;
        if (!r_.ReadString(value, "default", v)) return;
        if (v == "allow" || v == "deny") {
          policy->default_action = v == "deny" ? DefaultAction::kDeny : DefaultAction::kAllow;
        } else {
          r_.Error(value, "default must be \"allow\" or \"deny\", got \"" + v + "\"");
        }
      } else if (key == "hide") {
        CompileHide(value, *policy);
      } else if (key == "tools") {
        have_tools = true;
        CompileTools(value, *policy);
      } else {
        r_.Error(k, "unknown key \"" + key + "\"");
      }
    });
    if (!have_version) r_.Error(root, "version must be \"1\", got \"\"");
    if (!have_tools) r_.Error(root, "missing required key \"tools\"");
    return policy;
  }

 private:
  void CompileHide(const YAML::Node& value, Policy& policy) {
    if (!value.IsSequence()) {
      r_.Error(value, "hide must be a list of tool names");
      return;
    }
    std::set<std::string> seen;
    for (size_t i = 0; i < value.size(); ++i) {
      std::string name;
      if (!r_.ReadString(value[i], "hide[" + std::to_string(i) + "]", name)) continue;
      if (name.empty()) {
        r_.Error(value[i], "hide[" + std::to_string(i) + "]: entry must not be empty");
      } else if (!seen.insert(name).second) {
        r_.Error(value[i], "hide: duplicate entry \"" + name + "\"");
      } else {
        // Intercept names tools exactly; "*" alone hides every tool.
        policy.hide.emplace_back(name, name == "*" ? NamePattern::Kind::kAuto
                                                   : NamePattern::Kind::kLiteral);
      }
    }
  }

  void CompileTools(const YAML::Node& tools, Policy& policy) {
    if (!tools.IsMap()) {
      r_.Error(tools, "tools must be a mapping from tool name to {rules: [...]}");
      return;
    }
    r_.ForEachKey(tools, "tools", [&](const std::string& name, const YAML::Node& key_node,
                                      const YAML::Node& entry) {
      if (name.empty()) {
        r_.Error(key_node, "tools: empty tool name");
        return;
      }
      const bool wildcard = name == "*";
      ToolRule rule{NamePattern(name, NamePattern::Kind::kLiteral)};
      const std::string where = "tools." + name;
      if (!entry.IsMap()) {
        r_.Error(entry, where + " must be a mapping with \"rules\"");
        return;
      }
      r_.ForEachKey(entry, where, [&](const std::string& key, const YAML::Node& k,
                                      const YAML::Node& v) {
        if (key == "rules") {
          CompileRules(v, where, wildcard ? "_global" : name, rule);
        } else {
          r_.Error(k, where + ": unknown key \"" + key + "\"");
        }
      });
      if (wildcard) {
        policy.all_tools = std::move(rule);
      } else {
        policy.exact.emplace(name, std::move(rule));
      }
    });
  }

  void CompileRules(const YAML::Node& rules, const std::string& where, const std::string& scope,
                    ToolRule& tool) {
    if (!rules.IsSequence()) {
      r_.Error(rules, where + ".rules must be a list");
      return;
    }
    std::map<std::string, size_t> counters;  // counter → defining rule index
    for (size_t i = 0; i < rules.size(); ++i) {
      const YAML::Node& node = rules[i];
      const std::string at = where + ".rules[" + std::to_string(i) + "]";
      if (!node.IsMap()) {
        r_.Error(node, at + " must be a mapping");
        continue;
      }
      std::string name, action = "evaluate", on_deny, rate_limit;
      YAML::Node conditions(YAML::NodeType::Undefined), state(YAML::NodeType::Undefined),
          rate_node(YAML::NodeType::Undefined), action_node(YAML::NodeType::Undefined);
      r_.ForEachKey(node, at, [&](const std::string& key, const YAML::Node& k,
                                  const YAML::Node& v) {
        if (key == "name") {
          r_.ReadString(v, at + ".name", name);
        } else if (key == "action") {
          r_.ReadString(v, at + ".action", action);
          action_node = v;
        } else if (key == "conditions") {
          conditions = v;
        } else if (key == "on_deny") {
          r_.ReadString(v, at + ".on_deny", on_deny);
        } else if (key == "state") {
          state = v;
        } else if (key == "rate_limit") {
          rate_node = v;
          r_.ReadString(v, at + ".rate_limit", rate_limit);
        } else {
          r_.Error(k, at + ": unknown key \"" + key + "\"");
        }
      });
      if (name.empty()) r_.Error(node["name"] ? node["name"] : node, "rule must have a name");
      const std::string rule_name = at + " (" + name + ")";
      if (action != "evaluate" && action != "deny") {
        r_.Error(action_node, "action must be \"evaluate\" or \"deny\", got \"" + action + "\"");
        continue;
      }
      if (rate_node) {
        if (action == "deny") {
          r_.Error(rate_node, "rate_limit cannot be used with action \"deny\"");
          continue;
        }
        if (conditions || state) {
          r_.Error(rate_node, "rate_limit cannot be combined with conditions or state");
          continue;
        }
        CompileRateLimit(rate_node, rate_limit, scope, rule_name, on_deny, counters, i, tool);
        continue;
      }
      if (action == "deny") {
        if (conditions) {
          r_.Error(conditions, "deny rules must not have conditions");
          continue;
        }
        tool.checks.push_back(Check{Check::Kind::kDeny, std::nullopt, rule_name,
                                    on_deny.empty() ? "Denied by rule \"" + name + "\"" : on_deny});
        continue;
      }
      if (!conditions || !conditions.IsSequence() || conditions.size() == 0) {
        r_.Error(conditions ? conditions : node, "evaluate rules must have at least one condition");
        continue;
      }
      std::optional<std::pair<std::string, const YAML::Node>> state_counter;
      std::optional<Limit> limit;
      if (state) limit = CompileState(state, scope, rule_name, on_deny, counters, i);
      for (size_t c = 0; c < conditions.size(); ++c) {
        const YAML::Node& cond = conditions[c];
        const std::string cat = at + ".conditions[" + std::to_string(c) + "]";
        const YAML::Node path_node = cond.IsMap() ? cond["path"] : YAML::Node();
        const std::string path =
            path_node && path_node.IsScalar() ? path_node.Scalar() : std::string();
        if (path.starts_with("state.")) {
          CompileStateCondition(cond, cat, path, limit);
          continue;
        }
        if (!path.empty() && !path.starts_with("args.")) {
          r_.Error(path_node, "path must start with \"args.\" or \"state.\", got \"" + path + "\"");
          continue;
        }
        auto parsed = r_.ReadCondition(cond, cat);
        if (!parsed) continue;
        tool.checks.push_back(Check{Check::Kind::kRequire, std::move(*parsed), rule_name,
                                    on_deny.empty() ? "Denied by rule \"" + name + "\"" : on_deny});
      }
      if (limit) {
        if (limit->max < 0) {
          r_.Error(state, "state counter \"" + limit->counter +
                              "\" has no lt/lte condition on it, so it would never limit "
                              "anything");
        } else {
          tool.limits.push_back(std::move(*limit));
        }
      }
    }
  }

  std::optional<Limit> CompileState(const YAML::Node& state, const std::string& scope,
                                    const std::string& rule_name, const std::string& on_deny,
                                    std::map<std::string, size_t>& counters, size_t index) {
    if (!state.IsMap()) {
      r_.Error(state, "state must be a mapping with counter and window");
      return std::nullopt;
    }
    Limit limit;
    limit.rule = rule_name;
    limit.scope = Scope::kGlobal;
    limit.refund = RefundOn::kJsonRpcError;
    limit.reason = on_deny.empty() ? "Rate limit exceeded for " + rule_name : on_deny;
    limit.max = -1;  // set by the lt/lte condition
    std::string counter;
    bool ok = true;
    r_.ForEachKey(state, "state", [&](const std::string& key, const YAML::Node& k,
                                      const YAML::Node& v) {
      if (key == "counter") {
        r_.ReadString(v, "state.counter", counter);
        if (counter.empty()) {
          r_.Error(v, "counter must not be empty");
          ok = false;
        }
      } else if (key == "window") {
        std::string w;
        r_.ReadString(v, "state.window", w);
        if (w != "minute" && w != "hour" && w != "day") {
          r_.Error(v, "window must be \"minute\", \"hour\", or \"day\", got \"" + w + "\"");
          ok = false;
        } else {
          limit.window = *ParseWindow(w);
        }
      } else if (key == "increment") {
        ok = r_.ReadInt(v, "state.increment", 1, limit.increment) && ok;
      } else if (key == "increment_from") {
        std::string text;
        r_.ReadString(v, "state.increment_from", text);
        auto p = ArgPath::Parse(text);
        if (!p) {
          r_.Error(v, "increment_from must start with \"args.\", got \"" + text + "\"");
          ok = false;
        } else {
          limit.increment_from = std::move(*p);
        }
      } else {
        r_.Error(k, "state: unknown key \"" + key + "\"");
        ok = false;
      }
    });
    if (!state["counter"]) {
      r_.Error(state, "counter must not be empty");
      ok = false;
    }
    if (!state["window"]) {
      r_.Error(state, "window must be \"minute\", \"hour\", or \"day\", got \"\"");
      ok = false;
    }
    if (!ok) return std::nullopt;
    if (auto [it, fresh] = counters.emplace(counter, index); !fresh) {
      r_.Error(state["counter"], "duplicate state counter \"" + counter + "\" (also used by rules[" +
                                     std::to_string(it->second) + "])");
      return std::nullopt;
    }
    limit.counter = scope + "." + counter;
    return limit;
  }

  // `state.<scope>.<counter> lt|lte N` on the rule's own counter becomes the limit's max.
  void CompileStateCondition(const YAML::Node& cond, const std::string& where,
                             const std::string& path, std::optional<Limit>& limit) {
    const std::string op = cond["op"] && cond["op"].IsScalar() ? cond["op"].Scalar() : "";
    if (!ParseOp(op)) {
      r_.Error(cond["op"] ? cond["op"] : cond, where + ": unknown operator \"" + op + "\"");
      return;
    }
    if (!limit || path != "state." + limit->counter) {
      r_.Error(cond["path"], "condition references " + path +
                                 " but no matching state block found in this rule (toolwarden "
                                 "reads a counter only through its own rule's lt/lte limit)");
      return;
    }
    json::value v = cond["value"] ? YamlToJson(cond["value"]) : json::value(nullptr);
    if (op != "lt" && op != "lte") {
      r_.Error(cond["op"], where + ": on a state counter toolwarden supports only lt and lte, "
                                   "got \"" + op + "\"");
      return;
    }
    if (!v.is_int64() && !v.is_double()) {
      r_.Error(cond["value"] ? cond["value"] : cond,
               "operator \"" + op + "\" requires a numeric value");
      return;
    }
    const int64_t n = v.is_int64() ? v.get_int64() : static_cast<int64_t>(v.get_double());
    limit->max = op == "lt" ? n - 1 : n;
    if (limit->max <= 0) {
      r_.Error(cond["value"], where + ": this limit would never admit a call");
      limit->max = -1;
    }
  }

  void CompileRateLimit(const YAML::Node& node, const std::string& text, const std::string& scope,
                        const std::string& rule_name, const std::string& on_deny,
                        std::map<std::string, size_t>& counters, size_t index, ToolRule& tool) {
    const size_t slash = text.find('/');
    const std::string count = text.substr(0, slash);
    const std::string window = slash == std::string::npos ? "" : text.substr(slash + 1);
    int64_t n = 0;
    auto [p, ec] = std::from_chars(count.data(), count.data() + count.size(), n);
    if (ec != std::errc() || p != count.data() + count.size() || n <= 0) {
      r_.Error(node, "rate_limit count must be a positive integer, got \"" + count + "\"");
      return;
    }
    if (window != "minute" && window != "hour" && window != "day") {
      r_.Error(node, "rate_limit window must be \"minute\", \"hour\", or \"day\", got \"" + window +
                         "\"");
      return;
    }
    const std::string counter = "_rate_" + window;
    if (auto [it, fresh] = counters.emplace(counter, index); !fresh) {
      r_.Error(node, "duplicate state counter \"" + counter + "\" (also used by rules[" +
                         std::to_string(it->second) + "])");
      return;
    }
    Limit limit;
    limit.rule = rule_name;
    limit.counter = scope + "." + counter;
    limit.window = *ParseWindow(window);
    limit.max = n;
    limit.scope = Scope::kGlobal;
    limit.refund = RefundOn::kJsonRpcError;
    limit.reason = on_deny.empty() ? "Rate limit of " + count + " per " + window +
                                         " reached. Try again later"
                                   : on_deny;
    tool.limits.push_back(std::move(limit));
  }

  Reader& r_;
};

}  // namespace

FileFormat FormatFromName(std::string_view file_name) {
  return file_name.ends_with(".json") ? FileFormat::kJson : FileFormat::kYaml;
}

std::string PolicyVersion(std::string_view text) { return Sha256Hex(text).substr(0, 16); }

CompileResult CompilePolicy(std::string_view text, std::string_view file_name, FileFormat format) {
  CompileResult out;
  std::optional<YAML::Node> parsed = ParseYaml(text, format == FileFormat::kJson, out.diagnostics);
  if (!parsed) return out;
  const YAML::Node& root = *parsed;
  Reader reader(out.diagnostics);
  std::shared_ptr<Policy> policy;
  std::shared_ptr<Policy> shadow;  // the would-be policy, when the file marks parts shadow
  switch (ChooseShape(root, reader)) {
    case Shape::kIntercept:
      policy = InterceptCompiler(reader).Compile(root, file_name);
      break;
    case Shape::kNative: {
      NativeCompiler enforcing(reader, /*shadow_view=*/false);
      policy = enforcing.Compile(root, file_name);
      if (enforcing.saw_shadow() && out.diagnostics.empty()) {
        // The same text again, its shadow parts kept; it raised no problem the first did not.
        std::vector<Diagnostic> again;
        Reader shadow_reader(again);
        shadow = NativeCompiler(shadow_reader, /*shadow_view=*/true).Compile(root, file_name);
      }
      break;
    }
    case Shape::kMixed:
      policy = std::make_shared<Policy>();  // the diagnostic says why
      break;
  }
  std::stable_sort(out.diagnostics.begin(), out.diagnostics.end(),
                   [](const Diagnostic& a, const Diagnostic& b) {
                     return std::tie(a.line, a.column) < std::tie(b.line, b.column);
                   });
  if (out.diagnostics.empty()) {
    auto finish = [&](Policy& p) {
      p.version = PolicyVersion(text);
      for (auto& [name, rule] : p.exact) GroupRegexes(rule);
      for (auto& rule : p.globs) GroupRegexes(rule);
      for (auto& [name, rule] : p.classes) GroupRegexes(rule);
      GroupRegexes(p.all_tools);
    };
    finish(*policy);
    if (shadow) {
      finish(*shadow);
      policy->shadow = std::move(shadow);
    }
    out.policy = std::move(policy);
  }
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

Result<std::string> ReadPolicyText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Fail(Error::NotFound(path + ": cannot open policy file"));
  std::ostringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

Result<std::shared_ptr<const Policy>> LoadPolicyFile(const std::string& path) {
  auto text = ReadPolicyText(path);
  if (!text) return Fail(text.error());
  CompileResult r = CompilePolicy(*text, path, FormatFromName(path));
  if (!r.policy) return Fail(Error::InvalidArgument(FormatDiagnostics(path, r.diagnostics)));
  return std::shared_ptr<const Policy>(std::move(r.policy));
}

}  // namespace tw::policy
