#include "policy/policy.h"

#include <algorithm>

namespace tw::policy {

bool GlobMatch(std::string_view glob, std::string_view name) {
  // Iterative matcher with single-star backtracking: linear in practice, no recursion.
  size_t g = 0, n = 0, star = std::string_view::npos, mark = 0;
  while (n < name.size()) {
    if (g < glob.size() && (glob[g] == '?' || glob[g] == name[n])) {
      ++g;
      ++n;
    } else if (g < glob.size() && glob[g] == '*') {
      star = g++;
      mark = n;
    } else if (star != std::string_view::npos) {
      g = star + 1;
      n = ++mark;
    } else {
      return false;
    }
  }
  while (g < glob.size() && glob[g] == '*') ++g;
  return g == glob.size();
}

NamePattern::NamePattern(std::string text)
    : text_(std::move(text)), is_glob_(text_.find_first_of("*?") != std::string::npos) {}

bool NamePattern::Matches(std::string_view name) const {
  return is_glob_ ? GlobMatch(text_, name) : text_ == name;
}

bool Policy::IsHidden(std::string_view tool) const {
  return std::any_of(hide.begin(), hide.end(),
                     [&](const NamePattern& p) { return p.Matches(tool); });
}

const ToolRule* Policy::Match(std::string_view tool) const {
  if (auto it = exact.find(std::string(tool)); it != exact.end()) return &it->second;
  for (const ToolRule& rule : globs) {
    if (rule.pattern.Matches(tool)) return &rule;
  }
  return nullptr;
}

Decision Evaluate(const Policy& policy, const mcp::ToolCall& call) {
  if (policy.IsHidden(call.name)) {
    return {Verdict::kDeny, "hide", "Tool \"" + call.name + "\" is not available"};
  }
  const ToolRule* rule = policy.Match(call.name);
  if (!rule) {
    if (policy.default_action == DefaultAction::kAllow) return {Verdict::kAllow, "default", ""};
    return {Verdict::kDeny, "default",
            "Tool \"" + call.name + "\" is not allowed by policy (default: deny)"};
  }
  std::string rule_name = "tools." + rule->pattern.text();
  switch (rule->action) {
    case Action::kAllow:
      return {Verdict::kAllow, std::move(rule_name), ""};
    case Action::kDeny:
      return {
          Verdict::kDeny, std::move(rule_name),
          rule->reason.empty() ? "Tool \"" + call.name + "\" is denied by policy" : rule->reason};
    case Action::kRequireApproval:
      // The approval flow is not built yet; fail closed rather than allow.
      return {Verdict::kDeny, std::move(rule_name),
              "Tool \"" + call.name +
                  "\" requires human approval, and approvals are not available in this "
                  "gateway yet"};
  }
  return {Verdict::kDeny, std::move(rule_name), "unreachable"};
}

std::shared_ptr<const Policy> AllowAllPolicy() {
  auto p = std::make_shared<Policy>();
  p->source = "(built-in allow-all)";
  p->default_action = DefaultAction::kAllow;
  return p;
}

}  // namespace tw::policy
