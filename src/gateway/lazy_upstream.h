// LazyUpstream: a server connection that exists only while the session uses it — for servers
// with `isolation: session`, where each session has a process of its own.
//
// A session that never calls such a server never starts its process: the handshake and the
// tool list are answered from what the server said to an earlier session of the same grant (a
// ServerMemory), and the process is started at the first request that needs it, with this
// session's own `initialize` replayed to it first (and its `notifications/initialized`, and
// its last `logging/setLevel`). Once idle — no request in flight either way for `idle_ms` —
// the process is stopped, and started again the same way at the next request. A session that
// subscribed to a resource keeps its process.
//
// Nothing is answered from memory that the server has not said to this grant: the first
// session of a grant starts the server at `initialize`; another protocol version than the one
// remembered, a tools/list with a cursor, a list the server announced as changed, and every
// other request (resources and prompts too: a server may list what one client's roots
// showed it) go to the server. Whatever it answers updates the memory.
//
// Thread: as Upstream — everything on the session's io_context. ServerMemory is shared across
// loops and locks.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "common/clock.h"
#include "gateway/aggregate_session.h"
#include "gateway/loop_bridge.h"
#include "gateway/upstream.h"

namespace tw::gateway {

// What a server said to one grant's sessions that its later sessions may be told without it:
// its answer to `initialize` for one protocol version, and its latest first page of tools.
class ServerMemory {
 public:
  std::optional<json::value> Initialize(const std::string& protocol_version) const;
  void RememberInitialize(const std::string& protocol_version, const json::value& result);
  std::optional<json::value> List(const std::string& method) const;
  void RememberList(const std::string& method, const json::value& result);
  void ForgetList(const std::string& method);

 private:
  mutable std::mutex mu_;
  std::string init_version_;                  // Guarded by mu_.
  json::value init_result_;                   // Guarded by mu_. null: none yet
  std::map<std::string, json::value> lists_;  // Guarded by mu_.
};

// A server's memories, one per grant: what one agent's session was told never answers
// another's.
class ServerMemories {
 public:
  std::shared_ptr<ServerMemory> For(const std::string& grant);

 private:
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<ServerMemory>> by_grant_;  // Guarded by mu_.
};

class LazyUpstream : public Upstream {
 public:
  // `make` creates the real connection (not started). `idle_ms` 0: never stopped for idleness.
  // `server` names it in logs. `post` runs a function on the session's loop on a later turn;
  // `scheduler` after a delay (the idle timer: one pending at a time, however many requests
  // pass). `clock` must outlive this.
  LazyUpstream(std::string server, std::function<std::unique_ptr<Upstream>()> make,
               std::shared_ptr<ServerMemory> memory, Post post, Scheduler scheduler,
               const Clock& clock, int64_t idle_ms);
  ~LazyUpstream() override;

  void Start(Events events) override;
  void Send(jsonrpc::Message msg) override;
  void Close() override;

  // For tests and logs: whether the real connection exists now, and how many were made.
  bool running() const { return inner_ != nullptr; }
  int starts() const { return starts_; }

 private:
  enum class Phase { kDormant, kHandshake, kRunning };
  void Materialize();
  void OnInnerMessage(jsonrpc::Message msg, std::optional<json::value> related);
  void OnInnerFailed(const json::value& id, const Error& error, bool sent);
  void Flush();
  void FailQueued(const Error& error);
  void Forward(jsonrpc::Message msg);
  void Answer(const json::value& id, json::value result);
  bool AnswerFromMemory(const jsonrpc::Message& msg);
  void Settled();  // a request finished: maybe arm the idle timer
  void ArmIdle(int64_t delay_ms);
  void StopInner();

  std::string server_;
  std::function<std::unique_ptr<Upstream>()> make_;
  std::shared_ptr<ServerMemory> memory_;
  Post post_;
  Scheduler scheduler_;
  const Clock& clock_;
  int64_t idle_ms_;
  Events events_;
  std::unique_ptr<Upstream> inner_;
  Phase phase_ = Phase::kDormant;
  int starts_ = 0;
  std::optional<jsonrpc::Message> initialize_;  // the session's own, replayed at each start
  std::string protocol_version_;                // asked for in it
  bool initialized_ = false;                    // the session sent notifications/initialized
  std::optional<json::value> log_level_;        // its last logging/setLevel params
  bool subscribed_ = false;                     // resources/subscribe: never idle-stopped
  std::deque<jsonrpc::Message> queue_;          // waiting for the replayed handshake
  // Requests in flight both ways, by tagged id → the list method whose answer is remembered
  // ("" for any other request).
  std::map<std::string, std::string> in_flight_;
  int64_t last_activity_ms_ = 0;  // the last request or answer, either way
  bool idle_armed_ = false;       // an idle timer is pending
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace tw::gateway
