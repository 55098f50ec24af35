// The compiled policy model and its evaluation: THE PURE CORE (no I/O, no clock).
//
// A Policy is immutable once loaded and shared as std::shared_ptr<const Policy>; each call
// evaluates against exactly one snapshot. Strings from the file became enums, compiled
// conditions and windows in the loader (loader.h) and nowhere else. Both file formats — the
// native one (PolicyLayer-compatible JSON/YAML) and Intercept's YAML — compile to this model.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "mcp/protocol.h"
#include "policy/condition.h"

#include <boost/container/small_vector.hpp>
#include <re2/set.h>

namespace tw::policy {

enum class DefaultAction { kAllow, kDeny };
enum class Action { kAllow, kDeny, kRequireApproval };
// kPrincipal: per person (the caller's principal; the grant's name for a grant that names
// nobody), so that one person's agents share one budget.
enum class Scope { kGrant, kSession, kGlobal, kPrincipal };
// Which failed calls give their charge back.
enum class RefundOn { kNever, kJsonRpcError, kAnyError };
enum class Format { kNative, kIntercept };

std::string_view ScopeName(Scope scope);

// A tool-name pattern: an exact name or a glob with `*` (any run) and `?` (one character).
class NamePattern {
 public:
  enum class Kind { kAuto, kLiteral };
  explicit NamePattern(std::string text, Kind kind = Kind::kAuto);
  bool Matches(std::string_view name) const;
  bool is_glob() const { return is_glob_; }
  const std::string& text() const { return text_; }

 private:
  std::string text_;
  bool is_glob_;
};

// Returns true if `name` matches `glob` (`*`, `?`; every other character literal).
bool GlobMatch(std::string_view glob, std::string_view name);

// A fixed window aligned to UTC: calendar units (second … day, and week starting Monday
// 00:00 UTC) or a duration (`30s`, `15m`, `7d`) aligned to the Unix epoch.
struct Window {
  int64_t length_ms = 60'000;
  int64_t offset_ms = 0;  // alignment: window starts are offset + k * length
  std::string text;       // as written, for messages ("minute", "15m")

  int64_t Start(int64_t now_ms) const;
  int64_t End(int64_t now_ms) const { return Start(now_ms) + length_ms; }
};
// Parses `second minute hour day week` or `<n>s|m|h|d|w`.
Result<Window> ParseWindow(std::string_view text);
// Parses a duration `<n>ms|s|m|h|d` into milliseconds.
Result<int64_t> ParseDurationMs(std::string_view text);

struct Limit {
  std::string rule;     // names the limit in decisions: "tools.x.limits[0]"
  std::string counter;  // unique within the policy
  Window window;
  int64_t max = 0;  // > 0
  Scope scope = Scope::kGrant;
  int64_t increment = 1;
  std::optional<ArgPath> increment_from;  // spend caps: the argument holding the amount
  RefundOn refund = RefundOn::kNever;
  std::string reason;  // fixed denial text (Intercept's on_deny); empty: generated
};

// One test a call must pass, in order.
struct Check {
  enum class Kind { kDeny, kRequire, kDenyIf };
  Kind kind = Kind::kRequire;
  std::optional<Condition> condition;  // absent for kDeny
  std::string rule;                    // "tools.x.require[0]"
  std::string reason;                  // the author's text; empty: generated
  // Regex conditions on a path shared with other regex conditions of the same rule are
  // matched together, in one pass over the value (RegexGroup); -1 when not grouped.
  int group = -1;
  int group_index = -1;
};

// Several regex conditions on one argument, compiled into one RE2::Set so that a call pays
// one scan of the value instead of one per pattern. Built by the loader (GroupRegexes).
struct RegexGroup {
  ArgPath path;
  std::shared_ptr<const re2::RE2::Set> set;
};

struct ToolRule {
  explicit ToolRule(NamePattern p) : pattern(std::move(p)), name("tools." + pattern.text()) {}

  NamePattern pattern;
  std::string name;  // "tools.<key>", how decisions name this rule
  Action action = Action::kAllow;
  std::string reason;
  std::vector<Check> checks;
  std::vector<RegexGroup> regex_groups;
  std::vector<Limit> limits;
  int64_t approval_timeout_ms = 5 * 60'000;
  // Who may call (`principals:`, `groups:`): when either is set, the caller must be one of the
  // principals or in one of the groups, else the call is denied by this rule. Empty: anyone.
  std::vector<std::string> principals;
  std::vector<std::string> groups;
  bool Admits(std::string_view principal, std::span<const std::string> caller_groups) const;
};

// Groups a rule's regex conditions by path (two or more on one path) into RegexGroups.
void GroupRegexes(ToolRule& rule);

// What the classifier (catalog::Classify, the one `scan` uses) says a tool is: its category
// (Read, Write, Execute, Financial, Destructive) and risk (Low, Medium, High, Critical). Empty
// when unknown — the tool's definition was never listed, or a replayed record predates it.
struct ToolClass {
  std::string_view category;
  std::string_view risk;
};

// The names `classes:` may use: the classifier's categories, then its risks.
std::span<const std::string_view> ClassNames();
bool IsCategoryName(std::string_view name);  // Read, Write, Execute, Financial, Destructive
bool IsRiskName(std::string_view name);      // Low, Medium, High, Critical
// "Destructive/High" (or "Destructive", or "Destructive/High@1" as the audit records it, with
// the classifier's version) into a class: views into `text`, unchecked.
ToolClass ParseToolClass(std::string_view text);

struct Policy {
  std::string source;   // file name, for messages
  std::string version;  // digest of the file's text (first 16 hex of SHA-256), for the audit
  Format format = Format::kNative;
  DefaultAction default_action = DefaultAction::kDeny;
  std::vector<NamePattern> hide;
  std::unordered_map<std::string, ToolRule> exact;  // keyed by tool name
  std::vector<ToolRule> globs;                      // longest pattern first
  // Class selectors (`classes:`), keyed by a category ("Destructive") or a risk ("High"): the
  // rule of a tool no exact name or glob names; a category before a risk.
  std::unordered_map<std::string, ToolRule> classes;
  ToolRule all_tools{NamePattern("*")};             // applies to every call of a listed tool

