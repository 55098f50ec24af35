// Loop bridges: a session on one event loop using something that lives on another.
//
// With several event loops (transport/event_loops.h) a session stays on the loop that opened
// it, while what exists once per gateway stays on the home loop: a shared server's connection
// (UpstreamHub) and the approval waiter. These adapters give the session the interface it
// already uses and post every call to the owner's loop and every event back to the session's,
// so neither loop ever takes the other's lock or touches its objects.
//
// Contract kept from the interfaces they wrap: no event reaches the session after Close (or
// Cancel) — an event already on its way is dropped on the session's loop, where Close ran.
// Messages cross as deep copies (jsonrpc::Detached): a parsed message's values share an arena
// that is not thread-safe, so nothing of one loop's arena may reach another.
//
// Thread: each adapter is used on its session's loop; what it wraps only on the owner's.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "gateway/tool_call_guard.h"
#include "gateway/upstream.h"

namespace tw::gateway {

// Runs a function on one event loop from any thread. Unlike LoopPoster it does not keep the
// loop running: a stopped loop drops what is posted to it.
using Post = std::function<void(std::function<void()>)>;

// An Upstream whose real connection lives on another loop: `make` runs there at Start and
// makes it (a channel of that loop's UpstreamHub); `remote` posts to that loop, `local` to the
// session's. The real upstream is closed and destroyed on its own loop.
class LoopBridgedUpstream : public Upstream {
 public:
  LoopBridgedUpstream(std::function<std::unique_ptr<Upstream>()> make, Post remote, Post local);
  ~LoopBridgedUpstream() override;
  LoopBridgedUpstream(const LoopBridgedUpstream&) = delete;
  LoopBridgedUpstream& operator=(const LoopBridgedUpstream&) = delete;

  void Start(Events events) override;
  void Send(jsonrpc::Message msg) override;
  void Close() override;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

// An ApprovalWaiter whose real one lives on another loop (`remote`). Each Await remembers the
// caller's loop (`here()`, asked at the time of the call) and runs `tick` and `done` there.
class LoopBridgedApprovalWaiter : public ApprovalWaiter {
 public:
  // `waiter` must outlive this object and everything posted to `remote`.
  LoopBridgedApprovalWaiter(ApprovalWaiter& waiter, Post remote, std::function<Post()> here);
  ~LoopBridgedApprovalWaiter() override;

  void Await(const std::string& id, int64_t expires_ms, std::function<void()> tick,
             std::function<void(const approval::Approval&)> done) override;
  void Cancel(const std::string& id) override;

 private:
  struct Waits;
  ApprovalWaiter& waiter_;
  Post remote_;
  std::function<Post()> here_;
  std::shared_ptr<Waits> waits_;
};

}  // namespace tw::gateway
