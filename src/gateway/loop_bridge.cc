#include "gateway/loop_bridge.h"

#include <atomic>
#include <map>
#include <mutex>

namespace tw::gateway {

// `inner` is touched only on the remote loop; `events` and `closed` only on the local one.
// The real upstream's events hold a weak_ptr: the State owns the upstream, which must not own
// the State back.
struct LoopBridgedUpstream::State : std::enable_shared_from_this<State> {
  std::function<std::unique_ptr<Upstream>()> make;
  Post remote;
  Post local;
  std::unique_ptr<Upstream> inner;  // remote loop
  Events events;                    // local loop
  bool closed = false;              // local loop

  // Runs `fn` on the local loop unless the bridge has been closed by then.
  void ToLocal(std::function<void(State&)> fn) {
    local([self = shared_from_this(), fn = std::move(fn)] {
      if (!self->closed) fn(*self);
    });
  }

  Events Forwarding() {
    std::weak_ptr<State> weak = weak_from_this();
    Events e;
    e.on_message = [weak](jsonrpc::Message msg, std::optional<json::value> related) {
      if (auto s = weak.lock()) {
        if (related) related = jsonrpc::Detached(*related);
        s->ToLocal([msg = jsonrpc::Detached(msg), related = std::move(related)](State& st) mutable {
          if (st.events.on_message) st.events.on_message(std::move(msg), std::move(related));
        });
      }
    };
    e.on_request_failed = [weak](const json::value& id, const Error& error, bool sent) {
      if (auto s = weak.lock()) {
        s->ToLocal([id = jsonrpc::Detached(id), error, sent](State& st) {
          if (st.events.on_request_failed) st.events.on_request_failed(id, error, sent);
        });
      }
    };
    e.on_disconnected = [weak](const Error& error) {
      if (auto s = weak.lock()) {
        s->ToLocal([error](State& st) {
          if (st.events.on_disconnected) st.events.on_disconnected(error);
        });
      }
    };
    e.on_reconnected = [weak] {
      if (auto s = weak.lock()) {
        s->ToLocal([](State& st) {
          if (st.events.on_reconnected) st.events.on_reconnected();
        });
      }
    };
    return e;
  }
};

LoopBridgedUpstream::LoopBridgedUpstream(std::function<std::unique_ptr<Upstream>()> make,
                                         Post remote, Post local)
    : state_(std::make_shared<State>()) {
  state_->make = std::move(make);
  state_->remote = std::move(remote);
  state_->local = std::move(local);
}

LoopBridgedUpstream::~LoopBridgedUpstream() { Close(); }

void LoopBridgedUpstream::Start(Events events) {
  state_->events = std::move(events);
  state_->remote([s = state_] {
    if (s->inner) return;
    s->inner = s->make();
    s->inner->Start(s->Forwarding());
  });
}

void LoopBridgedUpstream::Send(jsonrpc::Message msg) {
  if (state_->closed) return;
  // Nothing of the session's arena crosses (jsonrpc::Detached).
  state_->remote([s = state_, msg = jsonrpc::Detached(msg)]() mutable {
    if (s->inner) s->inner->Send(std::move(msg));
  });
}

void LoopBridgedUpstream::Close() {
  if (state_->closed) return;
  state_->closed = true;
  state_->events = {};
  state_->remote([s = state_] {
    if (!s->inner) return;
    s->inner->Close();
    s->inner.reset();
  });
}

// The waits of one bridge: a flag per approval id, true while its caller still wants the
// answer. Cancel clears it on the caller's loop, where `done` is run, so a result already on
// its way is dropped.
struct LoopBridgedApprovalWaiter::Waits {
  std::mutex mu;
  std::map<std::string, std::shared_ptr<std::atomic<bool>>> live;  // Guarded by mu.
};

LoopBridgedApprovalWaiter::LoopBridgedApprovalWaiter(ApprovalWaiter& waiter, Post remote,
                                                     std::function<Post()> here)
    : waiter_(waiter),
      remote_(std::move(remote)),
      here_(std::move(here)),
      waits_(std::make_shared<Waits>()) {}

LoopBridgedApprovalWaiter::~LoopBridgedApprovalWaiter() = default;

void LoopBridgedApprovalWaiter::Await(const std::string& id, int64_t expires_ms,
                                      std::function<void()> tick,
                                      std::function<void(const approval::Approval&)> done) {
  auto live = std::make_shared<std::atomic<bool>>(true);
  {
    std::lock_guard lock(waits_->mu);
    waits_->live[id] = live;
  }
  Post back = here_();
  auto on_tick = [back, live, tick = std::move(tick)] {
    back([live, tick] {
      if (live->load() && tick) tick();
    });
  };
  auto on_done = [back, live, id, waits = waits_, done = std::move(done)](const approval::Approval& a) {
    back([live, id, waits, done, a] {
      if (!live->exchange(false)) return;
      {
        std::lock_guard lock(waits->mu);
        if (auto it = waits->live.find(id); it != waits->live.end() && it->second == live) {
          waits->live.erase(it);
        }
      }
      done(a);
    });
  };
  remote_([&waiter = waiter_, id, expires_ms, on_tick = std::move(on_tick),
           on_done = std::move(on_done)]() mutable {
    waiter.Await(id, expires_ms, std::move(on_tick), std::move(on_done));
  });
}

void LoopBridgedApprovalWaiter::Cancel(const std::string& id) {
  {
    std::lock_guard lock(waits_->mu);
    if (auto it = waits_->live.find(id); it != waits_->live.end()) {
      it->second->store(false);
      waits_->live.erase(it);
    }
  }
  remote_([&waiter = waiter_, id] { waiter.Cancel(id); });
}

}  // namespace tw::gateway
