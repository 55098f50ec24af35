#include "app/inspect_commands.h"

#include <boost/json.hpp>
#include <iostream>
#include <memory>
#include <optional>
#include <set>
#include <sstream>

#include "app/cli_common.h"
#include "audit/audit.h"
#include "catalog/pin_store.h"
#include "common/canonical_json.h"
#include "common/clock.h"
#include "config/config.h"
#include "gateway/tool_call_guard.h"
#include "limits/counter_store.h"
#include "policy/loader.h"
#include "policy/policy.h"

namespace tw::app {

namespace json = boost::json;

int ExplainCommand(const ExplainOptions& o) {
  auto policy = policy::LoadPolicyFile(o.policy_path);
  if (!policy) {
    std::cerr << policy.error().message() << "\n";
    return kExitInvalid;
  }
  boost::system::error_code ec;
  json::value args = json::parse(o.args, ec);
  if (ec || !args.is_object()) {
    std::cerr << "toolwarden explain: --args must be a JSON object\n";
    return kExitUsage;
  }
  // --class Destructive or Destructive/High: what the classifier says of the tool.
  const policy::ToolClass cls = policy::ParseToolClass(o.cls);
  const int64_t now = SystemClock().NowMs();
  std::vector<std::string> groups = o.groups;
  std::sort(groups.begin(), groups.end());
  const policy::Identity identity{o.grant, "(explain)", {}, o.principal, groups};
  const mcp::ToolCall call{o.tool, args.as_object()};
  policy::Decision d = policy::Evaluate(**policy, call, identity, now, cls);
  const std::string_view selector = policy::SelectorOf(**policy, o.tool, cls);
  // The file's would-be policy (its mode: shadow parts), or the whole file if it is a shadow.
  std::shared_ptr<const policy::Policy> shadow =
      (*policy)->shadow || (*policy)->shadow_only ? policy::WouldBe(*policy) : nullptr;
  std::optional<policy::Decision> shadow_decision;
  if (shadow) shadow_decision = policy::Evaluate(*shadow, call, identity, now, cls);
  // Current counter values, when the state store can be read (nothing is charged).
  std::unique_ptr<limits::CounterStore> store;
  if (auto s = limits::OpenStateStore(limits::StateSpecOrDefault(o.state))) {
    store = std::move(*s);
  }
  std::optional<policy::Decision> limited;
  std::ostringstream text;
  json::array limits;
  text << "tool:     " << o.tool << "\n" << "selector: " << selector;
  if (selector == "class") text << " " << (*policy)->Match(o.tool, cls)->name.substr(8);
  text << "\n";
  for (const policy::PlannedCharge& c : d.charges) {
    const policy::Limit& l = *c.limit;
    std::optional<int64_t> used;
    if (store && l.scope != policy::Scope::kSession) {
      if (auto v = store->Value(gateway::CounterKeyFor(c, identity), now)) used = *v;
    }
    text << "limit:    " << l.rule << ": counter \"" << l.counter << "\" +" << c.amount
         << ", at most " << l.max << " per " << l.window.text << " (" << policy::ScopeName(l.scope)
         << (l.scope == policy::Scope::kGrant ? " " + o.grant : std::string()) << ")";
    if (used) text << ", used " << *used << " so far";
    text << "\n";
    json::object lj{{"rule", l.rule},       {"counter", l.counter}, {"amount", c.amount},
                    {"max", l.max},         {"window", l.window.text},
                    {"scope", policy::ScopeName(l.scope)}};
    if (used) lj["used"] = *used;
    limits.push_back(std::move(lj));
    if (used && c.amount > l.max - *used && !limited) limited = policy::LimitDenial(c, *used, now);
  }
  if (limited) d = *limited;
  const bool allow = d.verdict == policy::Verdict::kAllow;
  if (o.json) {
    json::object out{{"tool", o.tool},         {"decision", allow ? "allow" : "deny"},
                     {"rule", std::string(d.rule)}, {"selector", selector},
                     {"limits", std::move(limits)}};
    if (!allow) out["reason"] = d.reason;
    if (d.approval_timeout_ms) out["approval_timeout_ms"] = *d.approval_timeout_ms;
    if (shadow_decision) {
      out["shadow"] = json::object{{"decision", policy::DecisionName(*shadow_decision)},
                                   {"rule", std::string(shadow_decision->rule)},
                                   {"reason", shadow_decision->reason}};
    }
    std::cout << json::serialize(out) << "\n";
    return kExitOk;
  }
  text << "decision: " << policy::DecisionName(d) << (d.approval_timeout_ms ? " (allowed once a human approves)" : "")
       << "\n" << "rule:     " << d.rule << "\n";
  if (!allow) text << "reason:   " << d.reason << "\n";
  if (shadow_decision) {
    text << "shadow:   " << policy::DecisionName(*shadow_decision) << " by " << shadow_decision->rule
         << (shadow_decision->reason.empty() ? "" : ": " + shadow_decision->reason)
         << " (recorded, never enforced)\n";
  }
  std::cout << text.str();
  return kExitOk;
}

int PinsCommand(const std::string& action, const PinsOptions& o) {
  auto store = catalog::OpenPinStore(limits::StateSpecOrDefault(o.state));
  if (!store) {
    std::cerr << "toolwarden pins: " << store.error().message() << "\n";
    return kExitUnavailable;
  }
  if (action == "list") {
    auto pins = (*store)->List(o.server);
    if (!pins) {
      std::cerr << "toolwarden pins: " << pins.error().message() << "\n";
      return kExitUnavailable;
    }
    if (o.json) {  // one JSON object a line, for scripts
      for (const auto& p : *pins) {
        json::object j{{"server", p.server}, {"tool", p.tool},
                       {"state", p.pending_hash ? "changed" : "pinned"}, {"hash", p.hash},
                       {"pinned_ms", p.pinned_ms}};
        if (p.pending_hash) {
          j["pending_hash"] = *p.pending_hash;
          j["changed_ms"] = p.changed_ms;
          j["note"] = p.pending_note;
        }
        std::cout << json::serialize(j) << "\n";
      }
      return kExitOk;
    }
    if (pins->empty()) {
      std::cout << "no pins" << (o.server.empty() ? "" : " for " + o.server) << "\n";
      return kExitOk;
    }
    std::vector<std::vector<std::string>> rows{{"SERVER", "TOOL", "HASH", "STATE"}};
    for (const auto& p : *pins) {
      rows.push_back({p.server, p.tool, p.hash.empty() ? std::string("-") : p.hash.substr(0, 12),
                      p.pending_hash ? "CHANGED " + FormatTime(p.changed_ms) +
                                           (p.pending_note.empty() ? "" : " (" + p.pending_note + ")")
                                     : "pinned " + FormatTime(p.pinned_ms)});
    }
    PrintTable(std::cout, rows);
    return kExitOk;
  }
  if (action == "diff") {
    auto pin = (*store)->Get(o.server, o.tool);
    if (!pin || !*pin) {
      std::cerr << "toolwarden pins: no pin for " << o.server << " " << o.tool << "\n";
      return kExitInvalid;
    }
    const catalog::Pin& p = **pin;
    if (!p.pending_hash) {
      std::cout << o.server << " " << o.tool << ": unchanged since " << FormatTime(p.pinned_ms) << "\n";
      return kExitOk;
    }
    // Field by field: what the approved definition said, what the server says now.
    boost::system::error_code ec;
    json::value before = p.definition.empty() ? json::object{} : json::parse(p.definition, ec);
    json::value after = json::parse(*p.pending_definition, ec);
    std::cout << "--- " << o.server << " " << o.tool << " approved "
              << (p.pinned_ms ? FormatTime(p.pinned_ms) : std::string("(never)")) << "\n+++ "
              << o.server << " " << o.tool << " seen " << FormatTime(p.changed_ms)
              << (p.pending_note.empty() ? "" : " (" + p.pending_note + ")") << "\n";
    std::set<std::string> keys;
    for (const auto* v : {&before, &after}) {
      if (v->is_object()) for (const auto& kv : v->get_object()) keys.insert(kv.key());
    }
    for (const auto& k : keys) {
      const json::value* b = before.is_object() ? before.get_object().if_contains(k) : nullptr;
      const json::value* a = after.is_object() ? after.get_object().if_contains(k) : nullptr;
      const std::string bs = b ? CanonicalJson(*b, ArrayOrder::kSorted) : "";
      const std::string as = a ? CanonicalJson(*a, ArrayOrder::kSorted) : "";
      if (bs == as) continue;
      if (b) std::cout << "- " << k << ": " << bs << "\n";
      if (a) std::cout << "+ " << k << ": " << as << "\n";
    }
    return kExitOk;
  }
  // accept
  auto n = (*store)->Accept(o.server, o.tool, SystemClock().NowMs());
  if (!n) {
    std::cerr << "toolwarden pins: " << n.error().message() << "\n";
    return kExitUnavailable;
  }
  if (*n == 0) {
    // Say which: nothing pinned by that name, or nothing waiting to be accepted.
    auto pin = o.tool.empty() ? Result<std::optional<catalog::Pin>>(std::nullopt)
                              : (*store)->Get(o.server, o.tool);
    auto any = (*store)->List(o.server);
    const bool known = o.tool.empty() ? (any && !any->empty()) : (pin && *pin);
    std::cerr << "toolwarden pins: "
              << (known ? "no pending change to accept for " : "nothing is pinned for ") << o.server
              << (o.tool.empty() ? "" : " " + o.tool)
              << (known ? "" : " (`toolwarden pins list` shows what is)") << "\n";
    return kExitInvalid;
  }
  std::cout << "accepted " << *n << " change" << (*n == 1 ? "" : "s") << " for " << o.server
            << (o.tool.empty() ? "" : " " + o.tool) << "\n";
  return kExitOk;
}

int VersionCommand(bool as_json) {
  if (as_json) {
    std::cout << json::serialize(json::object{{"name", "toolwarden"}, {"version", TW_VERSION}}) << "\n";
  } else {
    std::cout << "toolwarden " << TW_VERSION << "\n";
  }
  return kExitOk;
}

int AuditCommand(const AuditOptions& o) {
  audit::Query q;
  q.grant = o.grant;
  q.server = o.server;
  q.tool = o.tool;
  q.decision = o.decision;
  q.limit = o.limit;
  if (!o.since.empty()) {
    auto ms = policy::ParseDurationMs(o.since);
    if (!ms) {
      std::cerr << "toolwarden audit: --since " << ms.error().message() << "\n";
      return kExitUsage;
    }
    q.since_ms = SystemClock().NowMs() - *ms;
  }
  auto records = audit::QueryAudit(limits::StateSpecOrDefault(o.state), q);
  if (!records) {
    std::cerr << "toolwarden audit: " << records.error().message() << "\n";
    return kExitUnavailable;
  }
  if (o.json) {
    for (const auto& r : *records) std::cout << json::serialize(audit::ToJson(r)) << "\n";
    return kExitOk;
  }
  std::cout << "TIME                  GRANT        SERVER           TOOL                     "
               "DECISION  OUTCOME          MS  RULE\n";
  auto pad = [](std::string s, size_t w) {
    if (s.size() > w) s = s.substr(0, w - 1) + "~";
    return s + std::string(w - s.size() + 1, ' ');
  };
  for (const auto& r : *records) {
    std::cout << pad(FormatTime(r.ts_ms), 21) << pad(r.grant, 12) << pad(r.server, 16)
              << pad(r.tool, 24) << pad(r.decision, 9) << pad(r.outcome, 15)
              << pad(std::to_string(r.latency_ms), 4) << r.rule;
    // A shadow that would have decided otherwise, after the rule (never enforced).
    if (r.shadow && r.shadow->decision != r.decision) {
      std::cout << "  (shadow: " << r.shadow->decision << " by " << r.shadow->rule << ")";
    }
    std::cout << "\n";
  }
  if (records->empty()) std::cout << "(no records)\n";
  return kExitOk;
}

namespace {

// One file's verdict: "FILE: valid…" or its problems, as text or as a JSON line whose problems
// are split into line, column and message where they say FILE:LINE:COLUMN: message.
void Report(bool as_json, const std::string& file, const std::string& problems, const std::string& valid_note) {
  if (!as_json) {
    std::cout << (problems.empty() ? file + ": valid" + valid_note : problems) << "\n";
    return;
  }
  json::array list;
  std::istringstream in(problems);
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    json::object p{{"message", line}};
    // "path:12:5: message" (the path itself may hold colons: match from the right of it).
    if (line.starts_with(file + ":")) {
      std::istringstream pos(line.substr(file.size() + 1));
      int64_t l = 0, c = 0;
      char colon1 = 0, colon2 = 0;
      if (pos >> l >> colon1 >> c >> colon2 && colon1 == ':' && colon2 == ':') {
        std::string rest;
        std::getline(pos, rest);
        p = json::object{{"line", l}, {"column", c}, {"message", rest.substr(rest.find_first_not_of(' '))}};
      }
    }
    list.push_back(std::move(p));
  }
  std::cout << json::serialize(json::object{{"file", file}, {"valid", problems.empty()}, {"problems", std::move(list)}})
            << "\n";
}

}  // namespace

