#include "app/replay.h"

#include <algorithm>
#include <chrono>
#include <iostream>
#include <set>
#include <tuple>

#include "app/cli_common.h"
#include "audit/audit.h"
#include "catalog/redact.h"
#include "common/clock.h"
#include "config/config.h"
#include "gateway/tool_call_guard.h"
#include "limits/counter_store.h"
#include "policy/loader.h"

namespace tw::app {

namespace {

// Rules that decide before any policy, or instead of it when a store fails: the same under
// every policy, or not the policy's decision at all.
bool OutsidePolicy(std::string_view rule) {
  return rule == "unknown_tool" || rule == "tool_name" || rule == "schema" || rule == "protocol" ||
         rule == "state" || rule == "audit" || rule == "policy";
}

std::string_view ChangeKind(std::string_view before, std::string_view after) {
  if (after == "deny") return "newly_denied";
  if (after == "approval") return "newly_held";
  if (before == "deny") return "newly_allowed";
  return "no_longer_held";
}

// Whether a recorded outcome makes a limit give its charge back (as the guard's Settle would).
bool Refunded(policy::RefundOn refund, std::string_view outcome) {
  if (refund == policy::RefundOn::kNever) return false;
  if (outcome == "jsonrpc_error") return true;
  return refund == policy::RefundOn::kAnyError && (outcome == "tool_error" || outcome == "transport_error");
}

class Replayer {
 public:
  Replayer(const policy::Policy& candidate, const ReplayOptions& o, ReplayReport& report)
      : candidate_(candidate), o_(o), report_(report), counters_(limits::MakeMemoryStore()) {}

  // Decides one record; false (with error_) to stop.
  bool Add(audit::Record& r) {
    if (o_.max_records > 0 && report_.records >= o_.max_records) {
      report_.truncated = true;
      return false;
    }
    if (report_.server.empty()) report_.server = r.server;
    if (r.server != report_.server) {
      error_ = "the audit has calls of several servers (\"" + report_.server + "\", \"" + r.server +
               "\"): name the one whose policy this is with --server";
      return false;
    }
    if (report_.records++ == 0) report_.first_ms = r.ts_ms;
    report_.last_ms = r.ts_ms;
    const std::string& before = r.decision;
    if ((before != "allow" && before != "deny" && before != "approval") || OutsidePolicy(r.rule)) {
      ++report_.outside_policy;
      return true;
    }
    const policy::ToolClass cls = policy::ParseToolClass(r.tool_class);
    json::object args;
    if (r.args && r.args->is_object()) args = std::move(r.args->get_object());
    if (std::string why = Undecidable(r, args, cls); !why.empty()) {
      ++report_.undecidable;
      auto& [calls, reason] = report_.undecidable_tools[r.tool];
      ++calls;
      if (reason.empty()) reason = std::move(why);
      return true;
    }
    const policy::Identity identity{r.grant, r.session, r.server, r.principal, {}};
    mcp::ToolCall call{r.tool, std::move(args)};
    policy::Decision d = policy::Evaluate(candidate_, call, identity, r.ts_ms, cls);
    if (d.verdict == policy::Verdict::kAllow && r.rule == "pin") {
      ++report_.unchanged;  // pins still decide a call the candidate lets through
      return true;
    }
    if (d.verdict == policy::Verdict::kAllow && !d.charges.empty()) Charge(d, identity, r);
    const std::string_view after = policy::DecisionName(d);
    if (after == before) {
      ++report_.unchanged;
      return true;
    }
    Note(r, d, ChangeKind(before, after));
    return true;
  }

  const std::string& error() const { return error_; }

  void Finish() {
    for (auto& [key, change] : changes_) report_.changes.push_back(std::move(change));
    std::stable_sort(report_.changes.begin(), report_.changes.end(),
                     [](const ReplayChange& a, const ReplayChange& b) { return a.calls > b.calls; });
  }

 private:
  // Why the candidate's decision of `r` cannot be known ("" when it can).
  std::string Undecidable(const audit::Record& r, const json::object& args,
                          const policy::ToolClass& cls) const {
    if (cls.category.empty() && !candidate_.classes.empty() && !candidate_.IsHidden(r.tool) &&
        !candidate_.Match(r.tool)) {
      return "the policy has class selectors and the record has no class for the tool";
    }
    // Groups are the caller's as their token said at the time; the audit keeps the principal
    // only.
    if (!candidate_.IsHidden(r.tool)) {
      const policy::ToolRule* rule = candidate_.Match(r.tool, cls);
      for (const policy::ToolRule* x : {rule, &candidate_.all_tools}) {
        if (x && !x->groups.empty()) return "the policy names groups, which the audit does not keep";
      }
    }
    const std::vector<const policy::ArgPath*> read = policy::ArgumentsRead(candidate_, r.tool, cls);
    if (read.empty()) return {};
    if (!r.args && !r.arg_keys.empty()) {
      return "the policy reads " + read.front()->text() +
             " and the audit kept no argument values (audit.arguments, arguments_retention)";
    }
    for (const policy::ArgPath* path : read) {
      const json::value* v = path->Resolve(args);
      if (v && v->is_string() && v->get_string() == catalog::kRedacted) {
        return "the policy reads " + path->text() + ", which the audit keeps redacted";
      }
    }
    return {};
  }

