#include "gateway/shared_upstream.h"

#include <spdlog/spdlog.h>

#include "mcp/protocol.h"

namespace tw::gateway {

namespace method = mcp::method;
using jsonrpc::Message;

namespace {

const json::value* Param(const Message& m, std::string_view key) {
  const json::object* p = m.params.if_object();
  return p ? p->if_contains(key) : nullptr;
}

}  // namespace

class UpstreamHub::Channel : public Upstream {
 public:
  Channel(std::shared_ptr<UpstreamHub> hub, uint64_t id) : hub_(std::move(hub)), id_(id) {}
  ~Channel() override { Close(); }

  void Start(Events events) override {
    events_ = std::move(events);
    hub_->Attach(this);
  }
  void Send(Message msg) override {
    if (!closed_) hub_->FromChannel(id_, std::move(msg));
  }
  void Close() override {
    if (closed_) return;
    closed_ = true;
    hub_->Detach(id_);
  }

  uint64_t id() const { return id_; }
  const Events& events() const { return events_; }

 private:
  std::shared_ptr<UpstreamHub> hub_;
  uint64_t id_;
  Events events_;
  bool closed_ = false;
};

UpstreamHub::UpstreamHub(std::string server, std::unique_ptr<Upstream> upstream, Scheduler post)
    : server_(std::move(server)), upstream_(std::move(upstream)), post_(std::move(post)) {}

UpstreamHub::~UpstreamHub() { Close(); }

std::unique_ptr<Upstream> UpstreamHub::NewChannel() {
  return std::make_unique<Channel>(shared_from_this(), next_channel_++);
}

void UpstreamHub::Close(const std::string& why) {
  if (closed_) return;
  closed_ = true;
  up_ = false;
  if (started_) upstream_->Close();
  auto channels = channels_;
  for (auto& [id, ch] : channels) {
    if (ch->events().on_disconnected) {
      ch->events().on_disconnected(Error::Unavailable(why));
    }
  }
}

UpstreamHub::Channel* UpstreamHub::Find(uint64_t channel) const {
  auto it = channels_.find(channel);
  return it == channels_.end() ? nullptr : it->second;
}

void UpstreamHub::Attach(Channel* ch) {
  channels_[ch->id()] = ch;
  EnsureStarted();
}

void UpstreamHub::Warm(json::value initialize_params) {
  warm_params_ = std::move(initialize_params);
  EnsureStarted();
  if (init_ == Init::kNone && !closed_) SendInitialize(warm_params_);
}

void UpstreamHub::SendInitialize(json::value params) {
  init_ = Init::kPending;
  if (params.is_object()) params.as_object()["capabilities"] = json::object{};  // no client to ask
  const int64_t id = next_id_++;
  pending_.emplace(id, Pending{0, nullptr, std::nullopt});
  upstream_->Send(jsonrpc::MakeRequest(id, std::string(method::kInitialize), std::move(params)));
}

void UpstreamHub::EnsureStarted() {
  if (started_ || closed_) return;
  started_ = true;
  auto self = weak_from_this();
  upstream_->Start(Upstream::Events{
      .on_message =
          [self](Message m, std::optional<json::value> related) {
            if (auto h = self.lock()) h->OnMessage(std::move(m), std::move(related));
          },
      .on_request_failed =
          [self](const json::value& id, const Error& e, bool sent) {
            if (auto h = self.lock()) h->OnRequestFailed(id, e, sent);
          },
      .on_disconnected =
          [self](const Error& e) {
            if (auto h = self.lock()) h->OnDisconnected(e);
          },
      .on_reconnected =
          [self] {
            if (auto h = self.lock()) h->OnReconnected();
          },
  });
}

void UpstreamHub::Detach(uint64_t channel) {
  if (!channels_.erase(channel)) return;
  // Its requests still in flight are no longer wanted: tell the server.
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (it->second.channel != channel) {
      ++it;
      continue;
    }
    if (it->second.progress) progress_.erase(*it->second.progress);
    if (!closed_ && up_) {
      upstream_->Send(jsonrpc::MakeNotification(
          std::string(method::kCancelled),
          json::object{{"requestId", it->first}, {"reason", "the client session closed"}}));
    }
    it = pending_.erase(it);
  }
  std::erase_if(server_requests_, [&](const auto& kv) { return kv.second.first == channel; });
  std::erase_if(waiting_init_, [&](const auto& w) { return w.first == channel; });
  log_levels_.erase(channel);
  for (auto it = subscribers_.begin(); it != subscribers_.end();) {
    it->second.erase(channel);
    if (!it->second.empty()) {
      ++it;
      continue;
    }
    // The last subscriber left: the server need not tell anyone any more.
    if (!closed_ && up_) {
      const int64_t id = next_id_++;
      pending_.emplace(id, Pending{kNoChannel, nullptr, std::nullopt});
      upstream_->Send(jsonrpc::MakeRequest(id, std::string(method::kResourcesUnsubscribe),
                                           json::object{{"uri", it->first}}));
    }
    it = subscribers_.erase(it);
  }
}

