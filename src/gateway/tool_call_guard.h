// ToolCallGuard: the single place where a tools/call is decided before it may be forwarded,
// and where its counters are charged and settled.
//
// Check() takes one immutable policy snapshot, evaluates the call (policy::Evaluate, pure),
// then charges every limit the decision planned in ONE atomic CounterStore operation. The
// returned Admission carries the charges; the caller settles it once the call's fate is known
// (Settle): a call that never reached the server is refunded, a failed one only for limits
// that say so, and everything else stays charged.
//
// Thread-safe if the PolicySource, the CounterStore and the Clock are (they are).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "approval/approval_store.h"
#include "audit/audit.h"
#include "common/clock.h"
#include "limits/counter_store.h"
#include "mcp/protocol.h"
#include "policy/policy.h"
#include "gateway/metrics.h"
#include "gateway/tool_catalog.h"
#include "gateway/tool_pins.h"

namespace tw::gateway {

// Returns the current policy snapshot. Must never return null.
using PolicySource = std::function<std::shared_ptr<const policy::Policy>()>;

// What happens when the state store cannot be reached: deny (closed, the default) or let the
// call through uncounted (open).
enum class StateFailMode { kClosed, kOpen };

// A charged call, to be settled once.
struct Admission {
  struct Entry {
    limits::Charge charge;
    policy::RefundOn refund = policy::RefundOn::kNever;
  };
  std::vector<Entry> entries;
  std::string audit_id;    // the call's audit record, completed when the call is settled
  int64_t started_ms = 0;  // for the recorded latency
};

// How a call ended.
enum class CallOutcome {
  kSucceeded,        // a result without isError
  kToolError,        // a result with isError: true
  kJsonRpcError,     // an error response
  kNotSent,          // never reached the server
  kLost,             // sent, but no answer will come (connection broke)
  kApprovalDenied,   // a human said no (never sent)
  kApprovalExpired,  // nobody decided in time (never sent)
  kCancelled,        // the client gave up while it waited for approval (never sent)
};

// Waits for approvals to be resolved (implemented where there is an event loop: app/).
class ApprovalWaiter {
 public:
  virtual ~ApprovalWaiter() = default;
  // Calls `done` once with the resolved approval (state approved, denied, expired — the waiter
  // marks it expired at `expires_ms` — or abandoned), and `tick` about every 15 s meanwhile.
  virtual void Await(const std::string& id, int64_t expires_ms, std::function<void()> tick,
                     std::function<void(const approval::Approval&)> done) = 0;
  // Stops waiting (no callback) and marks the approval cancelled.
  virtual void Cancel(const std::string& id) = 0;
};

struct PendingRecord;  // a call's record on its way to the audit log (ToolCallGuard::Check)

struct GuardOutcome {
  policy::Decision decision;
  std::shared_ptr<const policy::Policy> snapshot;  // the policy that decided
  Admission admission;                             // charges to settle (allowed calls)
  // Set when the call must wait for a human: the pending approval and when it expires.
  std::string approval_id;
  int64_t approval_expires_ms = 0;
  // Group commit: the call's record is on its way to the audit log, not yet durable, and with
  // a state file shared with the audit log its charges are made in the same transaction, so
  // the decision is not final either. The caller must neither forward nor answer the call
  // before AwaitDurable called back, and must then call Finish.
  bool durable_wait = false;
  std::shared_ptr<PendingRecord> pending;
  // The charges are made inside the audit log's transaction: if its commit fails they are gone
  // with it, and RecordFailed must not refund them a second time.
  bool charged_with_record = false;
};

// The counter key a planned charge uses for `identity` (its scope's id, its window).
std::string CounterKeyFor(const policy::PlannedCharge& charge, const policy::Identity& identity);

class ToolCallGuard {
 public:
  // `store` and `clock` must outlive the guard.
  ToolCallGuard(PolicySource policies, limits::CounterStore& store, const Clock& clock,
                StateFailMode fail_mode = StateFailMode::kClosed);

  // Decides `call` for `identity` and, when allowed, charges its limits.
  GuardOutcome Check(const mcp::ToolCall& call, const policy::Identity& identity) const;

  // Settles an admission: refunds what the outcome says must be refunded.
  void Settle(const Admission& admission, CallOutcome outcome) const;

  // The current snapshot, for filtering tools/list.
  std::shared_ptr<const policy::Policy> Snapshot() const { return policies_(); }

  // Turns on tool identity and argument schemas (`catalog` must outlive the guard): a call
  // must name a tool the server listed, with arguments its inputSchema accepts.
  void SetCatalog(ToolCatalog* catalog) { catalog_ = catalog; }
  ToolCatalog* catalog() const { return catalog_; }

