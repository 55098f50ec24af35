#include "app/gateway_state.h"

#include <spdlog/spdlog.h>

#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/steady_timer.hpp>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "common/canonical_json.h"
#include "common/random.h"
#include "console/assets.h"
#include "gateway/aggregate_session.h"
#include "mcp/protocol.h"
#include "policy/loader.h"
#include "transport/child_upstream.h"
#include "transport/http_upstream.h"

#ifndef TW_VERSION
#define TW_VERSION "0.0.0"
#endif

namespace tw::app {

namespace {

// A session that also keeps alive what its relay points into (the server runtimes and their
// guards), however a reload changes the gateway while it is open.
class HoldingSession : public gateway::McpSession {
 public:
  HoldingSession(std::unique_ptr<gateway::McpSession> inner,
                 std::vector<std::shared_ptr<ServerRuntime>> held)
      : held_(std::move(held)), inner_(std::move(inner)) {}
  void Start() override { inner_->Start(); }
  void HandleClientMessage(jsonrpc::Message msg) override {
    inner_->HandleClientMessage(std::move(msg));
  }
  void Close() override { inner_->Close(); }
  const std::string& protocol_version() const override { return inner_->protocol_version(); }
  size_t pending_requests() const override { return inner_->pending_requests(); }

 private:
  std::vector<std::shared_ptr<ServerRuntime>> held_;  // declared first: destroyed last
  std::unique_ptr<gateway::McpSession> inner_;
};

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

std::string Join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

// Publishes every audit record (event "decision") and outcome (event "outcome") to the
// console's live view, then passes it on. Costs one check when nobody watches.
class PublishingAuditLog : public audit::AuditLog {
 public:
  PublishingAuditLog(std::unique_ptr<audit::AuditLog> inner, EventHub& hub)
      : inner_(std::move(inner)), hub_(hub) {}
  Result<bool> Write(const audit::Record& r) override {
    auto w = inner_->Write(r);
    if (w) Publish(r);
    return w;
  }
  void Submit(audit::Record r, std::function<void(audit::Record&)> in_txn,
              std::function<void(bool)> done) override {
    if (!hub_.HasSubscribers()) return inner_->Submit(std::move(r), std::move(in_txn), std::move(done));
    // Published as written (after `in_txn` may have made it a denial), on the writer thread.
    inner_->Submit(std::move(r),
                   [this, in_txn = std::move(in_txn)](audit::Record& rec) {
                     if (in_txn) in_txn(rec);
                     Publish(rec);
                   },
                   std::move(done));
  }
  void Complete(const std::string& id, const std::string& outcome, int64_t latency_ms) override {
    if (hub_.HasSubscribers()) {
      hub_.Publish("outcome", json::serialize(json::object{
                                  {"id", id}, {"outcome", outcome}, {"latency_ms", latency_ms}}));
    }
    inner_->Complete(id, outcome, latency_ms);
  }
  void Run(std::function<void()> in_txn, std::function<void(bool)> done) override {
    inner_->Run(std::move(in_txn), std::move(done));
  }
  void Flush() override { inner_->Flush(); }
  const void* Connection() const override { return inner_->Connection(); }