void UpstreamHub::AnswerLocally(uint64_t channel, const json::value& id, json::value result) {
  post_(0, [self = shared_from_this(), channel, id = jsonrpc::Detached(id),
            result = std::move(result)] {
    if (Channel* c = self->Find(channel)) {
      c->events().on_message(jsonrpc::MakeResponse(id, result), std::nullopt);
    }
  });
}

void UpstreamHub::Deliver(uint64_t channel, Message msg, std::optional<json::value> related) {
  if (msg.method == method::kLoggingMessage) {
    auto level = log_levels_.find(channel);
    const json::value* l = Param(msg, "level");
    if (level != log_levels_.end() && l && l->is_string() &&
        mcp::LogSeverity(l->get_string()) < level->second) {
      return;  // below what this channel asked for
    }
  }
  if (Channel* c = Find(channel)) c->events().on_message(std::move(msg), std::move(related));
}

void UpstreamHub::FromChannel(uint64_t channel, Message msg) {
  Channel* ch = Find(channel);
  if (!ch) return;
  if (closed_) {
    if (msg.IsRequest()) {
      const json::value id = msg.id;
      post_(0, [self = shared_from_this(), channel, id] {
        if (Channel* c = self->Find(channel)) {
          c->events().on_request_failed(id, Error::Unavailable("server " + self->server_ + " is closed"), false);
        }
      });
    }
    return;
  }
  switch (msg.kind) {
    case jsonrpc::Kind::kRequest: {
      if (msg.method == method::kInitialize) {
        if (init_ == Init::kDone) {
          const json::value id = msg.id;
          post_(0, [self = shared_from_this(), channel, id] {
            Channel* c = self->Find(channel);
            if (c && self->init_ == Init::kDone) {
              c->events().on_message(jsonrpc::MakeResponse(id, self->init_result_), std::nullopt);
            }
          });
          return;
        }
        waiting_init_.emplace_back(channel, msg.id);
        if (init_ == Init::kPending) return;
        SendInitialize(msg.params.is_object() ? msg.params : json::value(json::object{}));
        return;
      }
      if (msg.method == method::kSetLevel) {
        // Per channel: the server's own level is not one agent's to change for all.
        const json::value* level = Param(msg, "level");
        const int l = level && level->is_string() ? mcp::LogSeverity(level->get_string()) : -1;
        if (l < 0) {
          const json::value id = msg.id;
          post_(0, [self = shared_from_this(), channel, id = jsonrpc::Detached(id)] {
            if (Channel* c = self->Find(channel)) {
              c->events().on_message(
                  jsonrpc::MakeError(id, jsonrpc::kInvalidParams, "Invalid params: unknown level"),
                  std::nullopt);
            }
          });
          return;
        }
        log_levels_[channel] = l;
        AnswerLocally(channel, msg.id, json::object{});
        return;
      }
      if (msg.method == method::kResourcesSubscribe || msg.method == method::kResourcesUnsubscribe) {
        const json::value* uri = Param(msg, "uri");
        if (uri && uri->is_string()) {
          const std::string u(uri->get_string());
          const bool subscribe = msg.method == method::kResourcesSubscribe;
          auto& channels = subscribers_[u];
          const bool first = channels.empty();
          if (subscribe) {
            channels.insert(channel);
          } else {
            channels.erase(channel);
          }
          const bool last = !subscribe && channels.empty();
          if (channels.empty()) subscribers_.erase(u);
          // Only the first subscriber's subscribe and the last one's unsubscribe reach the
          // server; the others are answered here.
          if (!(subscribe && first) && !last) {
            AnswerLocally(channel, msg.id, json::object{});
            return;
          }
        }
      }
      const int64_t id = next_id_++;
      Pending p{channel, jsonrpc::Detached(msg.id), std::nullopt};
      if (std::optional<json::value> token = mcp::ProgressToken(msg.params)) {
        const int64_t ours = next_progress_++;
        progress_.emplace(ours, ProgressOwner{channel, jsonrpc::Detached(*token)});
        p.progress = ours;
        msg.params.as_object()["_meta"].as_object()["progressToken"] = ours;
      }
      pending_.emplace(id, std::move(p));
      msg.id = id;
      upstream_->Send(std::move(msg));
      return;
    }
    case jsonrpc::Kind::kNotification: {
      if (msg.method == method::kInitialized || msg.method == method::kRootsListChanged) return;
      if (msg.method == method::kProgress) {
        // Progress a client reports is for a server request routed to it; ids and tokens of
        // other channels are not its to speak for.
        const json::value* token = Param(msg, "progressToken");
        bool own = false;
        for (const auto& [ours, owner] : server_requests_) own = own || owner.first == channel;
        if (!token || !own) return;
      }
      if (msg.method == method::kCancelled && msg.params.is_object()) {
        json::object& p = msg.params.as_object();
        const json::value* request_id = p.if_contains("requestId");
        if (!request_id) return;
        bool found = false;
        for (const auto& [id, pending] : pending_) {
          if (pending.channel == channel && pending.channel_id == *request_id) {
            p["requestId"] = id;
            found = true;
            break;
          }
        }
        if (!found) return;
      }
      upstream_->Send(std::move(msg));
      return;
    }
    case jsonrpc::Kind::kResponse:
    case jsonrpc::Kind::kError: {
      auto it = msg.id.is_int64() ? server_requests_.find(msg.id.as_int64()) : server_requests_.end();
      if (it == server_requests_.end() || it->second.first != channel) return;
      msg.id = std::move(it->second.second);
      server_requests_.erase(it);
      upstream_->Send(std::move(msg));
      return;
    }
  }
}

