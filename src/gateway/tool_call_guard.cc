#include "gateway/tool_call_guard.h"

#include <chrono>

#include <spdlog/spdlog.h>

#include "common/canonical_json.h"
#include "common/random.h"

namespace tw::gateway {

std::string CounterKeyFor(const policy::PlannedCharge& charge, const policy::Identity& identity) {
  const policy::Limit& l = *charge.limit;
  const std::string_view scope_id = l.scope == policy::Scope::kGrant     ? identity.grant
                                    : l.scope == policy::Scope::kSession ? identity.session
                                                                         : std::string_view("*");
  return limits::CounterKey(identity.server, l.counter, policy::ScopeName(l.scope), scope_id,
                            charge.window_start_ms);
}

ToolCallGuard::ToolCallGuard(PolicySource policies, limits::CounterStore& store,
                             const Clock& clock, StateFailMode fail_mode)
    : policies_(std::move(policies)), store_(store), clock_(clock), fail_mode_(fail_mode) {}

GuardOutcome ToolCallGuard::Check(const mcp::ToolCall& call,
                                  const policy::Identity& identity) const {
  const auto decide_start = std::chrono::steady_clock::now();
  GuardOutcome out;
  out.snapshot = policies_();
  const int64_t now = clock_.NowMs();
  out.decision = policy::Evaluate(*out.snapshot, call, identity, now);
  if (pins_ && out.decision.verdict == policy::Verdict::kAllow) {
    if (auto blocked = pins_->Check(call.name)) {
      out.decision.verdict = policy::Verdict::kDeny;
      out.decision.rule = "pin";
      out.decision.reason = std::move(*blocked);
      out.decision.charges.clear();
    }
  }

  if (out.decision.verdict == policy::Verdict::kAllow && !out.decision.charges.empty()) {
    std::vector<limits::Charge> charges;
    charges.reserve(out.decision.charges.size());
    for (const policy::PlannedCharge& p : out.decision.charges) {
      charges.push_back({CounterKeyFor(p, identity), p.amount, p.limit->max, p.window_end_ms});
    }
    // With group commit on one connection, the charges join the turn's transaction and become
    // durable with the audit records of the turn (committed below, before any call is sent).
    const bool in_turn = group_commit_ && audit_ && store_.Connection() != nullptr &&
                         store_.Connection() == audit_->Connection();
    auto charged = in_turn ? store_.TryChargeInTurn(charges, now) : store_.TryCharge(charges, now);
    out.charged_in_turn = in_turn;
    if (!charged) {
      spdlog::error("state store {}: {}", store_.Describe(), charged.error().message());
      if (fail_mode_ == StateFailMode::kClosed) {
        out.decision = policy::Decision{policy::Verdict::kDeny, "state",
                                        "The policy's counters cannot be checked right now "
                                        "(state store unavailable); the call was not forwarded",
                                        std::nullopt,
                                        {}};
      }
    } else if (!charged->admitted) {
      out.decision =
          policy::LimitDenial(out.decision.charges[charged->rejected], charged->current, now);
    } else {
      for (size_t i = 0; i < charges.size(); ++i) {
        out.admission.entries.push_back(
            {std::move(charges[i]), out.decision.charges[i].limit->refund});
      }
    }
  }

  if (out.decision.verdict == policy::Verdict::kAllow && out.decision.approval_timeout_ms) {
    std::string problem;
    if (!approvals_ || !waiter_) {
      problem = "Tool \"" + call.name + "\" requires human approval, and approvals are not "
                "available in this gateway";
    } else {
      approval::Approval a;
      a.id = RandomHex(16);
      a.created_ms = now;
      a.expires_ms = now + *out.decision.approval_timeout_ms;
      a.grant = std::string(identity.grant);
      a.session = std::string(identity.session);
      a.server = audit_server_;
      a.tool = call.name;
      a.args = json::serialize(call.arguments);
      a.args_digest = Sha256Hex(CanonicalJson(call.arguments));
      a.owner = approval::ThisOwner();
      if (auto c = approvals_->Create(a); !c) {
        spdlog::error("approvals: {}", c.error().message());
        problem = "The call needs approval, and approvals cannot be recorded right now";
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

  if (out.decision.verdict == policy::Verdict::kAllow) out.admission.started_ms = now;
  if (audit_) {
    audit::Record r;
    r.id = audit::NewRecordId();
    r.ts_ms = now;
    r.grant = std::string(identity.grant);
    r.session = std::string(identity.session);
    r.server = audit_server_;
    r.tool = call.name;
    r.decision = out.decision.verdict != policy::Verdict::kAllow ? "deny"
                 : out.approval_id.empty()                        ? "allow"
                                                                  : "approval";
    r.rule = std::string(out.decision.rule);
    r.reason = out.decision.reason;
    for (const auto& kv : call.arguments) r.arg_keys.emplace_back(kv.key());
    r.args_digest = Sha256Hex(CanonicalJson(call.arguments));
    if (audit_arguments_) r.args = call.arguments;
    r.policy_version = out.snapshot->version;
    r.outcome = r.decision == "allow" ? "pending" : "not_forwarded";
    const std::string record_id = r.id;
    bool written = true;
    if (group_commit_) {
      audit_->Stage(std::move(r));
      out.durable_wait = true;
      // The turn's commit is scheduled now, whatever the caller does with this outcome: the
      // record, and the counters charged above, must not wait for the next call.
      AwaitDurable([](bool) {});
    } else if (auto w = audit_->Write(r); !w) {
      spdlog::error("audit: {}", w.error().message());
      written = false;
      RecordFailed(out);
    }
    if (written && out.decision.verdict == policy::Verdict::kAllow) out.admission.audit_id = record_id;
  }

  if (metrics_) {
    metrics_->CountDecision(audit_server_, call.name,
                            out.decision.verdict != policy::Verdict::kAllow ? "deny"
                            : out.approval_id.empty()                        ? "allow"
                                                                             : "approval");
  }
  if (metrics_) {
    metrics_->ObserveDecision(
        audit_server_,
        std::chrono::duration<double>(std::chrono::steady_clock::now() - decide_start).count());
  }
  const bool allowed = out.decision.verdict == policy::Verdict::kAllow;
  spdlog::debug("decision grant={} session={} tool={} verdict={} rule={}{}{}", identity.grant,
               identity.session.substr(0, 8), call.name, allowed ? "allow" : "deny",
               out.decision.rule, allowed ? "" : " reason=", allowed ? "" : out.decision.reason);
  return out;
}

void ToolCallGuard::RecordFailed(GuardOutcome& out) const {
  if (out.decision.verdict != policy::Verdict::kAllow || fail_mode_ != StateFailMode::kClosed) {
    return;
  }
  Admission charged = std::move(out.admission);
  charged.audit_id.clear();  // there is no record to complete
  // Give the charges back — unless the failed commit already took them (and the approval) away.
  if (out.charged_in_turn) charged.entries.clear();
  Settle(charged, CallOutcome::kNotSent);
  out.admission = {};
  if (!out.approval_id.empty()) WithdrawApproval(out.approval_id, "the call could not be recorded");
  out.approval_id.clear();
  out.decision.verdict = policy::Verdict::kDeny;
  out.decision.rule = "audit";
  out.decision.reason = "The call cannot be recorded right now (audit store unavailable); "
                        "it was not forwarded";
  out.decision.charges.clear();
}

void ToolCallGuard::WithdrawApproval(const std::string& id, const std::string& why) const {
  if (!approvals_ || id.empty()) return;
  (void)approvals_->Resolve(id, approval::State::kCancelled, "", why, clock_.NowMs());
}

struct ToolCallGuard::GroupCommit {
  std::function<void(std::function<void()>)> post;
  audit::AuditLog* audit = nullptr;
  std::vector<std::function<void(bool)>> waiters;
  bool scheduled = false;
};

void ToolCallGuard::SetGroupCommit(std::function<void(std::function<void()>)> post) {
  group_commit_ = std::make_shared<GroupCommit>();
  group_commit_->post = std::move(post);
}

void ToolCallGuard::AwaitDurable(std::function<void(bool ok)> done) const {
  if (!group_commit_ || !audit_) {
    done(true);
    return;
  }
  GroupCommit& gc = *group_commit_;
  gc.audit = audit_;
  gc.waiters.push_back(std::move(done));
  if (gc.scheduled) return;
  gc.scheduled = true;
  gc.post([state = group_commit_] {
    state->scheduled = false;
    auto r = state->audit->CommitStaged();
    if (!r) spdlog::error("audit: {}", r.error().message());
    auto waiters = std::move(state->waiters);
    state->waiters.clear();
    for (auto& w : waiters) w(r.has_value());
  });
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
    case CallOutcome::kCancelled:
      return "cancelled";
  }
  return "?";
}

}  // namespace

void ToolCallGuard::Settle(const Admission& admission, CallOutcome outcome) const {
  if (metrics_ && (!admission.audit_id.empty() || !admission.entries.empty())) {
    metrics_->CountOutcome(audit_server_, std::string(OutcomeName(outcome)));
    const bool answered = outcome == CallOutcome::kSucceeded || outcome == CallOutcome::kToolError ||
                          outcome == CallOutcome::kJsonRpcError || outcome == CallOutcome::kLost;
    if (answered && admission.started_ms) {
      metrics_->ObserveCall(audit_server_,
                            static_cast<double>(clock_.NowMs() - admission.started_ms) / 1000.0);
    }
  }
  if (audit_ && !admission.audit_id.empty()) {
    audit_->Complete(admission.audit_id, std::string(OutcomeName(outcome)),
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
        refund = true;  // never reached the server: it cannot have done anything
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
  if (auto r = store_.Refund(refunds, clock_.NowMs()); !r) {
    spdlog::error("state store {}: refund failed: {}", store_.Describe(), r.error().message());
  }
}

}  // namespace tw::gateway
