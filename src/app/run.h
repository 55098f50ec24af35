// `toolwarden run -p policy.yaml -- COMMAND...` (or --upstream URL): one MCP server behind a
// policy, for one local user, on stdio or (--listen) Streamable HTTP. Its flags become a
// one-server config::Config with access: local (RunConfig), launched like `serve`'s.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "config/config.h"

namespace tw::app {

struct RunOptions {
  std::string policy_path;
  std::string upstream_url;
  std::vector<std::string> headers;  // "Name: value"
  std::string listen;                // empty: stdio
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
  std::string upstream_protocol;  // auto, legacy, modern; empty: the server kind's default
  double state_timeout_s = 5;
  std::string server_name;  // empty: derived from the command or URL
  std::string pin_mode = "enforce";
  std::string unlisted_tools = "deny";
  std::string schema = "enforce";
  std::vector<std::string> extension_methods;
  std::string audit_log;
  std::string audit_arguments = "redacted";  // none | redacted | full
  std::string policy_shadow_path;
  double shutdown_timeout_s = 10;
  std::string workers = "auto";  // event loops with --listen: auto or 1..256
};

// The config `run` launches: access local, one server named --server-name (or derived), its
// process per session (a command) with the whole environment, as a client config gives it.
// Errors are InvalidArgument and name the flag (usage errors).
Result<config::Config> RunConfig(const RunOptions& options);

int RunCommand(const RunOptions& options);

}  // namespace tw::app
