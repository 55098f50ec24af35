#include "app/policy_test.h"

#include <boost/json.hpp>
#include <algorithm>
#include <span>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <vector>

#include "app/cli_common.h"
#include "app/init_record.h"
#include "gateway/tool_call_guard.h"
#include "limits/counter_store.h"
#include "policy/loader.h"
#include "policy/policy.h"
#include "policy/yaml_reader.h"

namespace tw::app {

namespace json = boost::json;

namespace {

constexpr int64_t kStartMs = 1'800'000'000'000;  // a fixed instant: cases are reproducible

struct Call {
  std::string tool;
  json::object arguments;
  std::string grant = "test";
  std::string principal;
  std::vector<std::string> groups;  // sorted
  int64_t times = 1;
  std::string cls;  // "Destructive/High": what the classifier says of the tool, for classes:
};

struct Case {
  std::string name;
  Call call;
  std::vector<Call> before;
  int64_t wait_ms = 0;
  std::string expect;  // allow, deny, approval
  std::string rule;    // optional
  std::string reason;  // optional: words of the reason
};

struct Outcome {
  std::string decision;
  std::string rule;
  std::string reason;
};

// Reads a case file, every problem with its position.
class CaseReader : public policy::YamlReader {
 public:
  using YamlReader::YamlReader;

  bool ReadCall(const YAML::Node& node, const std::string& where, Call& call, bool times_allowed) {
    const size_t errors = error_count();
    if (!node.IsMap()) {
      Error(node, where + " must be a mapping (tool, arguments, grant)");
      return false;
    }
    ForEachKey(node, where, [&](const std::string& key, const YAML::Node& k, const YAML::Node& v) {
      if (key == "tool") {
        ReadString(v, where + ".tool", call.tool);
      } else if (key == "arguments") {
        json::value a = policy::YamlToJson(v);
        if (!a.is_object()) {
          Error(v, where + ".arguments must be a mapping");
        } else {
          call.arguments = std::move(a.as_object());
        }
      } else if (key == "grant") {
        ReadString(v, where + ".grant", call.grant);
      } else if (key == "principal") {
        ReadString(v, where + ".principal", call.principal);
      } else if (key == "groups") {
        if (ReadStrings(v, where + ".groups", call.groups)) std::sort(call.groups.begin(), call.groups.end());
      } else if (key == "class") {
        if (ReadString(v, where + ".class", call.cls)) {
          const policy::ToolClass cls = policy::ParseToolClass(call.cls);
          if (!policy::IsCategoryName(cls.category) ||
              (call.cls.find('/') != std::string::npos && !policy::IsRiskName(cls.risk))) {
            Error(v, where + ".class must be a category (Read, Write, Execute, Financial, Destructive), "
                             "optionally /risk (Low, Medium, High, Critical), as scan shows it");
          }
        }
      } else if (key == "times" && times_allowed) {
        ReadInt(v, where + ".times", 1, call.times);
      } else if (!IsCaseKey(key) || times_allowed) {
        Error(k, where + ": unknown key \"" + key + "\"" +
                     policy::DidYouMean(
                         key, times_allowed ? std::vector<std::string_view>{"tool", "arguments", "grant",
                                                                            "principal", "groups", "class",
                                                                            "times"}
                                            : kCaseKeys));
      }
    });
    if (call.tool.empty()) Error(node, where + " needs a tool");
    return error_count() == errors;
  }

