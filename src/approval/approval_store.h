// Pending approvals: calls held until a human approves or denies them (or they time out).
//
// An approval is bound to one call — grant, session, server, tool and the digest of its exact
// arguments — and is single use: once resolved it cannot be resolved again. Records stay in the
// state store (who resolved them, when, why). Thread-safe; several processes may share the file
// (a `run` wrapper and the `toolwarden approvals` command in another terminal).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace tw::approval {

enum class State { kPending, kApproved, kDenied, kExpired, kCancelled, kAbandoned };
std::string_view StateName(State s);

struct Approval {
  std::string id;  // random, 128 bits
  int64_t created_ms = 0;
  int64_t expires_ms = 0;
  std::string grant, session, server, tool;
  std::string args;  // JSON text, for the human who decides
  std::string args_digest;
  State state = State::kPending;
  std::string resolved_by;
  int64_t resolved_ms = 0;
  std::string reason;
  std::string owner;  // the gateway process holding the call: "<host>:<pid>"
};

// This process as an approval owner.
std::string ThisOwner();
// True unless `owner` names a process on this host that no longer exists.
bool OwnerAlive(const std::string& owner);
// The state StateName() spelled (kAbandoned for anything else).
State StateFrom(std::string_view name);

class ApprovalStore {
 public:
  virtual ~ApprovalStore() = default;
  virtual Result<bool> Create(const Approval& a) = 0;
  virtual Result<std::optional<Approval>> Get(const std::string& id) = 0;
  // Moves a pending, unexpired approval to `to` (kApproved, kDenied, kExpired, kCancelled).
  // Fails with a message saying why when it is not pending (already resolved, expired, unknown).
  virtual Result<Approval> Resolve(const std::string& id, State to, const std::string& by,
                                   const std::string& reason, int64_t now_ms) = 0;
  virtual Result<std::vector<Approval>> List(bool pending_only) = 0;
  // Marks abandoned every pending approval whose owner on this host is no longer running (the
  // gateway that held the call died or restarted). Returns how many.
  virtual Result<int> AbandonOrphans(int64_t now_ms) = 0;
  // Calls `wake` (from a thread of the store's) whenever an approval is resolved anywhere the
  // store can hear of it — on Redis, a message every replica receives —, so that a waiter need
  // not wait for its next poll; nothing where it cannot (a file: the waiter polls). An empty
  // `wake` stops listening (before what `wake` calls into goes).
  virtual void OnResolved(std::function<void()> wake) { (void)wake; }
  // The SQLite connection approvals are written on (null when none): with the audit log's,
  // a call's approval is created in its record's transaction (ToolCallGuard).
  virtual const void* Connection() const { return nullptr; }
};

// "memory", "sqlite:PATH" (table `approvals` in the state database) or "redis://…".
Result<std::unique_ptr<ApprovalStore>> OpenApprovalStore(const std::string& spec);
Result<std::unique_ptr<ApprovalStore>> OpenRedisApprovalStore(const std::string& url);

}  // namespace tw::approval