 private:
  void Publish(const audit::Record& r) {
    if (hub_.HasSubscribers()) hub_.Publish("decision", json::serialize(audit::ToJson(r)));
  }
  std::unique_ptr<audit::AuditLog> inner_;
  EventHub& hub_;
};

}  // namespace

std::function<gateway::ToolCallGuard::LoopPoster()> LoopPosterFor(boost::asio::io_context& io) {
  return [&io]() -> gateway::ToolCallGuard::LoopPoster {
    // A tracked executor counts as work for io.run() for as long as a copy lives.
    return [ex = boost::asio::prefer(io.get_executor(),
                                     boost::asio::execution::outstanding_work.tracked)](
               std::function<void()> fn) { boost::asio::post(ex, std::move(fn)); };
  };
}

GatewayState::GatewayState(boost::asio::io_context& io, const config::Config& config,
                           const Clock& clock)
    : io_(io), config_(config), clock_(clock) {}

GatewayState::~GatewayState() { Stop(); }

Result<std::unique_ptr<GatewayState>> GatewayState::Open(boost::asio::io_context& io,
                                                         const config::Config& config,
                                                         const Clock& clock) {
  std::unique_ptr<GatewayState> s(new GatewayState(io, config, clock));
  s->state_spec_ = config.state.empty() ? limits::DefaultStateSpec() : config.state;
  auto counters = limits::OpenStateStore(s->state_spec_);
  if (!counters) return Fail(counters.error());
  s->counters_ = std::move(*counters);
  auto pins = catalog::OpenPinStore(s->state_spec_);
  if (!pins) return Fail(pins.error());
  s->pin_store_ = std::move(*pins);
  auto audit = audit::OpenAuditLog(s->state_spec_, config.audit_log == "-" ? "/dev/stdout" : config.audit_log);
  if (!audit) return Fail(audit.error());
  s->audit_ = std::make_unique<PublishingAuditLog>(std::move(*audit), s->events_);
  auto approvals = approval::OpenApprovalStore(s->state_spec_);
  if (!approvals) return Fail(approvals.error());
  s->approvals_ = std::move(*approvals);
  if (auto n = s->approvals_->AbandonOrphans(clock.NowMs()); n && *n > 0) {
    spdlog::warn("{} approval(s) left pending by a gateway that stopped were marked abandoned", *n);
  }
  auto grants = auth::OpenGrantStore(s->state_spec_);
  if (!grants) return Fail(grants.error());
  s->grants_ = std::move(*grants);
  for (const auto& [name, sc] : config.servers) {
    auto rt = s->Build(sc);
    if (!rt) return Fail(rt.error());
    s->servers_[name] = std::move(*rt);
  }
  s->config_text_hash_ = Sha256Hex(ReadText(config.path));
  spdlog::info("state in {}", s->counters_->Describe());
  return s;
}

void GatewayState::Stop() {
  if (config_watcher_) config_watcher_->Stop();
  for (auto& [path, pf] : policies_) {
    if (pf.reloader) pf.reloader->Stop();
  }
  for (auto& [name, rt] : servers_) {
    if (rt->hub) rt->hub->Close("the gateway is stopping");
  }
}

std::string GatewayState::ServerNames() const {
  std::vector<std::string> names;
  for (const auto& [name, rt] : servers_) names.push_back(name);
  return Join(names);
}

Result<gateway::PolicyHolder*> GatewayState::PolicyFor(const std::string& path) {
  auto it = policies_.find(path);
  if (it != policies_.end()) return it->second.holder.get();
  auto policy = policy::LoadPolicyFile(path);
  if (!policy) return Fail(policy.error());
  PolicyFile pf;
  pf.holder = std::make_unique<gateway::PolicyHolder>(*policy);
  pf.reloader = std::make_unique<PolicyReloader>(io_, path, *pf.holder);
  pf.reloader->Start();
  gateway::PolicyHolder* holder = pf.holder.get();
  policies_.emplace(path, std::move(pf));
  return holder;
}

Result<std::shared_ptr<ServerRuntime>> GatewayState::Build(const config::ServerConfig& sc) {
  auto rt = std::make_shared<ServerRuntime>();
  rt->config = sc;
  auto policy = PolicyFor(sc.policy_path);
  if (!policy) {
    return Fail(Error::InvalidArgument("server \"" + sc.name + "\": " + policy.error().message()));
  }
  rt->policy = *policy;
  if (sc.remote()) {
    if (auto url = transport::ParseUpstreamUrl(sc.url); !url) {
      return Fail(Error::InvalidArgument("server \"" + sc.name + "\": " + url.error().message()));
    }
  } else if (auto exe = transport::FindExecutable(sc.command.front()); !exe) {
    spdlog::error("server {}: {} (it stays down until the config is fixed)", sc.name,
                  exe.error().message());
  }
  if (sc.pins != "off") {
    rt->pins = std::make_unique<gateway::ToolPins>(
        *pin_store_, sc.name,
        sc.pins == "warn" ? gateway::PinMode::kWarn : gateway::PinMode::kEnforce, clock_);
  }
  if (sc.inherit_all_env) {
    spdlog::warn("server {}: inherit_env: all — it sees every variable of the gateway's "
                 "environment, the other servers' credentials included",
                 sc.name);
  }
  rt->catalog = std::make_unique<gateway::ToolCatalog>(
      sc.name,
      sc.unlisted_tools == config::UnlistedTools::kAllow ? gateway::UnlistedTools::kAllow
                                                         : gateway::UnlistedTools::kDeny,
      sc.schema == config::SchemaMode::kOff    ? gateway::SchemaMode::kOff
      : sc.schema == config::SchemaMode::kWarn ? gateway::SchemaMode::kWarn
                                               : gateway::SchemaMode::kEnforce);
  if (auto g = GuardFor(*rt, sc.policy_path); !g) return Fail(g.error());
  if (!sc.remote() && sc.isolation == config::Isolation::kShared) {
    rt->hub = std::make_shared<gateway::UpstreamHub>(
        sc.name, NewUpstream(sc), [this](int64_t, std::function<void()> fn) {
          boost::asio::post(io_, std::move(fn));
        });
    rt->hub->Warm(json::object{
        {"protocolVersion", mcp::kLatestVersion},
        {"capabilities", json::object{}},
        {"clientInfo", json::object{{"name", "toolwarden"}, {"version", TW_VERSION}}}});
  }
  return rt;
}

Result<const gateway::ToolCallGuard*> GatewayState::GuardFor(ServerRuntime& server,
                                                             const std::string& policy_path) {
  auto it = server.guards.find(policy_path);
  if (it != server.guards.end()) return it->second.get();
  auto holder = PolicyFor(policy_path);
  if (!holder) return Fail(holder.error());
  gateway::PolicyHolder* h = *holder;
  auto guard = std::make_unique<gateway::ToolCallGuard>(
      [h] { return h->Current(); }, *counters_, clock_,
      config_.state_fail_mode == "open" ? gateway::StateFailMode::kOpen
                                        : gateway::StateFailMode::kClosed);
  guard->SetPins(server.pins.get());
  guard->SetCatalog(server.catalog.get());
  guard->SetAudit(audit_.get(), server.config.name, config_.audit_include_arguments);
  guard->SetApprovals(approvals_.get(), waiter_);
  guard->SetMetrics(&metrics_);
  guard->SetGroupCommit(LoopPosterFor(io_));
  const gateway::ToolCallGuard* out = guard.get();
  server.guards.emplace(policy_path, std::move(guard));
  return out;
}

std::unique_ptr<gateway::Upstream> GatewayState::NewUpstream(const config::ServerConfig& sc) {
  if (sc.remote()) {
    transport::HttpUpstreamOptions o;
    o.url = *transport::ParseUpstreamUrl(sc.url);  // checked by Build
    o.headers = sc.headers;
    o.connect_timeout = std::chrono::milliseconds(sc.connect_timeout_ms);
    o.request_timeout = std::chrono::milliseconds(sc.request_timeout_ms);
    o.max_message_bytes = config_.max_body_bytes;
    return std::make_unique<transport::HttpUpstream>(io_, std::move(o));
  }
  transport::ChildOptions child;
  child.argv = sc.command;
  child.env = sc.env;
  if (!sc.inherit_all_env) {
    child.inherit = transport::ChildOptions::Inherit::kListed;
    child.inherit_names.assign(std::begin(config::kBaseEnvironment),
                               std::end(config::kBaseEnvironment));
    child.inherit_names.insert(child.inherit_names.end(), sc.inherit_env.begin(),
                               sc.inherit_env.end());
  }
  child.max_message_bytes = config_.max_body_bytes;
  return std::make_unique<transport::ChildUpstream>(io_, std::move(child));
}

std::unique_ptr<gateway::Upstream> GatewayState::Connect(ServerRuntime& server) {
  if (server.hub) return server.hub->NewChannel();
  return NewUpstream(server.config);
}

void GatewayState::SetApprovalWaiter(gateway::ApprovalWaiter* waiter,
                                     std::function<size_t()> waiting) {
  waiter_ = waiter;
  for (auto& [name, rt] : servers_) {
    for (auto& [path, guard] : rt->guards) guard->SetApprovals(approvals_.get(), waiter_);
  }
  metrics_.AddGauge("toolwarden_pending_approvals", "Calls waiting for a human's decision.",
                    [waiting] { return static_cast<double>(waiting()); });
}

void GatewayState::AddServerGauges(std::function<double()> sessions) {
  metrics_.AddGauge("toolwarden_sessions", "Open MCP sessions.", std::move(sessions));
  metrics_.AddGauge(
      "toolwarden_policy_reloads_total", "Policy reloads applied.",
      [this] {
        double n = 0;
        for (const auto& [p, pf] : policies_) n += static_cast<double>(pf.holder->reloads());
        return n;
      },
      "counter");
  metrics_.AddGauge(
      "toolwarden_policy_reload_failures_total",
      "Policy reloads refused because the file was invalid.",
      [this] {
        double n = 0;
        for (const auto& [p, pf] : policies_) n += static_cast<double>(pf.holder->failed_reloads());
        return n;
      },
      "counter");
  metrics_.AddGauge("toolwarden_config_reloads_total", "Config reloads applied.",
                    [this] { return static_cast<double>(config_reloads_); }, "counter");
  metrics_.AddGauge("toolwarden_config_reload_failures_total",
                    "Config reloads refused because the file was invalid.",
                    [this] { return static_cast<double>(config_reload_failures_); }, "counter");
  metrics_.AddGauge("toolwarden_unauthorized_requests_total",
                    "MCP requests refused with 401 (no, wrong, revoked or expired token).",
                    [this] { return static_cast<double>(unauthorized_); }, "counter");
  metrics_.AddGauge("toolwarden_servers_up", "Configured servers that are up.", [this] {
    double n = 0;
    for (const auto& s : Servers()) n += s.state == "up" ? 1 : 0;
    return n;
  });
}

void GatewayState::StartWatching(const std::string& config_path) {
  config_watcher_ = std::make_unique<FileWatcher>(io_, config_path, [this](const char* why, bool forced) {
    if (!forced && Sha256Hex(ReadText(config_.path)) == config_text_hash_) return;
    auto r = Reload();
    if (r) {
      spdlog::info("config reloaded ({}): {}", why, *r);
    } else {
      spdlog::error("config reload ({}) refused, keeping the current servers:\n{}", why,
                    r.error().message());
    }
  });
  config_watcher_->Start();
}

Result<std::string> GatewayState::Reload() {
  auto loaded = config::LoadConfig(config_.path);
  if (!loaded) {
    ++config_reload_failures_;
    return Fail(loaded.error());
  }
  config::Config next = std::move(*loaded);
  std::map<std::string, std::shared_ptr<ServerRuntime>> servers;
  std::vector<std::string> added, replaced, removed, kept;
  for (const auto& [name, sc] : next.servers) {
    auto it = servers_.find(name);
    if (it != servers_.end() && it->second->config.SameUpstream(sc) &&
        it->second->config.policy_path == sc.policy_path && it->second->config.pins == sc.pins) {
      servers[name] = it->second;
      kept.push_back(name);
      continue;
    }
    auto rt = Build(sc);
    if (!rt) {
      ++config_reload_failures_;
      return Fail(rt.error());
    }
    servers[name] = std::move(*rt);
    (it == servers_.end() ? added : replaced).push_back(name);
  }
  for (const auto& [name, rt] : servers_) {
    if (!servers.contains(name)) removed.push_back(name);
  }
  if (next.listen != config_.listen || next.state != config_.state) {
    spdlog::warn("config: listen and state take effect at the next start");
  }
  // What the running gateway can apply now; the rest waits for a restart.
  next.listen = config_.listen;
  next.state = config_.state;
  config_ = std::move(next);
  servers_ = std::move(servers);  // sessions still using a replaced server keep it alive
  config_text_hash_ = Sha256Hex(ReadText(config_.path));
  ++config_reloads_;
  std::string summary;
  auto part = [&](const char* what, const std::vector<std::string>& v) {
    if (v.empty()) return;
    summary += (summary.empty() ? "" : "; ") + std::string(what) + " " + Join(v);
  };
  part("added", added);
  part("replaced", replaced);
  part("removed", removed);
  part("unchanged", kept);
  return summary.empty() ? std::string("no servers") : summary;
}

Result<std::string> GatewayState::Authenticate(std::string_view authorization) {
  std::string token;
  std::string refusal;
  if (std::optional<std::string> bearer = auth::BearerToken(authorization)) {
    token = std::move(*bearer);
  } else {
    refusal = "the Authorization header must use the Bearer scheme";
  }
  const int64_t now = clock_.NowMs();
  if (refusal.empty()) {
    auto verdict = grants_->Authenticate(token, now);
    if (!verdict) {
      spdlog::error("authentication: {}", verdict.error().message());
      return Fail(Error::Unavailable("the grant store is unavailable"));
    }
    if (verdict->grant) return verdict->grant->name;
    refusal = std::string(auth::RefusalText(verdict->refusal));
  }
  // Refusals are audited — never with the token.
  audit::Record r;
  r.id = audit::NewRecordId();
  r.ts_ms = now;
  r.decision = "deny";
  r.rule = "authentication";
  r.reason = refusal;
  r.outcome = "not_forwarded";
  // By the writer thread: a state file locked by another process must not hold the loop.
  audit_->Submit(std::move(r), {}, [](bool ok) {
    if (!ok) spdlog::error("audit: the record of a refused authentication could not be written");
  });
  ++unauthorized_;
  return Fail(Error::InvalidArgument(refusal));
}

void GatewayState::ObserveHealth(const std::string& server, bool up, const std::string& why) {
  auto it = servers_.find(server);
  if (it == servers_.end() || it->second->hub) return;
  it->second->state = up ? "up" : "down";
  it->second->last_error = why;
  it->second->changed_ms = clock_.NowMs();
}

Result<transport::HttpMcpSession::RelayMaker> GatewayState::MakeSession(
    const transport::SessionRequest& r) {
  auto grant = grants_->Get(r.grant);
  if (!grant) return Fail(Error::Unavailable(grant.error().message()));
  if (!*grant) return Fail(Error::InvalidArgument("Forbidden: unknown grant"));
  const auth::Grant g = **grant;
  auto scheduler = [this](int64_t delay_ms, std::function<void()> fn) {
    auto timer = std::make_shared<boost::asio::steady_timer>(io_, std::chrono::milliseconds(delay_ms));
    timer->async_wait([timer, fn = std::move(fn)](boost::system::error_code ec) {
      if (!ec) fn();
    });
  };
  auto health = [this](const std::string& server, bool up, const std::string& why) {
    ObserveHealth(server, up, why);
  };
  auto policy_of = [&g](const ServerRuntime& rt) {
    auto it = g.policies.find(rt.config.name);
    return it == g.policies.end() ? rt.config.policy_path : it->second;
  };

  if (!r.route.empty()) {
    auto it = servers_.find(r.route);
    if (it == servers_.end()) return Fail(Error::NotFound("Not found: no server \"" + r.route + "\""));
    if (!g.MayUse(r.route)) {
      return Fail(Error::InvalidArgument("Forbidden: grant \"" + g.name + "\" may not use server \"" +
                                         r.route + "\""));
    }
    std::shared_ptr<ServerRuntime> rt = it->second;
    auto guard = GuardFor(*rt, policy_of(*rt));
    if (!guard) {
      spdlog::error("grant {}: server {}: {}", g.name, rt->config.name, guard.error().message());
      return Fail(Error::Unavailable("the policy for this grant cannot be loaded"));
    }
    return transport::HttpMcpSession::RelayMaker(
        [this, rt, guard = *guard, id = r.id, grant = g.name, health](gateway::ClientSink& sink)
            -> std::unique_ptr<gateway::McpSession> {
          auto session = std::make_unique<gateway::Session>(id, Connect(*rt), *guard, sink, grant);
          session->SetExtensionMethods(std::set<std::string, std::less<>>(
              rt->config.extension_methods.begin(), rt->config.extension_methods.end()));
          session->SetHealthObserver([health, name = rt->config.name](bool up, const std::string& why) {
            health(name, up, why);
          });
          return std::make_unique<HoldingSession>(std::move(session),
                                                  std::vector<std::shared_ptr<ServerRuntime>>{rt});
        });
  }

  // The aggregate: every server this grant may use.
  std::vector<std::pair<std::shared_ptr<ServerRuntime>, const gateway::ToolCallGuard*>> members;
  for (const auto& [name, rt] : servers_) {
    if (!g.MayUse(name)) continue;
    auto guard = GuardFor(*rt, policy_of(*rt));
    if (!guard) {
      // Fail closed: a server whose policy for this grant cannot be loaded is not offered.
      spdlog::error("grant {}: server {} left out: {}", g.name, name, guard.error().message());
      continue;
    }
    members.emplace_back(rt, *guard);
  }
  return transport::HttpMcpSession::RelayMaker(
      [this, members, id = r.id, grant = g.name, scheduler, health](gateway::ClientSink& sink)
          -> std::unique_ptr<gateway::McpSession> {
        std::vector<gateway::AggregateMember> legs;
        std::vector<std::shared_ptr<ServerRuntime>> held;
        for (const auto& [rt, guard] : members) {
          legs.push_back({rt->config.name, Connect(*rt), guard});
          held.push_back(rt);
        }
        gateway::AggregateOptions options;
        options.server_version = TW_VERSION;
        options.on_health = health;
        auto session = std::make_unique<gateway::AggregateSession>(id, std::move(legs), sink, grant,
                                                                   scheduler, std::move(options));
        return std::make_unique<HoldingSession>(std::move(session), std::move(held));
      });
}

transport::HttpServerOptions::AdminReply GatewayState::HandleAdmin(
    const transport::HttpServerOptions::AdminCall& call) {
  const std::string_view path = std::string_view(call.target).substr(0, call.target.find('?'));
  if (path == "/ui" || path.starts_with("/ui/")) {
    console::StaticReply r = console::Serve(call.method, path, call.if_none_match);
    return {r.status, std::move(r.body), std::move(r.content_type), std::move(r.headers), nullptr};
  }
  admin::Response r = api_.Handle({call.method, call.target, call.body, call.authorization,
                                   call.content_type, call.cookie, call.csrf, call.client});
  return {r.status, std::move(r.body), std::move(r.content_type), std::move(r.headers),
          std::move(r.events)};
}

std::vector<admin::ServerInfo> GatewayState::Servers() {
  std::vector<admin::ServerInfo> out;
  for (const auto& [name, rt] : servers_) {
    const config::ServerConfig& c = rt->config;
    admin::ServerInfo s;
    s.name = name;
    s.transport = c.remote() ? "http" : "stdio";
    if (c.remote()) {
      s.target = c.url;
    } else {
      for (const auto& a : c.command) s.target += (s.target.empty() ? "" : " ") + a;
      s.isolation = c.isolation == config::Isolation::kShared ? "shared" : "session";
    }
    s.policy = c.policy_path;
    s.policy_version = rt->policy->Current()->version;
    s.pins = c.pins;
    if (rt->hub) {
      s.state = rt->hub->up() ? "up" : rt->hub->last_error().empty() ? "starting" : "down";
      s.last_error = rt->hub->last_error();
    } else {
      s.state = rt->state;
      s.last_error = rt->last_error;
      s.changed_ms = rt->changed_ms;
    }
    out.push_back(std::move(s));
  }
  return out;
}

std::shared_ptr<const policy::Policy> GatewayState::PolicyOf(const std::string& server) {
  auto it = servers_.find(server);
  return it == servers_.end() ? nullptr : it->second->policy->Current();
}

std::vector<admin::PolicyInfo> GatewayState::Policies() {
  std::vector<admin::PolicyInfo> out;
  for (const auto& [path, pf] : policies_) {
    admin::PolicyInfo p;
    p.path = path;
    p.version = pf.holder->Current()->version;
    for (const auto& [name, rt] : servers_) {
      if (rt->config.policy_path == path) p.servers.push_back(name);
    }
    p.reloads = pf.holder->reloads();
    p.failed_reloads = pf.holder->failed_reloads();
    p.text = ReadText(path);
    out.push_back(std::move(p));
  }
  return out;
}

Result<std::vector<audit::Record>> GatewayState::QueryAudit(const audit::Query& q) {
  audit_->Flush();
  return audit::QueryAudit(state_spec_, q);
}

Result<int64_t> GatewayState::CountAudit(const audit::Query& q) {
  audit_->Flush();
  return audit::CountAudit(state_spec_, q);
}

Result<std::vector<audit::Bucket>> GatewayState::AuditHistogram(const audit::Query& q,
                                                                 int64_t bucket_ms) {
  audit_->Flush();
  return audit::AuditHistogram(state_spec_, q, bucket_ms);
}

std::shared_ptr<const policy::Policy> GatewayState::PolicyForGrant(const std::string& server,
                                                                   const auth::Grant& grant) {
  auto override_path = grant.policies.find(server);
  if (override_path != grant.policies.end()) {
    auto it = policies_.find(override_path->second);
    if (it != policies_.end()) return it->second.holder->Current();
  }
  return PolicyOf(server);
}

Result<int64_t> GatewayState::CounterUsed(const policy::Limit& limit, const std::string& scope_id,
                                          int64_t now_ms) {
  const policy::PlannedCharge charge{&limit, 0, limit.window.Start(now_ms), limit.window.End(now_ms)};
  return counters_->Value(gateway::CounterKeyFor(charge, policy::Identity{scope_id, scope_id, {}}),
                          now_ms);
}

Result<std::string> GatewayState::ReadPolicyFile(const std::string& path) {
  return policy::ReadPolicyText(path);
}

Result<bool> GatewayState::WritePolicyFile(const std::string& path, const std::string& text) {
  namespace fs = std::filesystem;
  auto it = policies_.find(path);
  if (it == policies_.end()) return Fail(Error::InvalidArgument(path + " is not a policy in force"));
  std::error_code ec;
  // A symlinked policy (a Kubernetes ConfigMap, say) is replaced where it points.
  fs::path target = fs::is_symlink(path, ec) ? fs::canonical(path, ec) : fs::path(path);
  if (ec) return Fail(Error::Unavailable("cannot resolve " + path + ": " + ec.message()));
  struct stat st{};
  const mode_t mode = ::stat(target.c_str(), &st) == 0 ? (st.st_mode & 07777) : 0644;
  const fs::path tmp = target.parent_path() / ("." + target.filename().string() + ".tw-" + RandomHex(6));
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return Fail(Error::Unavailable("cannot write beside " + target.string() + ": " + std::strerror(errno)));
  bool ok = true;
  for (size_t done = 0; ok && done < text.size();) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) done += static_cast<size_t>(n);
  }
  ok = ok && ::fchmod(fd, mode) == 0 && ::fsync(fd) == 0;
  const int saved_errno = errno;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), target.c_str()) != 0) {
    const std::string why = std::strerror(ok ? errno : saved_errno);
    ::unlink(tmp.c_str());
    return Fail(Error::Unavailable("cannot write " + target.string() + ": " + why));
  }
  if (const int dir = ::open(target.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dir >= 0) {
    ::fsync(dir);  // the rename itself survives a crash
    ::close(dir);
  }
  spdlog::info("policy {} saved from the web console", path);
  it->second.reloader->ReloadNow("saved from the web console");
  return true;
}

}  // namespace tw::app
