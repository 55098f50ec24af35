// UpstreamHub: one upstream server connection shared by many sessions.
//
// A command server is started once and every MCP session of the gateway talks to it through a
// channel (an Upstream of its own). The hub multiplexes: request ids and progress tokens are
// renumbered per hub so sessions can never collide. The server is initialized once, by the
// first session, with no client capabilities (a shared server cannot ask one particular client
// for sampling, elicitation or roots — give such servers `isolation: session`); later sessions
// get the cached initialize result at once.
//
// A server message reaches a channel only if it can be attributed to that channel — sessions of
// different grants share the process, and nothing of one may reach another:
//   - answers, progress (by our token) and cancellations of server requests: their channel;
//   - a message on the stream of a channel's request (HTTP upstreams say which): that channel;
//     `notifications/message` only at or above the level that channel set;
//   - `notifications/resources/updated`: the channels subscribed to that URI;
//   - the list_changed notifications (they carry no data): every channel;
//   - anything else — `notifications/message` from a stdio server, which cannot say whom it
//     concerns, and any other unattributable notification — goes to the gateway's log, never to
//     an agent; an unattributable server request is refused.
// `logging/setLevel` is answered by the hub for the channel alone (one agent never changes
// what another is sent); `resources/subscribe` / `unsubscribe` are kept per channel and reach
// the server only for the first subscriber and the last one leaving.
//
// Thread: single-threaded (the io_context of the real upstream). The hub must outlive nothing:
// channels keep it alive (shared_ptr).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "gateway/aggregate_session.h"
#include "gateway/upstream.h"

namespace tw::gateway {

class UpstreamHub : public std::enable_shared_from_this<UpstreamHub> {
 public:
  // `post` runs a function on the next turn of the event loop (delay 0).
  UpstreamHub(std::string server, std::unique_ptr<Upstream> upstream, Scheduler post);
  ~UpstreamHub();
  UpstreamHub(const UpstreamHub&) = delete;
  UpstreamHub& operator=(const UpstreamHub&) = delete;

  // A new channel; the real connection starts with the first channel's Start() (or Warm()).
  std::unique_ptr<Upstream> NewChannel();
  // Starts the server now and initializes it with `initialize_params` (the gateway's own
  // client info), so it is ready — and its health known — before the first session; it is
  // initialized again the same way whenever it restarts.
  void Warm(json::value initialize_params);
  // Closes the real connection (a reload removed the server, or the gateway stops). Channels
  // still open see a disconnection.
  void Close(const std::string& why = "the server was removed");

  const std::string& server() const { return server_; }
  bool up() const { return up_; }
  const std::string& last_error() const { return last_error_; }
  size_t channel_count() const { return channels_.size(); }

 private:
  class Channel;
  friend class Channel;
  // Pending::channel of the hub's own requests other than initialize (unsubscribe).
  static constexpr uint64_t kNoChannel = UINT64_MAX;
  struct Pending {
    uint64_t channel = 0;  // 0: the hub's own initialize; kNoChannel: another of its own
    json::value channel_id;
    std::optional<int64_t> progress;  // our progress token, if the request had one
  };
  struct ProgressOwner {
    uint64_t channel = 0;
    json::value token;
  };

  void Attach(Channel* ch);
  void EnsureStarted();
  void SendInitialize(json::value params);
  void Detach(uint64_t channel);
  void FromChannel(uint64_t channel, jsonrpc::Message msg);
  void OnMessage(jsonrpc::Message msg, std::optional<json::value> related);
  void OnRequestFailed(const json::value& id, const Error& error, bool sent);
  void OnDisconnected(const Error& error);
  void OnReconnected();
  void FinishInitialize(const jsonrpc::Message& answer);
  Channel* Find(uint64_t channel) const;
  std::optional<uint64_t> OwnerOf(const std::optional<json::value>& related) const;

  std::string server_;
  std::unique_ptr<Upstream> upstream_;
  Scheduler post_;
  std::map<uint64_t, Channel*> channels_;
  uint64_t next_channel_ = 1;
  bool started_ = false;
  bool closed_ = false;
  bool up_ = false;
  std::string last_error_;
  enum class Init { kNone, kPending, kDone } init_ = Init::kNone;
  json::value init_result_;
  json::value warm_params_;  // null unless Warm() was called
  std::vector<std::pair<uint64_t, json::value>> waiting_init_;  // channel, its request id
  int64_t next_id_ = 1;
  std::unordered_map<int64_t, Pending> pending_;
  int64_t next_progress_ = 1;
  std::unordered_map<int64_t, ProgressOwner> progress_;
  int64_t next_server_request_ = 1;
  std::unordered_map<int64_t, std::pair<uint64_t, json::value>> server_requests_;
  std::map<std::string, std::set<uint64_t>> subscribers_;  // resource URI → channels
  std::unordered_map<uint64_t, int> log_levels_;           // channel → minimum level it wants

  // Answers a channel's request from the hub itself, on the next turn of the loop.
  void AnswerLocally(uint64_t channel, const json::value& id, json::value result);
  void Deliver(uint64_t channel, jsonrpc::Message msg, std::optional<json::value> related);
};

}  // namespace tw::gateway
