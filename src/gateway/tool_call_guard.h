// ToolCallGuard: the single place where a tools/call is decided before it may be forwarded,
// and where its counters are charged and settled.
//
// A call goes through a small state machine. Check() decides it in named stages, each able to
// end it with a denial — identity (a readable name the server listed, arguments its schema
// accepts), conditions (the policy snapshot, pure), pins (the definition is the approved one),
// charge (every planned limit in ONE atomic CounterStore operation), approval (a pending
// approval when the policy holds the call for a human), record (the audit record) — and says
// what the caller does next (GuardOutcome::next):
//
//   kAnswer        answer the client with the denial; nothing to settle.
//   kForward       forward the call; Settle(admission, how it ended) once its fate is known.
//   kAwaitRecord   the record, and the charges and approval made in its transaction, are
//                  being committed: AwaitDurable, then Finish, which moves to one of the others.
//   kAwaitApproval wait for approval_id through approval_waiter(); then forward, or Settle.
//
// A caller that gives up on a decided call before forwarding it (its session closed, its id
// was already in use) calls Drop. Settle refunds a call that never reached the server, a
// failed one only for limits that say so, and keeps everything else charged.
//
// Thread-safe if the PolicySource, the CounterStore and the Clock are (they are).
#pragma once

#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "approval/approval_store.h"
#include "audit/audit.h"
#include "catalog/redact.h"
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
  // The server answered input_required (2026-07-28): it asked for input before doing the
  // call's work. Refunded; the retry that carries the input is decided and charged itself.
  kInputRequired,
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

// Runs a function on an event loop from any thread; keeps that loop running while it exists.
using LoopPoster = std::function<void(std::function<void()>)>;

// Everything a guard works with, given once at construction. A null pointer turns that
// capability off; whatever is given must outlive the guard.
struct GuardDeps {
  PolicySource policies;                     // required; never returns null
  limits::CounterStore* counters = nullptr;  // required
  const Clock* clock = nullptr;              // required
  StateFailMode fail_mode = StateFailMode::kClosed;
  std::string server;  // names the server in records, approvals and metrics
  // Tool identity and argument schemas: a call must name a tool the server listed, with
  // arguments its inputSchema accepts.
  ToolCatalog* catalog = nullptr;
  // Rug-pull protection: a tool whose definition changed since it was approved is denied
  // before any limit is charged.
  ToolPins* pins = nullptr;
  // Every decided call is recorded (its arguments' keys and digest, and their values as
  // `arguments` keeps them). A call whose record cannot be written is denied (state fail
  // mode closed): nothing decided goes unaudited.
  audit::AuditLog* audit = nullptr;
  catalog::ArgumentRedactor arguments;
  // The server's shadow policy (`policy_shadow`, or a draft tried live); may return null.
  // Without one, the snapshot's own would-be policy (its `mode: shadow` parts), if it has one.
  // Whichever it is, it is evaluated on every call with counters of its own in memory (never
  // the shared state store: a shadow must not slow or deny the enforcing path), and its
  // decision recorded and counted — never enforced.
  PolicySource shadow;
  // `action: require_approval` made real: a pending approval in `approvals`, waited for
  // through `waiter`. Without both, such calls are denied.
  approval::ApprovalStore* approvals = nullptr;
  ApprovalWaiter* waiter = nullptr;
  Metrics* metrics = nullptr;  // decisions and outcomes counted
  // Group commit: records go to the audit log's writer (AuditLog::Submit), which commits every
  // call decided meanwhile (on every loop) in one transaction, off the loops' threads — and,
  // when the counters share the audit log's state file, charges their limits in it. Called on
  // the thread of the loop deciding the call, for each call: the poster it returns runs the
  // call's completion on that loop. Without it, each record is written before Check returns.
  std::function<LoopPoster()> group_commit;
  // For a remote counter store (CounterStore::Remote): charges batched off the loops, one round
  // trip for every call decided meanwhile, before their records are submitted. Optional.
  limits::ChargeBatcher* batcher = nullptr;
};

using audit::ShadowDecision;

struct GuardOutcome {
  // What the caller does next (see ToolCallGuard).
  enum class Next { kAnswer, kForward, kAwaitRecord, kAwaitApproval };
  Next next = Next::kAnswer;
  policy::Decision decision;
  std::shared_ptr<const policy::Policy> snapshot;  // the policy that decided
  Admission admission;                             // charges to settle (allowed calls)
  // Set when the call must wait for a human: the pending approval and when it expires.
  std::string approval_id;
  int64_t approval_expires_ms = 0;
  // kAwaitRecord: the call's record on its way to the audit log, not yet durable; with a state
  // file shared with the audit log its charges are made in the same transaction, so the
  // decision is not final either.
  std::shared_ptr<PendingRecord> pending;
  // The charges are made inside the audit log's transaction: if its commit fails they are gone
  // with it, and RecordFailed must not refund them a second time.
  bool charged_with_record = false;
  // What the classifier says of the tool (empty when it is not listed).
  policy::ToolClass cls;
  // What the server's shadow policy (or on_drift: shadow) would have decided; never enforced.
  std::optional<ShadowDecision> shadow;
};

