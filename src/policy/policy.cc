#include "policy/policy.h"

#include <algorithm>
#include <charconv>
#include <map>

namespace tw::policy {

namespace {

constexpr int64_t kSecond = 1000, kMinute = 60 * kSecond, kHour = 60 * kMinute,
                  kDay = 24 * kHour, kWeek = 7 * kDay;
// 1970-01-05 was a Monday: calendar weeks start at offset + k * week.
constexpr int64_t kMondayOffset = 4 * kDay;

std::string DefaultToolReason(const std::string& tool) {
  return "Tool \"" + tool + "\" is denied by policy";
}

// Human duration for messages, the two largest units: 42 s, 3 min 5 s, 2 h 10 min, 1 d 4 h.
std::string HumanSeconds(int64_t s) {
  struct Unit {
    int64_t seconds;
    const char* name;
  };
  static constexpr Unit kUnits[] = {{86400, "d"}, {3600, "h"}, {60, "min"}, {1, "s"}};
  std::string out;
  for (size_t i = 0; i < std::size(kUnits); ++i) {
    if (s < kUnits[i].seconds && i + 1 < std::size(kUnits)) continue;
    out.append(std::to_string(s / kUnits[i].seconds)).append(" ").append(kUnits[i].name);
    const int64_t rest = s % kUnits[i].seconds;
    if (rest && i + 1 < std::size(kUnits) && rest >= kUnits[i + 1].seconds) {
      out.append(" ")
          .append(std::to_string(rest / kUnits[i + 1].seconds))
          .append(" ")
          .append(kUnits[i + 1].name);
    }
    break;
  }
  return out;
}

// "Tool \"x\" may be called only by alice, or members of sre (you are bob)".
std::string WhoMayCall(const ToolRule& r, std::string_view tool, std::string_view principal) {
  std::string who;
  auto list = [](const std::vector<std::string>& names) {
    std::string s;
    for (size_t i = 0; i < names.size(); ++i) s.append(i == 0 ? "" : ", ").append(names[i]);
    return s;
  };
  if (!r.principals.empty()) who = list(r.principals);
  if (!r.groups.empty()) who.append(who.empty() ? "" : ", or ").append("members of ").append(list(r.groups));
  std::string out = "Tool \"";
  out.append(tool).append("\" may be called only by ").append(who);
  if (principal.empty()) return out.append(" (this caller names no principal)");
  return out.append(" (you are ").append(principal).append(")");
}

Decision Deny(std::string_view rule, std::string reason) {
  Decision d;
  d.verdict = Verdict::kDeny;
  d.rule = rule;
  d.reason = std::move(reason);
  return d;
}

// The matches of a rule's regex groups for one call, computed on first use.
class GroupMatches {
 public:
  explicit GroupMatches(const ToolRule& rule) : rule_(rule) {}

  // The outcome of the grouped regex condition `check` (same contract as Condition::Evaluate).
  Outcome Evaluate(const Check& check) {
    if (computed_.size() <= static_cast<size_t>(check.group)) {
      computed_.resize(rule_.regex_groups.size(), false);
      matched_.resize(rule_.regex_groups.size());
      kind_.resize(rule_.regex_groups.size(), Outcome::kAbsent);
    }
    const size_t g = static_cast<size_t>(check.group);
    if (!computed_[g]) {
      computed_[g] = true;
      const RegexGroup& group = rule_.regex_groups[g];
      const json::value* v = group.path.Resolve(*args_);
      if (!v || v->is_null()) {
        kind_[g] = Outcome::kAbsent;
      } else if (!v->is_string()) {
        kind_[g] = Outcome::kMismatch;
      } else {
        kind_[g] = Outcome::kTrue;
        const auto& s = v->get_string();
        group.set->Match(re2::StringPiece(s.data(), s.size()), &matched_[g]);
      }
    }
    if (kind_[g] != Outcome::kTrue) return kind_[g];
    const auto& m = matched_[g];
    const bool match = std::find(m.begin(), m.end(), check.group_index) != m.end();
    return (check.condition->op == Op::kRegex) == match ? Outcome::kTrue : Outcome::kFalse;
  }
  void Reset(const json::object& args) { args_ = &args; }

