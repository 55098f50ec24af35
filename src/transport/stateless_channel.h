// StatelessChannel: how a 2026-07-28 client — which has no session and sends each request on
// its own, its version and capabilities in `_meta` — is served by the gateway's session relay
// (gateway::Session / AggregateSession), whatever era the server behind speaks.
//
// One channel per (grant, route) per event loop holds one relay (on HTTP a caller's requests
// are handed to one loop; on stdio there is one channel). The channel initializes the relay
// itself, once, as a legacy client that can be asked for elicitation, sampling and roots (see
// below), and then relays every stateless request of that grant on that route through it: the
// same policy, guard, pins, catalog and audit as any session. Each request gets a channel id
// upstream (clients of one grant may reuse ids) and its own progress token, and keeps its
// `_meta` (its capabilities and log level reach a 2026-07-28 server as they are;
// gateway::EraUpstream removes them toward a legacy one); its answer goes back on the
// response that carried it (a StreamWriter), as a modern result (resultType, the server's
// identity, cache hints). A client that closes its response stream cancels the
// request. `server/discover` is answered from the relay's initialize result;
// `subscriptions/listen` streams the list_changed notifications a listener asked for, tagged
// with its subscription id.
//
// A 2025-era server asks its client for input with requests of its own (elicitation/create,
// sampling/createMessage, roots/list) while it serves a call; a 2026-07-28 client answers
// none. The channel turns such a request into the call's answer: an InputRequiredResult whose
// one input request is the server's, and whose requestState names the call, which stays open
// at the server. The client's retry — the same method, name and arguments with the
// requestState and its inputResponses — answers the server's request and takes over the call's
// answer (or the next question). The call was decided once, before it first crossed; the retry
// is its continuation, bound to exactly that call, not a second call. A question the client
// did not declare the capability for, or one that cannot be tied to a request, is refused to
// the server. A call left waiting for kInputTimeout is cancelled.
//
// A call held for a human's approval is answered the same way rather than left open: an
// InputRequiredResult whose requestState names the held call (and, for a client that declared
// elicitation, a question telling the user the call waits for approval — a declined answer
// withdraws the call). The client's retry waits for the decision on its own response stream
// for up to kApprovalPoll (then another InputRequiredResult); the decision's outcome, when it
// came while no retry waited, is kept for the next retry for kInputTimeout.
//
// The channel's id — the audit record's session and the key of `scope: session` counters — is
// the same on every loop ("stateless:<grant>[/<server>]"): for a client without sessions, a
// session-scoped limit is the grant's limit on that route.
//
// Thread: one io_context's. Ownership: the router's (shared with the writers' cancel hooks).
#pragma once

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "mcp/modern.h"
#include "transport/http_session.h"