  // `mode: shadow` at the top of the file: the whole file is a candidate that decides nothing.
  // It may only be a server's `policy_shadow`.
  bool shadow_only = false;
  // The would-be policy evaluated beside this one on every call, its decision recorded and
  // never enforced: this file with its `mode: shadow` parts enforcing. Null when the file has
  // none (a server's `policy_shadow` file is attached by the gateway instead).
  std::shared_ptr<const Policy> shadow;

  // True if the tool is hidden: removed from tools/list and denied when called.
  bool IsHidden(std::string_view tool) const;
  // The rule that governs `tool`: exact beats glob, longer glob beats shorter, then the class
  // selectors — the tool's category, then its risk —; nullptr when none does (`default`).
  const ToolRule* Match(std::string_view tool, const ToolClass& cls = {}) const;
  // Every limit in the policy (for explain and validation).
  std::vector<const Limit*> AllLimits() const;
};

// Who is calling: the scope ids that counters are kept per.
struct Identity {
  std::string_view grant = "local";
  std::string_view session;
  std::string_view server;  // namespace of counters when one store serves many servers
  // The person behind the call (empty: nobody in particular) and their groups (sorted), as
  // their grant or their identity provider's token says.
  std::string_view principal;
  std::span<const std::string> groups;
};

// A charge the guard must make if the call is to go ahead.
struct PlannedCharge {
  const Limit* limit = nullptr;  // points into the policy snapshot
  int64_t amount = 0;
  int64_t window_start_ms = 0;
  int64_t window_end_ms = 0;
};

enum class Verdict { kAllow, kDeny };

struct Decision {
  Verdict verdict = Verdict::kDeny;
  // Which rule decided: "hide", "default", "tools.<key>", "tools.<key>.deny_if[0]". Points into
  // the policy snapshot (or a literal): valid as long as the snapshot is.
  std::string_view rule;
  std::string reason;  // for denials: the text the agent sees
  std::optional<int64_t> retry_after_s;
  // Set when the call may go ahead only once a human approves it (action: require_approval):
  // how long the approval may take.
  std::optional<int64_t> approval_timeout_ms;
  // For allowed calls: every limit to charge, atomically. Inline storage: no allocation for
  // the usual one to four limits.
  boost::container::small_vector<PlannedCharge, 4> charges;
};

// Decides one call at time `now_ms`. Order (PRODUCT.md §2): hidden → default deny for unlisted
// tools → the tool's checks (action deny, require, deny_if) → all_tools checks → limits (planned
// here, charged by the caller) → approval.
// `cls` is what the classifier says of the tool, for `classes:` selectors.
Decision Evaluate(const Policy& policy, const mcp::ToolCall& call, const Identity& identity,
                  int64_t now_ms, const ToolClass& cls = {});

// "allow", "deny" or "approval" (allowed once a human approves): a decision as the audit,
// explain and replay name it.
std::string_view DecisionName(const Decision& d);

// The policy a file would be with its `mode: shadow` parts enforcing: its `shadow`, or the file
// itself when it has none (a `mode: shadow` file, or one without shadow parts).
std::shared_ptr<const Policy> WouldBe(const std::shared_ptr<const Policy>& file);

// The denial for a limit that is full: names the limit and when it resets.
Decision LimitDenial(const PlannedCharge& charge, int64_t current, int64_t now_ms);

// How the policy treats a tool in general, whatever the arguments (for inventories).
enum class Stance { kAllow, kLimited, kConditional, kApproval, kDeny, kHidden };
std::string_view StanceName(Stance s);  // "allow", "limited", "conditional", "approval", …
struct ToolStance {
  Stance stance;
  std::string_view rule;
};
ToolStance StanceOf(const Policy& policy, std::string_view tool, const ToolClass& cls = {});

// Which selector gives `tool` its rule: "hide", "exact" (its name), "glob", "class" (its
// category or risk under `classes:`) or "default" — what `explain` shows.
std::string_view SelectorOf(const Policy& policy, std::string_view tool, const ToolClass& cls = {});

// The argument paths the decision of a call to `tool` reads (its rule's and all_tools'
// conditions, and the amounts of spend caps); empty when the decision does not depend on the
// arguments (a hidden or denied tool, an unlisted one under default: deny, plain limits).
std::vector<const ArgPath*> ArgumentsRead(const Policy& policy, std::string_view tool,
                                          const ToolClass& cls = {});

// A policy that allows everything; used when no policy file is given.
std::shared_ptr<const Policy> AllowAllPolicy();

}  // namespace tw::policy
