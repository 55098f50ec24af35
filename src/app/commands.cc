#include "app/commands.h"

#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <boost/asio.hpp>
#include <csignal>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "admin/api.h"
#include "app/approval_waiter.h"
#include "app/demo.h"
#include "app/gateway_state.h"
#include "app/init.h"
#include "app/policy_reloader.h"
#include "app/scan.h"
#include "app/serve.h"
#include "app/server_target.h"
#include "app/shutdown.h"
#include "approval/approval_store.h"
#include "audit/audit.h"
#include "auth/grant_store.h"
#include "catalog/pin_store.h"
#include "common/canonical_json.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/sqlite_db.h"
#include "config/config.h"
#include "gateway/policy_holder.h"
#include "gateway/tool_call_guard.h"
#include "gateway/tool_pins.h"
#include "limits/counter_store.h"
#include "policy/loader.h"
#include "transport/child_upstream.h"
#include "transport/http_client.h"
#include "transport/http_server.h"
#include "transport/http_upstream.h"
#include "transport/stdio_server.h"

#ifndef TW_VERSION
#define TW_VERSION "0.0.0"
#endif

namespace tw::app {

namespace asio = boost::asio;

namespace {

struct RunOptions {
  std::string policy_path;
  std::string upstream_url;
  std::vector<std::string> headers;
  std::string listen;
  std::vector<std::string> command;
  size_t max_message_bytes = 4 << 20;
  std::vector<std::string> allowed_hosts;
  std::vector<std::string> allowed_origins;
  bool no_origin_check = false;
  double connect_timeout_s = 10;
  double request_timeout_s = 300;
  double client_timeout_s = 30;
  double sse_keepalive_s = 15;
  std::string upstream_ca;
  std::optional<size_t> max_sessions;
  double session_idle_s = 1800;
  std::string state;
  std::string state_fail_mode = "closed";
  double state_timeout_s = 5;
  std::string server_name;
  std::string pin_mode = "enforce";
  std::string unlisted_tools = "deny";
  std::string schema = "enforce";
  std::vector<std::string> extension_methods;
  std::string audit_log;
  bool audit_arguments = false;
  double shutdown_timeout_s = 10;
};

struct AuditOptions {
  std::string config;
  std::string state;
  std::string since;
  std::string grant, server, tool, decision;
  int limit = 50;
  bool json = false;
};

struct PinsOptions {
  std::string config;
  std::string state;
  std::string server;
  std::string tool;
};


struct ExplainOptions {
  std::string policy_path;
  std::string tool;
  std::string args = "{}";
  std::string grant = "local";
  std::string state;
};

}  // namespace

Result<std::pair<std::string, uint16_t>> ParseListen(const std::string& listen) {
  size_t colon = listen.rfind(':');
  if (colon == std::string::npos) {
    return Fail(Error::InvalidArgument("--listen \"" + listen + "\" must be HOST:PORT"));
  }
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  int port = -1;
  try {
    size_t used = 0;
    port = std::stoi(listen.substr(colon + 1), &used);
    if (used != listen.size() - colon - 1) port = -1;
  } catch (const std::exception&) {
  }
  if (port < 0 || port > 65535) {
    return Fail(Error::InvalidArgument("--listen \"" + listen + "\": invalid port"));
  }
  return std::make_pair(host, static_cast<uint16_t>(port));
}

namespace {

int RunCommand(const RunOptions& o) {
  if (o.upstream_url.empty() == o.command.empty()) {
    std::cerr
        << "toolwarden run: give exactly one upstream: -- COMMAND [ARGS...] or --upstream URL\n";
    return kExitUsage;
  }
  auto policy = policy::LoadPolicyFile(o.policy_path);
  if (!policy) {
    std::cerr << policy.error().message() << "\n";
    return kExitInvalid;
  }
  auto store = limits::OpenStateStore(o.state.empty() ? limits::DefaultStateSpec() : o.state);
  if (!store) {
    std::cerr << "toolwarden run: " << store.error().message() << "\n";
    return kExitUnavailable;
  }
  SetSqliteBusyTimeout(std::chrono::milliseconds(static_cast<int64_t>(o.state_timeout_s * 1000)));
  SystemClock clock;
  gateway::PolicyHolder holder(*policy);
  gateway::ToolCallGuard guard([&holder] { return holder.Current(); }, **store, clock,
                               o.state_fail_mode == "open" ? gateway::StateFailMode::kOpen
                                                           : gateway::StateFailMode::kClosed);
  spdlog::info("policy {} loaded; counters in {}", o.policy_path, (*store)->Describe());

  // Rug-pull protection: tool definitions pinned in the same state store.
  const std::string server_name =
      o.server_name.empty() ? DeriveServerName(o.command, o.upstream_url) : o.server_name;
  std::unique_ptr<catalog::PinStore> pin_store;
  std::unique_ptr<gateway::ToolPins> pins;
  if (o.pin_mode != "off") {
    auto ps = catalog::OpenPinStore(o.state.empty() ? limits::DefaultStateSpec() : o.state);
    if (!ps) {
      std::cerr << "toolwarden run: " << ps.error().message() << "\n";
      return kExitUnavailable;
    }
    pin_store = std::move(*ps);
    pins = std::make_unique<gateway::ToolPins>(
        *pin_store, server_name,
        o.pin_mode == "warn" ? gateway::PinMode::kWarn : gateway::PinMode::kEnforce, clock);
    guard.SetPins(pins.get());
    spdlog::info("tool pins for server \"{}\": {}", server_name, o.pin_mode);
  }

  // Tool identity and argument schemas: a call names a tool the server listed.
  gateway::ToolCatalog tool_catalog(
      server_name,
      o.unlisted_tools == "allow" ? gateway::UnlistedTools::kAllow : gateway::UnlistedTools::kDeny,
      o.schema == "off"    ? gateway::SchemaMode::kOff
      : o.schema == "warn" ? gateway::SchemaMode::kWarn
                           : gateway::SchemaMode::kEnforce);
  guard.SetCatalog(&tool_catalog);
  const std::set<std::string, std::less<>> extension_methods(o.extension_methods.begin(),
                                                             o.extension_methods.end());

  // The audit trail: one record per decided call, in the state store (and JSON lines).
  if (o.audit_log == "-" && o.listen.empty()) {
    std::cerr << "toolwarden run: --audit-log - needs --listen (stdout carries the MCP stream)\n";
    return kExitUsage;
  }
  auto audit_log = audit::OpenAuditLog(o.state.empty() ? limits::DefaultStateSpec() : o.state,
                                       o.audit_log == "-" ? "/dev/stdout" : o.audit_log);
  if (!audit_log) {
    std::cerr << "toolwarden run: " << audit_log.error().message() << "\n";
    return kExitUnavailable;
  }
  guard.SetAudit(audit_log->get(), server_name, o.audit_arguments);

  // Approvals: held calls wait for `toolwarden approvals approve|deny`.
  auto approvals = approval::OpenApprovalStore(o.state.empty() ? limits::DefaultStateSpec() : o.state);
  if (!approvals) {
    std::cerr << "toolwarden run: " << approvals.error().message() << "\n";
    return kExitUnavailable;
  }
  if (auto n = (*approvals)->AbandonOrphans(clock.NowMs()); n && *n > 0) {
    spdlog::warn("{} approval(s) left pending by a gateway that stopped were marked abandoned", *n);
  }

  transport::HttpUpstreamOptions http_options;
  if (!o.upstream_url.empty()) {
    auto url = transport::ParseUpstreamUrl(o.upstream_url);
    if (!url) {
      std::cerr << "toolwarden run: " << url.error().message() << "\n";
      return kExitUsage;
    }
    http_options.url = *url;
    for (const auto& h : o.headers) {
      auto header = ParseHeader(h);
      if (!header) {
        std::cerr << "toolwarden run: " << header.error().message() << "\n";
        return kExitUsage;
      }
      http_options.headers.push_back(*header);
    }
    http_options.connect_timeout =
        std::chrono::milliseconds(static_cast<long>(o.connect_timeout_s * 1000));
    http_options.request_timeout =
        std::chrono::milliseconds(static_cast<long>(o.request_timeout_s * 1000));
    http_options.max_message_bytes = o.max_message_bytes;
    http_options.ca_file = o.upstream_ca;
  } else {
    auto exe = transport::FindExecutable(o.command.front());
    if (!exe) {
      std::cerr << "toolwarden run: " << exe.error().message() << "\n";
      return kExitUnavailable;
    }
  }

  asio::io_context io(1);
  // Records (and their charges) committed off this thread, many calls per commit.
  guard.SetGroupCommit(LoopPosterFor(io));
  // Whatever way run() ends, records still in flight post their completion to io: let them,
  // before io goes.
  struct FlushAudit {
    audit::AuditLog& log;
    ~FlushAudit() { log.Flush(); }
  } flush_audit{**audit_log};
  auto make_upstream = [&]() -> std::unique_ptr<gateway::Upstream> {
    if (!o.upstream_url.empty()) {
      return std::make_unique<transport::HttpUpstream>(io, http_options);
    }
    transport::ChildOptions child;
    child.argv = o.command;
    child.max_message_bytes = o.max_message_bytes;
    return std::make_unique<transport::ChildUpstream>(io, std::move(child));
  };

  std::signal(SIGPIPE, SIG_IGN);
  PollingApprovalWaiter waiter(io, **approvals, clock);
  waiter.SetWriter(audit_log->get());
  guard.SetApprovals(approvals->get(), &waiter);
  PolicyReloader reloader(io, o.policy_path, holder);
  reloader.Start();

  if (o.listen.empty()) {
    asio::signal_set signals(io, SIGINT, SIGTERM);
    transport::StdioOptions stdio{o.max_message_bytes, 0, 1,
                                  [&] {
                                    signals.cancel();
                                    reloader.Stop();
                                    waiter.Stop();
                                  },
                                  extension_methods};
    transport::StdioServer server(io, stdio, make_upstream(), guard);
    signals.async_wait([&](boost::system::error_code ec, int sig) {
      if (ec) return;
      spdlog::info("received signal {}; shutting down", sig);
      server.Shutdown();  // stops the upstream cleanly; run() returns when it has exited
    });
    server.Start();
    // Returns when stdin has closed and the upstream has shut down. Nothing on the loop waits
    // for a state file another process holds (sqlite_db.h).
    SqliteNoWait loop_never_waits;
    io.run();
    return kExitOk;
  }

  auto listen = ParseListen(o.listen);
  if (!listen) {
    std::cerr << "toolwarden run: " << listen.error().message() << "\n";
    return kExitUsage;
  }
  transport::HttpServerOptions http;
  http.max_body_bytes = o.max_message_bytes;
  // A command upstream costs a process per session: keep that number modest by default.
  http.max_sessions = o.max_sessions.value_or(o.command.empty() ? 10000 : 64);
  http.session_idle = std::chrono::milliseconds(static_cast<long>(o.session_idle_s * 1000));
  http.read_timeout = std::chrono::milliseconds(static_cast<long>(o.client_timeout_s * 1000));
  http.keepalive = std::chrono::milliseconds(static_cast<long>(o.sse_keepalive_s * 1000));
  http.origins = o.no_origin_check ? transport::OriginPolicy::AllowAll()
                                   : transport::OriginPolicy(o.allowed_hosts, o.allowed_origins);
  gateway::Metrics metrics;
  guard.SetMetrics(&metrics);
  http.metrics = [&metrics] { return metrics.Render(); };
  transport::HttpServer server(
      io, http,
      [&](const transport::SessionRequest& r) -> Result<transport::HttpMcpSession::RelayMaker> {
        if (!r.route.empty()) {
          return Fail(Error::NotFound("Not found: this gateway serves one server, on /mcp"));
        }
        return transport::HttpMcpSession::RelayMaker(
            [&, id = r.id](gateway::ClientSink& sink) -> std::unique_ptr<gateway::McpSession> {
              auto session = std::make_unique<gateway::Session>(id, make_upstream(), guard, sink);
              session->SetExtensionMethods(extension_methods);
              return session;
            });
      });
  metrics.AddGauge("toolwarden_sessions", "Open MCP sessions.",
                   [&server] { return static_cast<double>(server.session_count()); });
  metrics.AddGauge("toolwarden_pending_approvals", "Calls waiting for a human's decision.",
                   [&waiter] { return static_cast<double>(waiter.waiting()); });
  metrics.AddGauge("toolwarden_policy_reloads_total", "Policy reloads applied.",
                   [&holder] { return static_cast<double>(holder.reloads()); }, "counter");
  metrics.AddGauge("toolwarden_policy_reload_failures_total",
                   "Policy reloads refused because the file was invalid.",
                   [&holder] { return static_cast<double>(holder.failed_reloads()); }, "counter");
  auto port = server.Listen(listen->first, listen->second);
  if (!port) {
    std::cerr << "toolwarden run: " << port.error().message() << "\n";
    return kExitUnavailable;
  }
  // Scripts and tests read this line to learn the port when listening on port 0.
  spdlog::info(
      "listening on http://{}:{}/mcp",
      listen->first.find(':') != std::string::npos ? "[" + listen->first + "]" : listen->first,
      *port);
  GracefulShutdown shutdown(io, server, static_cast<int64_t>(o.shutdown_timeout_s * 1000), [&] {
    reloader.Stop();
    waiter.Stop();
    server.Stop();
  });
  shutdown.Arm();
  SqliteNoWait loop_never_waits;  // sqlite_db.h
  io.run();
  return kExitOk;
}

int ExplainCommand(const ExplainOptions& o) {
  auto policy = policy::LoadPolicyFile(o.policy_path);
  if (!policy) {
    std::cerr << policy.error().message() << "\n";
    return kExitInvalid;
  }
  boost::system::error_code ec;
  json::value args = json::parse(o.args, ec);
  if (ec || !args.is_object()) {
    std::cerr << "toolwarden explain: --args must be a JSON object\n";
    return kExitUsage;
  }
  const int64_t now = SystemClock().NowMs();
  const policy::Identity identity{o.grant, "(explain)", {}};
  policy::Decision d =
      policy::Evaluate(**policy, mcp::ToolCall{o.tool, args.as_object()}, identity, now);
  // Current counter values, when the state store can be read (nothing is charged).
  std::unique_ptr<limits::CounterStore> store;
  if (auto s = limits::OpenStateStore(o.state.empty() ? limits::DefaultStateSpec() : o.state)) {
    store = std::move(*s);
  }
  std::optional<policy::Decision> limited;
  std::cout << "tool:     " << o.tool << "\n";
  for (const policy::PlannedCharge& c : d.charges) {
    const policy::Limit& l = *c.limit;
    std::optional<int64_t> used;
    if (store && l.scope != policy::Scope::kSession) {
      if (auto v = store->Value(gateway::CounterKeyFor(c, identity), now)) used = *v;
    }
    std::cout << "limit:    " << l.rule << ": counter \"" << l.counter << "\" +" << c.amount
              << ", at most " << l.max << " per " << l.window.text << " ("
              << policy::ScopeName(l.scope)
              << (l.scope == policy::Scope::kGrant ? " " + o.grant : std::string()) << ")";
    if (used) std::cout << ", used " << *used << " so far";
    std::cout << "\n";
    if (used && c.amount > l.max - *used && !limited) limited = policy::LimitDenial(c, *used, now);
  }
  if (limited) d = *limited;
  std::cout << "decision: " << (d.verdict == policy::Verdict::kAllow ? "allow" : "deny") << "\n"
            << "rule:     " << d.rule << "\n";
  if (d.verdict == policy::Verdict::kDeny) std::cout << "reason:   " << d.reason << "\n";
  return kExitOk;
}

}  // namespace

std::string FormatTime(int64_t ms) {
  const std::time_t t = static_cast<std::time_t>(ms / 1000);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

namespace {

int PinsCommand(const std::string& action, const PinsOptions& o) {
  auto store = catalog::OpenPinStore(o.state.empty() ? limits::DefaultStateSpec() : o.state);
  if (!store) {
    std::cerr << "toolwarden pins: " << store.error().message() << "\n";
    return kExitUnavailable;
  }
  if (action == "list") {
    auto pins = (*store)->List(o.server);
    if (!pins) {
      std::cerr << "toolwarden pins: " << pins.error().message() << "\n";
      return kExitUnavailable;
    }
    for (const auto& p : *pins) {
      std::cout << p.server << "  " << p.tool << "  "
                << (p.pending_hash ? "CHANGED " + FormatTime(p.changed_ms) +
                                         (p.pending_note.empty() ? "" : " (" + p.pending_note + ")")
                                   : "pinned " + FormatTime(p.pinned_ms))
                << "  " << (p.hash.empty() ? std::string("-") : p.hash.substr(0, 12)) << "\n";
    }
    if (pins->empty()) std::cout << "no pins" << (o.server.empty() ? "" : " for " + o.server) << "\n";
    return kExitOk;
  }
  if (action == "diff") {
    auto pin = (*store)->Get(o.server, o.tool);
    if (!pin || !*pin) {
      std::cerr << "toolwarden pins: no pin for " << o.server << " " << o.tool << "\n";
      return kExitInvalid;
    }
    const catalog::Pin& p = **pin;
    if (!p.pending_hash) {
      std::cout << o.server << " " << o.tool << ": unchanged since " << FormatTime(p.pinned_ms) << "\n";
      return kExitOk;
    }
    // Field by field: what the approved definition said, what the server says now.
    boost::system::error_code ec;
    json::value before = p.definition.empty() ? json::object{} : json::parse(p.definition, ec);
    json::value after = json::parse(*p.pending_definition, ec);
    std::cout << "--- " << o.server << " " << o.tool << " approved "
              << (p.pinned_ms ? FormatTime(p.pinned_ms) : std::string("(never)")) << "\n+++ "
              << o.server << " " << o.tool << " seen " << FormatTime(p.changed_ms)
              << (p.pending_note.empty() ? "" : " (" + p.pending_note + ")") << "\n";
    std::set<std::string> keys;
    for (const auto* v : {&before, &after}) {
      if (v->is_object()) for (const auto& kv : v->get_object()) keys.insert(kv.key());
    }
    for (const auto& k : keys) {
      const json::value* b = before.is_object() ? before.get_object().if_contains(k) : nullptr;
      const json::value* a = after.is_object() ? after.get_object().if_contains(k) : nullptr;
      const std::string bs = b ? CanonicalJson(*b, ArrayOrder::kSorted) : "";
      const std::string as = a ? CanonicalJson(*a, ArrayOrder::kSorted) : "";
      if (bs == as) continue;
      if (b) std::cout << "- " << k << ": " << bs << "\n";
      if (a) std::cout << "+ " << k << ": " << as << "\n";
    }
    return kExitOk;
  }
  // accept
  auto n = (*store)->Accept(o.server, o.tool, SystemClock().NowMs());
  if (!n) {
    std::cerr << "toolwarden pins: " << n.error().message() << "\n";
    return kExitUnavailable;
  }
  std::cout << "accepted " << *n << " change" << (*n == 1 ? "" : "s") << " for " << o.server
            << (o.tool.empty() ? "" : " " + o.tool) << "\n";
  return *n > 0 ? kExitOk : kExitInvalid;
}

int AuditCommand(const AuditOptions& o) {
  audit::Query q;
  q.grant = o.grant;
  q.server = o.server;
  q.tool = o.tool;
  q.decision = o.decision;
  q.limit = o.limit;
  if (!o.since.empty()) {
    auto ms = policy::ParseDurationMs(o.since);
    if (!ms) {
      std::cerr << "toolwarden audit: --since " << ms.error().message() << "\n";
      return kExitUsage;
    }
    q.since_ms = SystemClock().NowMs() - *ms;
  }
  auto records = audit::QueryAudit(o.state.empty() ? limits::DefaultStateSpec() : o.state, q);
  if (!records) {
    std::cerr << "toolwarden audit: " << records.error().message() << "\n";
    return kExitUnavailable;
  }
  if (o.json) {
    for (const auto& r : *records) std::cout << json::serialize(audit::ToJson(r)) << "\n";
    return kExitOk;
  }
  std::cout << "TIME                  GRANT        SERVER           TOOL                     "
               "DECISION  OUTCOME          MS  RULE\n";
  auto pad = [](std::string s, size_t w) {
    if (s.size() > w) s = s.substr(0, w - 1) + "~";
    return s + std::string(w - s.size() + 1, ' ');
  };
  for (const auto& r : *records) {
    std::cout << pad(FormatTime(r.ts_ms), 21) << pad(r.grant, 12) << pad(r.server, 16)
              << pad(r.tool, 24) << pad(r.decision, 9) << pad(r.outcome, 15)
              << pad(std::to_string(r.latency_ms), 4) << r.rule << "\n";
  }
  if (records->empty()) std::cout << "(no records)\n";
  return kExitOk;
}

struct ApprovalsOptions {
  std::string config;
  std::string state;
  std::string api;  // a running serve's base URL: use its admin API instead of the state store
  std::string id;
  std::string reason;
  bool all = false;
  bool json = false;
};

// An approval as the admin API returns it (admin::ApprovalJson), back into the struct.
approval::Approval ApprovalFromJson(const json::object& o) {
  auto str = [&](const char* k) {
    const json::value* v = o.if_contains(k);
    return v && v->is_string() ? std::string(v->get_string()) : std::string();
  };
  auto num = [&](const char* k) {
    const json::value* v = o.if_contains(k);
    return v && v->is_int64() ? v->get_int64() : int64_t{0};
  };
  approval::Approval a;
  a.id = str("id");
  a.grant = str("grant");
  a.session = str("session");
  a.server = str("server");
  a.tool = str("tool");
  const json::value* args = o.if_contains("arguments");
  a.args = args ? json::serialize(*args) : "{}";
  a.args_digest = str("arguments_digest");
  a.created_ms = num("created_ms");
  a.expires_ms = num("expires_ms");
  a.resolved_ms = num("resolved_ms");
  a.resolved_by = str("resolved_by");
  a.reason = str("reason");
  const std::string state = str("state");
  for (auto st : {approval::State::kPending, approval::State::kApproved, approval::State::kDenied,
                  approval::State::kExpired, approval::State::kCancelled, approval::State::kAbandoned}) {
    if (approval::StateName(st) == state) a.state = st;
  }
  return a;
}

// Calls a running gateway's admin API; the token comes from TOOLWARDEN_ADMIN_TOKEN (never from
// the command line, where other users could read it).
Result<json::value> AdminApiCall(const std::string& base, const std::string& method,
                                 const std::string& path, const std::string& body) {
  const char* token = std::getenv("TOOLWARDEN_ADMIN_TOKEN");
  if (!token || !*token) {
    return Fail(Error::InvalidArgument("--api needs the admin token in TOOLWARDEN_ADMIN_TOKEN"));
  }
  std::vector<std::pair<std::string, std::string>> headers{
      {"Authorization", std::string("Bearer ") + token}};
  if (method != "GET") headers.emplace_back("Content-Type", "application/json");
  std::string url = base;
  while (!url.empty() && url.back() == '/') url.pop_back();
  auto reply = transport::FetchSync(method, url + path, headers, body);
  if (!reply) return Fail(reply.error());
  boost::system::error_code ec;
  json::value v = json::parse(reply->body, ec);
  if (reply->status / 100 != 2) {
    const json::value* m = !ec && v.is_object() && v.as_object().contains("error")
                               ? v.at("error").as_object().if_contains("message")
                               : nullptr;
    return Fail(Error::InvalidArgument(
        "admin API answered " + std::to_string(reply->status) +
        (m && m->is_string() ? ": " + std::string(m->get_string()) : std::string())));
  }
  if (ec) return Fail(Error::Unavailable("the admin API answered with something that is not JSON"));
  return v;
}

int ApprovalsCommand(const std::string& action, const ApprovalsOptions& o) {
  std::unique_ptr<approval::ApprovalStore> store;
  if (o.api.empty()) {
    auto opened = approval::OpenApprovalStore(o.state.empty() ? limits::DefaultStateSpec() : o.state);
    if (!opened) {
      std::cerr << "toolwarden approvals: " << opened.error().message() << "\n";
      return kExitUnavailable;
    }
    store = std::move(*opened);
  }
  const int64_t now = SystemClock().NowMs();
  const char* user = std::getenv("USER");
  const std::string who = user && *user ? user : "cli";
  if (action == "list") {
    std::vector<approval::Approval> list;
    if (store) {
      auto l = store->List(!o.all);
      if (!l) {
        std::cerr << "toolwarden approvals: " << l.error().message() << "\n";
        return kExitUnavailable;
      }
      list = std::move(*l);
    } else {
      auto v = AdminApiCall(o.api, "GET", o.all ? "/api/approvals?state=all" : "/api/approvals", "");
      if (!v) {
        std::cerr << "toolwarden approvals: " << v.error().message() << "\n";
        return kExitUnavailable;
      }
      for (const auto& a : v->at("approvals").as_array()) list.push_back(ApprovalFromJson(a.as_object()));
    }
    for (const auto& a : list) {
      if (o.json) {
        std::cout << json::serialize(admin::ApprovalJson(a)) << "\n";
        continue;
      }
      std::cout << a.id << "  " << approval::StateName(a.state) << "  " << a.server << " "
                << a.tool << "  grant " << a.grant << "  "
                << (a.state == approval::State::kPending
                        ? "expires in " + std::to_string(std::max<int64_t>(0, (a.expires_ms - now) / 1000)) + " s"
                        : FormatTime(a.resolved_ms) + (a.resolved_by.empty() ? "" : " by " + a.resolved_by))
                << "\n    arguments: " << a.args << "\n";
    }
    if (list.empty() && !o.json) std::cout << (o.all ? "no approvals\n" : "no pending approvals\n");
    return kExitOk;
  }
  approval::Approval resolved;
  if (store) {
    auto r = store->Resolve(o.id, action == "approve" ? approval::State::kApproved : approval::State::kDenied,
                            who, o.reason, now);
    if (!r) {
      std::cerr << "toolwarden approvals: " << r.error().message() << "\n";
      return kExitInvalid;
    }
    resolved = *r;
  } else {
    auto v = AdminApiCall(o.api, "POST", "/api/approvals/" + o.id + "/" + action,
                          json::serialize(json::object{{"reason", o.reason}, {"by", who}}));
    if (!v) {
      std::cerr << "toolwarden approvals: " << v.error().message() << "\n";
      return v.error().code() == ErrorCode::kUnavailable ? kExitUnavailable : kExitInvalid;
    }
    resolved = ApprovalFromJson(v->as_object());
  }
  std::cout << (action == "approve" ? "approved " : "denied ") << o.id << " (" << resolved.server
            << " " << resolved.tool << ")\n";
  return kExitOk;
}

struct GrantsOptions {
  std::string config;
  std::string state;
  std::string name;
  std::string servers;  // comma-separated
  std::string expires;
  std::vector<std::string> policies;  // server=path
  bool json = false;
};

// Reads a config for the state subcommands, which need its state and server names but not the
// servers' secrets: a variable unset in this shell does not stop them (unless `state` needs it).
Result<config::Config> LoadConfigForState(const std::string& config_path) {
  constexpr std::string_view kUnset = "\x01unset\x01";
  auto c = config::LoadConfig(config_path, [&](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    return v ? std::string(v) : std::string(kUnset);
  });
  if (!c) return c;
  if (c->state.find(kUnset) != std::string::npos) {
    return Fail(Error::InvalidArgument(config_path + ": state refers to an environment variable "
                                                     "that is not set"));
  }
  return c;
}

// The state store a subcommand uses: --state, else the config's (-c), else the default.
Result<std::string> ResolveState(const std::string& config_path, const std::string& state) {
  if (!state.empty()) return state;
  if (config_path.empty()) return limits::DefaultStateSpec();
  auto c = LoadConfigForState(config_path);
  if (!c) return Fail(c.error());
  return c->state.empty() ? limits::DefaultStateSpec() : c->state;
}

int GrantsCommand(const std::string& action, const GrantsOptions& o) {
  auto spec = ResolveState(o.config, o.state);
  if (!spec) {
    std::cerr << spec.error().message() << "\n";
    return kExitInvalid;
  }
  auto store = auth::OpenGrantStore(*spec);
  if (!store) {
    std::cerr << "toolwarden grants: " << store.error().message() << "\n";
    return kExitUnavailable;
  }
  const int64_t now = SystemClock().NowMs();
  if (action == "list") {
    auto list = (*store)->List();
    if (!list) {
      std::cerr << "toolwarden grants: " << list.error().message() << "\n";
      return kExitUnavailable;
    }
    for (const auto& g : *list) {
      json::value j = admin::GrantJson(g, now);
      if (o.json) {
        std::cout << json::serialize(j) << "\n";
        continue;
      }
      std::string servers;
      for (const auto& sv : g.servers) servers += (servers.empty() ? "" : ",") + sv;
      std::cout << g.name << "  " << j.at("state").as_string().c_str() << "  servers "
                << (servers.empty() ? "all" : servers) << "  created " << FormatTime(g.created_ms)
                << "  expires " << (g.expires_ms ? FormatTime(g.expires_ms) : std::string("never"))
                << "  last used "
                << (g.last_used_ms ? FormatTime(g.last_used_ms) : std::string("never"));
      for (const auto& [server, path] : g.policies) std::cout << "  policy " << server << "=" << path;
      std::cout << "\n";
    }
    if (list->empty() && !o.json) std::cout << "no grants\n";
    return kExitOk;
  }
  if (action == "revoke") {
    auto g = (*store)->Revoke(o.name, now);
    if (!g) {
      std::cerr << "toolwarden grants: " << g.error().message() << "\n";
      return kExitInvalid;
    }
    std::cout << "revoked " << o.name << ": its token no longer works\n";
    return kExitOk;
  }
  auth::Grant g;
  g.name = o.name;
  for (size_t start = 0; start < o.servers.size();) {
    size_t comma = o.servers.find(',', start);
    if (comma == std::string::npos) comma = o.servers.size();
    if (comma > start) g.servers.push_back(o.servers.substr(start, comma - start));
    start = comma + 1;
  }
  for (const auto& p : o.policies) {
    const size_t eq = p.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == p.size()) {
      std::cerr << "toolwarden grants: --policy \"" << p << "\" must be SERVER=FILE\n";
      return kExitUsage;
    }
    const std::string path = std::filesystem::absolute(p.substr(eq + 1)).string();
    if (auto loaded = policy::LoadPolicyFile(path); !loaded) {
      std::cerr << loaded.error().message() << "\n";
      return kExitInvalid;
    }
    g.policies[p.substr(0, eq)] = path;
  }
  if (!o.config.empty()) {
    auto c = LoadConfigForState(o.config);
    if (!c) {
      std::cerr << c.error().message() << "\n";
      return kExitInvalid;
    }
    for (const auto& sv : g.servers) {
      if (!c->servers.contains(sv)) {
        std::cerr << "toolwarden grants: " << o.config << " has no server \"" << sv << "\"\n";
        return kExitUsage;
      }
    }
  }
  if (!o.expires.empty()) {
    auto ms = auth::ParseExpiry(o.expires);
    if (!ms) {
      std::cerr << "toolwarden grants: " << ms.error().message() << "\n";
      return kExitUsage;
    }
    g.expires_ms = now + *ms;
  }
  auto token = (*store)->Create(g, now);
  if (!token) {
    std::cerr << "toolwarden grants: " << token.error().message() << "\n";
    return kExitInvalid;
  }
  if (o.json) {
    json::value j = admin::GrantJson(*(*store)->Get(g.name).value(), now);
    j.as_object()["token"] = *token;
    std::cout << json::serialize(j) << "\n";
    return kExitOk;
  }
  std::cout << "Created grant \"" << g.name << "\" (servers: "
            << (o.servers.empty() ? "all" : o.servers) << "; expires: "
            << (g.expires_ms ? FormatTime(g.expires_ms) : std::string("never"))
            << ").\nIts token is shown once; only its hash is stored:\n\n  " << *token
            << "\n\nAgents send it as   Authorization: Bearer " << *token << "\n";
  return kExitOk;
}

int AdminTokenCommand(const std::string& config_path, const std::string& state) {
  auto spec = ResolveState(config_path, state);
  if (!spec) {
    std::cerr << spec.error().message() << "\n";
    return kExitInvalid;
  }
  auto store = auth::OpenGrantStore(*spec);
  if (!store) {
    std::cerr << "toolwarden admin: " << store.error().message() << "\n";
    return kExitUnavailable;
  }
  auto token = (*store)->ResetAdminTokens(SystemClock().NowMs());
  if (!token) {
    std::cerr << "toolwarden admin: " << token.error().message() << "\n";
    return kExitUnavailable;
  }
  std::cout << "New admin API token (the old one no longer works; only its hash is stored):\n\n  "
            << *token << "\n";
  return kExitOk;
}

int ValidateConfig(const std::string& path) {
  auto c = config::LoadConfig(path);
  if (!c) {
    std::cout << c.error().message() << "\n";
    return kExitInvalid;
  }
  int status = kExitOk;
  std::set<std::string> seen;
  for (const auto& [name, sc] : c->servers) {
    if (!seen.insert(sc.policy_path).second) continue;
    auto p = policy::LoadPolicyFile(sc.policy_path);
    if (!p) {
      std::cout << p.error().message() << "\n";
      status = kExitInvalid;
    }
  }
  if (status == kExitOk) {
    std::cout << path << ": valid (" << c->servers.size() << " server"
              << (c->servers.size() == 1 ? "" : "s") << ", every policy valid)\n";
  }
  return status;
}

int ValidateCommand(const std::vector<std::string>& files) {
  int status = kExitOk;
  for (const auto& file : files) {
    auto p = policy::LoadPolicyFile(file);
    if (p) {
      std::cout << file << ": valid\n";
    } else {
      std::cout << p.error().message() << "\n";
      status = kExitInvalid;
    }
  }
  return status;
}

}  // namespace

int Main(int argc, char** argv) {
  CLI::App app{
      "toolwarden: a policy-enforcing gateway for the Model Context Protocol.\n"
      "Every tools/call is decided by your policy before it reaches the server."};
  app.set_version_flag("--version", std::string("toolwarden ") + TW_VERSION);
  app.require_subcommand(1);
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "Log level on stderr")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}))
      ->capture_default_str();
  std::string log_format = "text";
  app.add_option("--log-format", log_format, "Log lines on stderr as text or JSON objects")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();

  RunOptions run_options;
  CLI::App* run = app.add_subcommand(
      "run",
      "Wrap one MCP server behind a policy.\n"
      "  toolwarden run -p policy.json -- npx -y @modelcontextprotocol/server-everything\n"
      "  toolwarden run -p policy.json --upstream https://host/mcp --header 'Authorization: Bearer "
      "T'\n"
      "Add --listen 127.0.0.1:8421 to serve Streamable HTTP on /mcp instead of stdio.");
  run->add_option("-p,--policy", run_options.policy_path, "Policy file (JSON or YAML)")
      ->required()
      ->check(CLI::ExistingFile);
  run->add_option("--upstream", run_options.upstream_url,
                  "URL of a remote MCP server (Streamable HTTP, or legacy HTTP+SSE)");
  run->add_option("--header", run_options.headers,
                  "Header sent to the --upstream server, \"Name: value\" (repeatable)")
      ->allow_extra_args(false);
  run->add_option("--listen", run_options.listen,
                  "Serve MCP over Streamable HTTP at HOST:PORT (/mcp) instead of stdio");
  run->add_option("--max-message-bytes", run_options.max_message_bytes,
                  "Largest JSON-RPC message or HTTP body accepted")
      ->capture_default_str()
      ->check(CLI::Range(size_t{1024}, size_t{1} << 30));
  run->add_option("--allowed-host", run_options.allowed_hosts,
                  "Extra Host name accepted on --listen besides loopback (repeatable)")
      ->allow_extra_args(false);
  run->add_option(
         "--allowed-origin", run_options.allowed_origins,
         "Extra browser Origin accepted on --listen, e.g. https://app.example (repeatable)")
      ->allow_extra_args(false);
  run->add_flag("--no-origin-check", run_options.no_origin_check,
                "Accept any Host and Origin header (disables DNS-rebinding protection)");
  run->add_option("--connect-timeout", run_options.connect_timeout_s,
                  "Seconds to connect to an --upstream server")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  run->add_option("--request-timeout", run_options.request_timeout_s,
                  "Seconds to wait for an --upstream server's answer to one request")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  run->add_option("--upstream-ca", run_options.upstream_ca,
                  "PEM file of CA certificates to trust for an https:// --upstream (in addition "
                  "to the system's)")
      ->check(CLI::ExistingFile);
  run->add_option("--client-timeout", run_options.client_timeout_s,
                  "Seconds a client (--listen) may take to send one whole HTTP request")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  run->add_option("--sse-keepalive", run_options.sse_keepalive_s,
                  "Seconds between keep-alive comments on idle SSE streams (--listen)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  run->add_option("--max-sessions", run_options.max_sessions,
                  "Most concurrent MCP sessions on --listen (default 64 with a command upstream, "
                  "one process each; 10000 with --upstream)")
      ->check(CLI::PositiveNumber);
  run->add_option("--session-idle-timeout", run_options.session_idle_s,
                  "Seconds after which an idle HTTP session is closed")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  run->add_option("--state", run_options.state,
                  "Where counters live: sqlite:PATH or memory (default sqlite:" +
                      limits::DefaultStateSpec().substr(7) + ")");
  run->add_option("--state-fail-mode", run_options.state_fail_mode,
                  "If the state store fails: closed denies calls that have limits, open lets "
                  "them through uncounted")
      ->check(CLI::IsMember({"closed", "open"}))
      ->capture_default_str();
  run->add_option("--state-timeout", run_options.state_timeout_s,
                  "Seconds a call waits for a state file another process holds locked before "
                  "it is denied (the gateway itself never waits for it)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  run->add_option("--server-name", run_options.server_name,
                  "Name of the upstream for tool pins (default: derived from the command or URL)");
  run->add_option("--pin-mode", run_options.pin_mode,
                  "Tool pinning: enforce denies tools whose definition changed since approval, "
                  "warn only logs, off")
      ->check(CLI::IsMember({"enforce", "warn", "off"}))
      ->capture_default_str();
  run->add_option("--unlisted-tools", run_options.unlisted_tools,
                  "deny refuses a call whose tool name the server did not list byte for byte "
                  "(case variants, trailing spaces, look-alikes); allow leaves it to the policy")
      ->check(CLI::IsMember({"deny", "allow"}))
      ->capture_default_str();
  run->add_option("--schema", run_options.schema,
                  "Check arguments against the tool's inputSchema: enforce denies a call that "
                  "does not match, warn only logs, off")
      ->check(CLI::IsMember({"enforce", "warn", "off"}))
      ->capture_default_str();
  run->add_option("--extension-method", run_options.extension_methods,
                  "A method outside MCP's allow-lists that may cross anyway (repeatable; none "
                  "by default)");
  run->add_option("--audit-log", run_options.audit_log,
                  "Also write each audit record as a JSON line to FILE (- for stdout with --listen)");
  run->add_option("--shutdown-timeout", run_options.shutdown_timeout_s,
                  "With --listen: seconds calls in flight get to finish after SIGTERM")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  run->add_flag("--audit-arguments", run_options.audit_arguments,
                "Record argument values in the audit trail (default: keys and a SHA-256 digest)");
  run->add_option("command", run_options.command,
                  "After --: the MCP server command to run as a child process");

  std::vector<std::string> validate_files;
  std::string validate_config;
  CLI::App* validate = app.add_subcommand(
      "validate", "Check policy files (or a serve config and its policies with -c); print every "
                  "problem as FILE:LINE:COLUMN: message");
  validate->add_option("files", validate_files, "Policy files");
  validate->add_option("-c,--config", validate_config, "A toolwarden.yaml (serve config)");

  ServeOptions serve_options;
  CLI::App* serve = app.add_subcommand(
      "serve",
      "The gateway for a fleet: every server in the config behind one HTTP endpoint.\n"
      "  toolwarden serve -c toolwarden.yaml\n"
      "/mcp aggregates the servers a grant may use (tools named server__tool), /mcp/<server> is "
      "one server; /api/ is the admin API; /metrics, /healthz, /readyz.");
  serve->add_option("-c,--config", serve_options.config_path, "Config file (YAML or JSON)")
      ->required()
      ->check(CLI::ExistingFile);
  serve->add_option("--listen", serve_options.listen, "HOST:PORT (overrides the config's listen)");
  serve->add_option("--state", serve_options.state, "State store (overrides the config's state)");
  serve->add_option("--audit-log", serve_options.audit_log,
                    "Also write audit records as JSON lines to FILE (- for stdout)");

  GrantsOptions grants_options;
  CLI::App* grants_cmd = app.add_subcommand("grants", "Who may call the gateway: grant tokens for agents");
  grants_cmd->require_subcommand(1);
  grants_cmd->fallthrough();  // parent options (-c, --state) may follow the subcommand
  grants_cmd->add_option("-c,--config", grants_options.config, "Use the state of this serve config");
  grants_cmd->add_option("--state", grants_options.state, "State store (default: the config's)");
  CLI::App* grants_create = grants_cmd->add_subcommand(
      "create", "Create a grant and print its token once:\n"
                "  toolwarden grants create ci-runner --servers github,stripe --expires 30d -c toolwarden.yaml");
  grants_create->add_option("name", grants_options.name, "Grant name")->required();
  grants_create->add_option("--servers", grants_options.servers,
                            "Comma-separated servers it may use (default: all)");
  grants_create->add_option("--expires", grants_options.expires, "Lifetime, e.g. 12h, 30d");
  grants_create->add_option("--policy", grants_options.policies,
                            "SERVER=FILE: a policy replacing that server's own for this grant")
      ->allow_extra_args(false);
  grants_create->add_flag("--json", grants_options.json, "Print the grant and token as JSON");
  CLI::App* grants_list = grants_cmd->add_subcommand("list", "Every grant (never tokens)");
  grants_list->add_flag("--json", grants_options.json, "JSON lines");
  CLI::App* grants_revoke = grants_cmd->add_subcommand("revoke", "Revoke a grant: its token stops working at once");
  grants_revoke->add_option("name", grants_options.name, "Grant name")->required();

  std::string admin_config, admin_state;
  CLI::App* admin_cmd = app.add_subcommand("admin", "The admin API's token");
  admin_cmd->require_subcommand(1);
  admin_cmd->fallthrough();  // parent options (-c, --state) may follow the subcommand
  admin_cmd->add_option("-c,--config", admin_config, "Use the state of this serve config");
  admin_cmd->add_option("--state", admin_state, "State store");
  CLI::App* admin_reset = admin_cmd->add_subcommand(
      "reset-token", "Replace the admin API token (prints the new one once)");

  ExplainOptions explain_options;
  CLI::App* explain = app.add_subcommand(
      "explain", "Show how a policy decides one call, without calling anything");
  explain->add_option("-p,--policy", explain_options.policy_path, "Policy file")
      ->required()
      ->check(CLI::ExistingFile);
  explain->add_option("--tool", explain_options.tool, "Tool name")->required();
  explain->add_option("--args", explain_options.args, "Arguments as a JSON object")
      ->capture_default_str();
  explain->add_option("--grant", explain_options.grant, "The grant calling")->capture_default_str();
  explain->add_option("--state", explain_options.state,
                      "State store to read current counter values from (nothing is charged)");

  ScanOptions scan_options;
  CLI::App* scan = app.add_subcommand(
      "scan",
      "List a server's tools, classify each (category, risk) and write a policy scaffold.\n"
      "  toolwarden scan -o policy.yaml -- npx -y @modelcontextprotocol/server-everything\n"
      "  toolwarden scan --summary --upstream https://host/mcp");
  scan->add_option("-o,--output", scan_options.output,
                   "Write the scaffold here (format from the extension) instead of stdout");
  scan->add_option("--format", scan_options.format, "Scaffold format (default: from -o, else yaml)")
      ->check(CLI::IsMember({"json", "yaml"}));
  scan->add_flag("--summary", scan_options.summary,
                 "Print a table (tool, category, risk, recommendation) instead of a scaffold");
  scan->add_flag("--json", scan_options.json, "With --summary: print a JSON array instead");
  scan->add_option("--upstream", scan_options.upstream_url, "URL of a remote MCP server");
  scan->add_option("--header", scan_options.headers, "Header for --upstream, \"Name: value\"")
      ->allow_extra_args(false);
  scan->add_option("--upstream-ca", scan_options.upstream_ca, "Extra CA file for https")
      ->check(CLI::ExistingFile);
  scan->add_option("--timeout", scan_options.timeout_s, "Seconds to wait for the server")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  scan->add_option("command", scan_options.command, "After --: the MCP server command to run");

  ApprovalsOptions approvals_options;
  CLI::App* approvals_cmd = app.add_subcommand("approvals", "Calls waiting for a human's decision");
  approvals_cmd->require_subcommand(1);
  approvals_cmd->fallthrough();  // parent options (-c, --state) may follow the subcommand
  approvals_cmd->add_option("--state", approvals_options.state, "State store (default: as `run`)");
  approvals_cmd->add_option("-c,--config", approvals_options.config, "Use the state of this serve config");
  approvals_cmd->add_option("--api", approvals_options.api,
                            "A running gateway's base URL (http://127.0.0.1:8421): use its admin "
                            "API, with the token in TOOLWARDEN_ADMIN_TOKEN");
  CLI::App* approvals_list = approvals_cmd->add_subcommand("list", "Pending approvals (--all: every one)");
  approvals_list->add_flag("--all", approvals_options.all, "Resolved ones too");
  approvals_list->add_flag("--json", approvals_options.json, "JSON lines");
  CLI::App* approvals_approve = approvals_cmd->add_subcommand("approve", "Let a held call through");
  approvals_approve->add_option("id", approvals_options.id, "Approval id")->required();
  approvals_approve->add_option("--reason", approvals_options.reason, "Why (recorded)");
  CLI::App* approvals_deny = approvals_cmd->add_subcommand("deny", "Refuse a held call");
  approvals_deny->add_option("id", approvals_options.id, "Approval id")->required();
  approvals_deny->add_option("--reason", approvals_options.reason, "Why (the agent sees it)");

  AuditOptions audit_options;
  CLI::App* audit_cmd = app.add_subcommand("audit", "Query the audit trail (newest first)");
  audit_cmd->add_option("--state", audit_options.state, "State store (default: as `run`)");
  audit_cmd->add_option("-c,--config", audit_options.config, "Use the state of this serve config");
  audit_cmd->add_option("--since", audit_options.since, "Only the last DURATION (30m, 1h, 7d)");
  audit_cmd->add_option("--grant", audit_options.grant, "Only this grant");
  audit_cmd->add_option("--server", audit_options.server, "Only this server");
  audit_cmd->add_option("--tool", audit_options.tool, "Only this tool");
  audit_cmd->add_option("--decision", audit_options.decision,
                        "Only this decision: allow, deny, approval (held for a human) or dropped "
                        "(a message the protocol allow-list refused)")
      ->check(CLI::IsMember({"allow", "deny", "approval", "dropped"}));
  audit_cmd->add_option("--limit", audit_options.limit, "At most N records")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  audit_cmd->add_flag("--json", audit_options.json, "JSON lines instead of a table");

  InitOptions init_options;
  CLI::App* init = app.add_subcommand(
      "init",
      "Find MCP servers in Claude Desktop / Claude Code / Cursor configs, scan each, write a "
      "policy per server; --apply puts toolwarden in front of them");
  init->add_option("--config", init_options.configs, "A client config file (repeatable; default: "
                                                      "the usual locations)")
      ->allow_extra_args(false);
  init->add_option("--out", init_options.out_dir,
                   "Where to write policies/ and toolwarden.yaml (default ~/.config/toolwarden)");
  init->add_flag("--apply", init_options.apply,
                 "Rewrite the client configs to run each server through toolwarden (backed up)");
  init->add_flag("--undo", init_options.undo, "Restore the client configs from their backups");
  init->add_flag("--force", init_options.force, "Overwrite policies that already exist");
  init->add_option("--timeout", init_options.timeout_s, "Seconds to wait for each server")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);

  ToolsOptions tools_options;
  CLI::App* tools = app.add_subcommand(
      "tools", "Every tool of a server with category, risk, pin state and how the policy treats it");
  tools->add_option("-c,--config", tools_options.config,
                    "Every server of this serve config, each under its own policy");
  tools->add_option("--server", tools_options.only_server, "With -c: only this server");
  tools->add_option("-p,--policy", tools_options.policy_path, "Policy file (one server)")
      ->check(CLI::ExistingFile);
  tools->add_option("--upstream", tools_options.upstream_url, "URL of a remote MCP server");
  tools->add_option("--header", tools_options.headers, "Header for --upstream")->allow_extra_args(false);
  tools->add_option("--upstream-ca", tools_options.upstream_ca, "Extra CA file for https")
      ->check(CLI::ExistingFile);
  tools->add_option("--server-name", tools_options.server_name, "Server name for pins (as `run`)");
  tools->add_option("--state", tools_options.state, "State store to read pins from");
  tools->add_flag("--json", tools_options.json, "Print a JSON array");
  tools->add_option("command", tools_options.command, "After --: the MCP server command");

  PinsOptions pins_options;
  CLI::App* pins = app.add_subcommand(
      "pins", "Tool pins: definitions approved per server, and changes waiting for review");
  pins->require_subcommand(1);
  pins->fallthrough();  // parent options (-c, --state) may follow the subcommand
  pins->add_option("--state", pins_options.state, "State store (default: as `run`)");
  pins->add_option("-c,--config", pins_options.config, "Use the state of this serve config");
  CLI::App* pins_list = pins->add_subcommand("list", "List pins and pending changes");
  pins_list->add_option("--server", pins_options.server, "Only this server");
  CLI::App* pins_diff = pins->add_subcommand("diff", "Show what changed in a tool's definition");
  pins_diff->add_option("server", pins_options.server, "Server name")->required();
  pins_diff->add_option("tool", pins_options.tool, "Tool name")->required();
  CLI::App* pins_accept =
      pins->add_subcommand("accept", "Approve the changed definition of a tool (or of all tools)");
  pins_accept->add_option("server", pins_options.server, "Server name")->required();
  pins_accept->add_option("tool", pins_options.tool, "Tool name (default: every changed tool)");

  CLI::App* demo = app.add_subcommand(
      "demo", "Show toolwarden in front of a bundled demo MCP server (nothing to install)");
  CLI::App* demo_server = app.add_subcommand("demo-server", "");  // hidden: no description
  demo_server->group("");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kExitUsage;
  }
  if (!InitLogging(log_level, log_format == "json")) return kExitUsage;

  // -c CONFIG: the state store the config names, for every subcommand that reads state.
  for (auto [config, state] : {std::pair{&approvals_options.config, &approvals_options.state},
                               std::pair{&audit_options.config, &audit_options.state},
                               std::pair{&pins_options.config, &pins_options.state}}) {
    if (config->empty()) continue;
    auto spec = ResolveState(*config, *state);
    if (!spec) {
      std::cerr << spec.error().message() << "\n";
      return kExitInvalid;
    }
    *state = *spec;
  }
  if (*run) return RunCommand(run_options);
  if (*serve) return ServeCommand(serve_options);
  if (*grants_cmd) {
    return GrantsCommand(*grants_create ? "create" : *grants_list ? "list" : "revoke", grants_options);
  }
  if (*admin_cmd && *admin_reset) return AdminTokenCommand(admin_config, admin_state);
  if (*validate) {
    if (validate_config.empty() && validate_files.empty()) {
      std::cerr << "toolwarden validate: give policy files, or -c CONFIG\n";
      return kExitUsage;
    }
    int status = validate_config.empty() ? kExitOk : ValidateConfig(validate_config);
    if (!validate_files.empty()) status = std::max(status, ValidateCommand(validate_files));
    return status;
  }
  if (*explain) return ExplainCommand(explain_options);
  if (*scan) return ScanCommand(scan_options);
  if (*tools) return ToolsCommand(tools_options);
  if (*audit_cmd) return AuditCommand(audit_options);
  if (*approvals_cmd) {
    return ApprovalsCommand(*approvals_list ? "list" : *approvals_approve ? "approve" : "deny",
                            approvals_options);
  }
  if (*init) return InitCommand(init_options, std::filesystem::read_symlink("/proc/self/exe").string());
  if (*pins) {
    return PinsCommand(*pins_list ? "list" : *pins_diff ? "diff" : "accept", pins_options);
  }
  if (*demo) return DemoMain(std::filesystem::read_symlink("/proc/self/exe").string());
  if (*demo_server) return DemoServerMain();
  return kExitUsage;
}

}  // namespace tw::app
