// Session: one MCP client session relayed to one upstream server connection.
//
// The Session is the orchestrator of the relay. It knows MCP, not bytes: transports hand it
// parsed messages and give it a ClientSink to answer through. It
//   - remaps ids on both sides (client ids → gateway ids upstream, server ids → gateway ids
//     downstream), so no two clients or servers can ever collide;
//   - sends every tools/call through the ToolCallGuard; nothing undecided is forwarded;
//   - filters tools/list results (hidden tools) and the capabilities exchanged at initialize;
//   - relates server messages (progress, server→client requests) to the client request they
//     belong to, so HTTP transports can put them on the right stream;
//   - turns upstream failures into JSON-RPC errors for every request in flight, and re-runs the
//     client's initialize handshake when the upstream reconnects.
//
// Thread: single-threaded; all calls and upstream events on one io_context.
// Ownership: owns its Upstream; `sink` and `guard` must outlive the Session.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "gateway/tool_call_guard.h"
#include "gateway/upstream.h"
#include "jsonrpc/message.h"

namespace tw::gateway {

class ClientSink {
 public:
  virtual ~ClientSink() = default;
  // Delivers one message to the client. `related` is the client's id of the request the message
  // belongs to (its response, its progress, a request made while serving it), when known.
  virtual void Deliver(const jsonrpc::Message& msg, const std::optional<json::value>& related) = 0;
  // The client's request `client_id` (a tools/call) is held for a human's approval
  // `approval_id`; its answer comes once that is decided. A sink whose client cannot wait on
  // an open request (transport/stateless_channel.h) answers it otherwise meanwhile.
  virtual void Held(const json::value& client_id, const std::string& approval_id) {
    (void)client_id;
    (void)approval_id;
  }
};

// What a transport drives: one MCP client session, whatever serves it (one upstream server
// relayed by a Session, or several aggregated by an AggregateSession).
class McpSession {
 public:
  virtual ~McpSession() = default;
  // Starts the upstream connection(s).
  virtual void Start() = 0;
  // Handles one valid message from the client.
  virtual void HandleClientMessage(jsonrpc::Message msg) = 0;
  // Closes the upstream(s); pending requests are abandoned without answers.
  virtual void Close() = 0;
  // The protocol version negotiated at initialize, empty before.
  virtual const std::string& protocol_version() const = 0;
  // Number of client requests awaiting an answer.
  virtual size_t pending_requests() const = 0;

  // Keeps `owner` alive as long as the session: what its relay points into (a server's guard,
  // catalog and shared connection), however the gateway changes while the session is open.
  // Released after the session's own members are gone.
  void KeepAlive(std::shared_ptr<const void> owner) { kept_.push_back(std::move(owner)); }

 private:
  std::vector<std::shared_ptr<const void>> kept_;
};

// Makes the relay that serves one client session, given the sink it must answer through.
using SessionMaker = std::function<std::unique_ptr<McpSession>(ClientSink&)>;

// Who a session acts for: its grant ("local" for the stdio wrapper; "idp:…" for an identity
// provider's principal) and the person and groups behind it, as policies see them.
struct Caller {
  Caller(std::string g = "local") : grant(std::move(g)) {}  // NOLINT: a grant alone is a caller
  Caller(const char* g) : grant(g) {}                        // NOLINT
  std::string grant;
  std::string principal;
  std::vector<std::string> groups;  // sorted
  policy::Identity IdentityIn(std::string_view session) const {
    return policy::Identity{grant, session, {}, principal, groups};
  }
};

class Session : public McpSession {
 public:
  // `caller` names the caller for counter scopes and policies.
  Session(std::string id, std::unique_ptr<Upstream> upstream, const ToolCallGuard& guard,
          ClientSink& sink, Caller caller = {});
  ~Session() override;
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  void Start() override;
  void HandleClientMessage(jsonrpc::Message msg) override;
  void Close() override;
  const std::string& protocol_version() const override { return protocol_version_; }
  size_t pending_requests() const override {
    return pending_.size() + parked_.size() + recording_.size() + awaiting_list_.size();
  }

  const std::string& id() const { return id_; }

  // Called when the upstream connection breaks (false, why) and when a fresh connection has
  // been initialized again (true, ""). Optional.
  void SetHealthObserver(std::function<void(bool up, const std::string& why)> observer) {
    health_ = std::move(observer);
  }

