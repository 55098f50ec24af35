#include "transport/stateless_channel.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "common/random.h"
#include "mcp/protocol.h"

namespace tw::transport {

namespace modern = mcp::modern;

namespace {

constexpr std::string_view kInitId = "tw-init";
// The requestState the channel mints starts with this; any other is the server's own, for the
// server to check (a 2026-07-28 server's rounds cross the gateway as they are).
constexpr std::string_view kStatePrefix = "toolwarden:";

// The HTTP status a modern answer travels with when it is the whole response: an unknown
// method is 404 and the request errors of the 2026-07-28 transport are 400 (spec, Streamable
// HTTP); everything else, tool errors and policy denials included, is a 200.
int StatusOf(const jsonrpc::Message& msg) {
  if (msg.kind != jsonrpc::Kind::kError) return 200;
  const json::value* code = msg.error.if_contains("code");
  if (!code || !code->is_int64()) return 200;
  switch (code->as_int64()) {
    case jsonrpc::kMethodNotFound:
      return 404;
    case modern::kHeaderMismatch:
    case modern::kMissingRequiredClientCapability:
    case modern::kUnsupportedProtocolVersion:
      return 400;
    default:
      return 200;
  }
}

}  // namespace

StatelessChannel::StatelessChannel(std::string id, const HttpMcpSession::RelayMaker& make_relay,
                                   std::string grant, std::string route)
    : id_(std::move(id)),
      grant_(std::move(grant)),
      route_(std::move(route)),
      relay_(make_relay(*this)) {}

StatelessChannel::~StatelessChannel() { Close(); }

void StatelessChannel::Start() {
  relay_->Start();
  // The questions a 2025-era server may ask, which the channel turns into input_required
  // results for the clients that declare the capability (each request says so itself).
  json::object params{{"protocolVersion", mcp::kLatestVersion},
                      {"capabilities", json::object{{"elicitation", json::object()},
                                                    {"sampling", json::object()},
                                                    {"roots", json::object()}}},
                      {"clientInfo", json::object{{"name", "toolwarden-stateless"},
                                                  {"version", "2026-07-28"}}}};
  relay_->HandleClientMessage(jsonrpc::MakeRequest(json::value(kInitId),
                                                   std::string(mcp::method::kInitialize),
                                                   json::value(std::move(params))));
}

void StatelessChannel::Submit(jsonrpc::Message msg, const modern::RequestMeta& meta,
                              std::shared_ptr<StreamWriter> writer) {
  last_active_ = std::chrono::steady_clock::now();
  if (closed_) {
    Answer(writer, jsonrpc::MakeError(msg.id, jsonrpc::kConnectionClosed, "The gateway is closing"));
    return;
  }
  if (Resume(msg, writer)) return;
  if (!ready_) {
    if (waiting_.size() >= kMaxWaiting) {
      Answer(writer, jsonrpc::MakeError(msg.id, jsonrpc::kConnectionClosed,
                                        "The server is still starting; try again shortly"));
      return;
    }
    waiting_.push_back({Waiting::Kind::kSubmit, std::move(msg), meta, std::move(writer)});
    return;
  }
  Forward(std::move(msg), meta, std::move(writer));
}

void StatelessChannel::Discover(const json::value& id, std::shared_ptr<StreamWriter> writer) {
  last_active_ = std::chrono::steady_clock::now();
  if (!ready_ && !closed_) {
    waiting_.push_back({Waiting::Kind::kDiscover, jsonrpc::MakeRequest(id, "", nullptr), {},
                        std::move(writer)});
    return;
  }
  Answer(writer, jsonrpc::MakeResponse(id, modern::DiscoverResult(init_result_)));
}

void StatelessChannel::Listen(const json::value& id, const modern::ListenFilter& filter,
                              std::shared_ptr<StreamWriter> writer) {
  last_active_ = std::chrono::steady_clock::now();
  json::object granted;
  if (filter.tools) granted["toolsListChanged"] = true;
  if (filter.prompts) granted["promptsListChanged"] = true;
  if (filter.resources) granted["resourcesListChanged"] = true;
  json::object params{{"_meta", json::object{{modern::kMetaSubscriptionId, id}}},
                      {"notifications", std::move(granted)}};
  writer->Push({0, "", "", jsonrpc::Serialize(jsonrpc::MakeNotification(
                               std::string(modern::kAcknowledged), json::value(std::move(params)))),
                false});
  listeners_.push_back({id, filter, std::move(writer)});
}

void StatelessChannel::Cancelled(const std::shared_ptr<StreamWriter>& writer) {
  std::erase_if(listeners_, [&](const Listener& l) { return l.writer == writer; });
  std::erase_if(waiting_, [&](const Waiting& w) { return w.writer == writer; });
  for (auto it = pending_.begin(); it != pending_.end(); ++it) {
    if (it->second.writer != writer) continue;
    const std::string key = it->first;
    pending_.erase(it);
    // Closing the response stream is the 2026-07-28 transport's cancellation.
    relay_->HandleClientMessage(jsonrpc::MakeNotification(
        std::string(mcp::method::kCancelled),
        json::object{{"requestId", key}, {"reason", "the client closed the response stream"}}));
    return;
  }
}

void StatelessChannel::Close() {
  if (closed_) return;
  closed_ = true;
  for (auto& w : waiting_) w.writer->Finish();
  for (auto& [key, p] : pending_) {
    if (p.writer) p.writer->Finish();  // a suspended call has none
  }
  for (auto& l : listeners_) {
    // A graceful end of the subscription: its answer, then the end of the stream.
    json::value result = json::object{
        {"resultType", "complete"}, {"_meta", json::object{{modern::kMetaSubscriptionId, l.id}}}};
    l.writer->Push({0, "", "", jsonrpc::Serialize(jsonrpc::MakeResponse(l.id, result)), true});
    l.writer->Finish();
  }
  waiting_.clear();
  pending_.clear();
  listeners_.clear();
  suspended_.clear();
  if (relay_) relay_->Close();
}

void StatelessChannel::Forward(jsonrpc::Message msg, const modern::RequestMeta& meta,
                               std::shared_ptr<StreamWriter> writer) {
  const std::string key = "tw-" + std::to_string(next_id_++);
  Pending p{msg.id, msg.method, std::move(writer), std::nullopt, std::nullopt,
            meta.client_capabilities, msg.params, {}, std::chrono::steady_clock::now(),
            std::nullopt, {}};
  if (meta.log_level) {
    if (const int severity = mcp::LogSeverity(*meta.log_level); severity >= 0) p.log_severity = severity;
  }
  // The client's progress token becomes the channel id: tokens of different clients of the
  // channel may be equal, ids are not.
  if (json::object* params = msg.params.if_object()) {
    if (json::value* m = params->if_contains("_meta"); m && m->is_object()) {
      if (json::value* token = m->as_object().if_contains("progressToken")) {
        p.progress_token = *token;
        *token = key;
      }
    }
  }
  msg.id = json::value(key);
  pending_.emplace(key, std::move(p));
  relay_->HandleClientMessage(std::move(msg));
}

void StatelessChannel::Answer(const std::shared_ptr<StreamWriter>& writer, jsonrpc::Message msg) {
  StreamWriter::Item item{0, "", "", jsonrpc::Serialize(msg), true};
  item.http_status = StatusOf(msg);
  writer->Push(std::move(item));
  writer->Finish();
}

void StatelessChannel::Initialized(const jsonrpc::Message& answer) {
  std::deque<Waiting> waiting;
  waiting.swap(waiting_);
  if (answer.kind != jsonrpc::Kind::kResponse) {
    failed_ = true;
    spdlog::warn("stateless channel for {}: the server refused initialize: {}", grant_,
                 json::serialize(answer.error));
    for (auto& w : waiting) {
      Answer(w.writer, jsonrpc::MakeError(w.msg.id, jsonrpc::kInternalError,
                                          "The server behind the gateway is not available"));
    }
    return;
  }
  init_result_ = answer.result;
  if (const json::object* r = init_result_.if_object()) {
    if (const json::value* info = r->if_contains("serverInfo"); info && info->is_object()) {
      server_info_ = *info;
    }
  }
  ready_ = true;
  relay_->HandleClientMessage(
      jsonrpc::MakeNotification(std::string(mcp::method::kInitialized), nullptr));
  for (auto& w : waiting) {
    if (w.kind == Waiting::Kind::kDiscover) {
      Discover(w.msg.id, std::move(w.writer));
    } else {
      Forward(std::move(w.msg), w.meta, std::move(w.writer));
    }
  }
}

void StatelessChannel::Deliver(const jsonrpc::Message& msg,
                               const std::optional<json::value>& related) {
  if (closed_) return;
  if (msg.IsResponse()) {
    if (msg.id.is_string() && msg.id.as_string() == kInitId) {
      Initialized(msg);
      return;
    }
    if (!msg.id.is_string()) return;
    auto it = pending_.find(std::string(msg.id.as_string()));
    if (it == pending_.end()) return;  // cancelled meanwhile
    if (!it->second.writer) {
      // No client waits (the call is suspended): kept for the retry.
      it->second.answer = msg;
      it->second.answered_at = std::chrono::steady_clock::now();
      return;
    }
    Pending p = std::move(it->second);
    pending_.erase(it);
    jsonrpc::Message out = msg;
    out.id = p.client_id;
    if (out.kind == jsonrpc::Kind::kResponse) {
      modern::DecorateResult(out.result, p.method, server_info_);
    }
    Answer(p.writer, std::move(out));
    return;
  }
  if (msg.IsRequest()) {
    if (msg.method != mcp::method::kPing && related && related->is_string()) {
      if (auto it = pending_.find(std::string(related->as_string()));
          it != pending_.end() && it->second.writer) {
        AskClient(it->first, msg);
        return;
      }
    }
    AnswerServerRequest(msg);
    return;
  }
  // A notification: a list change for the listeners, or something of one request.
  if (msg.method == mcp::method::kToolsListChanged ||
      msg.method == mcp::method::kPromptsListChanged ||
      msg.method == mcp::method::kResourcesListChanged) {
    Broadcast(msg);
    return;
  }
  if (!related || !related->is_string()) return;
  auto it = pending_.find(std::string(related->as_string()));
  if (it == pending_.end()) return;
  Pending& p = it->second;
  if (!p.writer) return;
  jsonrpc::Message out = msg;
  if (msg.method == mcp::method::kProgress) {
    if (!p.progress_token) return;
    if (json::object* params = out.params.if_object()) (*params)["progressToken"] = *p.progress_token;
  } else if (msg.method == mcp::method::kLoggingMessage) {
    // No log messages for a request that did not ask for them (2026-07-28).
    if (!p.log_severity) return;
    const json::object* params = out.params.if_object();
    const json::value* level = params ? params->if_contains("level") : nullptr;
    const int severity = level && level->is_string() ? mcp::LogSeverity(level->as_string()) : -1;
    if (severity < 0 || severity < *p.log_severity) return;
  } else {
    return;  // nothing else of a request crosses to a stateless client
  }
  p.writer->Push({0, "", "", jsonrpc::Serialize(out), false});
}

void StatelessChannel::Broadcast(const jsonrpc::Message& msg) {
  for (auto& l : listeners_) {
    if (!modern::Wants(l.filter, msg.method)) continue;
    jsonrpc::Message out = msg;
    if (!out.params.is_object()) out.params = json::object();
    json::value& meta = out.params.as_object()["_meta"];
    if (!meta.is_object()) meta = json::object();
    meta.as_object()[modern::kMetaSubscriptionId] = l.id;
    l.writer->Push({0, "", "", jsonrpc::Serialize(out), false});
  }
}

void StatelessChannel::AnswerServerRequest(const jsonrpc::Message& msg) {
  if (msg.method == mcp::method::kPing) {
    relay_->HandleClientMessage(jsonrpc::MakeResponse(msg.id, json::object()));
    return;
  }
  RefuseServerRequest(msg, "it cannot be tied to one request of a 2026-07-28 client");
}

void StatelessChannel::RefuseServerRequest(const jsonrpc::Message& msg, const std::string& why) {
  relay_->HandleClientMessage(
      jsonrpc::MakeError(msg.id, jsonrpc::kMethodNotFound,
                         "Method not found: " + msg.method + " (" + why + ")"));
}

namespace {

// The client capability a server's question needs.
std::string_view CapabilityFor(std::string_view method) {
  if (method == mcp::method::kElicitationCreate) return "elicitation";
  if (method == mcp::method::kCreateMessage) return "sampling";
  if (method == mcp::method::kRootsList) return "roots";
  return {};
}

}  // namespace

json::value StatelessChannel::InputRequired(const Suspended& s, const std::string& state) {
  json::object r{{"resultType", "input_required"}, {"requestState", state}};
  if (!s.input_request.is_null()) {
    r["inputRequests"] = json::object{{s.input_key, s.input_request}};
  }
  return json::value(std::move(r));
}

void StatelessChannel::Held(const json::value& client_id, const std::string& approval_id) {
  if (!client_id.is_string()) return;
  auto it = pending_.find(std::string(client_id.as_string()));
  if (it == pending_.end()) return;
  it->second.approval_id = approval_id;
  // Past kMaxSuspended the call is held on its open request, as for a 2025 client.
  if (it->second.writer && suspended_.size() < kMaxSuspended) SuspendForApproval(it->first);
}

void StatelessChannel::SuspendForApproval(const std::string& key) {
  Pending& p = pending_.at(key);
  Suspended s{key, nullptr, {}, nullptr, std::chrono::steady_clock::now()};
  if (p.client_capabilities.contains("elicitation")) {
    // Tells the user why the call waits; answering it retries the call.
    s.input_key = "toolwarden-approval";
    s.input_request = json::object{
        {"method", mcp::method::kElicitationCreate},
        {"params",
         json::object{{"message", "This call waits for an administrator's approval (toolwarden "
                                  "approval " + p.approval_id + "). Accept to check again, "
                                  "decline to withdraw the call."},
                      {"requestedSchema",
                       json::object{{"type", "object"}, {"properties", json::object()}}}}}};
  }
  Suspend(p, std::move(s));
}

void StatelessChannel::Suspend(Pending& p, Suspended s) {
  const std::string state = std::string(kStatePrefix) + RandomHex(16);
  std::shared_ptr<StreamWriter> writer = std::move(p.writer);
  jsonrpc::Message answer = jsonrpc::MakeResponse(p.client_id, InputRequired(s, state));
  modern::DecorateResult(answer.result, p.method, server_info_);
  suspended_.emplace(state, std::move(s));
  Answer(writer, std::move(answer));
}

void StatelessChannel::AskClient(const std::string& key, const jsonrpc::Message& msg) {
  Pending& p = pending_.at(key);
  const std::string_view capability = CapabilityFor(msg.method);
  if (suspended_.size() >= kMaxSuspended) {
    RefuseServerRequest(msg, "too many calls wait for their clients' input");
    return;
  }
  if (capability.empty() || !p.client_capabilities.contains(capability)) {
    RefuseServerRequest(msg, capability.empty()
                                 ? std::string("not a question a 2026-07-28 client answers")
                                 : "the client did not declare the " + std::string(capability) +
                                       " capability");
    return;
  }
  Suspended s{key, msg.id, std::string(capability) + "-" + std::to_string(next_input_++),
              json::object{{"method", msg.method},
                           {"params", msg.params.is_null() ? json::value(json::object())
                                                           : msg.params}},
              std::chrono::steady_clock::now()};
  Suspend(p, std::move(s));
}

void StatelessChannel::AnswerKept(std::unordered_map<std::string, Pending>::iterator p,
                                  const json::value& id,
                                  const std::shared_ptr<StreamWriter>& writer) {
  jsonrpc::Message out = std::move(*p->second.answer);
  if (out.kind == jsonrpc::Kind::kResponse) {
    modern::DecorateResult(out.result, p->second.method, server_info_);
  }
  pending_.erase(p);
  out.id = id;
  Answer(writer, std::move(out));
}

bool StatelessChannel::Resume(jsonrpc::Message& msg, std::shared_ptr<StreamWriter>& writer) {
  json::object* params = msg.params.if_object();
  const json::value* state = params ? params->if_contains("requestState") : nullptr;
  if (!state || !state->is_string() || !state->as_string().starts_with(kStatePrefix)) return false;
  auto refuse = [&](const std::string& why) {
    Answer(writer, jsonrpc::MakeError(msg.id, jsonrpc::kInvalidParams, "Invalid params: " + why));
    return true;
  };
  auto it = suspended_.find(std::string(state->as_string()));
  if (it == suspended_.end()) return refuse("unknown or expired requestState");
  Suspended& s = it->second;
  auto p = pending_.find(s.key);
  if (p == pending_.end()) {
    suspended_.erase(it);
    return refuse("unknown or expired requestState");
  }
  // The retry must be the call that was decided: same method, tool or prompt, arguments.
  const json::object* original = p->second.params.if_object();
  auto same = [&](std::string_view field) {
    const json::value* a = original ? original->if_contains(field) : nullptr;
    const json::value* b = params->if_contains(field);
    return (a == nullptr) == (b == nullptr) && (!a || *a == *b);
  };
  if (msg.method != p->second.method || !same("name") || !same("uri") || !same("arguments")) {
    return refuse("requestState belongs to another request");
  }
  const json::value* responses = params->if_contains("inputResponses");
  const json::value* response =
      responses && responses->is_object() ? responses->as_object().if_contains(s.input_key)
                                          : nullptr;
  if (s.server_request.is_null()) {
    // A call held for approval. A user who declined the notice withdraws it.
    const json::value* action = response && response->is_object()
                                    ? response->as_object().if_contains("action")
                                    : nullptr;
    const std::string key = s.key;
    suspended_.erase(it);
    if (action && action->is_string() && action->as_string() != "accept") {
      pending_.erase(p);
      relay_->HandleClientMessage(jsonrpc::MakeNotification(
          std::string(mcp::method::kCancelled),
          json::object{{"requestId", key}, {"reason", "the user withdrew the call"}}));
      Answer(writer, jsonrpc::MakeError(msg.id, jsonrpc::kRequestTimeout,
                                        "The call was withdrawn while it waited for approval"));
      return true;
    }
    Pending& held = p->second;
    if (held.answer) {
      AnswerKept(p, msg.id, writer);
      return true;
    }
    held.client_id = msg.id;
    held.writer = std::move(writer);
    held.waiting_since = std::chrono::steady_clock::now();
    return true;
  }
  if (!response) {
    // Asked again: the same question, the same state.
    jsonrpc::Message answer = jsonrpc::MakeResponse(msg.id, InputRequired(s, it->first));
    modern::DecorateResult(answer.result, msg.method, server_info_);
    Answer(writer, std::move(answer));
    return true;
  }
  if (!response->is_object()) return refuse("inputResponses." + s.input_key + " must be an object");
  if (p->second.answer) {
    // The server ended the call meanwhile: that is the answer.
    suspended_.erase(it);
    AnswerKept(p, msg.id, writer);
    return true;
  }
  p->second.client_id = msg.id;
  p->second.writer = std::move(writer);
  const json::value server_request = s.server_request;
  json::value result = *response;
  suspended_.erase(it);
  relay_->HandleClientMessage(jsonrpc::MakeResponse(server_request, std::move(result)));
  return true;
}

void StatelessChannel::Sweep(std::chrono::steady_clock::time_point now) {
  // Retries that have waited long enough on an approval get another InputRequiredResult.
  std::vector<std::string> poll;
  for (auto& [key, p] : pending_) {
    if (!p.approval_id.empty() && p.writer && now - p.waiting_since >= kApprovalPoll) {
      poll.push_back(key);
    }
  }
  for (const std::string& key : poll) {
    if (suspended_.size() < kMaxSuspended) SuspendForApproval(key);
  }
  for (auto it = suspended_.begin(); it != suspended_.end();) {
    if (it->second.server_request.is_null()) {
      // A held call: it ends with its approval (an expiry included); an outcome nobody came
      // back for is dropped after kInputTimeout.
      auto p = pending_.find(it->second.key);
      if (p == pending_.end()) {
        it = suspended_.erase(it);
      } else if (p->second.answer && now - p->second.answered_at >= kInputTimeout) {
        pending_.erase(p);
        it = suspended_.erase(it);
      } else {
        ++it;
      }
      continue;
    }
    if (now - it->second.since < kInputTimeout) {
      ++it;
      continue;
    }
    const std::string key = it->second.key;
    relay_->HandleClientMessage(jsonrpc::MakeError(it->second.server_request,
                                                   jsonrpc::kRequestTimeout,
                                                   "The client did not answer in time"));
    it = suspended_.erase(it);
    pending_.erase(key);
    relay_->HandleClientMessage(jsonrpc::MakeNotification(
        std::string(mcp::method::kCancelled),
        json::object{{"requestId", key}, {"reason", "the client did not give the input asked"}}));
  }
}

}  // namespace tw::transport