std::optional<uint64_t> UpstreamHub::OwnerOf(const std::optional<json::value>& related) const {
  if (related && related->is_int64()) {
    auto it = pending_.find(related->as_int64());
    if (it != pending_.end() && it->second.channel != 0 && it->second.channel != kNoChannel) return it->second.channel;
  }
  return std::nullopt;
}

void UpstreamHub::FinishInitialize(const Message& answer) {
  auto waiting = std::move(waiting_init_);
  waiting_init_.clear();
  if (answer.kind == jsonrpc::Kind::kResponse) {
    init_ = Init::kDone;
    init_result_ = answer.result;
    up_ = true;
    last_error_.clear();
    upstream_->Send(jsonrpc::MakeNotification(std::string(method::kInitialized), nullptr));
    spdlog::info("server {}: initialized (shared by every session)", server_);
  } else {
    init_ = Init::kNone;
    last_error_ = json::serialize(answer.error);
  }
  for (auto& [channel, id] : waiting) {
    if (Channel* c = Find(channel)) {
      Message copy = answer;
      copy.id = id;
      c->events().on_message(std::move(copy), std::nullopt);
    }
  }
}

void UpstreamHub::OnMessage(Message msg, std::optional<json::value> related) {
  if (closed_) return;
  if (msg.IsResponse()) {
    auto it = msg.id.is_int64() ? pending_.find(msg.id.as_int64()) : pending_.end();
    if (it == pending_.end()) return;
    Pending p = std::move(it->second);
    pending_.erase(it);
    if (p.progress) progress_.erase(*p.progress);
    if (p.channel == kNoChannel) return;  // the hub's own unsubscribe
    if (p.channel == 0) {
      FinishInitialize(msg);
      return;
    }
    if (Channel* c = Find(p.channel)) {
      msg.id = p.channel_id;
      c->events().on_message(std::move(msg), std::nullopt);
    }
    return;
  }
  if (msg.IsRequest()) {
    // Only on the stream of a channel's request: guessing could show one agent's request to
    // another.
    std::optional<uint64_t> owner = OwnerOf(related);
    Channel* c = owner ? Find(*owner) : nullptr;
    if (!c) {
      upstream_->Send(jsonrpc::MakeError(
          msg.id, jsonrpc::kMethodNotFound,
          "toolwarden shares this server between sessions and cannot tell which client should "
          "answer " + msg.method));
      return;
    }
    const int64_t ours = next_server_request_++;
    server_requests_.emplace(ours, std::make_pair(*owner, msg.id));
    msg.id = ours;
    std::optional<json::value> rel;
    if (related && related->is_int64()) {
      if (auto it = pending_.find(related->as_int64()); it != pending_.end()) rel = it->second.channel_id;
    }
    c->events().on_message(std::move(msg), std::move(rel));
    return;
  }
  // Notifications.
  if (msg.method == method::kProgress && msg.params.is_object()) {
    json::object& p = msg.params.as_object();
    const json::value* token = p.if_contains("progressToken");
    auto it = token && token->is_int64() ? progress_.find(token->as_int64()) : progress_.end();
    if (it == progress_.end()) return;
    p["progressToken"] = it->second.token;
    if (Channel* c = Find(it->second.channel)) c->events().on_message(std::move(msg), std::nullopt);
    return;
  }
  if (msg.method == method::kCancelled && msg.params.is_object()) {
    json::object& p = msg.params.as_object();
    const json::value* request_id = p.if_contains("requestId");
    if (!request_id) return;
    for (auto it = server_requests_.begin(); it != server_requests_.end(); ++it) {
      if (it->second.second == *request_id) {
        const uint64_t channel = it->second.first;
        p["requestId"] = it->first;
        server_requests_.erase(it);
        if (Channel* c = Find(channel)) c->events().on_message(std::move(msg), std::nullopt);
        return;
      }
    }
    return;
  }
  if (std::optional<uint64_t> owner = OwnerOf(related)) {
    json::value rel = pending_.at(related->as_int64()).channel_id;
    Deliver(*owner, std::move(msg), std::move(rel));
    return;
  }
  if (msg.method == method::kResourceUpdated) {
    const json::value* uri = Param(msg, "uri");
    auto it = uri && uri->is_string() ? subscribers_.find(std::string(uri->get_string()))
                                      : subscribers_.end();
    if (it == subscribers_.end()) return;
    const std::set<uint64_t> channels = it->second;
    for (uint64_t ch : channels) Deliver(ch, msg, std::nullopt);
    return;
  }
  if (msg.method == method::kToolsListChanged || msg.method == method::kPromptsListChanged ||
      msg.method == method::kResourcesListChanged) {
    auto channels = channels_;
    for (auto& [id, ch] : channels) {
      if (Find(id)) ch->events().on_message(msg, std::nullopt);
    }
    return;
  }
  // Nobody's in particular: the operator's log, never an agent's session.
  spdlog::info("server {} (shared): {} {:.1000}", server_, msg.method,
               msg.params.is_null() ? std::string() : json::serialize(msg.params));
}