  // Methods outside the protocol allow-list that may cross anyway, both as requests and as
  // notifications (extensions a deployment relies on). Empty by default: what is not known to
  // be safe does not cross.
  void SetExtensionMethods(std::set<std::string, std::less<>> methods) {
    extension_methods_ = std::move(methods);
  }

 private:
  struct Pending {
    json::value client_id;  // null for the gateway's own requests (re-initialize)
    std::string method;
    std::optional<json::value> progress_token;
    bool internal = false;
    Admission admission;  // tools/call: the charges to settle when the call ends
    bool first_page = false;  // tools/list without a cursor: a listing starts
  };

  void ForwardRequest(jsonrpc::Message msg, Admission admission = {});
  // True while a request with this client id key is pending in any form.
  bool IdInUse(const std::string& key) const;
  // Answers a request whose id is in use (the caller gave its decision back to the guard).
  void RefuseIdInUse(const json::value& id);
  // A call held for a human's approval.
  struct Parked {
    jsonrpc::Message msg;
    Admission admission;
    std::string approval_id;
    std::optional<json::value> progress_token;
    int64_t expires_ms = 0;
    int progress = 0;
  };
  void Park(jsonrpc::Message msg, GuardOutcome outcome);
  void ReportWaiting(const std::string& key);
  void OnApproval(const std::string& key, const approval::Approval& a);
  // `list_fetched`: the gateway already asked for the tool list for this call.
  void HandleToolCall(jsonrpc::Message msg, bool list_fetched = false);
  // The tool list the gateway asked for itself has arrived (or could not be read): the calls
  // that waited for it are decided now.
  void ToolListFetched();
  // Answers or drops a client message the gateway will not forward because of its numbers.
  void RefuseNumbers(jsonrpc::Message msg);
  bool ClientMayRequest(std::string_view method) const;
  bool ClientMayNotify(std::string_view method) const;
  // Acts on a decision whose audit record is durable: answer a denial, hold for approval, or
  // forward.
  void Decided(jsonrpc::Message msg, GuardOutcome outcome);
  void HandleClientNotification(jsonrpc::Message msg);
  void HandleClientResponse(jsonrpc::Message msg);

  void OnUpstreamMessage(jsonrpc::Message msg, std::optional<json::value> related);
  void OnUpstreamResponse(jsonrpc::Message msg);
  void OnRequestFailed(const json::value& id, const Error& error, bool sent);
  void OnDisconnected(const Error& error);
  void OnReconnected();
  // The gateway's own tools/list (all pages), to refresh tool pins after list_changed.
  void RequestInternalToolsList(json::value cursor);
  void OnInternalToolsList(const jsonrpc::Message& msg, bool first_page);

  // The client request a server message belongs to, when it can be known.
  std::optional<json::value> RelatedClientRequest(const jsonrpc::Message& msg,
                                                  const std::optional<json::value>& related) const;
  void Reply(const json::value& client_id, jsonrpc::Message msg);

  std::string id_;
  const Caller caller_;
  std::unique_ptr<Upstream> upstream_;
  const ToolCallGuard& guard_;
  ClientSink& sink_;

  int64_t next_upstream_id_ = 1;
  int64_t next_downstream_id_ = 1;
  std::unordered_map<int64_t, Pending> pending_;                 // by gateway id upstream
  std::unordered_map<std::string, int64_t> client_to_upstream_;  // client id key → gateway id
  std::unordered_map<int64_t, json::value> server_requests_;     // downstream id → server's id
  // Progress tokens of server requests in flight to this client (token key → downstream id):
  // the only progress a client may report.
  std::unordered_map<std::string, int64_t> server_progress_;
  std::unordered_map<std::string, json::value> progress_owner_;  // token key → client id
  json::value initialize_params_;  // the client's, replayed after a reconnect
  std::string protocol_version_;
  std::unordered_map<std::string, Parked> parked_;  // client id key → call awaiting approval
  struct Recording {
    jsonrpc::Message msg;
    GuardOutcome outcome;
  };
  // Decided calls whose audit record is being committed (group commit), by client id key.
  std::unordered_map<std::string, Recording> recording_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  int internal_pages_ = 0;
  // Calls waiting for the tool list the gateway asked for (ToolCatalog::NeedsList).
  std::vector<jsonrpc::Message> awaiting_list_;
  bool list_requested_ = false;
  std::set<std::string, std::less<>> extension_methods_;
  bool closed_ = false;
  std::function<void(bool, const std::string&)> health_;
};

}  // namespace tw::gateway