  void Charge(policy::Decision& d, const policy::Identity& identity, const audit::Record& r) {
    std::vector<limits::Charge> charges = gateway::ChargesFor(d.charges, identity);
    auto charged = counters_->TryCharge(charges, r.ts_ms);
    if (!charged) return;  // a memory store does not fail
    if (!charged->admitted) {
      d = policy::LimitDenial(d.charges[charged->rejected], charged->current, r.ts_ms);
      return;
    }
    std::vector<limits::Charge> back;
    for (size_t i = 0; i < charges.size(); ++i) {
      if (Refunded(d.charges[i].limit->refund, r.outcome)) back.push_back(charges[i]);
    }
    if (!back.empty()) (void)counters_->Refund(back, r.ts_ms);
  }

  void Note(const audit::Record& r, const policy::Decision& d, std::string_view kind) {
    ++report_.changed[std::string(kind)];
    auto key = std::make_tuple(r.tool, std::string(kind), std::string(d.rule), r.rule);
    auto [it, fresh] = changes_.try_emplace(std::move(key));
    ReplayChange& c = it->second;
    if (fresh) {
      c.tool = r.tool;
      c.change = std::string(kind);
      c.rule = std::string(d.rule);
      c.was_rule = r.rule;
      c.first_ms = r.ts_ms;
    }
    ++c.calls;
    c.last_ms = r.ts_ms;
    if (c.examples.size() < o_.examples) {
      c.examples.push_back({r.id, r.ts_ms, r.grant, d.verdict == policy::Verdict::kAllow &&
                                                           !d.approval_timeout_ms
                                                       ? r.reason
                                                       : d.reason});
    }
  }

  const policy::Policy& candidate_;
  const ReplayOptions& o_;
  ReplayReport& report_;
  std::unique_ptr<limits::CounterStore> counters_;
  std::map<std::tuple<std::string, std::string, std::string, std::string>, ReplayChange> changes_;
  std::string error_;
};

}  // namespace

Result<ReplayReport> Replay(const policy::Policy& candidate, const ReplayOptions& o) {
  const auto start = std::chrono::steady_clock::now();
  ReplayReport report;
  report.policy_source = candidate.source;
  report.policy_version = candidate.version;
  report.server = o.server;
  report.since_ms = o.since_ms;
  report.until_ms = o.until_ms;
  audit::Query q;
  q.since_ms = o.since_ms;
  q.until_ms = o.until_ms;
  q.server = o.server;
  q.grant = o.grant;
  Replayer replayer(candidate, o, report);
  auto read = audit::ScanAudit(o.audit_spec, q, [&](audit::Record& r) { return replayer.Add(r); });
  if (!read) return Fail(read.error());
  if (!replayer.error().empty()) return Fail(Error::InvalidArgument(replayer.error()));
  replayer.Finish();
  report.elapsed_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::steady_clock::now() - start)
                          .count();
  return report;
}

json::object ReplayJson(const ReplayReport& r) {
  json::array changes;
  for (const ReplayChange& c : r.changes) {
    json::array examples;
    for (const ReplayExample& e : c.examples) {
      examples.push_back(json::object{{"id", e.id}, {"ts_ms", e.ts_ms}, {"grant", e.grant},
                                      {"reason", e.reason}});
    }
    changes.push_back(json::object{{"tool", c.tool},
                                   {"change", c.change},
                                   {"rule", c.rule},
                                   {"was_rule", c.was_rule},
                                   {"calls", c.calls},
                                   {"first_ms", c.first_ms},
                                   {"last_ms", c.last_ms},
                                   {"examples", std::move(examples)}});
  }
  json::object changed;
  for (const char* kind : {"newly_denied", "newly_allowed", "newly_held", "no_longer_held"}) {
    changed[kind] = r.Changed(kind);
  }
  json::array undecidable;
  for (const auto& [tool, v] : r.undecidable_tools) {
    undecidable.push_back(json::object{{"tool", tool}, {"calls", v.first}, {"why", v.second}});
  }
  return json::object{{"policy", json::object{{"source", r.policy_source}, {"version", r.policy_version}}},
                      {"server", r.server},
                      {"since_ms", r.since_ms},
                      {"until_ms", r.until_ms},
                      {"records", r.records},
                      {"unchanged", r.unchanged},
                      {"changed", std::move(changed)},
                      {"outside_policy", r.outside_policy},
                      {"undecidable", r.undecidable},
                      {"truncated", r.truncated},
                      {"changes", std::move(changes)},
                      {"undecidable_tools", std::move(undecidable)},
                      {"elapsed_ms", r.elapsed_ms}};
}

