#include "gateway/tool_call_guard.h"

#include <spdlog/spdlog.h>

namespace tw::gateway {

GuardOutcome ToolCallGuard::Check(const mcp::ToolCall& call, const std::string& session_id) const {
  GuardOutcome out;
  out.snapshot = policies_();
  out.decision = policy::Evaluate(*out.snapshot, call);
  const bool allowed = out.decision.verdict == policy::Verdict::kAllow;
  spdlog::info("decision session={} tool={} verdict={} rule={}{}{}", session_id.substr(0, 8),
               call.name, allowed ? "allow" : "deny", out.decision.rule,
               allowed ? "" : " reason=", allowed ? "" : out.decision.reason);
  return out;
}

}  // namespace tw::gateway
