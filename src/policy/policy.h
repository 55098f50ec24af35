// The compiled policy model and its evaluation: THE PURE CORE (no I/O, no clock).
//
// A Policy is immutable once loaded and shared as std::shared_ptr<const Policy>; each call
// evaluates against exactly one snapshot. Strings from the file became enums and matchers in
// the loader (loader.h) and nowhere else.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "mcp/protocol.h"

namespace tw::policy {

enum class DefaultAction { kAllow, kDeny };
enum class Action { kAllow, kDeny, kRequireApproval };

// A tool-name pattern: an exact name or a glob with `*` (any run) and `?` (one character).
class NamePattern {
 public:
  explicit NamePattern(std::string text);
  bool Matches(std::string_view name) const;
  bool is_glob() const { return is_glob_; }
  const std::string& text() const { return text_; }

 private:
  std::string text_;
  bool is_glob_;
};

// Returns true if `name` matches `glob` (`*`, `?`; every other character literal).
bool GlobMatch(std::string_view glob, std::string_view name);

struct ToolRule {
  NamePattern pattern;
  Action action = Action::kAllow;
  std::string reason;  // empty: a default reason is used
};

struct Policy {
  std::string source;  // file name, for messages
  DefaultAction default_action = DefaultAction::kDeny;
  std::vector<NamePattern> hide;
  std::unordered_map<std::string, ToolRule> exact;  // keyed by tool name
  std::vector<ToolRule> globs;                      // longest pattern first

  // True if the tool is hidden: removed from tools/list and denied when called.
  bool IsHidden(std::string_view tool) const;
  // The rule that governs `tool` (exact beats glob, longer glob beats shorter), or nullptr.
  const ToolRule* Match(std::string_view tool) const;
};

enum class Verdict { kAllow, kDeny };

struct Decision {
  Verdict verdict = Verdict::kDeny;
  std::string rule;    // which rule decided: "hide", "default", "tools.<key>"
  std::string reason;  // for denials: the text the agent sees
};

// Decides one call. Order (PRODUCT.md §2): hidden → tool action → default.
Decision Evaluate(const Policy& policy, const mcp::ToolCall& call);

// A policy that allows everything; used when no policy file is given.
std::shared_ptr<const Policy> AllowAllPolicy();

}  // namespace tw::policy