int ValidateCommand(const ValidateOptions& o) {
  if (o.config.empty() && o.files.empty()) {
    std::cerr << "toolwarden validate: give policy files, or -c CONFIG\n";
    return kExitUsage;
  }
  int status = kExitOk;
  std::set<std::string> seen;
  // `deciding`: the file is a server's policy (not its policy_shadow), so it must decide.
  auto policy_file = [&](const std::string& file, bool deciding) {
    if (!seen.insert(file).second) return;
    auto p = policy::LoadPolicyFile(file);
    std::string problem = p ? std::string() : p.error().message();
    if (p && deciding && (*p)->shadow_only) {
      problem = file + ": says mode: shadow, a candidate that decides nothing; name it under "
                       "policy_shadow and give the server a policy that decides";
    }
    if (!problem.empty()) status = kExitInvalid;
    const std::string note = !p                 ? ""
                             : (*p)->shadow_only ? " (mode: shadow: a candidate, recorded and never enforced)"
                             : (*p)->shadow      ? " (its mode: shadow parts are recorded, never enforced)"
                                                 : "";
    Report(o.json, file, problem, note);
  };
  if (!o.config.empty()) {
    auto c = config::LoadConfig(o.config);
    if (!c) {
      Report(o.json, o.config, c.error().message(), "");
      status = kExitInvalid;
    } else {
      const size_t n = c->servers.size();
      Report(o.json, o.config, "", " (" + std::to_string(n) + " server" + (n == 1 ? "" : "s") + ")");
      for (const auto& [name, sc] : c->servers) {
        policy_file(sc.policy_path, true);
        if (!sc.policy_shadow_path.empty()) policy_file(sc.policy_shadow_path, false);
      }
    }
  }
  for (const auto& file : o.files) policy_file(file, false);
  return status;
}

}  // namespace tw::app