 private:
  const ToolRule& rule_;
  const json::object* args_ = nullptr;
  std::vector<bool> computed_;
  std::vector<std::vector<int>> matched_;
  std::vector<Outcome> kind_;
};

// Runs one check; returns a denial or nullopt when the call passes it.
std::optional<Decision> RunCheck(const Check& check, const mcp::ToolCall& call,
                                 GroupMatches& groups) {
  if (check.kind == Check::Kind::kDeny) {
    return Deny(check.rule, check.reason.empty() ? DefaultToolReason(call.name) : check.reason);
  }
  const Condition& c = *check.condition;
  const Outcome outcome =
      check.group >= 0 ? groups.Evaluate(check) : c.Evaluate(call.arguments);
  auto reason = [&](std::string generated) {
    return check.reason.empty() ? std::move(generated) : check.reason;
  };
  if (outcome == Outcome::kMismatch) {
    // Fail closed: a value of the wrong type can neither satisfy require nor escape deny_if.
    return Deny(check.rule, reason(c.path.text() + " has the wrong type for \"" +
                                   std::string(OpName(c.op)) + "\" (" + c.Describe() + ")"));
  }
  if (check.kind == Check::Kind::kRequire) {
    if (outcome == Outcome::kTrue) return std::nullopt;
    if (outcome == Outcome::kAbsent) {
      return Deny(check.rule, reason(c.path.text() + " is required (" + c.Describe() + ")"));
    }
    return Deny(check.rule, reason("requires " + c.Describe()));
  }
  if (outcome == Outcome::kTrue) return Deny(check.rule, reason("denied because " + c.Describe()));
  return std::nullopt;  // kFalse, or kAbsent: an absent value does not trigger deny_if
}

// Plans the charge of one limit. A spend cap whose amount is missing or not a non-negative
// whole number denies the call.
std::optional<Decision> PlanLimit(const Limit& limit, const mcp::ToolCall& call, int64_t now_ms,
                                  boost::container::small_vector<PlannedCharge, 4>& out) {
  int64_t amount = limit.increment;
  if (limit.increment_from) {
    const json::value* v = limit.increment_from->Resolve(call.arguments);
    const std::string& path = limit.increment_from->text();
    if (!v || v->is_null()) {
      return Deny(limit.rule, path + " is required: the limit \"" + limit.counter +
                                  "\" counts it");
    }
    if (v->is_int64() && v->get_int64() >= 0) {
      amount = v->get_int64();
    } else if (v->is_uint64()) {
      amount = INT64_MAX;  // larger than any cap
    } else if (v->is_double() && v->get_double() >= 0 && v->get_double() < 9.2e18 &&
               v->get_double() == static_cast<double>(static_cast<int64_t>(v->get_double()))) {
      amount = static_cast<int64_t>(v->get_double());
    } else {
      return Deny(limit.rule, path + " must be a non-negative whole number for the limit \"" +
                                  limit.counter + "\"");
    }
  }
  out.push_back({&limit, amount, limit.window.Start(now_ms), limit.window.End(now_ms)});
  return std::nullopt;
}

}  // namespace

std::string_view ScopeName(Scope scope) {
  switch (scope) {
    case Scope::kGrant:
      return "grant";
    case Scope::kSession:
      return "session";
    case Scope::kGlobal:
      return "global";
    case Scope::kPrincipal:
      return "principal";
  }
  return "grant";
}

bool ToolRule::Admits(std::string_view principal, std::span<const std::string> caller_groups) const {
  if (principals.empty() && groups.empty()) return true;
  if (!principal.empty() && std::find(principals.begin(), principals.end(), principal) != principals.end()) {
    return true;
  }
  for (const std::string& g : caller_groups) {
    if (std::find(groups.begin(), groups.end(), g) != groups.end()) return true;
  }
  return false;
}

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

NamePattern::NamePattern(std::string text, Kind kind)
    : text_(std::move(text)),
      is_glob_(kind == Kind::kAuto && text_.find_first_of("*?") != std::string::npos) {}

bool NamePattern::Matches(std::string_view name) const {
  return is_glob_ ? GlobMatch(text_, name) : text_ == name;
}

int64_t Window::Start(int64_t now_ms) const {
  int64_t since = now_ms - offset_ms;
  int64_t k = since / length_ms;
  if (since % length_ms < 0) --k;  // floor for times before the offset
  return offset_ms + k * length_ms;
}

Result<int64_t> ParseDurationMs(std::string_view text) {
  int64_t n = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  std::string_view unit(p, text.data() + text.size() - p);
  const int64_t scale = unit == "ms" ? 1
                        : unit == "s" ? kSecond
                        : unit == "m" ? kMinute
                        : unit == "h" ? kHour
                        : unit == "d" ? kDay
                        : unit == "w" ? kWeek
                                      : 0;
  if (ec != std::errc() || p == text.data() || n <= 0 || scale == 0 || n > INT64_MAX / scale) {
    std::string message = "\"";
    message.append(text).append("\" is not a duration (examples: 30s, 15m, 2h, 7d)");
    return Fail(Error::InvalidArgument(std::move(message)));
  }
  return n * scale;
}

Result<Window> ParseWindow(std::string_view text) {
  Window w;
  w.text = std::string(text);
  if (text == "second") {
    w.length_ms = kSecond;
  } else if (text == "minute") {
    w.length_ms = kMinute;
  } else if (text == "hour") {
    w.length_ms = kHour;
  } else if (text == "day") {
    w.length_ms = kDay;
  } else if (text == "week") {
    w.length_ms = kWeek;
    w.offset_ms = kMondayOffset;
  } else {
    auto d = ParseDurationMs(text);
    if (!d || *d % kSecond != 0) {
      return Fail(Error::InvalidArgument(
          "window must be second, minute, hour, day, week or a duration such as 30s, 15m, 7d; "
          "got \"" +
          std::string(text) + "\""));
    }
    w.length_ms = *d;
  }
  return w;
}

void GroupRegexes(ToolRule& rule) {
  std::map<std::string, std::vector<size_t>> by_path;
  for (size_t i = 0; i < rule.checks.size(); ++i) {
    const Check& c = rule.checks[i];
    if (c.condition && (c.condition->op == Op::kRegex || c.condition->op == Op::kNotRegex)) {
      by_path[c.condition->path.text()].push_back(i);
    }
  }
  for (auto& [path, indexes] : by_path) {
    if (indexes.size() < 2) continue;
    RE2::Options options;
    options.set_log_errors(false);
    options.set_max_mem(64 << 20);
    auto set = std::make_shared<re2::RE2::Set>(options, RE2::UNANCHORED);
    bool ok = true;
    for (size_t i : indexes) {
      const auto& pattern = rule.checks[i].condition->value.get_string();
      ok = ok && set->Add(re2::StringPiece(pattern.data(), pattern.size()), nullptr) >= 0;
    }
    if (!ok || !set->Compile()) continue;  // each condition keeps its own RE2 then
    const int group = static_cast<int>(rule.regex_groups.size());
    rule.regex_groups.push_back({rule.checks[indexes[0]].condition->path, std::move(set)});
    for (size_t k = 0; k < indexes.size(); ++k) {
      rule.checks[indexes[k]].group = group;
      rule.checks[indexes[k]].group_index = static_cast<int>(k);
    }
  }
}

bool Policy::IsHidden(std::string_view tool) const {
  return std::any_of(hide.begin(), hide.end(),
                     [&](const NamePattern& p) { return p.Matches(tool); });
}

std::span<const std::string_view> ClassNames() {
  static constexpr std::string_view kNames[] = {"Read", "Write",  "Execute", "Financial", "Destructive",
                                                "Low",  "Medium", "High",    "Critical"};
  return kNames;
}

bool IsCategoryName(std::string_view name) {
  const auto names = ClassNames().first(5);
  return std::find(names.begin(), names.end(), name) != names.end();
}

bool IsRiskName(std::string_view name) {
  const auto names = ClassNames().subspan(5);
  return std::find(names.begin(), names.end(), name) != names.end();
}

ToolClass ParseToolClass(std::string_view text) {
  ToolClass cls;
  text = text.substr(0, text.find('@'));  // "@1": the classifier's version
  const size_t slash = text.find('/');
  cls.category = text.substr(0, slash);
  if (slash != std::string_view::npos) cls.risk = text.substr(slash + 1);
  return cls;
}

const ToolRule* Policy::Match(std::string_view tool, const ToolClass& cls) const {
  if (auto it = exact.find(std::string(tool)); it != exact.end()) return &it->second;
  for (const ToolRule& rule : globs) {
    if (rule.pattern.Matches(tool)) return &rule;
  }
  if (!classes.empty()) {
    for (std::string_view c : {cls.category, cls.risk}) {
      if (c.empty()) continue;
      if (auto it = classes.find(std::string(c)); it != classes.end()) return &it->second;
    }
  }
  return nullptr;
}

std::vector<const Limit*> Policy::AllLimits() const {
  std::vector<const Limit*> out;
  auto add = [&](const ToolRule& r) {
    for (const Limit& l : r.limits) out.push_back(&l);
  };
  for (const auto& [name, rule] : exact) add(rule);
  for (const auto& rule : globs) add(rule);
  for (const auto& [name, rule] : classes) add(rule);
  add(all_tools);
  return out;
}

Decision Evaluate(const Policy& policy, const mcp::ToolCall& call, const Identity& identity,
                  int64_t now_ms, const ToolClass& cls) {
  if (policy.IsHidden(call.name)) {
    return Deny("hide", policy.format == Format::kIntercept
                            ? "Tool \"" + call.name + "\" is hidden by policy"
                            : "Tool \"" + call.name + "\" is not available");
  }
  const ToolRule* rule = policy.Match(call.name, cls);
  if (!rule && policy.default_action == DefaultAction::kDeny) {
    return Deny("default", "Tool \"" + call.name + "\" is not allowed by policy (default: deny)");
  }
  const std::string_view rule_name = rule ? std::string_view(rule->name) : "default";
  if (rule && rule->action == Action::kDeny) {
    return Deny(rule_name, rule->reason.empty() ? DefaultToolReason(call.name) : rule->reason);
  }
  for (const ToolRule* r : {rule, &policy.all_tools}) {
    if (r && !r->Admits(identity.principal, identity.groups)) {
      return Deny(r == &policy.all_tools ? std::string_view("all_tools") : std::string_view(r->name),
                  r->reason.empty() ? WhoMayCall(*r, call.name, identity.principal) : r->reason);
    }
  }
  for (const ToolRule* r : {rule, &policy.all_tools}) {
    if (!r) continue;
    GroupMatches groups(*r);
    groups.Reset(call.arguments);
    for (const Check& check : r->checks) {
      if (auto denial = RunCheck(check, call, groups)) return std::move(*denial);
    }
  }
  Decision d;
  d.verdict = Verdict::kAllow;
  d.rule = rule_name;
  for (const ToolRule* r : {rule, &policy.all_tools}) {
    if (!r) continue;
    for (const Limit& limit : r->limits) {
      if (auto denial = PlanLimit(limit, call, now_ms, d.charges)) return std::move(*denial);
    }
  }
  if (rule && rule->action == Action::kRequireApproval) {
    d.approval_timeout_ms = rule->approval_timeout_ms;  // allowed, once a human approves
  }
  return d;
}

std::string_view DecisionName(const Decision& d) {
  return d.verdict != Verdict::kAllow ? "deny" : d.approval_timeout_ms ? "approval" : "allow";
}

std::shared_ptr<const Policy> WouldBe(const std::shared_ptr<const Policy>& file) {
  return file->shadow ? file->shadow : file;
}

Decision LimitDenial(const PlannedCharge& charge, int64_t current, int64_t now_ms) {
  const Limit& l = *charge.limit;
  const int64_t retry_s = std::max<int64_t>(1, (charge.window_end_ms - now_ms + 999) / 1000);
  std::string reason = l.reason;
  if (reason.empty()) {
    const std::string per = l.scope == Scope::kGlobal ? "" : " per " + std::string(ScopeName(l.scope));
    if (l.increment_from) {
      reason = "Limit \"" + l.counter + "\" reached: at most " + std::to_string(l.max) + " of " +
               l.increment_from->text() + " per " + l.window.text + per + " (used " +
               std::to_string(current) + ", this call " + std::to_string(charge.amount) + ")";
    } else {
      reason = "Rate limit \"" + l.counter + "\" reached: at most " + std::to_string(l.max) +
               " calls per " + l.window.text + per;
    }
  }
  reason += ". Resets in " + HumanSeconds(retry_s) + ".";
  Decision d = Deny(l.rule, std::move(reason));
  d.retry_after_s = retry_s;
  return d;
}

std::string_view StanceName(Stance s) {
  switch (s) {
    case Stance::kAllow:
      return "allow";
    case Stance::kLimited:
      return "limited";
    case Stance::kConditional:
      return "conditional";
    case Stance::kApproval:
      return "approval";
    case Stance::kDeny:
      return "deny";
    case Stance::kHidden:
      return "hidden";
  }
  return "?";
}

ToolStance StanceOf(const Policy& policy, std::string_view tool, const ToolClass& cls) {
  if (policy.IsHidden(tool)) return {Stance::kHidden, "hide"};
  const ToolRule* rule = policy.Match(tool, cls);
  if (!rule) {
    if (policy.default_action == DefaultAction::kDeny) return {Stance::kDeny, "default"};
  } else {
    const bool always_denied = std::any_of(rule->checks.begin(), rule->checks.end(),
                                           [](const Check& c) { return c.kind == Check::Kind::kDeny; });
    if (rule->action == Action::kDeny || always_denied) return {Stance::kDeny, rule->name};
    if (rule->action == Action::kRequireApproval) return {Stance::kApproval, rule->name};
  }
  const std::string_view name = rule ? std::string_view(rule->name) : "default";
  if ((rule && !rule->checks.empty()) || !policy.all_tools.checks.empty()) {
    return {Stance::kConditional, name};
  }
  if ((rule && !rule->limits.empty()) || !policy.all_tools.limits.empty()) {
    return {Stance::kLimited, name};
  }
  return {Stance::kAllow, name};
}

std::string_view SelectorOf(const Policy& policy, std::string_view tool, const ToolClass& cls) {
  if (policy.IsHidden(tool)) return "hide";
  const ToolRule* rule = policy.Match(tool, cls);
  if (!rule) return "default";
  if (rule->name.starts_with("classes.")) return "class";
  return rule->pattern.is_glob() ? "glob" : "exact";
}

std::vector<const ArgPath*> ArgumentsRead(const Policy& policy, std::string_view tool,
                                          const ToolClass& cls) {
  std::vector<const ArgPath*> out;
  if (policy.IsHidden(tool)) return out;
  const ToolRule* rule = policy.Match(tool, cls);
  if (!rule && policy.default_action == DefaultAction::kDeny) return out;
  if (rule && rule->action == Action::kDeny) return out;
  for (const ToolRule* r : {rule, &policy.all_tools}) {
    if (!r) continue;
    for (const Check& c : r->checks) {
      if (c.condition) out.push_back(&c.condition->path);
    }
    for (const Limit& l : r->limits) {
      if (l.increment_from) out.push_back(&*l.increment_from);
    }
  }
  return out;
}

std::shared_ptr<const Policy> AllowAllPolicy() {
  auto p = std::make_shared<Policy>();
  p->source = "(built-in allow-all)";
  p->default_action = DefaultAction::kAllow;
  return p;
}

}  // namespace tw::policy
