#include "gateway/tool_call_guard.h"

#include <chrono>

#include <spdlog/spdlog.h>

#include "catalog/classify.h"
#include "common/canonical_json.h"
#include "common/random.h"

namespace tw::gateway {

namespace {
constexpr int64_t kPinApprovalTimeoutMs = 5 * 60'000;
}  // namespace

namespace {

// The denial of a call whose counters cannot be checked (state fail mode closed).
policy::Decision StateDenial() {
  return policy::Decision{policy::Verdict::kDeny, "state",
                          "The policy's counters cannot be checked right now (state store "
                          "unavailable); the call was not forwarded",
                          // The state store's client tries again within 2 s (redis_client.h).
                          2,
                          std::nullopt,
                          {}};
}

using PlannedCharges = decltype(policy::Decision::charges);

constexpr const char* kApprovalUnrecorded =
    "The call needs approval, and approvals cannot be recorded right now";

// What a charge's result makes of an allowed call: the denial of the limit that did not fit,
// the state denial when the store failed and the fail mode is closed, or nullopt — go on.
std::optional<policy::Decision> ChargeDenial(const Result<limits::ChargeOutcome>& charged,
                                             const PlannedCharges& planned, int64_t now,
                                             StateFailMode fail_mode) {
  if (!charged) {
    if (fail_mode == StateFailMode::kClosed) return StateDenial();
    return std::nullopt;
  }
  if (!charged->admitted) return policy::LimitDenial(planned[charged->rejected], charged->current, now);
  return std::nullopt;
}

// An allowed call whose limits could not be counted (the state store failed) under
// state_fail_mode: open: its record says so.
constexpr const char* kPassedOpenRule = "state_fail_mode";
constexpr const char* kPassedOpenReason =
    "The state store was unavailable; allowed by state_fail_mode: open without counting its "
    "limits";

void MarkPassedOpen(policy::Decision& d) {
  d.rule = kPassedOpenRule;
  d.reason = kPassedOpenReason;
}

// Admitted charges become the admission's entries, each with its limit's refund rule.
void Admit(Admission& admission, std::vector<limits::Charge>& charges, const PlannedCharges& planned) {
  for (size_t i = 0; i < charges.size(); ++i) {
    admission.entries.push_back({std::move(charges[i]), planned[i].limit->refund});
  }
}

}  // namespace

std::string CounterKeyFor(const policy::PlannedCharge& charge, const policy::Identity& identity) {
  const policy::Limit& l = *charge.limit;
  const std::string_view scope_id = l.scope == policy::Scope::kGrant     ? identity.grant
                                    : l.scope == policy::Scope::kSession ? identity.session
                                    : l.scope == policy::Scope::kPrincipal
                                        ? (identity.principal.empty() ? identity.grant : identity.principal)
                                                                         : std::string_view("*");
  return limits::CounterKey(identity.server, l.counter, policy::ScopeName(l.scope), scope_id,
                            charge.window_start_ms);
}

std::vector<limits::Charge> ChargesFor(std::span<const policy::PlannedCharge> planned,
                                       const policy::Identity& identity) {
  std::vector<limits::Charge> charges;
  charges.reserve(planned.size());
  for (const policy::PlannedCharge& p : planned) {
    charges.push_back({CounterKeyFor(p, identity), p.amount, p.limit->max, p.window_end_ms});
  }
  return charges;
}

// A call's record between Check and Finish. Written by the event loop's thread before Submit,
// by the audit writer inside the batch (`charge`, `denial`) and after it (`ok`), then read on
// the event loop again — each hand-over goes through a mutex-guarded queue (Submit, post).
struct PendingRecord {
  std::string record_id;
  std::string tool;
  int64_t now = 0;
  // Charged inside the record's transaction (ToolCallGuard::charged_with_record):
  std::vector<limits::Charge> charges;
  std::optional<Result<limits::ChargeOutcome>> charge;  // set by the audit writer
  std::optional<policy::Decision> denial;               // the limit that did not fit
  std::optional<approval::Approval> approval;  // to create in the transaction; reset if it failed
  bool approval_failed = false;                // it could not be: the call is denied
  bool ok = false;          // the record is durable
  bool finished = false;    // the batch ended (ok or not)
  bool abandoned = false;   // nobody waits any more (Drop)
  std::function<void()> waiter;
};

ToolCallGuard::ToolCallGuard(GuardDeps deps)
    : deps_(std::move(deps)),
      store_(*deps_.counters),
      clock_(*deps_.clock),
      shadow_counters_(limits::MakeMemoryStore()) {}

ToolCallGuard::ToolCallGuard(PolicySource policies, limits::CounterStore& store,
                             const Clock& clock, StateFailMode fail_mode)
    : ToolCallGuard(GuardDeps{.policies = std::move(policies),
                              .counters = &store,
                              .clock = &clock,
                              .fail_mode = fail_mode}) {}

GuardOutcome ToolCallGuard::Check(const mcp::ToolCall& call,
                                  const policy::Identity& identity) const {
  const auto decide_start = std::chrono::steady_clock::now();
  GuardOutcome out;
  out.snapshot = deps_.policies();
  const int64_t now = clock_.NowMs();
  const bool identified = Identify(call, out);
  if (identified) EvaluateConditions(call, identity, now, out);
  std::optional<policy::Decision> drift = CheckPins(call, out);
  EvaluateShadow(call, identity, now, identified, std::move(drift), out);
  ChargeLimits(identity, now, out);
  RequestApproval(call, identity, now, out);
  if (out.decision.verdict == policy::Verdict::kAllow) out.admission.started_ms = now;
  Record(call, identity, now, out);
  if (deps_.metrics) {
    deps_.metrics->ObserveDecision(
        deps_.server,
        std::chrono::duration<double>(std::chrono::steady_clock::now() - decide_start).count());
  }
  if (out.next != GuardOutcome::Next::kAwaitRecord) {
    out.next = out.decision.verdict != policy::Verdict::kAllow ? GuardOutcome::Next::kAnswer
               : out.approval_id.empty()                        ? GuardOutcome::Next::kForward
                                                                : GuardOutcome::Next::kAwaitApproval;
  }
  // A decision the record's transaction may still change is counted in Finish.
  if (!out.charged_with_record) CountDecision(call.name, out.decision, !out.approval_id.empty());
  return out;
}

// Identity first: a name nobody can see for what it is, or one the server never listed (or
// arguments its schema refuses), is refused whatever the policy's default would say.
bool ToolCallGuard::Identify(const mcp::ToolCall& call, GuardOutcome& out) const {
  if (auto problem = mcp::ToolNameProblem(call.name)) {
    out.decision.verdict = policy::Verdict::kDeny;
    out.decision.rule = "tool_name";
    out.decision.reason = "Refused: " + *problem;
    return false;
  }
  if (auto refused = deps_.catalog ? deps_.catalog->Check(call, &out.cls) : std::nullopt) {
    out.decision = std::move(*refused);
    return false;
  }
  return true;
}

void ToolCallGuard::EvaluateConditions(const mcp::ToolCall& call, const policy::Identity& identity,
                                       int64_t now, GuardOutcome& out) const {
  if (out.snapshot->shadow_only) {
    // A file that decides nothing put where the deciding one belongs (a reload can do that):
    // closed, as for any policy that cannot be read.
    out.decision.verdict = policy::Verdict::kDeny;
    out.decision.rule = "policy";
    out.decision.reason = "The server's policy file says mode: shadow (a candidate that decides "
                          "nothing); calls are denied until its policy is fixed";
    return;
  }
  out.decision = policy::Evaluate(*out.snapshot, call, identity, now, out.cls);
}

std::optional<policy::Decision> ToolCallGuard::CheckPins(const mcp::ToolCall& call,
                                                         GuardOutcome& out) const {
  if (!deps_.pins || out.decision.verdict != policy::Verdict::kAllow) return std::nullopt;
  auto changed = deps_.pins->Check(call.name);
  if (!changed) return std::nullopt;
  if (changed->shadow) {
    policy::Decision block;
    block.verdict = policy::Verdict::kDeny;
    block.rule = "pin";
    block.reason = std::move(changed->reason);
    return block;
  }
  out.decision.rule = "pin";
  out.decision.reason = std::move(changed->reason);
  if (changed->hold) {
    // Held for a human like any require_approval call (its limits still charged), for as long
    // as the policy would give an approval of this tool, 5 minutes unless it says.
    if (!out.decision.approval_timeout_ms) out.decision.approval_timeout_ms = kPinApprovalTimeoutMs;
    return std::nullopt;
  }
  out.decision.verdict = policy::Verdict::kDeny;
  out.decision.charges.clear();
  return std::nullopt;
}

void ToolCallGuard::EvaluateShadow(const mcp::ToolCall& call, const policy::Identity& identity,
                                   int64_t now, bool identified,
                                   std::optional<policy::Decision> drift, GuardOutcome& out) const {
  std::shared_ptr<const policy::Policy> candidate = deps_.shadow ? deps_.shadow() : nullptr;
  if (!candidate) candidate = out.snapshot->shadow;
  if (!candidate && !drift) return;
  ShadowDecision s;
  auto take = [&s](const policy::Decision& d) {
    s = {std::string(policy::DecisionName(d)), std::string(d.rule), d.reason};
  };
  if (!identified || !candidate) {
    // A name or arguments refused before any policy is refused by every policy; without a
    // candidate the enforcing decision stands, less what the drift would block.
    take(drift ? *drift : out.decision);
  } else {
    policy::Decision d = policy::Evaluate(*candidate, call, identity, now, out.cls);
    if (d.verdict == policy::Verdict::kAllow && drift) d = std::move(*drift);
    if (d.verdict == policy::Verdict::kAllow && !d.charges.empty()) {
      // Counted as if enforced: the calls the shadow would have let through use its limits.
      std::vector<limits::Charge> charges = ChargesFor(d.charges, identity);
      auto charged = shadow_counters_->TryCharge(charges, now);
      if (charged && !charged->admitted) {
        d = policy::LimitDenial(d.charges[charged->rejected], charged->current, now);
      }
    }
    take(d);
  }
  if (deps_.metrics) {
    const bool unlisted = s.rule == "unknown_tool" || s.rule == "tool_name";
    deps_.metrics->CountShadow(deps_.server, unlisted ? std::string("(unlisted)") : call.name,
                               s.decision);
  }
  out.shadow = std::move(s);
}

void ToolCallGuard::ChargeLimits(const policy::Identity& identity, int64_t now,
                                 GuardOutcome& out) const {
  if (out.decision.verdict != policy::Verdict::kAllow) return;
  const bool needs_approval = out.decision.approval_timeout_ms.has_value();
  // With group commit, the stores on the audit log's own connection are written by its writer,
  // inside the transaction that writes the record (Record): the charges, and then — once they
  // fit — the approval a human must give. One commit for all three, and no write on the event
  // loop, which must never wait for a state file another process holds.
  const bool approval_with_record = needs_approval && deps_.approvals && deps_.waiter &&
                                    OnWriter(deps_.approvals->Connection());
  if (out.decision.charges.empty() && !approval_with_record) return;
  std::vector<limits::Charge> charges = ChargesFor(out.decision.charges, identity);
  // Charged with the record: on the writer's connection (one commit for both), or — for a
  // store across the network — on the writer's thread, so that the loop never waits for it.
  const bool off_loop = store_.Remote() && deps_.group_commit && deps_.audit;
  const bool with_record = (!needs_approval || approval_with_record) &&
                           (charges.empty() || OnWriter(store_.Connection()) || off_loop);
  if (with_record) {
    out.pending = std::make_shared<PendingRecord>();
    out.pending->charges = std::move(charges);
    out.charged_with_record = true;
    return;
  }
  auto charged = store_.TryCharge(charges, now);
  if (!charged) spdlog::error("state store {}: {}", store_.Describe(), charged.error().message());
  if (auto denial = ChargeDenial(charged, out.decision.charges, now, deps_.fail_mode)) {
    out.decision = std::move(*denial);
  } else if (charged) {
    Admit(out.admission, charges, out.decision.charges);
  } else {
    MarkPassedOpen(out.decision);
  }
}

void ToolCallGuard::RequestApproval(const mcp::ToolCall& call, const policy::Identity& identity,
                                    int64_t now, GuardOutcome& out) const {
  if (out.decision.verdict != policy::Verdict::kAllow || !out.decision.approval_timeout_ms) return;
  std::string problem;
  if (!deps_.approvals || !deps_.waiter) {
    problem = "Tool \"" + call.name + "\" requires human approval, and approvals are not "
              "available in this gateway";
  } else {
    approval::Approval a;
    a.id = RandomHex(16);
    a.created_ms = now;
    a.expires_ms = now + *out.decision.approval_timeout_ms;
    a.grant = std::string(identity.grant);
    a.session = std::string(identity.session);
    a.server = deps_.server;
    a.tool = call.name;
    a.args = json::serialize(call.arguments);
    a.args_digest = Sha256Hex(CanonicalJson(call.arguments));
    a.owner = approval::ThisOwner();
    if (out.charged_with_record) {
      // Created by the record's transaction (it may still fail there: Finish).
      out.approval_id = a.id;
      out.approval_expires_ms = a.expires_ms;
      out.pending->approval = std::move(a);
    } else if (auto c = deps_.approvals->Create(a); !c) {
      spdlog::error("approvals: {}", c.error().message());
      problem = kApprovalUnrecorded;
    } else {
      out.approval_id = a.id;
      out.approval_expires_ms = a.expires_ms;
    }
  }
  if (!problem.empty()) {
    Settle(out.admission, CallOutcome::kNotSent);
    out.admission = {};
    out.decision.verdict = policy::Verdict::kDeny;
    out.decision.reason = std::move(problem);
    out.decision.charges.clear();
  }
}

void ToolCallGuard::Record(const mcp::ToolCall& call, const policy::Identity& identity,
                           int64_t now, GuardOutcome& out) const {
  if (!deps_.audit) return;
  audit::Record r = NewRecord(call.name, call.arguments, identity, now, *out.snapshot);
  r.decision = out.decision.verdict != policy::Verdict::kAllow ? "deny"
               : out.approval_id.empty()                        ? "allow"
                                                                : "approval";
  r.rule = std::string(out.decision.rule);
  r.reason = out.decision.reason;
  r.outcome = r.decision == "allow" ? "pending" : "not_forwarded";
  r.shadow = out.shadow;
  if (!out.cls.category.empty()) {
    static const std::string kVersion = "@" + std::to_string(catalog::kClassifierVersion);
    r.tool_class.reserve(out.cls.category.size() + 1 + out.cls.risk.size() + kVersion.size());
    r.tool_class.append(out.cls.category).append("/").append(out.cls.risk).append(kVersion);
  }
  const std::string record_id = r.id;
  if (!deps_.group_commit) {
    if (auto w = deps_.audit->Write(r); !w) {
      spdlog::error("audit: {}", w.error().message());
      RecordFailed(out);
    } else if (out.decision.verdict == policy::Verdict::kAllow) {
      out.admission.audit_id = record_id;
    }
    return;
  }
  if (!out.pending) out.pending = std::make_shared<PendingRecord>();
  PendingRecord& p = *out.pending;
  p.record_id = record_id;
  p.tool = call.name;
  p.now = now;
  std::function<void(audit::Record&)> in_txn;
  if (out.charged_with_record) {
    // On the audit writer's thread, inside the record's transaction. `planned` points into
    // the snapshot, which the outcome keeps alive until Finish.
    in_txn = [this, pending = out.pending, planned = out.decision.charges](audit::Record& rec) {
      PendingRecord& pr = *pending;
      if (!pr.charges.empty()) {
        if (!pr.charge) pr.charge = store_.TryCharge(pr.charges, pr.now);  // else: batched
        pr.denial = ChargeDenial(*pr.charge, planned, pr.now, deps_.fail_mode);
        if (pr.denial) pr.approval.reset();  // denied: nobody is asked
        if (!pr.denial && !*pr.charge) {
          rec.rule = kPassedOpenRule;
          rec.reason = kPassedOpenReason;
        }
      }
      if (pr.approval) {
        if (auto c = deps_.approvals->Create(*pr.approval); !c) {
          spdlog::error("approvals: {}", c.error().message());
          // Nothing of this call stays: what it charged goes back in the same transaction.
          if (pr.charge && *pr.charge && (*pr.charge)->admitted) {
            (void)store_.Refund(pr.charges, pr.now);
          }
          pr.charge.reset();
          pr.approval.reset();
          pr.approval_failed = true;
          rec.decision = "deny";
          rec.reason = kApprovalUnrecorded;
          rec.outcome = "not_forwarded";
        }
      }
      if (pr.denial) {
        rec.decision = "deny";
        rec.rule = std::string(pr.denial->rule);
        rec.reason = pr.denial->reason;
        rec.outcome = "not_forwarded";
      }
    };
  }
  out.next = GuardOutcome::Next::kAwaitRecord;
  std::function<void(bool)> done = [this, pending = out.pending, post = deps_.group_commit()](bool ok) {
    pending->ok = ok;
    post([this, pending] { Completed(*pending); });
  };
  if (out.charged_with_record && deps_.batcher && store_.Remote() && !p.charges.empty()) {
    // Charged with the calls decided meanwhile, in one round trip; then recorded.
    deps_.batcher->Charge(
        p.charges, now,
        [this, pending = out.pending, in_txn = std::move(in_txn), r = std::move(r),
         done = std::move(done)](Result<limits::ChargeOutcome> charged) mutable {
          pending->charge = std::move(charged);
          in_txn(r);
          deps_.audit->Submit(std::move(r), {}, std::move(done));
        });
  } else {
    deps_.audit->Submit(std::move(r), std::move(in_txn), std::move(done));
  }
  // A call charged with its record gets its record id (to complete it) in Finish, once the
  // charges are known to have fit.
  if (out.decision.verdict == policy::Verdict::kAllow && !out.charged_with_record) {
    out.admission.audit_id = record_id;
  }
}

audit::Record ToolCallGuard::NewRecord(std::string tool, const json::object& args,
                                       const policy::Identity& identity, int64_t now,
                                       const policy::Policy& snapshot) const {
  audit::Record r;
  r.id = audit::NewRecordId();
  r.ts_ms = now;
  r.grant = std::string(identity.grant);
  r.principal = std::string(identity.principal);
  r.session = std::string(identity.session);
  r.server = deps_.server;
  r.tool = std::move(tool);
  for (const auto& kv : args) r.arg_keys.emplace_back(kv.key());
  std::string canonical = CanonicalJson(args);
  r.args_digest = Sha256Hex(canonical);
  // Kept whole (the usual case): the canonical text the digest was made of is what is stored.
  if (deps_.arguments.KeepsWhole(args)) {
    r.args_text = std::move(canonical);
  } else {
    r.args = deps_.arguments.Keep(args);
  }
  r.policy_version = snapshot.version;
  return r;
}

void ToolCallGuard::RecordDropped(const jsonrpc::Message& msg, const policy::Identity& identity,
                                  const std::string& reason) const {
  std::string tool = msg.method;
  const json::object* params = msg.params.if_object();
  const json::object* args = nullptr;
  if (msg.method == mcp::method::kToolsCall && params) {
    const json::value* name = params->if_contains("name");
    if (name && name->is_string()) tool = std::string(name->get_string());
    const json::value* a = params->if_contains("arguments");
    args = a ? a->if_object() : nullptr;
  }
  spdlog::warn("server {}: dropped {} from session {}: {}", deps_.server, msg.method,
               std::string(identity.session).substr(0, 8), reason);
  // Not labelled by name: every made-up name would be a metric series of its own.
  if (deps_.metrics) deps_.metrics->CountDecision(deps_.server, "(protocol)", "dropped");
  if (!deps_.audit) return;
  static const json::object kNone;
  audit::Record r = NewRecord(std::move(tool), args ? *args : kNone, identity, clock_.NowMs(),
                              *deps_.policies());
  r.decision = "dropped";
  r.rule = "protocol";
  r.reason = reason;
  r.outcome = "not_forwarded";
  if (deps_.group_commit) {
    deps_.audit->Submit(std::move(r), {}, [](bool ok) {
      if (!ok) spdlog::error("audit: the record of a dropped message could not be written");
    });
  } else if (auto w = deps_.audit->Write(r); !w) {
    spdlog::error("audit: {}", w.error().message());
  }
}

void ToolCallGuard::CountDecision(const std::string& tool, const policy::Decision& d,
                                  bool approval) const {
  const bool allowed = d.verdict == policy::Verdict::kAllow;
  if (deps_.metrics) {
    // A name the server never listed is the caller's invention: one series for all of them.
    const bool unlisted = d.rule == "unknown_tool" || d.rule == "tool_name";
    deps_.metrics->CountDecision(deps_.server, unlisted ? std::string("(unlisted)") : tool,
                            !allowed ? "deny" : approval ? "approval" : "allow");
  }
  spdlog::debug("decision server={} tool={} verdict={} rule={}{}{}", deps_.server, tool,
                allowed ? "allow" : "deny", d.rule, allowed ? "" : " reason=", allowed ? "" : d.reason);
}

void ToolCallGuard::RecordFailed(GuardOutcome& out) const {
  if (out.decision.verdict != policy::Verdict::kAllow || deps_.fail_mode != StateFailMode::kClosed) {
    return;
  }
  Admission charged = std::move(out.admission);
  charged.audit_id.clear();  // there is no record to complete
  // Give the charges back — unless the failed commit already took them away (a store on the
  // record's connection rolls back with it; a remote one does not).
  if (out.charged_with_record && OnWriter(store_.Connection())) charged.entries.clear();
  Settle(charged, CallOutcome::kNotSent);
  out.admission = {};
  if (!out.approval_id.empty()) WithdrawApproval(out.approval_id, "the call could not be recorded");
  out.approval_id.clear();
  out.decision.verdict = policy::Verdict::kDeny;
  out.decision.rule = "audit";
  const std::string why = deps_.audit ? deps_.audit->Unwritable() : std::string();
  out.decision.reason = "The call cannot be recorded right now (" +
                        (why.empty() ? std::string("audit store unavailable") : why) +
                        "); it was not forwarded";
  out.decision.retry_after_s = why.empty() ? 1 : 60;  // a full disk takes a person
  out.decision.charges.clear();
}

void ToolCallGuard::WithdrawApproval(const std::string& id, const std::string& why) const {
  if (!deps_.approvals || id.empty()) return;
  const int64_t now = clock_.NowMs();
  if (OnWriter(deps_.approvals->Connection())) {
    // Queued behind the record whose transaction creates the approval.
    deps_.audit->Run([store = deps_.approvals, id, why,
                 now] { (void)store->Resolve(id, approval::State::kCancelled, "", why, now); },
                {});
    return;
  }
  (void)deps_.approvals->Resolve(id, approval::State::kCancelled, "", why, now);
}

bool ToolCallGuard::OnWriter(const void* connection) const {
  return deps_.group_commit && deps_.audit && connection != nullptr && connection == deps_.audit->Connection();
}

void ToolCallGuard::AwaitDurable(const GuardOutcome& outcome, std::function<void()> done) const {
  if (!outcome.pending || outcome.pending->finished) {
    done();
    return;
  }
  outcome.pending->waiter = std::move(done);
}

void ToolCallGuard::Completed(PendingRecord& p) const {
  p.finished = true;
  if (p.waiter) {
    auto w = std::move(p.waiter);
    p.waiter = nullptr;
    w();
    return;
  }
  if (!p.abandoned || !p.ok || !p.charge || !*p.charge || !(*p.charge)->admitted) return;
  // Charged for a call whose session is gone: give it back, and close its record.
  Admission a;
  for (const limits::Charge& c : p.charges) a.entries.push_back({c, policy::RefundOn::kNever});
  a.audit_id = p.record_id;
  a.started_ms = p.now;
  Settle(a, CallOutcome::kCancelled);
}

void ToolCallGuard::Finish(GuardOutcome& out) const {
  if (!out.pending) return;
  std::shared_ptr<PendingRecord> pending = std::move(out.pending);
  PendingRecord& p = *pending;
  if (p.charge) {
    if (!*p.charge) {
      spdlog::error("state store {}: {}", store_.Describe(), p.charge->error().message());
    } else if ((*p.charge)->admitted) {
      Admit(out.admission, p.charges, out.decision.charges);
    }
  }
  if (p.denial) out.decision = std::move(*p.denial);
  if (p.approval_failed) {
    out.decision.verdict = policy::Verdict::kDeny;
    out.decision.reason = kApprovalUnrecorded;
    out.decision.charges.clear();
  }
  // An approval made in the record's transaction exists only if that transaction committed.
  if (out.charged_with_record && (!p.ok || !p.approval)) out.approval_id.clear();
  if (!p.ok) {
    spdlog::error("audit: the record of a call to {} could not be written", p.tool);
    RecordFailed(out);
  } else if (out.charged_with_record && out.decision.verdict == policy::Verdict::kAllow) {
    out.admission.audit_id = p.record_id;
  }
  if (out.charged_with_record) CountDecision(p.tool, out.decision, !out.approval_id.empty());
  out.next = out.decision.verdict != policy::Verdict::kAllow ? GuardOutcome::Next::kAnswer
             : out.approval_id.empty()                        ? GuardOutcome::Next::kForward
                                                              : GuardOutcome::Next::kAwaitApproval;
}

void ToolCallGuard::Drop(GuardOutcome& out, CallOutcome how, const std::string& why) const {
  if (out.pending) {
    out.pending->abandoned = true;  // Completed gives back what its transaction charged
    out.pending->waiter = nullptr;
    out.pending.reset();
  }
  Settle(out.admission, how);
  out.admission = {};
  WithdrawApproval(out.approval_id, why);
  out.approval_id.clear();
  out.next = GuardOutcome::Next::kAnswer;
}

namespace {

std::string_view OutcomeName(CallOutcome o) {
  switch (o) {
    case CallOutcome::kSucceeded:
      return "ok";
    case CallOutcome::kToolError:
      return "tool_error";
    case CallOutcome::kJsonRpcError:
      return "jsonrpc_error";
    case CallOutcome::kNotSent:
      return "not_sent";
    case CallOutcome::kLost:
      return "transport_error";
    case CallOutcome::kApprovalDenied:
      return "approval_denied";
    case CallOutcome::kApprovalExpired:
      return "approval_expired";
    case CallOutcome::kInputRequired:
      return "input_required";
    case CallOutcome::kCancelled:
      return "cancelled";
  }
  return "?";
}

}  // namespace

void ToolCallGuard::Settle(const Admission& admission, CallOutcome outcome) const {
  if (deps_.metrics && (!admission.audit_id.empty() || !admission.entries.empty())) {
    deps_.metrics->CountOutcome(deps_.server, std::string(OutcomeName(outcome)));
    const bool answered = outcome == CallOutcome::kSucceeded || outcome == CallOutcome::kToolError ||
                          outcome == CallOutcome::kJsonRpcError || outcome == CallOutcome::kLost;
    if (answered && admission.started_ms) {
      deps_.metrics->ObserveCall(deps_.server,
                            static_cast<double>(clock_.NowMs() - admission.started_ms) / 1000.0);
    }
  }
  if (deps_.audit && !admission.audit_id.empty()) {
    deps_.audit->Complete(admission.audit_id, std::string(OutcomeName(outcome)),
                     clock_.NowMs() - admission.started_ms);
  }
  if (admission.entries.empty()) return;
  std::vector<limits::Charge> refunds;
  for (const auto& e : admission.entries) {
    bool refund = false;
    switch (outcome) {
      case CallOutcome::kNotSent:
      case CallOutcome::kApprovalDenied:
      case CallOutcome::kApprovalExpired:
      case CallOutcome::kCancelled:
      case CallOutcome::kInputRequired:
        // Never reached the server, or the server did nothing yet but ask: the call did not
        // happen (its retry is decided and charged on its own).
        refund = true;
        break;
      case CallOutcome::kJsonRpcError:
        refund = e.refund != policy::RefundOn::kNever;
        break;
      case CallOutcome::kToolError:
        refund = e.refund == policy::RefundOn::kAnyError;
        break;
      case CallOutcome::kSucceeded:
      case CallOutcome::kLost:
        break;
    }
    if (refund) refunds.push_back(e.charge);
  }
  if (refunds.empty()) return;
  const int64_t now = clock_.NowMs();
  if (OnWriter(store_.Connection()) || (store_.Remote() && deps_.group_commit && deps_.audit)) {
    // By the audit writer, after the records of the calls being refunded (and, for a remote
    // store, off the event loop).
    deps_.audit->Run(
        [store = &store_, refunds = std::move(refunds), now] {
          if (auto r = store->Refund(refunds, now); !r) {
            spdlog::error("state store {}: refund failed: {}", store->Describe(),
                          r.error().message());
          }
        },
        {});
    return;
  }
  if (auto r = store_.Refund(refunds, now); !r) {
    spdlog::error("state store {}: refund failed: {}", store_.Describe(), r.error().message());
  }
}

}  // namespace tw::gateway
