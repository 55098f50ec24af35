#include "app/run.h"

#include <spdlog/spdlog.h>

#include <charconv>
#include <filesystem>
#include <iostream>

#include "app/cli_common.h"
#include "app/launch.h"
#include "app/server_target.h"
#include "transport/child_upstream.h"
#include "transport/http_upstream.h"

namespace tw::app {

namespace {

int64_t Ms(double seconds) { return static_cast<int64_t>(seconds * 1000); }

}  // namespace

Result<config::Config> RunConfig(const RunOptions& o) {
  if (o.upstream_url.empty() == o.command.empty()) {
    return Fail(Error::InvalidArgument(
        "give exactly one upstream: -- COMMAND [ARGS...] or --upstream URL"));
  }
  if (o.audit_log == "-" && o.listen.empty()) {
    return Fail(Error::InvalidArgument("--audit-log - needs --listen (stdout carries the MCP stream)"));
  }
  config::Config c;
  c.access = config::Access::kLocal;
  c.listen = o.listen.empty() ? std::string(config::kListenStdio) : o.listen;
  c.state = o.state;
  c.state_fail_mode =
      o.state_fail_mode == "open" ? config::StateFailMode::kOpen : config::StateFailMode::kClosed;
  c.state_timeout_ms = Ms(o.state_timeout_s);
  c.allowed_hosts = o.allowed_hosts;
  c.allowed_origins = o.allowed_origins;
  c.origin_check = !o.no_origin_check;
  // A command upstream costs a process per session: keep that number modest by default.
  c.max_sessions = o.max_sessions.value_or(o.command.empty() ? 10000 : 64);
  c.session_idle_ms = Ms(o.session_idle_s);
  c.client_timeout_ms = Ms(o.client_timeout_s);
  c.sse_keepalive_ms = Ms(o.sse_keepalive_s);
  c.shutdown_timeout_ms = Ms(o.shutdown_timeout_s);
  if (o.workers != "auto") {
    int64_t n = 0;
    auto [end, ec] = std::from_chars(o.workers.data(), o.workers.data() + o.workers.size(), n);
    if (ec != std::errc() || end != o.workers.data() + o.workers.size() || n < 1 ||
        n > config::kMaxWorkers) {
      return Fail(Error::InvalidArgument("--workers must be auto or a number from 1 to " +
                                         std::to_string(config::kMaxWorkers) + ", not \"" +
                                         o.workers + "\""));
    }
    c.workers = static_cast<size_t>(n);
  }
  c.max_body_bytes = o.max_message_bytes;
  c.audit_log = o.audit_log;
  c.audit_arguments = catalog::ParseArgumentsKept(o.audit_arguments).value_or(catalog::ArgumentsKept::kRedacted);

  config::ServerConfig s;
  s.name = o.server_name.empty() ? DeriveServerName(o.command, o.upstream_url) : o.server_name;
  if (!o.upstream_url.empty()) {
    if (auto url = transport::ParseUpstreamUrl(o.upstream_url); !url) return Fail(url.error());
    s.url = o.upstream_url;
    for (const auto& h : o.headers) {
      auto header = ParseHeader(h);
      if (!header) return Fail(header.error());
      // A value may name an environment variable (`Authorization: Bearer ${TOKEN}`), so that a
      // client's configuration passes a secret through the environment, not the command line.
      auto value = config::ExpandVariables(header->second, config::ProcessEnv());
      if (!value) return Fail(Error::InvalidArgument("--header " + header->first + ": " + value.error().message()));
      header->second = std::move(*value);
      s.headers.push_back(*header);
    }
    if (!o.upstream_ca.empty()) s.ca_file = std::filesystem::absolute(o.upstream_ca).lexically_normal();
  } else {
    s.command = o.command;
    s.isolation = config::Isolation::kSession;  // a process per session, as a client runs it
    s.inherit_all_env = true;  // the client set this environment for this one server
  }
  if (!o.upstream_protocol.empty()) {
    s.protocol = o.upstream_protocol == "modern"   ? config::ProtocolEra::kModern
                 : o.upstream_protocol == "legacy" ? config::ProtocolEra::kLegacy
                                                   : config::ProtocolEra::kAuto;
  }
  s.policy_path = std::filesystem::absolute(o.policy_path).lexically_normal();
  if (!o.policy_shadow_path.empty()) {
    s.policy_shadow_path = std::filesystem::absolute(o.policy_shadow_path).lexically_normal();
  }
  s.pins = o.pin_mode == "off"        ? config::PinMode::kOff
           : o.pin_mode == "warn"     ? config::PinMode::kWarn
           : o.pin_mode == "shadow"   ? config::PinMode::kShadow
           : o.pin_mode == "approval" ? config::PinMode::kApproval
                                      : config::PinMode::kEnforce;
  s.unlisted_tools =
      o.unlisted_tools == "allow" ? config::UnlistedTools::kAllow : config::UnlistedTools::kDeny;
  s.schema = o.schema == "off"    ? config::SchemaMode::kOff
             : o.schema == "warn" ? config::SchemaMode::kWarn
                                  : config::SchemaMode::kEnforce;
  s.extension_methods = o.extension_methods;
  s.connect_timeout_ms = Ms(o.connect_timeout_s);
  s.request_timeout_ms = Ms(o.request_timeout_s);
  c.servers.emplace(s.name, std::move(s));
  if (auto ok = config::CheckConfig(c); !ok) return Fail(ok.error());
  return c;
}

int RunCommand(const RunOptions& o) {
  auto config = RunConfig(o);
  if (!config) {
    std::cerr << "toolwarden run: " << config.error().message() << "\n";
    return kExitUsage;
  }
  if (!o.command.empty()) {
    if (auto exe = transport::FindExecutable(o.command.front()); !exe) {
      std::cerr << "toolwarden run: " << exe.error().message() << "\n";
      return kExitUnavailable;
    }
  }
  const config::ServerConfig& server = config->servers.begin()->second;
  spdlog::info("policy {}; tool pins for server \"{}\": {}", o.policy_path, server.name,
               config::PinModeName(server.pins));
  return Launch(*config, "run");
}

}  // namespace tw::app