namespace tw::transport {

class StatelessChannel : public gateway::ClientSink,
                         public std::enable_shared_from_this<StatelessChannel> {
 public:
  StatelessChannel(std::string id, const HttpMcpSession::RelayMaker& make_relay, std::string grant,
                   std::string route);
  ~StatelessChannel() override;

  // Starts the relay and initializes it. Requests submitted before the relay is initialized
  // wait (at most kMaxWaiting; past that they are answered 503-style errors).
  void Start();
  // Serves one validated request (a method mcp::modern::RequestAllowed lets through, other
  // than discover and listen); its answer and related notifications go to `writer`.
  void Submit(jsonrpc::Message msg, const mcp::modern::RequestMeta& meta,
              std::shared_ptr<StreamWriter> writer);
  void Discover(const json::value& id, std::shared_ptr<StreamWriter> writer);
  void Listen(const json::value& id, const mcp::modern::ListenFilter& filter,
              std::shared_ptr<StreamWriter> writer);
  // The response stream of `writer` was closed by the client: its request is cancelled.
  void Cancelled(const std::shared_ptr<StreamWriter>& writer);
  // Ends every stream and closes the relay.
  void Close();
  // Cancels the calls whose input the client has not given within kInputTimeout.
  void Sweep(std::chrono::steady_clock::time_point now);
  static constexpr std::chrono::minutes kInputTimeout{10};
  static constexpr std::chrono::seconds kApprovalPoll{30};

  // Whether the relay failed to initialize (the router makes a new channel for the next
  // request).
  bool failed() const { return failed_; }
  // Requests a client waits on (a suspended call waits on its client instead).
  size_t in_flight() const {
    size_t n = waiting_.size();
    for (const auto& [key, p] : pending_) n += p.writer ? 1 : 0;
    return n;
  }
  bool idle() const {
    return pending_.empty() && waiting_.empty() && listeners_.empty() && suspended_.empty();
  }
  std::chrono::steady_clock::time_point last_active() const { return last_active_; }
  const std::string& id() const { return id_; }

  // ClientSink: a message from the relay.
  void Deliver(const jsonrpc::Message& msg, const std::optional<json::value>& related) override;
  void Held(const json::value& client_id, const std::string& approval_id) override;

  static constexpr size_t kMaxWaiting = 1024;
  // The most calls that wait for their client's retry at once.
  static constexpr size_t kMaxSuspended = 1024;

 private:
  struct Pending {
    json::value client_id;
    std::string method;
    std::shared_ptr<StreamWriter> writer;
    std::optional<json::value> progress_token;  // the client's, restored on progress
    std::optional<int> log_severity;            // notifications/message at or above, if asked
    json::object client_capabilities;
    json::value params;  // as the client sent them: a retry must name the same call
    std::string approval_id;  // held for this approval
    std::chrono::steady_clock::time_point waiting_since;  // of the current writer
    std::optional<jsonrpc::Message> answer;  // came while no client waited (writer null)
    std::chrono::steady_clock::time_point answered_at;
  };
  // A call whose server asked a question the client is to answer on a retry.
  struct Suspended {
    std::string key;               // the call's channel id (pending_)
    json::value server_request;    // the id the relay gave the server's request
    std::string input_key;         // its key in inputRequests
    json::value input_request;     // {method, params}; null: a call held for approval
    std::chrono::steady_clock::time_point since;
  };
  struct Waiting {
    enum class Kind { kSubmit, kDiscover } kind;
    jsonrpc::Message msg;
    mcp::modern::RequestMeta meta;
    std::shared_ptr<StreamWriter> writer;
  };
  struct Listener {
    json::value id;
    mcp::modern::ListenFilter filter;
    std::shared_ptr<StreamWriter> writer;
  };

  void Initialized(const jsonrpc::Message& answer);
  void Forward(jsonrpc::Message msg, const mcp::modern::RequestMeta& meta,
               std::shared_ptr<StreamWriter> writer);
  void Answer(const std::shared_ptr<StreamWriter>& writer, jsonrpc::Message msg);
  void Broadcast(const jsonrpc::Message& msg);
  void AnswerServerRequest(const jsonrpc::Message& msg);
  void RefuseServerRequest(const jsonrpc::Message& msg, const std::string& why);
  // Suspends the pending call `key` on the server's question `msg`: answers the client with an
  // InputRequiredResult.
  void AskClient(const std::string& key, const jsonrpc::Message& msg);
  // A retry carrying a requestState the channel minted: resumes its call, or answers why not.
  // False when the request carries none of ours (it is a new request, or a round of a
  // 2026-07-28 server's own).
  bool Resume(jsonrpc::Message& msg, std::shared_ptr<StreamWriter>& writer);
  static json::value InputRequired(const Suspended& s, const std::string& state);
  // Answers a retry (`id`, `writer`) with the answer the call `p` got while none waited, and
  // forgets the call.
  void AnswerKept(std::unordered_map<std::string, Pending>::iterator p, const json::value& id,
                  const std::shared_ptr<StreamWriter>& writer);
  // Answers the approval-held call `key` with an InputRequiredResult (its writer goes).
  void SuspendForApproval(const std::string& key);
  // Answers the call `p` with an InputRequiredResult for `s` under a fresh requestState, and
  // keeps `s` until the retry (the call's writer goes).
  void Suspend(Pending& p, Suspended s);

  std::string id_;
  std::string grant_;
  std::string route_;
  json::value init_result_;  // the relay's initialize result, once known
  json::value server_info_;  // init_result_.serverInfo
  bool ready_ = false;
  bool failed_ = false;
  bool closed_ = false;
  uint64_t next_id_ = 1;
  std::unordered_map<std::string, Pending> pending_;  // by channel id
  std::deque<Waiting> waiting_;
  std::vector<Listener> listeners_;
  std::unordered_map<std::string, Suspended> suspended_;  // by requestState
  uint64_t next_input_ = 1;
  std::chrono::steady_clock::time_point last_active_ = std::chrono::steady_clock::now();
  // Declared last: destroyed first, while what it may deliver to is still whole.
  std::unique_ptr<gateway::McpSession> relay_;
};

}  // namespace tw::transport
