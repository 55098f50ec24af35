// Test-only: an ApprovalWaiter that never calls back — the approval stays pending, for tests
// that look at what the guard created, not at how a human answers.
#pragma once

#include "gateway/tool_call_guard.h"

namespace tw::testing {

class IdleApprovalWaiter : public gateway::ApprovalWaiter {
 public:
  void Await(const std::string&, int64_t, std::function<void()>,
             std::function<void(const approval::Approval&)>) override {}
  void Cancel(const std::string&) override {}
};

}  // namespace tw::testing
