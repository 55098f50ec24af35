#include "gateway/era_upstream.h"

#include <spdlog/spdlog.h>

#include "mcp/modern.h"
#include "mcp/protocol.h"

namespace tw::gateway {

namespace modern = mcp::modern;
namespace method = mcp::method;

EraUpstream::EraUpstream(std::unique_ptr<Upstream> inner, Mode mode)
    : inner_(std::move(inner)), mode_(mode) {
  if (mode_ == Mode::kLegacy) era_ = Era::kLegacy;
}

EraUpstream::~EraUpstream() {
  *alive_ = false;
  Close();
}

void EraUpstream::Start(Events events) {
  events_ = std::move(events);
  Events inner;
  std::weak_ptr<bool> alive = alive_;
  inner.on_message = [this, alive](jsonrpc::Message msg, std::optional<json::value> related) {
    if (!alive.expired()) OnMessage(std::move(msg), std::move(related));
  };
  inner.on_request_failed = [this, alive](const json::value& id, const Error& error, bool sent) {
    if (!alive.expired()) OnRequestFailed(id, error, sent);
  };
  inner.on_disconnected = [this, alive](const Error& error) {
    if (alive.expired()) return;
    // A restarted server may be of another era: the relay's next initialize probes again.
    if (mode_ != Mode::kLegacy) era_ = Era::kUnknown;
    listen_id_.clear();
    calls_.clear();
    asks_.clear();
    listing_.clear();
    if (events_.on_disconnected) events_.on_disconnected(error);
  };
  inner.on_reconnected = [this, alive] {
    if (!alive.expired() && events_.on_reconnected) events_.on_reconnected();
  };
  inner_->Start(std::move(inner));
}

void EraUpstream::Close() {
  if (closed_) return;
  closed_ = true;
  inner_->Close();
}

void EraUpstream::Answer(const json::value& id, json::value result) {
  if (events_.on_message) events_.on_message(jsonrpc::MakeResponse(id, std::move(result)), id);
}

void EraUpstream::Send(jsonrpc::Message msg) {
  if (closed_) return;
  if (msg.IsRequest() && msg.method == method::kInitialize && mode_ != Mode::kLegacy) {
    if (const json::object* p = msg.params.if_object()) {
      if (const json::value* caps = p->if_contains("capabilities"); caps && caps->is_object()) {
        client_capabilities_ = *caps;
      }
      if (const json::value* info = p->if_contains("clientInfo")) client_info_ = *info;
    }
    initialize_ = std::move(msg);
    Probe();
    return;
  }
  switch (era_) {
    case Era::kUnknown:
    case Era::kProbing:
      queued_.push_back(std::move(msg));
      return;
    case Era::kLegacy:
      if (msg.IsRequest()) modern::StripRequestMeta(msg.params);
      inner_->Send(std::move(msg));
      return;
    case Era::kModern:
      SendModern(std::move(msg));
      return;
  }
}

void EraUpstream::Probe() {
  era_ = Era::kProbing;
  probe_id_ = "tw-discover-" + std::to_string(next_id_++);
  json::value params = json::object();
  AddMeta(params);
  inner_->Send(jsonrpc::MakeRequest(json::value(probe_id_), std::string(modern::kDiscover),
                                    std::move(params)));
}

void EraUpstream::AddMeta(json::value& params) const {
  if (!params.is_object()) params = json::object();
  json::value& meta = params.as_object()["_meta"];
  if (!meta.is_object()) meta = json::object();
  json::object& m = meta.as_object();
  m[modern::kMetaProtocolVersion] = modern::kVersion;
  if (!m.contains(modern::kMetaClientCapabilities)) {
    m[modern::kMetaClientCapabilities] = client_capabilities_;
  }
  if (!m.contains(modern::kMetaClientInfo) && client_info_.is_object()) {
    m[modern::kMetaClientInfo] = client_info_;
  }
  if (!m.contains(modern::kMetaLogLevel) && log_level_) m[modern::kMetaLogLevel] = *log_level_;
}

void EraUpstream::Discovered(const jsonrpc::Message& answer) {
  const json::object* r = answer.kind == jsonrpc::Kind::kResponse ? answer.result.if_object()
                                                                   : nullptr;
  bool speaks = false;
  if (const json::value* v = r ? r->if_contains("supportedVersions") : nullptr;
      v && v->is_array()) {
    for (const json::value& version : v->as_array()) {
      if (version.is_string() && modern::IsModernVersion(version.as_string())) speaks = true;
    }
  }
  if (!speaks) {
    if (mode_ == Mode::kModern) {
      era_ = Era::kUnknown;
      const json::value id = initialize_ ? initialize_->id : json::value();
      initialize_.reset();
      if (events_.on_message) {
        events_.on_message(
            jsonrpc::MakeError(id, jsonrpc::kInternalError,
                               "The server did not answer server/discover as a 2026-07-28 "
                               "server (configured protocol: modern)"),
            id);
      }
      return;
    }
    BecomeLegacy();
    return;
  }
  era_ = Era::kModern;
  spdlog::info("upstream speaks {}: relaying without a session", modern::kVersion);
  server_capabilities_ = r->contains("capabilities") ? r->at("capabilities") : json::object();
  json::object init;
  std::string version(mcp::kLatestVersion);
  if (initialize_) {
    if (const json::object* p = initialize_->params.if_object()) {
      if (const json::value* v = p->if_contains("protocolVersion");
          v && v->is_string() && mcp::IsSupportedVersion(v->as_string())) {
        version = std::string(v->as_string());
      }
    }
  }
  init["protocolVersion"] = version;
  json::value caps = server_capabilities_;
  if (json::object* c = caps.if_object()) {
    // Resource subscriptions of that era are not relayed (README, protocol eras).
    if (json::value* res = c->if_contains("resources"); res && res->is_object()) {
      res->as_object().erase("subscribe");
    }
  }
  init["capabilities"] = std::move(caps);
  json::value info = json::object{{"name", "unknown"}, {"version", "unknown"}};
  if (const json::value* meta = r->if_contains("_meta"); meta && meta->is_object()) {
    if (const json::value* i = meta->as_object().if_contains(modern::kMetaServerInfo);
        i && i->is_object()) {
      info = *i;
    }
  } else if (const json::value* i = r->if_contains("serverInfo"); i && i->is_object()) {
    info = *i;
  }
  init["serverInfo"] = std::move(info);
  if (const json::value* text = r->if_contains("instructions"); text && text->is_string()) {
    init["instructions"] = *text;
  }
  if (initialize_) {
    const json::value id = initialize_->id;
    initialize_.reset();
    Answer(id, json::value(std::move(init)));
  }
  Listen();
  std::deque<jsonrpc::Message> queued;
  queued.swap(queued_);
  for (auto& m : queued) SendModern(std::move(m));
}

void EraUpstream::BecomeLegacy() {
  era_ = Era::kLegacy;
  if (initialize_) {
    jsonrpc::Message init = std::move(*initialize_);
    initialize_.reset();
    inner_->Send(std::move(init));
  }
  std::deque<jsonrpc::Message> queued;
  queued.swap(queued_);
  for (auto& m : queued) {
    if (m.IsRequest()) modern::StripRequestMeta(m.params);
    inner_->Send(std::move(m));
  }
}

void EraUpstream::Listen() {
  const json::object* caps = server_capabilities_.if_object();
  if (!caps) return;
  auto list_changed = [&](std::string_view kind) {
    const json::value* c = caps->if_contains(kind);
    const json::value* lc = c && c->is_object() ? c->as_object().if_contains("listChanged")
                                                : nullptr;
    return lc && lc->is_bool() && lc->as_bool();
  };
  json::object filter;
  if (list_changed("tools")) filter["toolsListChanged"] = true;
  if (list_changed("prompts")) filter["promptsListChanged"] = true;
  if (list_changed("resources")) filter["resourcesListChanged"] = true;
  if (filter.empty()) return;
  listen_id_ = "tw-listen-" + std::to_string(next_id_++);
  listen_acknowledged_ = false;
  json::value params = json::object{{"notifications", std::move(filter)}};
  AddMeta(params);
  inner_->Send(jsonrpc::MakeRequest(json::value(listen_id_), std::string(modern::kListen),
                                    std::move(params)));
}

void EraUpstream::ListenEnded() {
  // Open another while the server keeps acknowledging them (one that refuses is not asked
  // again and again).
  const bool again = listen_acknowledged_;
  listen_id_.clear();
  if (again && !closed_) Listen();
}

void EraUpstream::SendModern(jsonrpc::Message msg) {
  switch (msg.kind) {
    case jsonrpc::Kind::kRequest:
      if (msg.method == method::kPing) {
        Answer(msg.id, json::object());
        return;
      }
      if (msg.method == method::kSetLevel) {
        const json::object* p = msg.params.if_object();
        const json::value* level = p ? p->if_contains("level") : nullptr;
        if (level && level->is_string()) log_level_ = std::string(level->as_string());
        Answer(msg.id, json::object());
        return;
      }
      if (msg.method == method::kResourcesSubscribe || msg.method == method::kResourcesUnsubscribe) {
        if (events_.on_message) {
          events_.on_message(
              jsonrpc::MakeError(msg.id, jsonrpc::kMethodNotFound,
                                 "Method not found: " + msg.method +
                                     " (the server speaks 2026-07-28, which has no such method)"),
              msg.id);
        }
        return;
      }
    {
      // A request that says its own era is a 2026-07-28 client's, which answers input_required
      // results itself; one that does not is a 2025-era client's.
      const json::object* p = msg.params.if_object();
      const json::value* meta = p ? p->if_contains("_meta") : nullptr;
      const bool own_era = meta && meta->is_object() &&
                           meta->as_object().contains(modern::kMetaProtocolVersion);
      AddMeta(msg.params);
      if (msg.method == method::kToolsList) listing_.insert(jsonrpc::IdKey(msg.id));
      if (msg.method == method::kToolsCall) AddParamHeaders(msg);
      if (!own_era && (msg.method == method::kToolsCall || msg.method == method::kPromptsGet ||
                       msg.method == method::kResourcesRead)) {
        calls_[jsonrpc::IdKey(msg.id)] = Call{msg, {}, {}, nullptr, 0};
      }
      inner_->Send(std::move(msg));
      return;
    }
    case jsonrpc::Kind::kNotification:
      // Only cancellation has a meaning for a server of that era (on stdio; over HTTP the
      // server answers it as a stray notification).
      if (msg.method == method::kCancelled) inner_->Send(std::move(msg));
      return;
    case jsonrpc::Kind::kResponse:
    case jsonrpc::Kind::kError:
      // The only questions a client answers here are the ones the adapter asked.
      OnClientAnswer(std::move(msg));
      return;
  }
}

void EraUpstream::Forget(const std::string& key) {
  auto it = calls_.find(key);
  if (it == calls_.end()) return;
  std::erase_if(asks_, [&](const auto& kv) { return kv.second.first == key; });
  calls_.erase(it);
}

bool EraUpstream::AskClient(const std::string& key, const jsonrpc::Message& answer) {
  Call& call = calls_.at(key);
  const json::object& r = answer.result.as_object();
  const json::value* requests = r.if_contains("inputRequests");
  const json::object* asked = requests ? requests->if_object() : nullptr;
  if (++call.rounds > kMaxRounds || !events_.on_message) return false;
  call.responses.clear();
  call.waiting.clear();
  call.request_state = r.contains("requestState") ? r.at("requestState") : json::value();
  if (asked) {
    for (const auto& kv : *asked) {
      const json::object* q = kv.value().if_object();
      const json::value* m = q ? q->if_contains("method") : nullptr;
      if (!m || !m->is_string()) return false;
      call.waiting.insert(std::string(kv.key()));
    }
  }
  if (call.waiting.empty()) {
    if (call.request_state.is_null()) return false;
    Retry(key);  // nothing to ask: the state alone goes back
    return true;
  }
  for (const auto& kv : *asked) {
    const json::object& q = kv.value().as_object();
    const std::string ask = "tw-ask-" + std::to_string(next_id_++);
    asks_[ask] = {key, std::string(kv.key())};
    const json::value params = q.contains("params") ? q.at("params") : json::value(json::object());
    events_.on_message(jsonrpc::MakeRequest(json::value(ask), std::string(q.at("method").as_string()),
                                            params),
                       call.request.id);
  }
  return true;
}

void EraUpstream::OnClientAnswer(jsonrpc::Message msg) {
  if (!msg.id.is_string()) return;
  auto ask = asks_.find(std::string(msg.id.as_string()));
  if (ask == asks_.end()) return;
  const std::string key = ask->second.first;
  const std::string input = ask->second.second;
  asks_.erase(ask);
  auto it = calls_.find(key);
  if (it == calls_.end()) return;
  if (msg.kind == jsonrpc::Kind::kError) {
    const json::value id = it->second.request.id;
    Forget(key);
    events_.on_message(
        jsonrpc::MakeError(id, jsonrpc::kInternalError,
                           "The server asked the client for input (" + input +
                               ") and the client refused: " + json::serialize(msg.error)),
        id);
    return;
  }
  it->second.responses[input] = std::move(msg.result);
  it->second.waiting.erase(input);
  if (it->second.waiting.empty()) Retry(key);
}

void EraUpstream::Retry(const std::string& key) {
  Call& call = calls_.at(key);
  jsonrpc::Message retry = call.request;
  json::object& p = retry.params.as_object();
  p["inputResponses"] = call.responses;
  if (!call.request_state.is_null()) {
    p["requestState"] = call.request_state;
  } else {
    p.erase("requestState");
  }
  inner_->Send(std::move(retry));
}

void EraUpstream::AddParamHeaders(jsonrpc::Message& call) const {
  if (header_params_.empty()) return;
  const json::object& params = call.params.as_object();  // AddMeta made it an object
  const json::value* name = params.if_contains("name");
  if (!name || !name->is_string()) return;
  auto it = header_params_.find(std::string(name->as_string()));
  if (it == header_params_.end()) return;
  const json::value* args = params.if_contains("arguments");
  call.http_headers = modern::ParamHeaderLines(it->second, args ? *args : json::value());
}

void EraUpstream::ObserveTools(json::value& result) {
  json::object* r = result.if_object();
  json::value* tools = r ? r->if_contains("tools") : nullptr;
  if (!tools || !tools->is_array()) return;
  json::array& list = tools->as_array();
  for (auto it = list.begin(); it != list.end();) {
    const json::object* tool = it->if_object();
    const json::value* name = tool ? tool->if_contains("name") : nullptr;
    if (!name || !name->is_string()) {
      ++it;
      continue;
    }
    const json::value* schema = tool->if_contains("inputSchema");
    auto params = modern::ReadHeaderParams(schema ? *schema : json::value());
    const std::string n(name->as_string());
    if (!params) {
      spdlog::warn("upstream tool \"{}\" left out: {}", n, params.error().message());
      header_params_.erase(n);
      it = list.erase(it);
      continue;
    }
    if (params->empty()) {
      header_params_.erase(n);
    } else {
      header_params_[n] = std::move(*params);
    }
    ++it;
  }
}

void EraUpstream::OnMessage(jsonrpc::Message msg, std::optional<json::value> related) {
  if (msg.IsResponse() && !listing_.empty()) {
    if (auto it = listing_.find(jsonrpc::IdKey(msg.id)); it != listing_.end()) {
      listing_.erase(it);
      if (msg.kind == jsonrpc::Kind::kResponse) ObserveTools(msg.result);
    }
  }
  if (msg.IsResponse() && msg.id.is_string()) {
    const std::string_view id = msg.id.as_string();
    if (!probe_id_.empty() && id == probe_id_) {
      probe_id_.clear();
      Discovered(msg);
      return;
    }
    if (!listen_id_.empty() && id == listen_id_) {
      ListenEnded();
      return;
    }
  }
  if (msg.IsResponse() && !calls_.empty()) {
    const std::string key = jsonrpc::IdKey(msg.id);
    if (calls_.contains(key)) {
      const json::object* r = msg.kind == jsonrpc::Kind::kResponse ? msg.result.if_object()
                                                                   : nullptr;
      const json::value* type = r ? r->if_contains("resultType") : nullptr;
      if (type && type->is_string() && type->as_string() == "input_required" &&
          AskClient(key, msg)) {
        return;
      }
      Forget(key);
    }
  }
  if (!listen_id_.empty() && related && related->is_string() &&
      related->as_string() == listen_id_) {
    if (msg.method == modern::kAcknowledged) {
      listen_acknowledged_ = true;
      return;
    }
    if (json::object* p = msg.params.if_object()) {
      if (json::value* meta = p->if_contains("_meta"); meta && meta->is_object()) {
        meta->as_object().erase(modern::kMetaSubscriptionId);
        if (meta->as_object().empty()) p->erase("_meta");
      }
    }
    if (events_.on_message) events_.on_message(std::move(msg), std::nullopt);
    return;
  }
  if (events_.on_message) events_.on_message(std::move(msg), std::move(related));
}

void EraUpstream::OnRequestFailed(const json::value& id, const Error& error, bool sent) {
  if (id.is_string()) {
    const std::string_view s = id.as_string();
    if (!probe_id_.empty() && s == probe_id_) {
      probe_id_.clear();
      Discovered(jsonrpc::MakeError(id, jsonrpc::kInternalError, error.message()));
      return;
    }
    if (!listen_id_.empty() && s == listen_id_) {
      ListenEnded();
      return;
    }
  }
  Forget(jsonrpc::IdKey(id));
  listing_.erase(jsonrpc::IdKey(id));
  if (events_.on_request_failed) events_.on_request_failed(id, error, sent);
}

}  // namespace tw::gateway