void PrintReplay(std::ostream& out, const ReplayReport& r) {
  out << "Replayed " << r.records << " recorded call(s)"
      << (r.server.empty() ? std::string() : " of server \"" + r.server + "\"");
  if (r.records > 0) out << " from " << FormatTime(r.first_ms) << " to " << FormatTime(r.last_ms);
  out << " against " << r.policy_source << " (version " << r.policy_version << ")\n";
  const std::pair<const char*, int64_t> lines[] = {
      {"unchanged", r.unchanged},
      {"newly denied", r.Changed("newly_denied")},
      {"newly allowed", r.Changed("newly_allowed")},
      {"newly held for approval", r.Changed("newly_held")},
      {"no longer held", r.Changed("no_longer_held")},
      {"outside the policy (kept)", r.outside_policy},
      {"undecidable", r.undecidable}};
  std::vector<std::vector<std::string>> summary;
  for (const auto& [label, n] : lines) summary.push_back({"  " + std::string(label), std::to_string(n)});
  PrintTable(out, summary);
  if (r.Changed() > 0) {
    out << "\nWhat would change:\n";
    std::vector<std::vector<std::string>> rows{{"CALLS", "TOOL", "CHANGE", "RULE", "WAS", "FIRST", "EXAMPLE"}};
    for (const ReplayChange& c : r.changes) {
      rows.push_back({std::to_string(c.calls), c.tool, c.change, c.rule, c.was_rule, FormatTime(c.first_ms),
                      c.examples.empty() ? "" : c.examples.front().grant + ": " + c.examples.front().reason});
    }
    PrintTable(out, rows);
  } else {
    out << "\nNo recorded call would be decided differently.\n";
  }
  if (r.truncated) {
    out << "\nStopped after " << r.records << " records (the rest of the window was not read).\n";
  }
  if (!r.undecidable_tools.empty()) {
    out << "\nNot decided (the audit lacks what the policy reads):\n";
    for (const auto& [tool, v] : r.undecidable_tools) {
      out << "  " << tool << ": " << v.first << " call(s); " << v.second << "\n";
    }
  }
}

int ReplayCommand(const ReplayCliOptions& o) {
  auto candidate = policy::LoadPolicyFile(o.policy_path);
  if (!candidate) {
    std::cerr << candidate.error().message() << "\n";
    return kExitInvalid;
  }
  // A shadow file is replayed as the policy it would be.
  std::shared_ptr<const policy::Policy> policy = policy::WouldBe(*candidate);
  ReplayOptions r;
  r.server = o.server;
  r.grant = o.grant;
  r.examples = o.examples;
  const int64_t now = SystemClock().NowMs();
  for (auto [text, out] : {std::pair{&o.since, &r.since_ms}, std::pair{&o.until, &r.until_ms}}) {
    if (text->empty()) continue;
    auto ms = policy::ParseDurationMs(*text);
    if (!ms) {
      std::cerr << "toolwarden replay: " << ms.error().message() << "\n";
      return kExitUsage;
    }
    *out = now - *ms;
  }
  if (!o.state.empty() || o.config_path.empty()) {
    r.audit_spec = limits::AuditSpecFor(limits::StateSpecOrDefault(o.state), "");
  } else {
    auto c = LoadConfigForState(o.config_path);
    if (!c) {
      std::cerr << "toolwarden replay: " << c.error().message() << "\n";
      return kExitInvalid;
    }
    // The fleet's shared trail when there is one (every replica's calls), else this gateway's
    // own records (audit.store or its state file).
    r.audit_spec = !c->audit_shared.empty()
                       ? c->audit_shared
                       : limits::AuditSpecFor(limits::StateSpecOrDefault(c->state), c->audit_store);
    if (r.server.empty() && c->servers.size() == 1) r.server = c->servers.begin()->first;
    if (!r.server.empty() && !c->servers.contains(r.server)) {
      std::cerr << "toolwarden replay: " << o.config_path << " has no server \"" << r.server << "\"\n";
      return kExitUsage;
    }
  }
  auto report = Replay(*policy, r);
  if (!report) {
    std::cerr << "toolwarden replay: " << report.error().message() << "\n";
    return report.error().code() == ErrorCode::kInvalidArgument ? kExitUsage : kExitUnavailable;
  }
  if (o.json) {
    std::cout << json::serialize(ReplayJson(*report)) << "\n";
  } else {
    PrintReplay(std::cout, *report);
  }
  return o.fail_on_change && report->Changed() > 0 ? kExitInvalid : kExitOk;
}

}  // namespace tw::app
