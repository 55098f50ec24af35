#include "gateway/aggregate_session.h"

#include <spdlog/spdlog.h>

#include "common/number_literal.h"
#include "common/random.h"
#include "mcp/protocol.h"

namespace tw::gateway {

namespace method = mcp::method;
using jsonrpc::Message;

namespace {

bool ServerChars(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
          c == '-')) {
      return false;
    }
  }
  return true;
}

std::optional<std::pair<std::string, std::string>> Split(std::string_view s,
                                                         std::string_view sep) {
  const size_t pos = s.find(sep);
  if (pos == std::string_view::npos || pos + sep.size() >= s.size()) return std::nullopt;
  if (!ServerChars(s.substr(0, pos))) return std::nullopt;
  return std::make_pair(std::string(s.substr(0, pos)), std::string(s.substr(pos + sep.size())));
}

// Our list cursors: hex of a JSON object mapping each server to its own cursor.
std::string EncodeCursor(const json::object& cursors) {
  static constexpr char kHex[] = "0123456789abcdef";
  const std::string text = json::serialize(cursors);
  std::string out;
  out.reserve(text.size() * 2);
  for (unsigned char c : text) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

std::optional<json::object> DecodeCursor(std::string_view hex) {
  if (hex.size() % 2 != 0 || hex.size() > 64 * 1024) return std::nullopt;
  std::string text;
  text.reserve(hex.size() / 2);
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  for (size_t i = 0; i < hex.size(); i += 2) {
    const int hi = nibble(hex[i]), lo = nibble(hex[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    text.push_back(static_cast<char>(hi * 16 + lo));
  }
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) return std::nullopt;
  return v.as_object();
}

// The list key and item field each list method uses.
struct ListShape {
  std::string_view key;
  std::string_view field;
  bool uri;
};
std::optional<ListShape> ShapeOf(std::string_view m) {
  if (m == method::kToolsList) return ListShape{"tools", "name", false};
  if (m == method::kPromptsList) return ListShape{"prompts", "name", false};
  if (m == method::kResourcesList) return ListShape{"resources", "uri", true};
  if (m == method::kResourceTemplatesList) return ListShape{"resourceTemplates", "uriTemplate", true};
  return std::nullopt;
}

// Prefixes the URIs of resource links and embedded resources in one content item.
void QualifyContentItem(const std::string& server, json::value& item) {
  json::object* o = item.if_object();
  if (!o) return;
  const json::value* type = o->if_contains("type");
  if (!type || !type->is_string()) return;
  json::value* uri = nullptr;
  if (type->get_string() == "resource_link") {
    uri = o->if_contains("uri");
  } else if (type->get_string() == "resource") {
    if (json::value* r = o->if_contains("resource"); r && r->is_object()) {
      uri = r->as_object().if_contains("uri");
    }
  }
  if (uri && uri->is_string()) *uri = QualifiedUri(server, uri->get_string());
}

}  // namespace

std::string QualifiedName(const std::string& server, std::string_view name) {
  std::string out = server;
  out += "__";
  out += name;
  return out;
}
std::optional<std::pair<std::string, std::string>> SplitQualifiedName(std::string_view name) {
  return Split(name, "__");
}
std::string QualifiedUri(const std::string& server, std::string_view uri) {
  std::string out = server;
  out += '+';
  out += uri;
  return out;
}
std::optional<std::pair<std::string, std::string>> SplitQualifiedUri(std::string_view uri) {
  return Split(uri, "+");
}

class AggregateSession::LegSink : public ClientSink {
 public:
  LegSink(AggregateSession& owner, size_t leg) : owner_(owner), leg_(leg) {}
  void Deliver(const Message& msg, const std::optional<json::value>& related) override {
    owner_.OnLegMessage(leg_, msg, related);
  }
  // A leg's calls keep the client's id.
  void Held(const json::value& client_id, const std::string& approval_id) override {
    owner_.sink_.Held(client_id, approval_id);
  }

 private:
  AggregateSession& owner_;
  size_t leg_;
};

struct AggregateSession::Leg {
  std::string server;
  LegState state = LegState::kIdle;
  std::string why;
  std::string instructions;
  bool sent_initialized = false;
  std::unique_ptr<LegSink> sink;      // declared before the session: outlives it
  std::unique_ptr<Session> session;
};

AggregateSession::AggregateSession(std::string id, std::vector<AggregateMember> members,
                                   ClientSink& sink, Caller caller, Scheduler scheduler,
                                   AggregateOptions options)
    : id_(std::move(id)),
      caller_(std::move(caller)),
      sink_(sink),
      scheduler_(std::move(scheduler)),
      options_(std::move(options)),
      id_prefix_("tw-agg-" + RandomHex(4) + ":") {
  for (auto& m : members) {
    const size_t index = legs_.size();
    auto leg = std::make_unique<Leg>();
    leg->server = m.server;
    leg->sink = std::make_unique<LegSink>(*this, index);
    leg->session = std::make_unique<Session>(id_, std::move(m.upstream), *m.guard, *leg->sink, caller_);
    leg->session->SetHealthObserver(
        [this, index](bool up, const std::string& why) { OnLegHealth(index, up, why); });
    legs_.push_back(std::move(leg));
  }
}

AggregateSession::~AggregateSession() { Close(); }

void AggregateSession::Start() {
  for (auto& leg : legs_) leg->session->Start();
}

void AggregateSession::Close() {
  if (closed_) return;
  closed_ = true;
  *alive_ = false;
  for (auto& leg : legs_) leg->session->Close();
}

size_t AggregateSession::pending_requests() const {
  size_t n = routed_.size();
  for (const auto& [id, f] : fanouts_) {
    if (!f.replied && !f.client_id.is_null()) ++n;
  }
  return n;
}

std::vector<std::pair<std::string, bool>> AggregateSession::LegStates() const {
  std::vector<std::pair<std::string, bool>> out;
  for (const auto& leg : legs_) out.emplace_back(leg->server, leg->state == LegState::kReady);
  return out;
}

std::optional<size_t> AggregateSession::LegByName(const std::string& server) const {
  for (size_t i = 0; i < legs_.size(); ++i) {
    if (legs_[i]->server == server) return i;
  }
  return std::nullopt;
}

json::value AggregateSession::FanOutId(uint64_t fanout, size_t leg) const {
  return json::string(id_prefix_ + std::to_string(fanout) + ":" + std::to_string(leg));
}

std::optional<std::pair<uint64_t, size_t>> AggregateSession::ParseFanOutId(
    const json::value& id) const {
  if (!id.is_string() || !id.get_string().starts_with(id_prefix_)) return std::nullopt;
  const std::string rest(id.get_string().subview(id_prefix_.size()));
  const size_t colon = rest.find(':');
  if (colon == std::string::npos) return std::nullopt;
  return std::make_pair(std::stoull(rest.substr(0, colon)),
                        static_cast<size_t>(std::stoull(rest.substr(colon + 1))));
}

void AggregateSession::Reply(Message msg) {
  const json::value id = msg.id;
  sink_.Deliver(msg, id);
}

void AggregateSession::HandleClientMessage(Message msg) {
  if (closed_) return;
  if (msg.numbers && msg.numbers->what == NumberExactness::kNonFinite) {
    // Not JSON once re-serialized: nothing of it reaches a server.
    const std::string why = DescribeNumberFinding(*msg.numbers);
    if (msg.IsRequest()) {
      Reply(jsonrpc::MakeError(msg.id, jsonrpc::kInvalidParams, "Invalid params: " + why));
      return;
    }
    if (msg.IsNotification()) {
      spdlog::warn("session {}: dropped {}: {}", id_.substr(0, 8), msg.method, why);
      return;
    }
    msg = jsonrpc::MakeError(msg.id, jsonrpc::kInvalidParams, "The client's answer was refused: " + why);
  }
  switch (msg.kind) {
    case jsonrpc::Kind::kRequest:
      HandleRequest(std::move(msg));
      return;
    case jsonrpc::Kind::kNotification: {
      if (!mcp::NotificationAllowed(mcp::Direction::kClientToServer, protocol_version_,
                                    msg.method)) {
        // Dropped, and recorded once: by the leg a tools/call's name points to, else the first.
        size_t target = 0;
        if (msg.method == method::kToolsCall && msg.params.is_object()) {
          json::value* name = msg.params.as_object().if_contains("name");
          auto split = name && name->is_string() ? SplitQualifiedName(name->get_string())
                                                 : std::nullopt;
          if (auto leg = split ? LegByName(split->first) : std::nullopt) {
            target = *leg;
            *name = json::string(split->second);
          }
        }
        if (target < legs_.size()) legs_[target]->session->HandleClientMessage(std::move(msg));
        return;
      }
      if (msg.method == method::kInitialized) {
        client_initialized_ = true;
        for (auto& leg : legs_) {
          if (leg->state == LegState::kReady && !leg->sent_initialized) {
            leg->sent_initialized = true;
            leg->session->HandleClientMessage(msg);
          }
        }
        return;
      }
      if (msg.method == method::kCancelled) {
        const json::value* request_id =
            msg.params.is_object() ? msg.params.as_object().if_contains("requestId") : nullptr;
        if (!request_id) return;
        auto it = routed_.find(jsonrpc::IdKey(*request_id));
        if (it != routed_.end()) legs_[it->second.leg]->session->HandleClientMessage(std::move(msg));
        return;
      }
      for (auto& leg : legs_) {
        if (leg->state == LegState::kReady) leg->session->HandleClientMessage(msg);
      }
      return;
    }
    case jsonrpc::Kind::kResponse:
    case jsonrpc::Kind::kError: {
      auto it = msg.id.is_int64() ? server_requests_.find(msg.id.as_int64()) : server_requests_.end();
      if (it == server_requests_.end()) {
        spdlog::warn("session {}: dropping response to unknown server request {}", id_.substr(0, 8),
                     jsonrpc::IdToString(msg.id));
        return;
      }
      auto [leg, leg_id] = std::move(it->second);
      server_requests_.erase(it);
      msg.id = std::move(leg_id);
      legs_[leg]->session->HandleClientMessage(std::move(msg));
      return;
    }
  }
}

void AggregateSession::HandleRequest(Message msg) {
  if (routed_.contains(jsonrpc::IdKey(msg.id))) {
    Reply(jsonrpc::MakeError(msg.id, jsonrpc::kInvalidRequest,
                             "Invalid Request: id " + jsonrpc::IdToString(msg.id) +
                                 " is already in use by a pending request"));
    return;
  }
  const std::string& m = msg.method;
  if (m == method::kInitialize) {
    HandleInitialize(std::move(msg));
    return;
  }
  if (m == method::kPing) {
    Reply(jsonrpc::MakeResponse(msg.id, json::object{}));
    return;
  }
  if (ShapeOf(m)) {
    std::vector<std::pair<size_t, json::value>> targets;
    const json::value* cursor =
        msg.params.is_object() ? msg.params.as_object().if_contains("cursor") : nullptr;
    if (cursor && !cursor->is_null()) {
      std::optional<json::object> cursors =
          cursor->is_string() ? DecodeCursor(cursor->get_string()) : std::nullopt;
      if (!cursors) {
        Reply(jsonrpc::MakeError(msg.id, jsonrpc::kInvalidParams, "Invalid params: unknown cursor"));
        return;
      }
      for (const auto& kv : *cursors) {
        auto leg = LegByName(std::string(kv.key()));
        if (leg && legs_[*leg]->state == LegState::kReady && kv.value().is_string()) {
          targets.emplace_back(*leg, kv.value());
        }
      }
    } else {
      for (size_t i = 0; i < legs_.size(); ++i) {
        if (legs_[i]->state == LegState::kReady) targets.emplace_back(i, nullptr);
      }
    }
    StartFanOut(msg, targets);
    return;
  }
  if (m == method::kSetLevel) {
    std::vector<std::pair<size_t, json::value>> targets;
    for (size_t i = 0; i < legs_.size(); ++i) {
      if (legs_[i]->state == LegState::kReady) targets.emplace_back(i, nullptr);
    }
    StartFanOut(msg, targets);
    return;
  }

  // Requests aimed at one item: find its server from the qualified name or URI.
  const bool by_name = m == method::kToolsCall || m == method::kPromptsGet;
  bool by_uri = m == method::kResourcesRead || m == method::kResourcesSubscribe ||
                m == method::kResourcesUnsubscribe;
  if (!by_name && !by_uri && m != method::kComplete) {
    Reply(jsonrpc::MakeError(msg.id, jsonrpc::kMethodNotFound, "Method not found: " + m));
    return;
  }
  json::object* params = msg.params.if_object();
  json::value* target = nullptr;
  if (params && m == method::kComplete) {
    if (json::value* ref = params->if_contains("ref"); ref && ref->is_object()) {
      json::object& r = ref->as_object();
      const json::value* type = r.if_contains("type");
      by_uri = type && type->is_string() && type->get_string() == "ref/resource";
      target = r.if_contains(by_uri ? "uri" : "name");
    }
  } else if (params) {
    target = params->if_contains(by_uri ? "uri" : "name");
  }
  if (!target || !target->is_string()) {
    Reply(jsonrpc::MakeError(msg.id, jsonrpc::kInvalidParams,
                             std::string("Invalid params: ") + (by_uri ? "uri" : "name") +
                                 " must be a string"));
    return;
  }
  auto split = by_uri ? SplitQualifiedUri(target->get_string())
                      : SplitQualifiedName(target->get_string());
  std::optional<size_t> leg = split ? LegByName(split->first) : std::nullopt;
  if (!leg) {
    const std::string what = m == method::kToolsCall    ? "tool"
                             : m == method::kPromptsGet ? "prompt"
                                                        : "resource";
    Reply(jsonrpc::MakeError(
        msg.id, jsonrpc::kInvalidParams,
        "Unknown " + what + ": " + std::string(target->get_string()) + " (names are " +
            (by_uri ? "server+uri" : "server__name") + " on this endpoint)"));
    return;
  }
  Leg& l = *legs_[*leg];
  if (l.state != LegState::kReady) {
    Reply(jsonrpc::MakeError(msg.id, jsonrpc::kConnectionClosed,
                             "Server \"" + l.server + "\" is unavailable" +
                                 (l.why.empty() ? std::string(" (starting)") : ": " + l.why)));
    return;
  }
  *target = json::string(split->second);
  RouteToLeg(std::move(msg), *leg);
}

void AggregateSession::RouteToLeg(Message msg, size_t leg) {
  routed_[jsonrpc::IdKey(msg.id)] = Routed{leg, msg.method};
  legs_[leg]->session->HandleClientMessage(std::move(msg));
}

void AggregateSession::HandleInitialize(Message msg) {
  if (!initialize_params_.is_null()) {
    Reply(jsonrpc::MakeError(msg.id, jsonrpc::kInvalidRequest,
                             "Invalid Request: the session is already initialized"));
    return;
  }
  const json::object* p = msg.params.if_object();
  const json::value* requested = p ? p->if_contains("protocolVersion") : nullptr;
  protocol_version_ = requested && requested->is_string() &&
                              mcp::IsSupportedVersion(requested->get_string())
                          ? std::string(requested->get_string())
                          : std::string(mcp::kLatestVersion);
  initialize_params_ = msg.params.is_object() ? msg.params : json::value(json::object{});
  std::vector<std::pair<size_t, json::value>> targets;
  for (size_t i = 0; i < legs_.size(); ++i) {
    legs_[i]->state = LegState::kStarting;
    targets.emplace_back(i, nullptr);
  }
  msg.params = initialize_params_;
  const uint64_t fanout = next_fanout_;
  StartFanOut(msg, targets);
  if (fanouts_.contains(fanout)) {
    scheduler_(options_.init_wait_ms, [this, fanout, alive = alive_] {
      if (!*alive) return;
      auto it = fanouts_.find(fanout);
      if (it == fanouts_.end() || it->second.replied) return;
      spdlog::info("session {}: answering initialize without {} slow server(s)", id_.substr(0, 8),
                   it->second.waiting);
      ReplyInitialize(it->second);
    });
  }
}

void AggregateSession::StartFanOut(const Message& msg,
                                   const std::vector<std::pair<size_t, json::value>>& legs) {
  const uint64_t fanout = next_fanout_++;
  FanOut& f = fanouts_[fanout];
  f.client_id = msg.id;
  f.method = msg.method;
  f.waiting = legs.size();
  if (legs.empty()) {
    FinishFanOut(fanout);
    return;
  }
  for (const auto& [leg, cursor] : legs) {
    json::object params = msg.params.is_object() ? msg.params.as_object() : json::object{};
    params.erase("cursor");
    if (!cursor.is_null()) params["cursor"] = cursor;
    legs_[leg]->session->HandleClientMessage(
        jsonrpc::MakeRequest(FanOutId(fanout, leg), msg.method, std::move(params)));
  }
}

void AggregateSession::OnFanOutAnswer(uint64_t fanout, size_t leg, Message msg) {
  auto it = fanouts_.find(fanout);
  if (it == fanouts_.end()) return;
  FanOut& f = it->second;
  if (f.method == method::kInitialize) {
    if (msg.kind == jsonrpc::Kind::kResponse) {
      if (const json::object* r = msg.result.if_object()) {
        if (const json::value* ins = r->if_contains("instructions"); ins && ins->is_string()) {
          legs_[leg]->instructions = std::string(ins->get_string());
        }
      }
      LegReady(leg);
    } else {
      const json::value* m = msg.error.if_contains("message");
      LegDown(leg, m && m->is_string() ? std::string(m->get_string()) : "initialize failed");
    }
  }
  f.answers.emplace(leg, std::move(msg));
  if (f.waiting > 0) --f.waiting;
  if (f.waiting == 0) FinishFanOut(fanout);
}

void AggregateSession::FinishFanOut(uint64_t fanout) {
  auto it = fanouts_.find(fanout);
  if (it == fanouts_.end()) return;
  FanOut& f = it->second;
  if (!f.replied) {
    if (f.method == method::kInitialize) {
      ReplyInitialize(f);
    } else if (ShapeOf(f.method)) {
      MergeList(f);
    } else {
      f.replied = true;
      Reply(jsonrpc::MakeResponse(f.client_id, json::object{}));
    }
  }
  fanouts_.erase(it);
}

void AggregateSession::ReplyInitialize(FanOut& f) {
  f.replied = true;
  initialize_answered_ = true;
  std::string instructions;
  for (const auto& leg : legs_) {
    if (leg->instructions.empty()) continue;
    if (!instructions.empty()) instructions += "\n\n";
    instructions += "Tools named " + leg->server + "__* (server \"" + leg->server +
                    "\"): " + leg->instructions;
  }
  json::object result{
      {"protocolVersion", protocol_version_},
      {"capabilities",
       json::object{{"tools", json::object{{"listChanged", true}}},
                    {"prompts", json::object{{"listChanged", true}}},
                    {"resources", json::object{{"subscribe", true}, {"listChanged", true}}},
                    {"logging", json::object{}},
                    {"completions", json::object{}}}},
      {"serverInfo",
       json::object{{"name", options_.server_name}, {"version", options_.server_version}}}};
  if (!instructions.empty()) result["instructions"] = instructions;
  Reply(jsonrpc::MakeResponse(f.client_id, std::move(result)));
}

void AggregateSession::MergeList(FanOut& f) {
  f.replied = true;
  const ListShape shape = *ShapeOf(f.method);
  json::array items;
  json::object cursors;
  for (auto& [leg, answer] : f.answers) {
    const std::string& server = legs_[leg]->server;
    json::object* r = answer.kind == jsonrpc::Kind::kResponse ? answer.result.if_object() : nullptr;
    if (!r) {
      spdlog::debug("session {}: {} from {} failed: {}", id_.substr(0, 8), f.method, server,
                    json::serialize(answer.error));
      continue;
    }
    if (json::value* list = r->if_contains(shape.key); list && list->is_array()) {
      for (json::value& item : list->as_array()) {
        json::object* o = item.if_object();
        json::value* field = o ? o->if_contains(shape.field) : nullptr;
        if (!field || !field->is_string()) continue;
        *field = shape.uri ? QualifiedUri(server, field->get_string())
                           : QualifiedName(server, field->get_string());
        items.push_back(std::move(item));
      }
    }
    if (const json::value* next = r->if_contains("nextCursor");
        next && next->is_string() && !next->get_string().empty()) {
      cursors[server] = *next;
    }
  }
  json::object result{{shape.key, std::move(items)}};
  if (!cursors.empty()) result["nextCursor"] = EncodeCursor(cursors);
  Reply(jsonrpc::MakeResponse(f.client_id, std::move(result)));
}

void AggregateSession::LegReady(size_t leg) {
  Leg& l = *legs_[leg];
  const bool changed = l.state != LegState::kReady;
  l.state = LegState::kReady;
  l.why.clear();
  if (client_initialized_ && !l.sent_initialized) {
    l.sent_initialized = true;
    l.session->HandleClientMessage(
        jsonrpc::MakeNotification(std::string(method::kInitialized), nullptr));
  }
  if (!changed) return;
  if (options_.on_health) options_.on_health(l.server, true, "");
  if (initialize_answered_) AnnounceListsChanged();
}

void AggregateSession::LegDown(size_t leg, const std::string& why) {
  Leg& l = *legs_[leg];
  const bool changed = l.state != LegState::kDown;
  l.state = LegState::kDown;
  l.why = why;
  if (!changed) return;
  spdlog::warn("session {}: server {} is unavailable: {}", id_.substr(0, 8), l.server, why);
  if (options_.on_health) options_.on_health(l.server, false, why);
  if (initialize_answered_) AnnounceListsChanged();
}

void AggregateSession::OnLegHealth(size_t leg, bool up, const std::string& why) {
  if (closed_) return;
  Leg& l = *legs_[leg];
  if (up) {
    if (l.state == LegState::kDown && !l.why.empty()) LegReady(leg);
  } else if (l.state == LegState::kReady || l.state == LegState::kStarting) {
    LegDown(leg, why);
  }
}

void AggregateSession::AnnounceListsChanged() {
  if (closed_) return;
  for (std::string_view m :
       {method::kToolsListChanged, method::kPromptsListChanged, method::kResourcesListChanged}) {
    sink_.Deliver(jsonrpc::MakeNotification(std::string(m), nullptr), std::nullopt);
  }
}

std::optional<json::value> AggregateSession::ClientRelated(
    const std::optional<json::value>& related) const {
  if (!related) return std::nullopt;
  if (auto f = ParseFanOutId(*related)) {
    auto it = fanouts_.find(f->first);
    if (it == fanouts_.end() || it->second.client_id.is_null()) return std::nullopt;
    return it->second.client_id;
  }
  return related;
}

void AggregateSession::RewriteResultUris(size_t leg, json::value& result) const {
  json::object* r = result.if_object();
  if (!r) return;
  const std::string& server = legs_[leg]->server;
  if (json::value* content = r->if_contains("content"); content && content->is_array()) {
    for (json::value& item : content->as_array()) QualifyContentItem(server, item);
  }
  if (json::value* contents = r->if_contains("contents"); contents && contents->is_array()) {
    for (json::value& item : contents->as_array()) {
      if (json::object* o = item.if_object()) {
        if (json::value* uri = o->if_contains("uri"); uri && uri->is_string()) {
          *uri = QualifiedUri(server, uri->get_string());
        }
      }
    }
  }
  if (json::value* messages = r->if_contains("messages"); messages && messages->is_array()) {
    for (json::value& m : messages->as_array()) {
      if (json::object* o = m.if_object()) {
        if (json::value* c = o->if_contains("content")) QualifyContentItem(server, *c);
      }
    }
  }
}

void AggregateSession::OnLegMessage(size_t leg, const Message& msg,
                                    const std::optional<json::value>& related) {
  if (closed_) return;
  if (msg.IsResponse()) {
    if (auto f = ParseFanOutId(msg.id)) {
      OnFanOutAnswer(f->first, f->second, msg);
      return;
    }
    auto it = routed_.find(jsonrpc::IdKey(msg.id));
    if (it == routed_.end()) return;
    const std::string m = it->second.method;
    routed_.erase(it);
    Message out = msg;
    if (out.kind == jsonrpc::Kind::kResponse &&
        (m == method::kToolsCall || m == method::kResourcesRead || m == method::kPromptsGet)) {
      RewriteResultUris(leg, out.result);
    }
    Reply(std::move(out));
    return;
  }
  if (msg.IsRequest()) {
    const int64_t ours = next_server_request_++;
    server_requests_.emplace(ours, std::make_pair(leg, msg.id));
    Message out = msg;
    out.id = ours;
    sink_.Deliver(out, ClientRelated(related));
    return;
  }
  Message out = msg;
  if (out.method == method::kCancelled && out.params.is_object()) {
    json::object& p = out.params.as_object();
    const json::value* request_id = p.if_contains("requestId");
    if (!request_id) return;
    bool found = false;
    for (auto it = server_requests_.begin(); it != server_requests_.end(); ++it) {
      if (it->second.first == leg && it->second.second == *request_id) {
        p["requestId"] = it->first;
        server_requests_.erase(it);
        found = true;
        break;
      }
    }
    if (!found) return;
  } else if (out.method == method::kResourceUpdated && out.params.is_object()) {
    if (json::value* uri = out.params.as_object().if_contains("uri"); uri && uri->is_string()) {
      *uri = QualifiedUri(legs_[leg]->server, uri->get_string());
    }
  }
  sink_.Deliver(out, ClientRelated(related));
}

}  // namespace tw::gateway
