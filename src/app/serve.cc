#include "app/serve.h"

#include <spdlog/spdlog.h>

#include <boost/asio.hpp>
#include <csignal>
#include <iostream>
#include <memory>

#include "admin/api.h"
#include "app/approval_waiter.h"
#include "app/commands.h"
#include "app/gateway_state.h"
#include "app/shutdown.h"
#include "common/clock.h"
#include "common/sqlite_db.h"
#include "transport/http_server.h"
#include "transport/webhook.h"

namespace tw::app {

namespace asio = boost::asio;

namespace {

// Approvals also go to a webhook, when one is configured.
class WebhookApprovalWaiter : public gateway::ApprovalWaiter {
 public:
  WebhookApprovalWaiter(gateway::ApprovalWaiter& inner, approval::ApprovalStore& store,
                        std::function<std::string()> url, std::function<void(std::string, std::string)> post)
      : inner_(inner), store_(store), url_(std::move(url)), post_(std::move(post)) {}
  void Await(const std::string& id, int64_t expires_ms, std::function<void()> tick,
             std::function<void(const approval::Approval&)> done) override {
    const std::string url = url_();
    if (!url.empty()) {
      if (auto a = store_.Get(id); a && *a) post_(url, json::serialize(admin::ApprovalJson(**a)));
    }
    inner_.Await(id, expires_ms, std::move(tick), std::move(done));
  }
  void Cancel(const std::string& id) override { inner_.Cancel(id); }

 private:
  gateway::ApprovalWaiter& inner_;
  approval::ApprovalStore& store_;
  std::function<std::string()> url_;
  std::function<void(std::string, std::string)> post_;
};

}  // namespace

int ServeCommand(const ServeOptions& o) {
  auto loaded = config::LoadConfig(o.config_path);
  if (!loaded) {
    std::cerr << loaded.error().message() << "\n";
    return kExitInvalid;
  }
  config::Config cfg = std::move(*loaded);
  if (!o.listen.empty()) cfg.listen = o.listen;
  if (!o.state.empty()) cfg.state = o.state;
  if (!o.audit_log.empty()) cfg.audit_log = o.audit_log;
  SetSqliteBusyTimeout(std::chrono::milliseconds(cfg.state_timeout_ms));

  asio::io_context io(1);
  SystemClock clock;
  auto state = GatewayState::Open(io, cfg, clock);
  if (!state) {
    std::cerr << "toolwarden serve: " << state.error().message() << "\n";
    return kExitUnavailable;
  }
  GatewayState& gw = **state;

  // The admin token: created at first start, shown once.
  if (auto token = gw.Grants().EnsureAdminToken(clock.NowMs()); !token) {
    std::cerr << "toolwarden serve: " << token.error().message() << "\n";
    return kExitUnavailable;
  } else if (*token) {
    std::cerr << "\nAdmin API token (shown once; only its hash is stored):\n\n  " << **token
              << "\n\nUse it as `Authorization: Bearer <token>` on /api/. Lost it? "
                 "`toolwarden admin reset-token -c " << o.config_path << "`.\n\n";
  }

  std::signal(SIGPIPE, SIG_IGN);
  PollingApprovalWaiter polling(io, gw.Approvals(), clock);
  polling.SetWriter(&gw.Audit());
  WebhookApprovalWaiter waiter(
      polling, gw.Approvals(), [&gw] { return gw.config().approval_webhook_url; },
      [&io](std::string url, std::string body) { transport::PostWebhook(io, url, std::move(body)); });
  gw.SetApprovalWaiter(&waiter, [&polling] { return polling.waiting(); });

  auto listen = ParseListen(cfg.listen);
  if (!listen) {
    std::cerr << "toolwarden serve: " << listen.error().message() << "\n";
    return kExitUsage;
  }
  transport::HttpServerOptions http;
  http.max_body_bytes = cfg.max_body_bytes;
  http.max_sessions = cfg.max_sessions;
  http.max_sessions_per_grant =
      cfg.max_sessions_per_grant.value_or(std::max<size_t>(1, cfg.max_sessions / 4));
  http.trusted_proxies = cfg.trusted_proxies;
  http.session_idle = std::chrono::milliseconds(cfg.session_idle_ms);
  http.origins = transport::OriginPolicy(cfg.allowed_hosts, cfg.allowed_origins);
  http.metrics = [&gw] { return gw.metrics().Render(); };
  http.authenticate = [&gw](std::string_view authorization) { return gw.Authenticate(authorization); };
  http.admin = [&gw](const transport::HttpServerOptions::AdminCall& call) {
    return gw.HandleAdmin(call);
  };
  transport::HttpServer server(io, http, [&gw](const transport::SessionRequest& r) {
    return gw.MakeSession(r);
  });
  gw.AddServerGauges([&server] { return static_cast<double>(server.session_count()); });
  auto port = server.Listen(listen->first, listen->second);
  if (!port) {
    std::cerr << "toolwarden serve: " << port.error().message() << "\n";
    return kExitUnavailable;
  }
  spdlog::info(
      "listening on http://{}:{}/mcp ({} server{}: {})",
      listen->first.find(':') != std::string::npos ? "[" + listen->first + "]" : listen->first,
      *port, cfg.servers.size(), cfg.servers.size() == 1 ? "" : "s", gw.ServerNames());
  gw.StartWatching(o.config_path);

  GracefulShutdown shutdown(io, server, cfg.shutdown_timeout_ms, [&] {
    polling.Stop();
    server.Stop();  // sessions first: their channels detach, so stopping the servers is quiet
    gw.Stop();
  });
  shutdown.Arm();
  // Nothing on the loop waits for a state file another process holds (sqlite_db.h).
  SqliteNoWait loop_never_waits;
  io.run();
  spdlog::info("stopped");
  return kExitOk;
}

}  // namespace tw::app
