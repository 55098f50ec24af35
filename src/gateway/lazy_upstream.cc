#include "gateway/lazy_upstream.h"

#include <spdlog/spdlog.h>

#include "mcp/protocol.h"

namespace tw::gateway {

namespace method = mcp::method;
using jsonrpc::Message;

namespace {

// The list a memory may answer (its first page, nothing asked of it but that): tools, shown
// alike to every session of a grant. Resources and prompts may reflect one client's roots.
bool IsListMethod(std::string_view m) { return m == method::kToolsList; }
bool FirstPageOnly(const json::value& params) {
  if (params.is_null()) return true;
  const json::object* o = params.if_object();
  if (o == nullptr) return false;
  for (const auto& kv : *o) {
    if (kv.key() != "_meta") return false;
  }
  return true;
}
// In-flight keys: requests to the server ("c") and the server's own requests ("s") have ids
// from different spaces.
std::string Tagged(char space, const json::value& id) {
  std::string key(1, space);
  key += json::serialize(id);
  return key;
}
std::string Key(const json::value& id) { return Tagged('c', id); }
std::string ServerKey(const json::value& id) { return Tagged('s', id); }

constexpr std::string_view kReplayPrefix = "toolwarden-lazy-";

}  // namespace

std::optional<json::value> ServerMemory::Initialize(const std::string& protocol_version) const {
  std::lock_guard lock(mu_);
  if (init_result_.is_null() || init_version_ != protocol_version) return std::nullopt;
  return json::value(init_result_, json::storage_ptr());
}

void ServerMemory::RememberInitialize(const std::string& protocol_version,
                                      const json::value& result) {
  std::lock_guard lock(mu_);
  init_version_ = protocol_version;
  init_result_ = jsonrpc::Detached(result);
}

std::optional<json::value> ServerMemory::List(const std::string& m) const {
  std::lock_guard lock(mu_);
  auto it = lists_.find(m);
  if (it == lists_.end()) return std::nullopt;
  return json::value(it->second, json::storage_ptr());
}

void ServerMemory::RememberList(const std::string& m, const json::value& result) {
  std::lock_guard lock(mu_);
  lists_[m] = jsonrpc::Detached(result);
}

std::shared_ptr<ServerMemory> ServerMemories::For(const std::string& grant) {
  std::lock_guard lock(mu_);
  auto& m = by_grant_[grant];
  if (!m) m = std::make_shared<ServerMemory>();
  return m;
}

void ServerMemory::ForgetList(const std::string& m) {
  std::lock_guard lock(mu_);
  lists_.erase(m);
}

LazyUpstream::LazyUpstream(std::string server, std::function<std::unique_ptr<Upstream>()> make,
                           std::shared_ptr<ServerMemory> memory, Post post, Scheduler scheduler,
                           const Clock& clock, int64_t idle_ms)
    : server_(std::move(server)),
      make_(std::move(make)),
      memory_(std::move(memory)),
      post_(std::move(post)),
      scheduler_(std::move(scheduler)),
      clock_(clock),
      idle_ms_(idle_ms) {}

LazyUpstream::~LazyUpstream() {
  *alive_ = false;
  if (inner_) inner_->Close();
}

void LazyUpstream::Start(Events events) { events_ = std::move(events); }

void LazyUpstream::Close() {
  *alive_ = false;
  queue_.clear();
  StopInner();
}

void LazyUpstream::Answer(const json::value& id, json::value result) {
  // Events never fire inside Send: on the next turn, like a transport's.
  post_([this, alive = std::weak_ptr<bool>(alive_),
         msg = jsonrpc::MakeResponse(id, std::move(result))] {
    if (auto a = alive.lock(); a && *a) events_.on_message(msg, std::nullopt);
  });
}

bool LazyUpstream::AnswerFromMemory(const Message& msg) {
  if (msg.method == method::kPing) {
    Answer(msg.id, json::object());
    return true;
  }
  if (msg.method == method::kSetLevel) {  // replayed to the server when it starts
    log_level_ = jsonrpc::Detached(msg.params);
    Answer(msg.id, json::object());
    return true;
  }
  if (IsListMethod(msg.method) && FirstPageOnly(msg.params)) {
    if (auto remembered = memory_->List(msg.method)) {
      Answer(msg.id, std::move(*remembered));
      return true;
    }
  }
  return false;
}

void LazyUpstream::Send(Message msg) {
  if (msg.IsRequest() && msg.method == method::kInitialize) {
    initialize_ = jsonrpc::Detached(msg);
    const json::value* v =
        msg.params.is_object() ? msg.params.get_object().if_contains("protocolVersion") : nullptr;
    protocol_version_ = v && v->is_string() ? std::string(v->get_string()) : std::string();
    if (phase_ == Phase::kDormant) {
      if (auto remembered = memory_->Initialize(protocol_version_)) {
        Answer(msg.id, std::move(*remembered));
        return;
      }
      // Nothing remembered: this initialize itself starts the server (nothing to replay).
      std::optional<Message> own = std::move(initialize_);
      initialize_.reset();
      Materialize();
      initialize_ = std::move(own);
    }
    in_flight_[Key(msg.id)] = std::string(method::kInitialize);
    Forward(std::move(msg));
    return;
  }
  if (msg.IsRequest()) {
    if (phase_ == Phase::kDormant && AnswerFromMemory(msg)) return;
    if (msg.method == method::kResourcesSubscribe) subscribed_ = true;
    if (msg.method == method::kSetLevel) log_level_ = jsonrpc::Detached(msg.params);
    in_flight_[Key(msg.id)] =
        IsListMethod(msg.method) && FirstPageOnly(msg.params) ? msg.method : std::string();
    if (phase_ == Phase::kDormant) Materialize();
    Forward(std::move(msg));
    return;
  }
  if (msg.IsNotification()) {
    if (msg.method == method::kInitialized) initialized_ = true;
    // Nothing to tell a server that is not running: the replayed handshake starts it afresh.
    if (phase_ == Phase::kDormant) return;
    if (msg.method == method::kInitialized && phase_ == Phase::kHandshake) return;  // replayed
    Forward(std::move(msg));
    return;
  }
  // The client's answer to a server's request.
  in_flight_.erase(ServerKey(msg.id));
  if (phase_ != Phase::kDormant) Forward(std::move(msg));
  Settled();
}

void LazyUpstream::Forward(Message msg) {
  last_activity_ms_ = clock_.NowMs();
  if (phase_ == Phase::kHandshake) {
    queue_.push_back(std::move(msg));
    return;
  }
  inner_->Send(std::move(msg));
}

void LazyUpstream::Materialize() {
  spdlog::debug("server {}: starting a process for a session", server_);
  ++starts_;
  inner_ = make_();
  phase_ = initialize_ ? Phase::kHandshake : Phase::kRunning;
  inner_->Start(Events{
      .on_message =
          [this](Message m, std::optional<json::value> related) {
            OnInnerMessage(std::move(m), std::move(related));
          },
      .on_request_failed = [this](const json::value& id, const Error& e,
                                  bool sent) { OnInnerFailed(id, e, sent); },
      .on_disconnected =
          [this](const Error& e) {
            in_flight_.clear();
            events_.on_disconnected(e);
          },
      .on_reconnected = [this] { events_.on_reconnected(); },
  });
  if (initialize_) {
    inner_->Send(jsonrpc::MakeRequest(
        json::string(std::string(kReplayPrefix) + "initialize-" + std::to_string(starts_)),
        std::string(method::kInitialize), initialize_->params));
  }
}

void LazyUpstream::OnInnerMessage(Message msg, std::optional<json::value> related) {
  const bool ours =
      msg.IsResponse() && msg.id.is_string() && msg.id.get_string().starts_with(kReplayPrefix);
  if (ours) {
    if (phase_ != Phase::kHandshake ||
        !msg.id.get_string().ends_with("initialize-" + std::to_string(starts_))) {
      return;  // a replayed logging/setLevel's answer, or a stale one
    }
    if (msg.kind == jsonrpc::Kind::kError) {
      std::string why = "the server refused its initialize";
      if (const json::value* m = msg.error.if_contains("message"); m && m->is_string()) {
        why += ": " + std::string(m->get_string());
      }
      FailQueued(Error::Unavailable(why));
      StopInner();
      return;
    }
    memory_->RememberInitialize(protocol_version_, msg.result);
    phase_ = Phase::kRunning;
    if (initialized_)
      inner_->Send(jsonrpc::MakeNotification(std::string(method::kInitialized), json::object()));
    if (log_level_) {
      inner_->Send(jsonrpc::MakeRequest(
          json::string(std::string(kReplayPrefix) + "log-" + std::to_string(starts_)),
          std::string(method::kSetLevel), *log_level_));
    }
    Flush();
    Settled();
    return;
  }
  if (msg.IsResponse()) {
    auto it = in_flight_.find(Key(msg.id));
    if (it != in_flight_.end()) {
      if (msg.kind == jsonrpc::Kind::kResponse && it->second == method::kInitialize) {
        memory_->RememberInitialize(protocol_version_, msg.result);
      } else if (msg.kind == jsonrpc::Kind::kResponse && !it->second.empty()) {
        memory_->RememberList(it->second, msg.result);
      }
      in_flight_.erase(it);
    }
    events_.on_message(std::move(msg), std::move(related));
    Settled();
    return;
  }
  if (msg.IsRequest()) {
    in_flight_.emplace(ServerKey(msg.id),
                       std::string());  // the server asks: not idle until answered
  } else if (msg.method == method::kToolsListChanged) {
    memory_->ForgetList(std::string(method::kToolsList));
  }
  events_.on_message(std::move(msg), std::move(related));
}

void LazyUpstream::OnInnerFailed(const json::value& id, const Error& error, bool sent) {
  if (id.is_string() && id.get_string().starts_with(kReplayPrefix)) {
    if (phase_ == Phase::kHandshake) {
      FailQueued(error);
      StopInner();
    }
    return;
  }
  in_flight_.erase(Key(id));
  events_.on_request_failed(id, error, sent);
  Settled();
}

void LazyUpstream::Flush() {
  while (!queue_.empty() && phase_ == Phase::kRunning) {
    Message m = std::move(queue_.front());
    queue_.pop_front();
    inner_->Send(std::move(m));
  }
}

void LazyUpstream::FailQueued(const Error& error) {
  std::deque<Message> queued = std::move(queue_);
  queue_.clear();
  for (const Message& m : queued) {
    if (!m.IsRequest()) continue;
    in_flight_.erase(Key(m.id));
    events_.on_request_failed(m.id, error, /*sent=*/false);
  }
}

void LazyUpstream::Settled() {
  if (idle_ms_ <= 0 || subscribed_ || !inner_ || phase_ != Phase::kRunning || !in_flight_.empty() ||
      !queue_.empty()) {
    return;
  }
  last_activity_ms_ = clock_.NowMs();
  if (!idle_armed_) ArmIdle(idle_ms_);
}

// One idle timer at a time, however many requests pass: when it fires it stops the process if
// nothing happened for idle_ms, or waits out what is left of it.
void LazyUpstream::ArmIdle(int64_t delay_ms) {
  idle_armed_ = true;
  scheduler_(delay_ms, [this, alive = std::weak_ptr<bool>(alive_)] {
    auto a = alive.lock();
    if (!a || !*a) return;
    idle_armed_ = false;
    // Busy, or already stopped: the next Settled arms it again.
    if (!inner_ || phase_ != Phase::kRunning || subscribed_ || !in_flight_.empty() ||
        !queue_.empty()) {
      return;
    }
    const int64_t quiet = clock_.NowMs() - last_activity_ms_;
    if (quiet < idle_ms_) {
      ArmIdle(idle_ms_ - quiet);
      return;
    }
    spdlog::info("server {}: a session's process stopped after {} ms idle", server_, idle_ms_);
    StopInner();
  });
}

void LazyUpstream::StopInner() {
  phase_ = Phase::kDormant;
  in_flight_.clear();
  if (!inner_) return;
  // Closed now (no event fires after Close returns); destroyed on the next turn, since this may
  // run inside one of its own callbacks.
  std::shared_ptr<Upstream> dying(std::move(inner_));
  dying->Close();
  post_([dying] {});
}

}  // namespace tw::gateway
