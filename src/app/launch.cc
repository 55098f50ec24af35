#include "app/launch.h"

#include <spdlog/spdlog.h>

#include <boost/asio.hpp>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>

#include "app/cli_common.h"
#include "app/gateway.h"
#include "app/shutdown.h"
#include "common/clock.h"
#include "common/random.h"
#include "common/sqlite_db.h"
#include "transport/event_loops.h"
#include "transport/http_server.h"
#include "transport/stdio_server.h"

namespace tw::app {

namespace asio = boost::asio;

namespace {

// Whether stderr is the systemd journal (systemd sets JOURNAL_STREAM to the device and inode
// of the stream it connected; a child that inherited the variable but writes elsewhere does
// not match). The journal is read by more people than the one starting the gateway.
bool StderrIsJournal() {
  const char* stream = std::getenv("JOURNAL_STREAM");
  struct stat st {};
  if (stream == nullptr || fstat(STDERR_FILENO, &st) != 0) return false;
  unsigned long long dev = 0, ino = 0;
  return std::sscanf(stream, "%llu:%llu", &dev, &ino) == 2 && dev == st.st_dev && ino == st.st_ino;
}

transport::HttpServerOptions HttpOptions(const config::Config& c, Gateway& gw) {
  transport::HttpServerOptions http;
  http.max_body_bytes = c.max_body_bytes;
  http.max_sessions = c.max_sessions;
  // One agent cannot lock the others out; a local gateway has only its user.
  http.max_sessions_per_grant =
      c.access == config::Access::kLocal
          ? 0
          : c.max_sessions_per_grant.value_or(std::max<size_t>(1, c.max_sessions / 4));
  http.trusted_proxies = c.trusted_proxies;
  if (!c.replica.empty()) http.session_prefix = c.replica + ".";
  http.session_idle = std::chrono::milliseconds(c.session_idle_ms);
  http.read_timeout = std::chrono::milliseconds(c.client_timeout_ms);
  http.keepalive = std::chrono::milliseconds(c.sse_keepalive_ms);
  http.origins = c.origin_check ? transport::OriginPolicy(c.allowed_hosts, c.allowed_origins)
                                : transport::OriginPolicy::AllowAll();
  http.metrics = [&gw] { return gw.metrics().Render(); };
  http.readiness = [&gw] { return gw.Readiness(); };
  if (c.access == config::Access::kTokens) {
    http.authenticate = [&gw](std::string_view authorization, std::string_view route) {
      return gw.Authenticate(authorization, route);
    };
    http.oauth = gw.OAuthOptions();
    http.admin = [&gw](const transport::HttpServerOptions::AdminCall& call) {
      return gw.HandleAdmin(call);
    };
  }
  return http;
}

// The one session of `listen: stdio`, until stdin closes or a signal asks (one loop).
int ServeStdio(transport::EventLoops& loops, Gateway& gw) {
  asio::io_context& io = loops.home();
  auto maker = gw.MakeSession({RandomHex(16), "", ""});
  if (!maker) {
    std::cerr << "toolwarden: " << maker.error().message() << "\n";
    return kExitUnavailable;
  }
  asio::signal_set signals(io, SIGINT, SIGTERM);
  transport::StdioOptions stdio;
  stdio.max_message_bytes = gw.config().max_body_bytes;
  stdio.on_eof = [&] {
    signals.cancel();
    gw.Stop();
  };
  transport::StdioServer server(io, stdio, *maker);
  gw.CountSessions([] { return 1.0; });
  signals.async_wait([&](boost::system::error_code ec, int sig) {
    if (ec) return;
    spdlog::info("received signal {}; shutting down", sig);
    server.Shutdown();  // stops the upstream cleanly; run() returns when it has exited
  });
  server.Start();
  // Returns when stdin has closed and the upstream has shut down.
  loops.Run();
  return kExitOk;
}

int ServeHttp(transport::EventLoops& loops, Gateway& gw, const std::string& command) {
  asio::io_context& io = loops.home();
  const config::Config& cfg = gw.config();
  auto listen = ParseListen(cfg.listen);
  if (!listen) {
    std::cerr << "toolwarden " << command << ": " << listen.error().message() << "\n";
    return kExitUsage;
  }
  transport::HttpServer server(loops, HttpOptions(cfg, gw), [&gw](const transport::SessionRequest& r) {
    return gw.MakeSession(r);
  });
  gw.CountSessions([&server] { return static_cast<double>(server.session_count()); });
  auto port = server.Listen(listen->first, listen->second);
  if (!port) {
    std::cerr << "toolwarden " << command << ": " << port.error().message() << "\n";
    return kExitUnavailable;
  }
  const std::string host =
      listen->first.find(':') != std::string::npos ? "[" + listen->first + "]" : listen->first;
  if (cfg.access == config::Access::kTokens) {
    // Only once the gateway listens: a start that fails (a busy port) shows no token. Before
    // the "listening on" line, so that whoever waits for that line has the token too.
    const std::string console = "http://" + host + ":" + std::to_string(*port) + "/ui/";
    if (auto token = gw.Grants().EnsureAdminToken(SystemClock().NowMs()); !token) {
      std::cerr << "toolwarden " << command << ": " << token.error().message() << "\n";
      return kExitUnavailable;
    } else if (*token && StderrIsJournal()) {
      // Never into a log: whoever reads it becomes admin. The token made here stays unknown.
      const std::string c = cfg.path.empty() ? std::string() : " -c " + cfg.path;
      spdlog::warn("an admin token was created but is not written to the journal; make one you "
                   "can read with: toolwarden admin reset-token{} (as the service's user)", c);
      spdlog::info("console on {}", console);
    } else if (*token) {
      // The admin token: created at the first start, shown once.
      const std::string c = cfg.path.empty() ? std::string() : " -c " + cfg.path;
      std::cerr << "\nAdmin token (shown once; only its hash is stored):\n\n  " << **token
                << "\n\nSign in to the console with it:  " << console
                << "\nor use it as `Authorization: Bearer <token>` on /api/."
                << "\nGive an agent access:            toolwarden grants create NAME" << c
                << "\nLost the token?                  toolwarden admin reset-token" << c << "\n\n";
    } else {
      spdlog::info("console on {}", console);
    }
  }
  // Scripts and tests read this line to learn the port when listening on port 0.
  if (cfg.access == config::Access::kLocal) {
    spdlog::info("listening on http://{}:{}/mcp", host, *port);
  } else {
    spdlog::info("listening on http://{}:{}/mcp ({} server{}: {})", host, *port,
                 cfg.servers.size(), cfg.servers.size() == 1 ? "" : "s", gw.ServerNames());
  }
  spdlog::info("{} event loop{}", loops.size(), loops.size() == 1 ? "" : "s");
  gw.StartWatching();
  GracefulShutdown shutdown(io, server, cfg.shutdown_timeout_ms, [&] {
    server.Stop();  // sessions first: their channels detach, so stopping the servers is quiet
    gw.Stop();
  });
  shutdown.Arm();
  loops.Run();  // nothing on a loop waits for a state file another process holds (sqlite_db.h)
  return kExitOk;
}

}  // namespace

int Launch(const config::Config& config, const std::string& command) {
  SetSqliteBusyTimeout(std::chrono::milliseconds(config.state_timeout_ms));
  std::signal(SIGPIPE, SIG_IGN);
  transport::EventLoops loops(config.stdio() ? 1 : config.workers);
  SystemClock clock;
  auto opened = Gateway::Open(loops.home(), config, clock);
  if (!opened) {
    const bool invalid = opened.error().code() == ErrorCode::kInvalidArgument;
    std::cerr << (invalid ? "" : "toolwarden " + command + ": ") << opened.error().message() << "\n";
    return invalid ? kExitInvalid : kExitUnavailable;
  }
  Gateway& gw = **opened;
  // Records still in flight when the loops return post their completion to them: let the
  // audit writer finish them while the loops are still there.
  struct FlushAudit {
    audit::AuditLog& log;
    ~FlushAudit() { log.Flush(); }
  } flush_audit{gw.Audit()};

  const int status = config.stdio() ? ServeStdio(loops, gw) : ServeHttp(loops, gw, command);
  if (status == kExitOk && !config.stdio()) spdlog::info("stopped");
  return status;
}

}  // namespace tw::app