void UpstreamHub::OnRequestFailed(const json::value& id, const Error& error, bool sent) {
  auto it = id.is_int64() ? pending_.find(id.as_int64()) : pending_.end();
  if (it == pending_.end()) return;
  Pending p = std::move(it->second);
  pending_.erase(it);
  if (p.progress) progress_.erase(*p.progress);
  if (p.channel == 0) {
    init_ = Init::kNone;
    last_error_ = error.message();
    auto waiting = std::move(waiting_init_);
    waiting_init_.clear();
    for (auto& [channel, wid] : waiting) {
      if (Channel* c = Find(channel)) c->events().on_request_failed(wid, error, sent);
    }
    return;
  }
  if (p.channel == kNoChannel) return;
  if (Channel* c = Find(p.channel)) c->events().on_request_failed(p.channel_id, error, sent);
}

void UpstreamHub::OnDisconnected(const Error& error) {
  up_ = false;
  last_error_ = error.message();
  init_ = Init::kNone;
  pending_.clear();
  progress_.clear();
  server_requests_.clear();
  waiting_init_.clear();
  subscribers_.clear();  // a restarted server knows no subscriptions
  auto channels = channels_;
  for (auto& [id, ch] : channels) {
    if (Find(id)) ch->events().on_disconnected(error);
  }
}

void UpstreamHub::OnReconnected() {
  if (!warm_params_.is_null() && init_ == Init::kNone) SendInitialize(warm_params_);
  auto channels = channels_;
  for (auto& [id, ch] : channels) {
    if (Find(id)) ch->events().on_reconnected();
  }
}

}  // namespace tw::gateway
