// ToolCallGuard: the single place where a tools/call is decided before it may be forwarded.
//
// Every tools/call from every transport passes through Check(). It takes one immutable policy
// snapshot per call, so a reload never shows a call half of each policy.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "mcp/protocol.h"
#include "policy/policy.h"

namespace tw::gateway {

// Returns the current policy snapshot. Must never return null.
using PolicySource = std::function<std::shared_ptr<const policy::Policy>()>;

struct GuardOutcome {
  policy::Decision decision;
  std::shared_ptr<const policy::Policy> snapshot;  // the policy that decided
};

class ToolCallGuard {
 public:
  explicit ToolCallGuard(PolicySource policies) : policies_(std::move(policies)) {}

  // Decides `call`. Logs the decision (the audit trail proper is a later stage of the guard).
  GuardOutcome Check(const mcp::ToolCall& call, const std::string& session_id) const;

  // The current snapshot, for filtering tools/list.
  std::shared_ptr<const policy::Policy> Snapshot() const { return policies_(); }

 private:
  PolicySource policies_;
};

}  // namespace tw::gateway
