#include "app/gateway.h"

#include <spdlog/spdlog.h>
#include <strings.h>

#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/steady_timer.hpp>
#include <set>

#include "gateway/aggregate_session.h"
#include "gateway/era_upstream.h"
#include "mcp/protocol.h"
#include "policy/loader.h"
#include "transport/child_upstream.h"
#include "transport/event_loops.h"
#include "transport/http_upstream.h"

#ifndef TW_VERSION
#define TW_VERSION "0.0.0"
#endif

namespace tw::app {

boost::asio::io_context& LoopHere(boost::asio::io_context& fallback) {
  boost::asio::io_context* here = transport::EventLoops::Current();
  return here != nullptr ? *here : fallback;
}

std::function<gateway::LoopPoster()> LoopPosterFor(boost::asio::io_context& io) {
  return [&io]() -> gateway::LoopPoster {
    // A tracked executor counts as work for io.run() for as long as a copy lives.
    return [ex = boost::asio::prefer(LoopHere(io).get_executor(),
                                     boost::asio::execution::outstanding_work.tracked)](
               std::function<void()> fn) { boost::asio::post(ex, std::move(fn)); };
  };
}

gateway::Post PostTo(boost::asio::io_context& io) {
  return [&io](std::function<void()> fn) { boost::asio::post(io, std::move(fn)); };
}

ServerRuntime::~ServerRuntime() {
  if (!hub) return;
  std::string why = "server " + config.name + " was removed from the config";
  boost::asio::io_context* here = transport::EventLoops::Current();
  if (home == nullptr || here == nullptr || here == home) {
    hub->Close(why);
  } else {
    boost::asio::post(*home, [hub = hub, why = std::move(why)] { hub->Close(why); });
  }
}

Gateway::Gateway(boost::asio::io_context& io, const config::Config& config, const Clock& clock)
    : io_(io), config_(config), clock_(clock) {}

Gateway::~Gateway() { Stop(); }

Result<std::unique_ptr<Gateway>> Gateway::Open(boost::asio::io_context& io,
                                               const config::Config& config, const Clock& clock) {
  std::unique_ptr<Gateway> s(new Gateway(io, config, clock));
  if (auto ok = s->OpenState(); !ok) return Fail(ok.error());
  for (const auto& [name, sc] : config.servers) {
    auto rt = s->Build(sc);
    if (!rt) return Fail(rt.error());
    s->servers_[name] = std::move(*rt);
  }
  if (!config.path.empty()) s->config_text_hash_ = s->ConfigFileHash();
  s->AddGauges();
  spdlog::info("state in {}", s->counters_->Describe());
  return s;
}

void Gateway::Stop() {
  std::lock_guard lock(mu_);
  if (approvals_) approvals_->OnResolved({});
  if (shipper_) {
    audit_->Flush();
    shipper_->Stop();  // after one last pass
  }
  if (polling_) polling_->Stop();
  if (config_watcher_) config_watcher_->Stop();
  for (auto& [path, pf] : policies_) {
    if (pf.reloader) pf.reloader->Stop();
  }
  for (auto& [name, rt] : servers_) {
    if (rt->hub) rt->hub->Close("the gateway is stopping");
  }
  timers_.CancelAll();
}

std::string Gateway::ServerNames() const {
  std::lock_guard lock(mu_);
  std::string out;
  for (const auto& [name, rt] : servers_) out += (out.empty() ? "" : ", ") + name;
  return out;
}

Result<gateway::PolicyHolder*> Gateway::PolicyFor(const std::string& path) {
  std::lock_guard lock(mu_);
  auto it = policies_.find(path);
  if (it != policies_.end()) return it->second.holder.get();
  auto policy = policy::LoadPolicyFile(path);
  if (!policy) return Fail(policy.error());
  PolicyFile pf;
  pf.holder = std::make_unique<gateway::PolicyHolder>(*policy);
  gateway::PolicyHolder* holder = pf.holder.get();
  policies_.emplace(path, std::move(pf));
  // Its watcher belongs to the home loop (a grant's own policy is first read when one of its
  // sessions opens, on any loop).
  auto watch = [this, path] {
    std::lock_guard relock(mu_);
    auto found = policies_.find(path);
    if (found == policies_.end() || found->second.reloader) return;
    found->second.reloader = std::make_unique<PolicyReloader>(io_, path, *found->second.holder);
    found->second.reloader->Start();
  };
  if (&LoopHere(io_) == &io_) {
    watch();
  } else {
    boost::asio::post(io_, std::move(watch));
  }
  return holder;
}

Result<std::shared_ptr<ServerRuntime>> Gateway::Build(const config::ServerConfig& sc) {
  auto rt = std::make_shared<ServerRuntime>();
  rt->config = sc;
  rt->home = &io_;
  auto policy = PolicyFor(sc.policy_path);
  if (!policy) {
    return Fail(Error::InvalidArgument("server \"" + sc.name + "\": " + policy.error().message()));
  }
  rt->policy = *policy;
  if ((*policy)->Current()->shadow_only) {
    return Fail(Error::InvalidArgument("server \"" + sc.name + "\": " + sc.policy_path +
                                       " says mode: shadow, a candidate that decides nothing; "
                                       "name it under policy_shadow and give the server a policy "
                                       "that decides"));
  }
  if (!sc.policy_shadow_path.empty()) {
    auto shadow = PolicyFor(sc.policy_shadow_path);
    if (!shadow) {
      return Fail(Error::InvalidArgument("server \"" + sc.name + "\": policy_shadow: " +
                                         shadow.error().message()));
    }
    rt->shadow_policy = *shadow;
  }
  if (sc.remote()) {
    if (auto url = transport::ParseUpstreamUrl(sc.url); !url) {
      return Fail(Error::InvalidArgument("server \"" + sc.name + "\": " + url.error().message()));
    }
  } else if (auto exe = transport::FindExecutable(sc.command.front()); !exe) {
    spdlog::error("server {}: {} (it stays down until the config is fixed)", sc.name,
                  exe.error().message());
  }
  if (sc.pins != config::PinMode::kOff) {
    rt->pins = std::make_unique<gateway::ToolPins>(
        *pin_store_, sc.name,
        sc.pins == config::PinMode::kWarn       ? gateway::PinMode::kWarn
        : sc.pins == config::PinMode::kShadow   ? gateway::PinMode::kShadow
        : sc.pins == config::PinMode::kApproval ? gateway::PinMode::kApproval
                                                : gateway::PinMode::kEnforce,
        clock_);
  }
  if (sc.inherit_all_env && config_.access == config::Access::kTokens) {
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
  if (!sc.remote() && sc.isolation == config::Isolation::kSession) {
    rt->memory = std::make_shared<gateway::ServerMemories>();
  }
  if (!sc.remote() && sc.isolation == config::Isolation::kShared) {
    rt->hub = std::make_shared<gateway::UpstreamHub>(
        sc.name, NewUpstream(sc, io_), [this](int64_t, std::function<void()> fn) {
          boost::asio::post(io_, std::move(fn));
        });
    rt->hub->Warm(json::object{
        {"protocolVersion", mcp::kLatestVersion},
        {"capabilities", json::object{}},
        {"clientInfo", json::object{{"name", "toolwarden"}, {"version", TW_VERSION}}}});
  }
  return rt;
}

Result<const gateway::ToolCallGuard*> Gateway::GuardFor(ServerRuntime& server,
                                                             const std::string& policy_path) {
  std::lock_guard lock(mu_);
  auto it = server.guards.find(policy_path);
  if (it != server.guards.end()) return it->second.get();
  auto holder = PolicyFor(policy_path);
  if (!holder) return Fail(holder.error());
  gateway::PolicyHolder* h = *holder;
  // The server's shadow is a candidate for its own policy: a grant's own policy for the server
  // has only the shadow parts of its file.
  gateway::PolicySource shadow;
  if (policy_path == server.config.policy_path) {
    shadow = [rt = &server]() -> std::shared_ptr<const policy::Policy> {
      if (auto draft = rt->draft_shadow.Current()) return draft;
      return rt->shadow_policy ? policy::WouldBe(rt->shadow_policy->Current()) : nullptr;
    };
  }
  auto guard = std::make_unique<gateway::ToolCallGuard>(gateway::GuardDeps{
      .policies = [h] { return h->Current(); },
      .counters = counters_.get(),
      .clock = &clock_,
      .fail_mode = server.config.state_fail_mode.value_or(config_.state_fail_mode) ==
                           config::StateFailMode::kOpen
                       ? gateway::StateFailMode::kOpen
                       : gateway::StateFailMode::kClosed,
      .server = server.config.name,
      .catalog = server.catalog.get(),
      .pins = server.pins.get(),
      .audit = audit_.get(),
      .arguments = catalog::ArgumentRedactor::Make(config_.audit_arguments, config_.audit_redact)
                       .value_or(catalog::ArgumentRedactor()),
      .shadow = std::move(shadow),
      .approvals = approvals_.get(),
      .waiter = bridged_waiter_.get(),
      .metrics = &metrics_,
      .group_commit = LoopPosterFor(io_),
      .batcher = batcher_.get(),
  });
  const gateway::ToolCallGuard* out = guard.get();
  server.guards.emplace(policy_path, std::move(guard));
  return out;
}

std::unique_ptr<gateway::Upstream> Gateway::NewUpstream(const config::ServerConfig& sc,
                                                        boost::asio::io_context& io) {
  using Era = config::ProtocolEra;
  const Era era = sc.protocol.value_or(sc.remote() ? Era::kAuto : Era::kLegacy);
  return std::make_unique<gateway::EraUpstream>(
      NewTransportUpstream(sc, io), era == Era::kAuto     ? gateway::EraUpstream::Mode::kAuto
                                    : era == Era::kModern ? gateway::EraUpstream::Mode::kModern
                                                          : gateway::EraUpstream::Mode::kLegacy);
}

std::unique_ptr<gateway::Upstream> Gateway::NewTransportUpstream(const config::ServerConfig& sc,
                                                                 boost::asio::io_context& io) {
  if (sc.remote()) {
    transport::HttpUpstreamOptions o;
    o.url = *transport::ParseUpstreamUrl(sc.url);  // checked by Build
    o.headers = sc.headers;
    o.ca_file = sc.ca_file;
    o.connect_timeout = std::chrono::milliseconds(sc.connect_timeout_ms);
    o.request_timeout = std::chrono::milliseconds(sc.request_timeout_ms);
    o.max_message_bytes = config_.max_body_bytes;
    return std::make_unique<transport::HttpUpstream>(io, std::move(o));
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
  return std::make_unique<transport::ChildUpstream>(io, std::move(child));
}

std::unique_ptr<gateway::Upstream> Gateway::Connect(ServerRuntime& server, const std::string& grant,
                                                    const auth::Headers* own) {
  boost::asio::io_context& here = LoopHere(io_);
  if (own) {
    // credentials: per_principal — this caller's own headers over the config's.
    config::ServerConfig sc = server.config;
    for (const auto& [name, value] : *own) {
      std::erase_if(sc.headers, [&](const auto& h) { return strcasecmp(h.first.c_str(), name.c_str()) == 0; });
      sc.headers.emplace_back(name, value);
    }
    return NewUpstream(sc, here);
  }
  if (server.memory) {
    // isolation: session — a process per session, started when the session first needs it.
    return std::make_unique<gateway::LazyUpstream>(
        server.config.name, [this, sc = server.config, &here] { return NewUpstream(sc, here); },
        server.memory->For(grant), PostTo(here), timers_.On(here), clock_,
        server.config.idle_timeout_ms);
  }
  if (!server.hub) return NewUpstream(server.config, here);  // on the session's loop
  if (&here == &io_) return server.hub->NewChannel();
  // A session on another loop reaches the shared connection through the home loop.
  return std::make_unique<gateway::LoopBridgedUpstream>(
      [hub = server.hub] { return hub->NewChannel(); }, PostTo(io_), PostTo(here));
}

void Gateway::CountSessions(std::function<double()> sessions) { sessions_ = std::move(sessions); }

void Gateway::ObserveHealth(const std::string& server, bool up, const std::string& why) {
  std::lock_guard lock(mu_);
  auto it = servers_.find(server);
  if (it == servers_.end() || it->second->hub) return;
  it->second->state = up ? "up" : "down";
  it->second->last_error = why;
  it->second->changed_ms = clock_.NowMs();
}

gateway::SessionMaker Gateway::OneServer(std::shared_ptr<ServerRuntime> rt,
                                         const gateway::ToolCallGuard& guard, std::string id,
                                         gateway::Caller caller,
                                         std::shared_ptr<const auth::Headers> own) {
  return [this, rt = std::move(rt), &guard, id = std::move(id), caller = std::move(caller),
          own = std::move(own)](gateway::ClientSink& sink) -> std::unique_ptr<gateway::McpSession> {
    auto session =
        std::make_unique<gateway::Session>(id, Connect(*rt, caller.grant, own.get()), guard, sink, caller);
    session->SetExtensionMethods(std::set<std::string, std::less<>>(
        rt->config.extension_methods.begin(), rt->config.extension_methods.end()));
    session->SetHealthObserver([this, name = rt->config.name](bool up, const std::string& why) {
      ObserveHealth(name, up, why);
    });
    session->KeepAlive(rt);
    return session;
  };
}

Result<gateway::SessionMaker> Gateway::MakeSession(const transport::SessionRequest& r) {
  std::lock_guard lock(mu_);
  if (config_.access == config::Access::kLocal) {
    if (!r.route.empty()) {
      return Fail(Error::NotFound("Not found: this gateway serves one server, on /mcp"));
    }
    std::shared_ptr<ServerRuntime> rt = servers_.begin()->second;  // exactly one (CheckConfig)
    auto guard = GuardFor(*rt, rt->config.policy_path);
    if (!guard) return Fail(Error::Unavailable(guard.error().message()));
    return OneServer(rt, **guard, r.id, "local");
  }
  auto caller = CallerOf(r.grant);
  if (!caller && caller.error().code() == ErrorCode::kUnavailable) return Fail(caller.error());
  if (!caller) return Fail(Error::InvalidArgument("Forbidden: unknown grant"));
  const auth::Grant& g = caller->grant;
  auto policy_of = [&g](const ServerRuntime& rt) {
    auto it = g.policies.find(rt.config.name);
    return it == g.policies.end() ? rt.config.policy_path : it->second;
  };

  if (!r.route.empty()) {
    auto it = servers_.find(r.route);
    if (it == servers_.end()) return Fail(Error::NotFound("Not found: no server \"" + r.route + "\""));
    if (!g.MayUse(r.route) || !ServerAdmits(it->second->config, *caller)) {
      return Fail(Error::InvalidArgument("Forbidden: grant \"" + g.name + "\" may not use server \"" +
                                         r.route + "\""));
    }
    std::shared_ptr<ServerRuntime> rt = it->second;
    auto guard = GuardFor(*rt, policy_of(*rt));
    if (!guard) {
      spdlog::error("grant {}: server {}: {}", g.name, rt->config.name, guard.error().message());
      return Fail(Error::Unavailable("the policy for this grant cannot be loaded"));
    }
    std::shared_ptr<const auth::Headers> own;
    if (rt->config.per_principal_credentials) {
      own = CredentialsFor(rt->config.name, g.principal);
      if (!own) {
        return Fail(Error::InvalidArgument("Forbidden: server \"" + r.route + "\" acts as each person, and " +
                                           (g.principal.empty() ? std::string("this caller names nobody")
                                                                : "no credentials are stored for " + g.principal) +
                                           " (toolwarden credentials set)"));
      }
    }
    return OneServer(rt, **guard, r.id, CallerFor(*caller), std::move(own));
  }

  // The aggregate: every server this grant may use.
  struct Member {
    std::shared_ptr<ServerRuntime> rt;
    const gateway::ToolCallGuard* guard;
    std::shared_ptr<const auth::Headers> own;  // credentials: per_principal
  };
  std::vector<Member> members;
  for (const auto& [name, rt] : servers_) {
    if (!g.MayUse(name) || !ServerAdmits(rt->config, *caller)) continue;
    auto guard = GuardFor(*rt, policy_of(*rt));
    if (!guard) {
      // Fail closed: a server whose policy for this grant cannot be loaded is not offered.
      spdlog::error("grant {}: server {} left out: {}", g.name, name, guard.error().message());
      continue;
    }
    std::shared_ptr<const auth::Headers> own;
    if (rt->config.per_principal_credentials) {
      own = CredentialsFor(name, g.principal);
      if (!own) continue;  // acts as each person: never as nobody, never with the config's headers
    }
    members.push_back({rt, *guard, std::move(own)});
  }
  // The session's timers run on its loop (this one).
  gateway::Scheduler scheduler = timers_.On(LoopHere(io_));
  return gateway::SessionMaker(
      [this, members, id = r.id, who = CallerFor(*caller), scheduler](gateway::ClientSink& sink)
          -> std::unique_ptr<gateway::McpSession> {
        std::vector<gateway::AggregateMember> legs;
        for (const Member& m : members) {
          legs.push_back({m.rt->config.name, Connect(*m.rt, who.grant, m.own.get()), m.guard});
        }
        gateway::AggregateOptions options;
        options.server_version = TW_VERSION;
        options.on_health = [this](const std::string& server, bool up, const std::string& why) {
          ObserveHealth(server, up, why);
        };
        auto session = std::make_unique<gateway::AggregateSession>(id, std::move(legs), sink, who,
                                                                   scheduler, std::move(options));
        for (const Member& m : members) session->KeepAlive(m.rt);
        return session;
      });
}

}  // namespace tw::app
