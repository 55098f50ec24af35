#include "transport/stateless_channel.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "mcp/protocol.h"

namespace tw::transport {

namespace modern = mcp::modern;

namespace {

constexpr std::string_view kInitId = "tw-init";

// RFC 5424 severities as MCP names them, least severe first.
std::optional<int> Severity(std::string_view level) {
  static constexpr std::string_view kLevels[] = {"debug",    "info",  "notice", "warning",
                                                 "error",    "critical", "alert", "emergency"};
  for (size_t i = 0; i < std::size(kLevels); ++i) {
    if (kLevels[i] == level) return static_cast<int>(i);
  }
  return std::nullopt;
}

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
  json::object params{{"protocolVersion", mcp::kLatestVersion},
                      {"capabilities", json::object()},
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
  for (auto& [key, p] : pending_) p.writer->Finish();
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
  if (relay_) relay_->Close();
}

void StatelessChannel::Forward(jsonrpc::Message msg, const modern::RequestMeta& meta,
                               std::shared_ptr<StreamWriter> writer) {
  const std::string key = "tw-" + std::to_string(next_id_++);
  Pending p{msg.id, msg.method, std::move(writer), std::nullopt, std::nullopt};
  if (meta.log_level) p.log_severity = Severity(*meta.log_level);
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
  jsonrpc::Message out = msg;
  if (msg.method == mcp::method::kProgress) {
    if (!p.progress_token) return;
    if (json::object* params = out.params.if_object()) (*params)["progressToken"] = *p.progress_token;
  } else if (msg.method == mcp::method::kLoggingMessage) {
    // No log messages for a request that did not ask for them (2026-07-28).
    if (!p.log_severity) return;
    const json::object* params = out.params.if_object();
    const json::value* level = params ? params->if_contains("level") : nullptr;
    const std::optional<int> severity =
        level && level->is_string() ? Severity(level->as_string()) : std::nullopt;
    if (!severity || *severity < *p.log_severity) return;
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
  // The channel declared no client capabilities; a server that asks anyway is told no.
  relay_->HandleClientMessage(jsonrpc::MakeError(
      msg.id, jsonrpc::kMethodNotFound,
      "Method not found: " + msg.method + " (the client is a stateless 2026-07-28 client)"));
}

}  // namespace tw::transport