  // Records a client message dropped at the protocol allow-list — a tools/call sent as a
  // notification, a notification no revision defines — as decision "dropped" (rule
  // "protocol", outcome not_forwarded), so an agent probing for a bypass leaves a trace.
  // Best effort: nothing was forwarded either way; a record that cannot be written is logged.
  void RecordDropped(const jsonrpc::Message& msg, const policy::Identity& identity,
                     const std::string& reason) const;

  // Turns on rug-pull protection (`pins` must outlive the guard): a tool whose definition
  // changed since it was approved is denied before any limit is charged.
  void SetPins(ToolPins* pins) { pins_ = pins; }

  // Records every decided call in `log` (which must outlive the guard) for `server`; with
  // `include_arguments`, argument values too (otherwise only their keys and a digest). When a
  // record cannot be written, the call is denied (state fail mode closed) — nothing decided
  // goes unaudited.
  // Makes `action: require_approval` real: such calls get a pending approval in `store` and
  // wait for it through `waiter` (both must outlive the guard). Without them those calls are
  // denied.
  void SetApprovals(approval::ApprovalStore* store, ApprovalWaiter* waiter) {
    approvals_ = store;
    waiter_ = waiter;
  }
  ApprovalWaiter* approval_waiter() const { return waiter_; }

  // Group commit: records go to the audit log's writer (AuditLog::Submit), which commits every
  // call decided meanwhile in one transaction, off the event loop's thread — and, when the
  // counters share the audit log's state file, charges their limits in it. `make_poster` is
  // called on the event loop's thread for each call; what it returns runs a function on that
  // loop from any thread (the writer's), and keeps the loop running while it exists. Without
  // group commit, each record is written before Check returns.
  using LoopPoster = std::function<void(std::function<void()>)>;
  void SetGroupCommit(std::function<LoopPoster()> make_poster);
  // For an outcome with durable_wait: calls `done` on the caller's event loop once the record
  // is durable or has failed. Call it in the same event-loop handler as Check.
  void AwaitDurable(const GuardOutcome& outcome, std::function<void()> done) const;
  // Then makes the outcome final: the decision of its charges (a limit that did not fit denies
  // the call), and RecordFailed when the record could not be written.
  void Finish(GuardOutcome& outcome) const;
  // The caller gave up on an outcome still waiting (its session closed): whatever its record's
  // transaction charges is given back, and its record completed as cancelled, when it ends.
  void Abandon(GuardOutcome& outcome) const;
  // Turns a decision whose audit record could not be written into what the fail mode says:
  // denied, charges refunded and its approval withdrawn (closed), or left alone (open).
  void RecordFailed(GuardOutcome& outcome) const;
  // Withdraws an approval nobody is waiting for yet (the call was dropped before it was held).
  void WithdrawApproval(const std::string& id, const std::string& why) const;

  // Counts decisions and outcomes in `metrics` (must outlive the guard).
  void SetMetrics(Metrics* metrics) { metrics_ = metrics; }

  void SetAudit(audit::AuditLog* log, std::string server, bool include_arguments) {
    audit_ = log;
    audit_server_ = std::move(server);
    audit_arguments_ = include_arguments;
  }
  ToolPins* pins() const { return pins_; }

 private:
  PolicySource policies_;
  limits::CounterStore& store_;
  const Clock& clock_;
  StateFailMode fail_mode_;
  ToolPins* pins_ = nullptr;
  ToolCatalog* catalog_ = nullptr;
  audit::AuditLog* audit_ = nullptr;
  approval::ApprovalStore* approvals_ = nullptr;
  ApprovalWaiter* waiter_ = nullptr;
  Metrics* metrics_ = nullptr;
  std::string audit_server_;
  bool audit_arguments_ = false;
  void CountDecision(const std::string& tool, const policy::Decision& d, bool approval) const;
  // A record of a call to `tool` with `args` by `identity`, decided under `snapshot` at `now`:
  // everything but the decision, rule, reason and outcome.
  audit::Record NewRecord(std::string tool, const json::object& args,
                          const policy::Identity& identity, int64_t now,
                          const policy::Policy& snapshot) const;
  void Completed(PendingRecord& pending) const;  // on the event loop, when the record ended
  // True when writes to a store on `connection` go through the audit log's writer thread (it
  // is the audit log's, and records are group-committed): the event loop never makes them.
  bool OnWriter(const void* connection) const;
  std::function<LoopPoster()> make_poster_;  // group commit (SetGroupCommit)
};

}  // namespace tw::gateway
