#include "gateway/session.h"

#include <spdlog/spdlog.h>

#include "common/number_literal.h"
#include "mcp/protocol.h"

namespace tw::gateway {

namespace method = mcp::method;
using jsonrpc::Message;

namespace {

// Calls a session may have waiting for the server's first tool list (a client may pipeline
// hundreds right after initialize; the bound is against piling up without end).
constexpr size_t kMaxAwaitingList = 1024;

constexpr const char* kIdInUse = "a pending request already used its id";

// How a server's answer settles a call's charges.
CallOutcome SettleOutcome(const Message& answer) {
  if (answer.kind == jsonrpc::Kind::kError) return CallOutcome::kJsonRpcError;
  const json::object* r = answer.result.if_object();
  if (const json::value* type = r ? r->if_contains("resultType") : nullptr;
      type && type->is_string() && type->as_string() == "input_required") {
    return CallOutcome::kInputRequired;
  }
  const json::value* is_error = r ? r->if_contains("isError") : nullptr;
  return is_error && is_error->is_bool() && is_error->get_bool() ? CallOutcome::kToolError
                                                                 : CallOutcome::kSucceeded;
}

}  // namespace

Session::Session(std::string id, std::unique_ptr<Upstream> upstream, const ToolCallGuard& guard,
                 ClientSink& sink, Caller caller)
    : id_(std::move(id)),
      caller_(std::move(caller)),
      upstream_(std::move(upstream)),
      guard_(guard),
      sink_(sink) {}

Session::~Session() {
  Close();
  *alive_ = false;
}

void Session::Start() {
  upstream_->Start(Upstream::Events{
      .on_message =
          [this](Message m, std::optional<json::value> related) {
            OnUpstreamMessage(std::move(m), std::move(related));
          },
      .on_request_failed = [this](const json::value& id, const Error& e,
                                  bool sent) { OnRequestFailed(id, e, sent); },
      .on_disconnected = [this](const Error& e) { OnDisconnected(e); },
      .on_reconnected = [this] { OnReconnected(); },
  });
}

void Session::Close() {
  if (closed_) return;
  closed_ = true;
  // Calls whose record is being committed: never forwarded now.
  for (auto& [key, r] : recording_) guard_.Drop(r.outcome, CallOutcome::kCancelled, "the client session closed");
  recording_.clear();
  awaiting_list_.clear();  // not decided yet: nothing to record or refund
  // Calls still waiting for a human: nobody will read the answer.
  for (auto& [key, p] : parked_) {
    if (ApprovalWaiter* w = guard_.approval_waiter()) w->Cancel(p.approval_id);
    guard_.Settle(p.admission, CallOutcome::kCancelled);
  }
  parked_.clear();
  // Calls already sent that will get no answer now: they may have run, so they stay charged,
  // and their records say how they ended instead of staying "pending".
  for (auto& [upstream_id, p] : pending_) {
    if (!p.internal) guard_.Settle(p.admission, CallOutcome::kLost);
  }
  pending_.clear();
  upstream_->Close();
}

void Session::HandleClientMessage(Message msg) {
  if (closed_) return;
  if (spdlog::should_log(spdlog::level::trace)) {
    spdlog::trace("session {} client> {:.500}", id_.substr(0, 8), jsonrpc::Serialize(msg));
  }
  if (msg.numbers && msg.numbers->what == NumberExactness::kNonFinite) {
    RefuseNumbers(std::move(msg));
    return;
  }
  switch (msg.kind) {
    case jsonrpc::Kind::kRequest:
      if (!ClientMayRequest(msg.method)) {
        Reply(msg.id, jsonrpc::MakeError(msg.id, jsonrpc::kMethodNotFound,
                                         "Method not found: " + msg.method));
        return;
      }
      if (msg.method == method::kToolsCall) {
        HandleToolCall(std::move(msg));
        return;
      }
      if (msg.method == method::kInitialize && msg.params.is_object()) {
        json::object& p = msg.params.as_object();
        if (json::value* caps = p.if_contains("capabilities")) {
          *caps = mcp::RelayedCapabilities(*caps, mcp::Side::kClient);
        }
        initialize_params_ = msg.params;
      }
      ForwardRequest(std::move(msg));
      return;
    case jsonrpc::Kind::kNotification:
      if (!ClientMayNotify(msg.method)) {
        const std::string reason =
            msg.method == method::kToolsCall
                ? "a tools/call without an id (a notification) is never forwarded: a call is "
                  "decided and answered only as a request"
            : mcp::IsRequestMethod(msg.method)
                ? msg.method + " is a request method, sent as a notification (without an id)"
                : msg.method + " is not a client notification of MCP " +
                      (protocol_version_.empty() ? std::string(mcp::kLatestVersion)
                                                 : protocol_version_);
        guard_.RecordDropped(msg, caller_.IdentityIn(id_), reason);
        return;
      }
      HandleClientNotification(std::move(msg));
      return;
    case jsonrpc::Kind::kResponse:
    case jsonrpc::Kind::kError:
      HandleClientResponse(std::move(msg));
      return;
  }
}

bool Session::ClientMayRequest(std::string_view m) const {
  return mcp::RequestAllowed(mcp::Direction::kClientToServer, protocol_version_, m) ||
         extension_methods_.contains(m);
}

bool Session::ClientMayNotify(std::string_view m) const {
  if (mcp::NotificationAllowed(mcp::Direction::kClientToServer, protocol_version_, m)) return true;
  return extension_methods_.contains(m) && m != method::kToolsCall;
}

void Session::RefuseNumbers(Message msg) {
  const std::string why = DescribeNumberFinding(*msg.numbers);
  switch (msg.kind) {
    case jsonrpc::Kind::kRequest:
      Reply(msg.id, jsonrpc::MakeError(msg.id, jsonrpc::kInvalidParams, "Invalid params: " + why));
      return;
    case jsonrpc::Kind::kNotification:
      guard_.RecordDropped(msg, caller_.IdentityIn(id_), why);
      return;
    case jsonrpc::Kind::kResponse:
    case jsonrpc::Kind::kError:
      // An answer to the server's request that cannot be forwarded faithfully: an error instead.
      HandleClientResponse(jsonrpc::MakeError(msg.id, jsonrpc::kInvalidParams,
                                              "The client's answer was refused: " + why));
      return;
  }
}

bool Session::IdInUse(const std::string& key) const {
  return client_to_upstream_.contains(key) || parked_.contains(key) || recording_.contains(key);
}

void Session::RefuseIdInUse(const json::value& id) {
  Reply(id, jsonrpc::MakeError(id, jsonrpc::kInvalidRequest,
                               "Invalid Request: id " + jsonrpc::IdToString(id) +
                                   " is already in use by a pending request"));
}

void Session::ForwardRequest(Message msg, Admission admission) {
  const std::string key = jsonrpc::IdKey(msg.id);
  if (IdInUse(key)) {
    guard_.Settle(admission, CallOutcome::kNotSent);  // decided, but the id is taken
    RefuseIdInUse(msg.id);
    return;
  }
  const int64_t upstream_id = next_upstream_id_++;
  std::optional<json::value> token = mcp::ProgressToken(msg.params);
  if (token) token.emplace(jsonrpc::Detached(*token));  // emplace: assigning would copy into the arena
  Pending pending{jsonrpc::Detached(msg.id), msg.method, std::move(token), false,
                  std::move(admission)};
  if (msg.method == method::kToolsList) {
    const json::object* p = msg.params.if_object();
    const json::value* cursor = p ? p->if_contains("cursor") : nullptr;
    pending.first_page = !cursor || cursor->is_null();
  }
  if (pending.progress_token) progress_owner_[jsonrpc::IdKey(*pending.progress_token)] = msg.id;
  client_to_upstream_.emplace(key, upstream_id);
  pending_.emplace(upstream_id, std::move(pending));
  msg.id = upstream_id;
  upstream_->Send(std::move(msg));
}

void Session::HandleToolCall(Message msg, bool list_fetched) {
  auto call = mcp::ParseToolCall(msg.params);
  if (!call) {
    // Fail closed: a call we cannot read is a call we cannot decide.
    Reply(msg.id, jsonrpc::MakeError(msg.id, jsonrpc::kInvalidParams,
                                     "Invalid params: " + call.error().message()));
    return;
  }
  if (msg.numbers) {
    // A number the policy would judge as one value and a server might read as another.
    Reply(msg.id, jsonrpc::MakeError(msg.id, jsonrpc::kInvalidParams,
                                     "Invalid params: " + DescribeNumberFinding(*msg.numbers)));
    return;
  }
  ToolCatalog* catalog = guard_.catalog();
  if (!list_fetched && catalog && catalog->NeedsList() && !catalog->HasList()) {
    // The gateway has not seen this server's tools yet: it asks for them before deciding.
    // Bounded: a client cannot pile up calls while the server takes its time.
    if (awaiting_list_.size() >= kMaxAwaitingList) {
      Reply(msg.id, jsonrpc::MakeError(msg.id, jsonrpc::kConnectionClosed,
                                       "Too many calls waiting for the server's tool list; try "
                                       "again when earlier calls are answered"));
      return;
    }
    awaiting_list_.push_back(std::move(msg));
    if (!list_requested_) {
      list_requested_ = true;
      RequestInternalToolsList(nullptr);
    }
    return;
  }
  GuardOutcome outcome = guard_.Check(*call, caller_.IdentityIn(id_));
  if (outcome.next == GuardOutcome::Next::kAwaitRecord) {
    const std::string key = jsonrpc::IdKey(msg.id);
    if (IdInUse(key)) {
      guard_.Drop(outcome, CallOutcome::kNotSent, kIdInUse);
      RefuseIdInUse(msg.id);
      return;
    }
    // Parked first: AwaitDurable may call back at once when the record is already written.
    auto parked = recording_.emplace(key, Recording{std::move(msg), std::move(outcome)}).first;
    guard_.AwaitDurable(parked->second.outcome, [this, key, alive = alive_] {
      if (!*alive || closed_) return;  // Close() abandoned it
      auto it = recording_.find(key);
      if (it == recording_.end()) return;
      Recording r = std::move(it->second);
      recording_.erase(it);
      guard_.Finish(r.outcome);
      Decided(std::move(r.msg), std::move(r.outcome));
    });
    return;
  }
  Decided(std::move(msg), std::move(outcome));
}

void Session::Decided(Message msg, GuardOutcome outcome) {
  switch (outcome.next) {
    case GuardOutcome::Next::kAnswer:
      Reply(msg.id, jsonrpc::MakeResponse(msg.id, mcp::DenialResult({std::string(outcome.decision.rule),
                                                                     outcome.decision.reason,
                                                                     outcome.decision.retry_after_s})));
      return;
    case GuardOutcome::Next::kAwaitApproval:
      Park(std::move(msg), std::move(outcome));
      return;
    case GuardOutcome::Next::kForward:
      ForwardRequest(std::move(msg), std::move(outcome.admission));
      return;
    case GuardOutcome::Next::kAwaitRecord:
      break;  // Finish moved it on before this
  }
  // Never reached: a call still waiting for its record is neither forwarded nor answered.
  guard_.Drop(outcome, CallOutcome::kNotSent, "the call was not decided");
  Reply(msg.id, jsonrpc::MakeError(msg.id, jsonrpc::kInternalError, "Internal error: undecided call"));
}

void Session::Park(Message msg, GuardOutcome outcome) {
  const std::string key = jsonrpc::IdKey(msg.id);
  if (IdInUse(key)) {
    guard_.Drop(outcome, CallOutcome::kNotSent, kIdInUse);
    RefuseIdInUse(msg.id);
    return;
  }
  const std::string id = outcome.approval_id;
  spdlog::info("session {}: call to {} held for approval {}", id_.substr(0, 8),
               json::serialize(msg.params.at("name")), id);
  Parked p{msg, std::move(outcome.admission), id, mcp::ProgressToken(msg.params),
           outcome.approval_expires_ms, 0};
  const json::value client_id = msg.id;
  parked_.emplace(key, std::move(p));
  ReportWaiting(key);
  sink_.Held(client_id, id);
  guard_.approval_waiter()->Await(
      id, outcome.approval_expires_ms, [this, key] { ReportWaiting(key); },
      [this, key](const approval::Approval& a) { OnApproval(key, a); });
}

// Keeps the client informed through progress notifications, when it asked for them.
void Session::ReportWaiting(const std::string& key) {
  auto it = parked_.find(key);
  if (it == parked_.end() || !it->second.progress_token) return;
  Parked& p = it->second;
  sink_.Deliver(
      jsonrpc::MakeNotification(
          std::string(method::kProgress),
          json::object{{"progressToken", *p.progress_token},
                       {"progress", p.progress++},
                       {"message", "Waiting for approval " + p.approval_id +
                                       " (toolwarden approvals approve " + p.approval_id + ")"}}),
      p.msg.id);
}

void Session::OnApproval(const std::string& key, const approval::Approval& a) {
  auto it = parked_.find(key);
  if (it == parked_.end()) return;
  Parked p = std::move(it->second);
  parked_.erase(it);
  if (a.state == approval::State::kApproved) {
    spdlog::info("session {}: approval {} granted by {}", id_.substr(0, 8), a.id, a.resolved_by);
    ForwardRequest(std::move(p.msg), std::move(p.admission));
    return;
  }
  std::string reason;
  CallOutcome outcome = CallOutcome::kApprovalDenied;
  if (a.state == approval::State::kDenied) {
    reason = "A human denied this call (approval " + a.id +
             (a.resolved_by.empty() ? "" : ", by " + a.resolved_by) + ")" +
             (a.reason.empty() ? "" : ": " + a.reason);
  } else if (a.state == approval::State::kExpired) {
    outcome = CallOutcome::kApprovalExpired;
    reason = "Nobody approved this call in time (approval " + a.id + " expired)";
  } else {
    outcome = CallOutcome::kCancelled;
    reason = "The approval for this call is no longer pending (" +
             std::string(approval::StateName(a.state)) + ")";
  }
  guard_.Settle(p.admission, outcome);
  Reply(p.msg.id, jsonrpc::MakeResponse(p.msg.id, mcp::DenialResult({"approval", reason, std::nullopt})));
}

void Session::ToolListFetched() {
  list_requested_ = false;
  internal_pages_ = 0;
  auto waiting = std::move(awaiting_list_);
  awaiting_list_.clear();
  for (Message& m : waiting) {
    if (closed_) return;
    HandleToolCall(std::move(m), true);
  }
}

void Session::HandleClientNotification(Message msg) {
  if (msg.method == method::kProgress) {
    // Progress a client reports belongs to a request the server made of this client.
    const json::object* p = msg.params.if_object();
    const json::value* token = p ? p->if_contains("progressToken") : nullptr;
    if (!token || !server_progress_.contains(jsonrpc::IdKey(*token))) {
      spdlog::debug("session {}: dropping progress for a token the server never gave it",
                    id_.substr(0, 8));
      return;
    }
  }
  if (msg.method == method::kCancelled) {
    const json::value* request_id =
        msg.params.is_object() ? msg.params.as_object().if_contains("requestId") : nullptr;
    if (!request_id) return;
    if (auto parked = parked_.find(jsonrpc::IdKey(*request_id)); parked != parked_.end()) {
      // The client gave up waiting for a human: withdraw the approval request.
      if (ApprovalWaiter* w = guard_.approval_waiter()) w->Cancel(parked->second.approval_id);
      guard_.Settle(parked->second.admission, CallOutcome::kCancelled);
      parked_.erase(parked);
      return;
    }
    auto it = client_to_upstream_.find(jsonrpc::IdKey(*request_id));
    if (it == client_to_upstream_.end()) {
      // Already answered, never forwarded (denied), or unknown: nothing to cancel upstream.
      spdlog::debug("session {}: cancel for unknown request {}", id_.substr(0, 8),
                    jsonrpc::IdToString(*request_id));
      return;
    }
    msg.params.as_object()["requestId"] = it->second;
  }
  upstream_->Send(std::move(msg));
}

void Session::HandleClientResponse(Message msg) {
  auto it = msg.id.is_int64() ? server_requests_.find(msg.id.as_int64()) : server_requests_.end();
  if (it == server_requests_.end()) {
    spdlog::warn("session {}: dropping response to unknown server request {}", id_.substr(0, 8),
                 jsonrpc::IdToString(msg.id));
    return;
  }
  const int64_t downstream_id = it->first;
  msg.id = std::move(it->second);
  server_requests_.erase(it);
  std::erase_if(server_progress_, [&](const auto& kv) { return kv.second == downstream_id; });
  upstream_->Send(std::move(msg));
}

void Session::OnUpstreamMessage(Message msg, std::optional<json::value> related) {
  if (closed_) return;
  if (spdlog::should_log(spdlog::level::trace)) {
    spdlog::trace("session {} server> {:.500}{}", id_.substr(0, 8), jsonrpc::Serialize(msg),
                  related ? " (on the stream of " + jsonrpc::IdToString(*related) + ")" : "");
  }
  if (msg.numbers && msg.numbers->what == NumberExactness::kNonFinite) {
    // Not JSON once re-serialized (Infinity): the client gets an error or nothing.
    const std::string why = DescribeNumberFinding(*msg.numbers);
    spdlog::warn("session {}: the server sent {}: {}", id_.substr(0, 8),
                 msg.IsResponse() ? "an answer" : msg.method, why);
    if (msg.IsRequest()) {
      upstream_->Send(jsonrpc::MakeError(msg.id, jsonrpc::kInvalidParams, "Invalid params: " + why));
      return;
    }
    if (!msg.IsResponse()) return;
    msg = jsonrpc::MakeError(msg.id, jsonrpc::kInternalError,
                             "The server's answer was refused: " + why);
  }
  if (msg.IsResponse()) {
    OnUpstreamResponse(std::move(msg));
    return;
  }
  if (msg.IsRequest()) {
    if (!mcp::RequestAllowed(mcp::Direction::kServerToClient, protocol_version_, msg.method) &&
        !extension_methods_.contains(msg.method)) {
      spdlog::warn("session {}: refused the server's {} request (not a server request of MCP {})",
                   id_.substr(0, 8), msg.method, protocol_version_);
      upstream_->Send(
          jsonrpc::MakeError(msg.id, jsonrpc::kMethodNotFound, "Method not found: " + msg.method));
      return;
    }
    std::optional<json::value> owner = RelatedClientRequest(msg, related);
    const int64_t downstream_id = next_downstream_id_++;
    server_requests_.emplace(downstream_id, std::move(msg.id));
    if (std::optional<json::value> token = mcp::ProgressToken(msg.params)) {
      server_progress_[jsonrpc::IdKey(*token)] = downstream_id;
    }
    msg.id = downstream_id;
    sink_.Deliver(msg, owner);
    return;
  }
  if (!mcp::NotificationAllowed(mcp::Direction::kServerToClient, protocol_version_, msg.method) &&
      !extension_methods_.contains(msg.method)) {
    spdlog::debug("session {}: dropped the server's {} (not a server notification of MCP {})",
                  id_.substr(0, 8), msg.method, protocol_version_);
    return;
  }
  if (msg.method == method::kCancelled && msg.params.is_object()) {
    // The server withdraws one of its own requests to the client: translate its id.
    json::object& p = msg.params.as_object();
    const json::value* request_id = p.if_contains("requestId");
    if (!request_id) return;
    bool found = false;
    for (auto it = server_requests_.begin(); it != server_requests_.end(); ++it) {
      if (it->second == *request_id) {
        const int64_t downstream_id = it->first;
        p["requestId"] = downstream_id;
        server_requests_.erase(it);
        std::erase_if(server_progress_,
                      [&](const auto& kv) { return kv.second == downstream_id; });
        found = true;
        break;
      }
    }
    if (!found) return;
  }
  if (msg.method == method::kToolsListChanged && guard_.pins()) {
    // Re-read the list now, so a changed tool is caught even if the client never asks.
    RequestInternalToolsList(nullptr);
  }
  std::optional<json::value> owner = RelatedClientRequest(msg, related);
  sink_.Deliver(msg, owner);
}

void Session::RequestInternalToolsList(json::value cursor) {
  const int64_t upstream_id = next_upstream_id_++;
  pending_.emplace(upstream_id, Pending{nullptr, std::string(method::kToolsList), {}, true, {},
                                        cursor.is_null()});
  json::object params;
  if (!cursor.is_null()) params["cursor"] = std::move(cursor);
  upstream_->Send(jsonrpc::MakeRequest(upstream_id, std::string(method::kToolsList),
                                       std::move(params)));
}

void Session::OnInternalToolsList(const Message& msg, bool first_page) {
  if (msg.kind != jsonrpc::Kind::kResponse) {
    if (list_requested_) ToolListFetched();  // the calls waiting for it are decided without
    return;
  }
  if (ToolPins* pins = guard_.pins()) pins->Observe(msg.result);
  if (ToolCatalog* catalog = guard_.catalog()) catalog->Observe(msg.result, first_page);
  const json::object* r = msg.result.if_object();
  const json::value* next = r ? r->if_contains("nextCursor") : nullptr;
  if (next && next->is_string() && !next->get_string().empty() && ++internal_pages_ < 1000) {
    RequestInternalToolsList(*next);
  } else {
    internal_pages_ = 0;
    if (list_requested_) ToolListFetched();
  }
}

void Session::OnUpstreamResponse(Message msg) {
  auto it = msg.id.is_int64() ? pending_.find(msg.id.as_int64()) : pending_.end();
  if (it == pending_.end()) {
    spdlog::warn("session {}: dropping server response with unknown id {}", id_.substr(0, 8),
                 jsonrpc::IdToString(msg.id));
    return;
  }
  Pending pending = std::move(it->second);
  pending_.erase(it);
  if (pending.progress_token) progress_owner_.erase(jsonrpc::IdKey(*pending.progress_token));
  if (pending.internal && pending.method == method::kToolsList) {
    OnInternalToolsList(msg, pending.first_page);
    return;
  }
  if (pending.internal) {
    if (msg.kind == jsonrpc::Kind::kResponse) {
      upstream_->Send(jsonrpc::MakeNotification(std::string(method::kInitialized), nullptr));
      spdlog::info("session {}: re-initialized the restarted server", id_.substr(0, 8));
      if (health_) health_(true, "");
    } else {
      spdlog::error("session {}: the restarted server refused initialize: {}", id_.substr(0, 8),
                    json::serialize(msg.error));
    }
    return;
  }
  client_to_upstream_.erase(jsonrpc::IdKey(pending.client_id));
  guard_.Settle(pending.admission, SettleOutcome(msg));

  if (msg.kind == jsonrpc::Kind::kResponse && msg.result.is_object()) {
    if (pending.method == method::kInitialize) {
      json::object& r = msg.result.as_object();
      const json::value* version = r.if_contains("protocolVersion");
      if (!version || !version->is_string() || !mcp::IsSupportedVersion(version->as_string())) {
        Reply(pending.client_id,
              jsonrpc::MakeError(pending.client_id, jsonrpc::kInternalError,
                                 "The upstream server answered initialize with protocol version " +
                                     (version ? json::serialize(*version) : "(none)") +
                                     ", which toolwarden does not support"));
        return;
      }
      protocol_version_ = std::string(version->as_string());
      if (json::value* caps = r.if_contains("capabilities")) {
        *caps = mcp::RelayedCapabilities(*caps, mcp::Side::kServer);
      }
    } else if (pending.method == method::kToolsList) {
      if (ToolPins* pins = guard_.pins()) pins->Observe(msg.result);
      if (ToolCatalog* catalog = guard_.catalog()) catalog->Observe(msg.result, pending.first_page);
      auto snapshot = guard_.Snapshot();
      mcp::FilterToolsList(msg.result,
                           [&](std::string_view name) { return snapshot->IsHidden(name); });
    }
  }
  Reply(pending.client_id, std::move(msg));
}

void Session::OnRequestFailed(const json::value& id, const Error& error, bool sent) {
  auto it = id.is_int64() ? pending_.find(id.as_int64()) : pending_.end();
  if (it == pending_.end()) return;
  Pending pending = std::move(it->second);
  pending_.erase(it);
  if (pending.progress_token) progress_owner_.erase(jsonrpc::IdKey(*pending.progress_token));
  if (pending.internal) {
    if (pending.method == method::kToolsList) {
      spdlog::error("session {}: the server's tool list could not be read: {}", id_.substr(0, 8),
                    error.message());
      if (list_requested_) ToolListFetched();
      return;
    }
    spdlog::error("session {}: re-initialize failed: {}", id_.substr(0, 8), error.message());
    return;
  }
  client_to_upstream_.erase(jsonrpc::IdKey(pending.client_id));
  guard_.Settle(pending.admission, sent ? CallOutcome::kLost : CallOutcome::kNotSent);
  Reply(pending.client_id, jsonrpc::MakeError(pending.client_id, jsonrpc::kConnectionClosed,
                                              "Upstream server error: " + error.message()));
}

void Session::OnDisconnected(const Error& error) {
  if (closed_) return;
  spdlog::warn("session {}: upstream disconnected: {} ({} requests in flight)", id_.substr(0, 8),
               error.message(), pending_.size());
  auto pending = std::move(pending_);
  pending_.clear();
  client_to_upstream_.clear();
  progress_owner_.clear();
  for (auto& [upstream_id, p] : pending) {
    if (p.internal) continue;
    guard_.Settle(p.admission, CallOutcome::kLost);  // it was sent: it may have run
    Reply(p.client_id, jsonrpc::MakeError(p.client_id, jsonrpc::kConnectionClosed,
                                          "Upstream server connection lost: " + error.message()));
  }
  // The server's own requests to the client can no longer be answered: withdraw them.
  for (auto& [downstream_id, server_id] : server_requests_) {
    sink_.Deliver(
        jsonrpc::MakeNotification(std::string(method::kCancelled),
                                  json::object{{"requestId", downstream_id},
                                               {"reason", "upstream server connection lost"}}),
        std::nullopt);
  }
  server_requests_.clear();
  server_progress_.clear();
  if (health_) health_(false, error.message());
  // Calls that waited for the tool list: decided now (without a list they are refused).
  if (list_requested_) ToolListFetched();
}

void Session::OnReconnected() {
  if (closed_ || initialize_params_.is_null()) return;
  const int64_t upstream_id = next_upstream_id_++;
  pending_.emplace(upstream_id, Pending{nullptr, std::string(method::kInitialize), {}, true, {}});
  upstream_->Send(
      jsonrpc::MakeRequest(upstream_id, std::string(method::kInitialize), initialize_params_));
}

std::optional<json::value> Session::RelatedClientRequest(
    const Message& msg, const std::optional<json::value>& related) const {
  if (related && related->is_int64()) {
    auto it = pending_.find(related->as_int64());
    if (it != pending_.end() && !it->second.internal) return it->second.client_id;
  }
  if (msg.method == method::kProgress && msg.params.is_object()) {
    if (const json::value* token = msg.params.as_object().if_contains("progressToken")) {
      auto it = progress_owner_.find(jsonrpc::IdKey(*token));
      if (it != progress_owner_.end()) return it->second;
    }
  }
  // Transports that cannot tell (stdio) : while exactly one client request is in flight, a
  // server message almost certainly serves it.
  const Pending* only = nullptr;
  for (const auto& [upstream_id, p] : pending_) {
    if (p.internal) continue;
    if (only) return std::nullopt;
    only = &p;
  }
  if (only) return only->client_id;
  return std::nullopt;
}

void Session::Reply(const json::value& client_id, Message msg) {
  msg.id = client_id;
  sink_.Deliver(msg, client_id);
}

}  // namespace tw::gateway