// The counter key a planned charge uses for `identity` (its scope's id, its window).
std::string CounterKeyFor(const policy::PlannedCharge& charge, const policy::Identity& identity);
// The counter charges a decision's planned limits make for `identity` (one per limit, keyed by
// CounterKeyFor), as the guard makes them.
std::vector<limits::Charge> ChargesFor(std::span<const policy::PlannedCharge> planned,
                                       const policy::Identity& identity);

class ToolCallGuard {
 public:
  explicit ToolCallGuard(GuardDeps deps);
  // Only the required dependencies: no catalog, pins, audit, approvals, metrics or group commit.
  ToolCallGuard(PolicySource policies, limits::CounterStore& store, const Clock& clock,
                StateFailMode fail_mode = StateFailMode::kClosed);

  // Decides `call` for `identity`: the stages above, then `next`.
  GuardOutcome Check(const mcp::ToolCall& call, const policy::Identity& identity) const;

  // kAwaitRecord: calls `done` on the caller's event loop once the record is durable or has
  // failed. Call it in the same event-loop handler as Check.
  void AwaitDurable(const GuardOutcome& outcome, std::function<void()> done) const;
  // kAwaitRecord → kAnswer, kForward or kAwaitApproval: the decision of its charges (a limit
  // that did not fit denies the call), and a denial when the record could not be written (fail
  // mode closed).
  void Finish(GuardOutcome& outcome) const;
  // The caller will not go on with a decided call it has not forwarded: its admission is
  // settled as `how` (refunded), its approval withdrawn with `why`, and — while its record is
  // still being committed — whatever that transaction charges is given back, and its record
  // completed as cancelled, when it ends.
  void Drop(GuardOutcome& outcome, CallOutcome how, const std::string& why) const;
  // Settles an admission once its call's fate is known: refunds what the outcome says must be
  // refunded, and completes the call's record.
  void Settle(const Admission& admission, CallOutcome outcome) const;

  // Records a client message dropped at the protocol allow-list — a tools/call sent as a
  // notification, a notification no revision defines — as decision "dropped" (rule
  // "protocol", outcome not_forwarded), so an agent probing for a bypass leaves a trace.
  // Best effort: nothing was forwarded either way; a record that cannot be written is logged.
  void RecordDropped(const jsonrpc::Message& msg, const policy::Identity& identity,
                     const std::string& reason) const;

  // The current snapshot, for filtering tools/list.
  std::shared_ptr<const policy::Policy> Snapshot() const { return deps_.policies(); }
  ToolCatalog* catalog() const { return deps_.catalog; }
  ToolPins* pins() const { return deps_.pins; }
  ApprovalWaiter* approval_waiter() const { return deps_.waiter; }

 private:
  // The stages of Check, in order; each leaves `out.decision` a denial to end the call (and
  // Identify returns false).
  bool Identify(const mcp::ToolCall& call, GuardOutcome& out) const;
  void EvaluateConditions(const mcp::ToolCall& call, const policy::Identity& identity, int64_t now,
                          GuardOutcome& out) const;
  // Returns the block on_drift: shadow would have made, if any.
  std::optional<policy::Decision> CheckPins(const mcp::ToolCall& call, GuardOutcome& out) const;
  // The shadow stage: what the shadow policy (and a shadowed drift block) would have decided.
  void EvaluateShadow(const mcp::ToolCall& call, const policy::Identity& identity, int64_t now,
                      bool identified, std::optional<policy::Decision> drift,
                      GuardOutcome& out) const;
  void ChargeLimits(const policy::Identity& identity, int64_t now, GuardOutcome& out) const;
  void RequestApproval(const mcp::ToolCall& call, const policy::Identity& identity, int64_t now,
                       GuardOutcome& out) const;
  void Record(const mcp::ToolCall& call, const policy::Identity& identity, int64_t now,
              GuardOutcome& out) const;

  // A decision whose audit record could not be written becomes what the fail mode says:
  // denied, charges refunded and its approval withdrawn (closed), or left alone (open).
  void RecordFailed(GuardOutcome& outcome) const;
  void WithdrawApproval(const std::string& id, const std::string& why) const;
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

  GuardDeps deps_;
  limits::CounterStore& store_;  // *deps_.counters
  const Clock& clock_;           // *deps_.clock
  // The shadow policies' counters: this gateway's calls only, in memory.
  std::unique_ptr<limits::CounterStore> shadow_counters_;
};

}  // namespace tw::gateway