  static bool IsCaseKey(const std::string& k) {
    return std::find(kCaseKeys.begin(), kCaseKeys.end(), k) != kCaseKeys.end();
  }
  static inline const std::vector<std::string_view> kCaseKeys = {
      "name",   "tool", "arguments", "grant", "principal", "groups", "class",
      "before", "wait", "expect",    "rule",  "reason"};
};

std::optional<std::vector<Case>> ReadCases(const std::string& path, std::string& problems) {
  auto text = ReadText(path);
  if (!text) {
    problems = text.error().message();
    return std::nullopt;
  }
  std::vector<policy::Diagnostic> diags;
  auto root =
      policy::ParseYaml(*text, policy::FormatFromName(path) == policy::FileFormat::kJson, diags);
  std::vector<Case> cases;
  if (root) {
    CaseReader r(diags);
    const YAML::Node list = root->IsMap() ? (*root)["cases"] : YAML::Node();
    if (!list || !list.IsSequence() || list.size() == 0) {
      r.Error(*root, "expected `cases:`, a list of cases (name, tool, arguments, expect)");
    } else {
      for (size_t i = 0; i < list.size(); ++i) {
        const YAML::Node c = list[i];
        const std::string where = "cases[" + std::to_string(i) + "]";
        Case k;
        if (!r.ReadCall(c, where, k.call, false)) continue;
        r.ForEachKey(c, where, [&](const std::string& key, const YAML::Node&, const YAML::Node& v) {
          if (key == "name") {
            r.ReadString(v, where + ".name", k.name);
          } else if (key == "expect") {
            r.ReadString(v, where + ".expect", k.expect);
            if (k.expect != "allow" && k.expect != "deny" && k.expect != "approval") {
              r.Error(v, where + ".expect must be one of \"allow\", \"deny\", \"approval\"" +
                             policy::DidYouMean(k.expect, {"allow", "deny", "approval"}));
            }
          } else if (key == "rule") {
            r.ReadString(v, where + ".rule", k.rule);
          } else if (key == "reason") {
            r.ReadString(v, where + ".reason", k.reason);
          } else if (key == "wait") {
            std::string w;
            if (r.ReadString(v, where + ".wait", w)) {
              auto ms = policy::ParseDurationMs(w);
              if (!ms) {
                r.Error(v, where + ".wait: " + ms.error().message());
              } else {
                k.wait_ms = *ms;
              }
            }
          } else if (key == "before") {
            if (!v.IsSequence()) {
              r.Error(v, where + ".before must be a list of calls");
              return;
            }
            for (size_t j = 0; j < v.size(); ++j) {
              Call b;
              b.grant = k.call.grant;
              if (r.ReadCall(v[j], where + ".before[" + std::to_string(j) + "]", b, true)) {
                k.before.push_back(std::move(b));
              }
            }
          }
        });
        if (k.expect.empty()) r.Error(c, where + " needs `expect: allow|deny|approval`");
        if (k.name.empty()) k.name = k.call.tool + " " + json::serialize(k.call.arguments);
        cases.push_back(std::move(k));
      }
    }
  }
  if (!diags.empty()) {
    problems = policy::FormatDiagnostics(path, diags);
    return std::nullopt;
  }
  return cases;
}

// Decides one call as the gateway would, charging its limits in `store` when it goes ahead.
Outcome Decide(const policy::Policy& p, const Call& call, limits::CounterStore& store,
               int64_t now) {
  const policy::Identity identity{call.grant, "test-session", {}, call.principal, call.groups};
  const policy::ToolClass cls = policy::ParseToolClass(call.cls);
  policy::Decision d =
      policy::Evaluate(p, mcp::ToolCall{call.tool, call.arguments}, identity, now, cls);
  if (d.verdict == policy::Verdict::kAllow && !d.charges.empty()) {
    auto charged = store.TryCharge(gateway::ChargesFor(d.charges, identity), now);
    if (charged && !charged->admitted)
      d = policy::LimitDenial(d.charges[charged->rejected], charged->current, now);
  }
  return {std::string(policy::DecisionName(d)), std::string(d.rule), d.reason};
}

std::string Xml(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

}  // namespace

int PolicyTestCommand(const PolicyTestOptions& o) {
  auto p = policy::LoadPolicyFile(o.policy_path);
  if (!p) {
    std::cerr << p.error().message() << "\n";
    return kExitInvalid;
  }
  std::string problems;
  auto cases = ReadCases(o.cases_path, problems);
  if (!cases) {
    std::cerr << problems << (problems.ends_with('\n') ? "" : "\n");
    return kExitInvalid;
  }
  struct Result1 {
    const Case* c;
    Outcome got;
    std::string failure;  // empty: passed
  };
  std::vector<Result1> results;
  for (const Case& c : *cases) {
    auto store = limits::MakeMemoryStore();
    int64_t now = kStartMs;
    for (const Call& b : c.before) {
      for (int64_t i = 0; i < b.times; ++i) Decide(**p, b, *store, now);
    }
    now += c.wait_ms;
    Outcome got = Decide(**p, c.call, *store, now);
    std::string failure;
    if (got.decision != c.expect) {
      failure = "expected " + c.expect + ", got " + got.decision;
    } else if (!c.rule.empty() && got.rule != c.rule) {
      failure = "expected rule " + c.rule + ", got " + got.rule;
    } else if (!c.reason.empty() && got.reason.find(c.reason) == std::string::npos) {
      failure = "expected a reason with \"" + c.reason + "\", got \"" + got.reason + "\"";
    }
    results.push_back({&c, std::move(got), std::move(failure)});
  }
  size_t failed = 0;
  for (const auto& r : results) failed += r.failure.empty() ? 0 : 1;

  if (!o.junit_path.empty()) {
    std::ostringstream x;
    x << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuite name=\"" << Xml(o.policy_path)
      << "\" tests=\"" << results.size() << "\" failures=\"" << failed << "\">\n";
    for (const auto& r : results) {
      x << "  <testcase classname=\"" << Xml(o.cases_path) << "\" name=\"" << Xml(r.c->name)
        << "\"";
      if (r.failure.empty()) {
        x << "/>\n";
      } else {
        x << ">\n    <failure message=\"" << Xml(r.failure) << "\">" << Xml(r.got.rule) << ": "
          << Xml(r.got.reason) << "</failure>\n  </testcase>\n";
      }
    }
    x << "</testsuite>\n";
    if (auto w = WriteAtomically(o.junit_path, x.str()); !w) {
      std::cerr << "toolwarden test: " << w.error().message() << "\n";
      return kExitUnavailable;
    }
  }
  if (o.json) {
    json::array out;
    for (const auto& r : results) {
      json::object j{{"name", r.c->name},     {"tool", r.c->call.tool},
                     {"expect", r.c->expect}, {"decision", r.got.decision},
                     {"rule", r.got.rule},    {"passed", r.failure.empty()}};
      if (!r.got.reason.empty()) j["reason"] = r.got.reason;
      if (!r.failure.empty()) j["failure"] = r.failure;
      out.push_back(std::move(j));
    }
    std::cout << json::serialize(json::object{{"policy", o.policy_path},
                                              {"cases", std::move(out)},
                                              {"passed", results.size() - failed},
                                              {"failed", failed}})
              << "\n";
  } else {
    std::vector<std::vector<std::string>> rows{{"", "CASE", "DECISION", "RULE"}};
    for (const auto& r : results) {
      rows.push_back({r.failure.empty() ? "PASS" : "FAIL", r.c->name,
                      r.failure.empty() ? r.got.decision : r.failure, r.got.rule});
    }
    PrintTable(std::cout, rows);
    std::cout << results.size() << " case" << (results.size() == 1 ? "" : "s") << ": "
              << results.size() - failed << " passed, " << failed << " failed\n";
  }
  return failed ? kExitInvalid : kExitOk;
}

std::string CasesPathFor(const std::string& policy_path) {
  const size_t dot = policy_path.find_last_of('.');
  const size_t slash = policy_path.find_last_of('/');
  const bool has_ext = dot != std::string::npos && (slash == std::string::npos || dot > slash);
  return (has_ext ? policy_path.substr(0, dot) : policy_path) + ".cases.yaml";
}

std::string StarterCases(const std::string& policy_path, const std::vector<std::string>& tools) {
  std::ostringstream out;
  out << "# Expected decisions of " << policy_path
      << ", one case per tool as the scaffold decides\n"
      << "# it today: give each case the arguments your agents send, add the cases that matter\n"
      << "# (a refused argument, a limit that fires), then keep both files in git and run\n"
      << "#   toolwarden test " << policy_path << " THIS_FILE\n"
      << "cases:\n";
  auto p = policy::LoadPolicyFile(policy_path);
  for (const std::string& tool : tools) {
    std::string expect = "deny";
    if (p) {
      auto store = limits::MakeMemoryStore();
      Call call;
      call.tool = tool;
      expect = Decide(**p, call, *store, kStartMs).decision;
    }
    out << "  - name: "
        << json::serialize(json::value(tool + " is " +
                                       (expect == "approval" ? "held for approval"
                                        : expect == "allow"  ? "allowed"
                                                             : "denied")))
        << "\n    tool: " << json::serialize(json::value(tool))
        << "\n    arguments: {}\n    expect: " << expect << "\n";
  }
  return out.str();
}

Result<std::string> WriteStarterCases(const std::string& policy_path,
                                      const std::vector<catalog::ScannedTool>& tools) {
  const std::string cases = CasesPathFor(policy_path);
  std::error_code ec;
  if (std::filesystem::exists(cases, ec)) return std::string();
  std::vector<std::string> names;
  for (const auto& t : tools) {
    if (const json::value* n = t.definition.if_contains("name"); n && n->is_string()) {
      names.emplace_back(n->get_string());
    }
  }
  if (auto w = WriteAtomically(cases, StarterCases(policy_path, names)); !w) return Fail(w.error());
  return cases;
}

}  // namespace tw::app
