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

#include "audit/audit.h"
#include "common/clock.h"
#include "limits/counter_store.h"
#include "mcp/protocol.h"
#include "policy/policy.h"
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

// How a forwarded call ended.
enum class CallOutcome {
  kSucceeded,     // a result without isError
  kToolError,     // a result with isError: true
  kJsonRpcError,  // an error response
  kNotSent,       // never reached the server
  kLost,          // sent, but no answer will come (connection broke)
};

struct GuardOutcome {
  policy::Decision decision;
  std::shared_ptr<const policy::Policy> snapshot;  // the policy that decided
  Admission admission;                             // charges to settle (allowed calls)
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

  // Turns on rug-pull protection (`pins` must outlive the guard): a tool whose definition
  // changed since it was approved is denied before any limit is charged.
  void SetPins(ToolPins* pins) { pins_ = pins; }

  // Records every decided call in `log` (which must outlive the guard) for `server`; with
  // `include_arguments`, argument values too (otherwise only their keys and a digest). When a
  // record cannot be written, the call is denied (state fail mode closed) — nothing decided
  // goes unaudited.
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
  audit::AuditLog* audit_ = nullptr;
  std::string audit_server_;
  bool audit_arguments_ = false;
};

}  // namespace tw::gateway
