// The command line: every subcommand's flags, parsed with CLI11 and handed to the function
// that does the work (run.h, serve.h, state_commands.h, inspect_commands.h, init.h, scan.h,
// demo.h). Nothing here does the work itself.
#include "app/cli.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <filesystem>
#include <functional>
#include <iostream>

#include "app/cli_common.h"
#include "app/cli_state.h"
#include "app/credentials_command.h"
#include "app/completions.h"
#include "app/demo.h"
#include "app/init.h"
#include "app/inspect_commands.h"
#include "app/policy_test.h"
#include "app/replay.h"
#include "app/run.h"
#include "app/scan.h"
#include "app/serve.h"
#include "app/state_commands.h"
#include "common/log.h"
#include "limits/counter_store.h"

#ifndef TW_VERSION
#define TW_VERSION "0.0.0"
#endif

namespace tw::app {

int Main(int argc, char** argv) {
  CLI::App app{
      "toolwarden: a policy-enforcing gateway for the Model Context Protocol.\n"
      "Every tools/call is decided by your policy before it reaches the server."};
  app.set_version_flag("-V,--version", std::string("toolwarden ") + TW_VERSION);
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
                  "Header sent to --upstream, \"Name: value\"; ${VAR} takes a variable's value")
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
  run->add_option("--workers", run_options.workers,
                  "Event loops with --listen: auto (one per core available) or 1 to 256")
      ->capture_default_str();
  run->add_option("--max-sessions", run_options.max_sessions,
                  "Most concurrent MCP sessions on --listen (default 64 with a command upstream, "
                  "one process each; 10000 with --upstream)")
      ->check(CLI::PositiveNumber);
  run->add_option("--session-idle-timeout", run_options.session_idle_s,
                  "Seconds after which an idle HTTP session is closed")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  run->add_option("--state", run_options.state,
                  "Where counters live: sqlite:PATH, redis://HOST:PORT/DB (also rediss://, "
                  "redis-sentinel://) or memory (default sqlite:" +
                      limits::DefaultStateSpec().substr(7) + ")");
  run->add_option("--state-fail-mode", run_options.state_fail_mode,
                  "If the state store fails: closed denies calls that have limits, open lets "
                  "them through uncounted")
      ->check(CLI::IsMember({"closed", "open"}))
      ->capture_default_str();
  run->add_option("--upstream-protocol", run_options.upstream_protocol,
                  "The server's era: auto (server/discover; --upstream's default), legacy "
                  "(a command's default) or modern (2026-07-28)")->check(CLI::IsMember({"auto", "legacy", "modern"}));
  run->add_option("--state-timeout", run_options.state_timeout_s,
                  "Seconds a call waits for a state file another process holds locked before "
                  "it is denied (the gateway itself never waits for it)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  run->add_option("--server-name", run_options.server_name,
                  "Name of the upstream for tool pins (default: derived from the command or URL)");
  run->add_option("--pin-mode", run_options.pin_mode,
                  "Tool pinning: enforce denies tools whose definition changed since approval, "
                  "approval holds their calls for a human, warn only logs (but holds a tool whose "
                  "risk rose), shadow logs and records the block as the call's shadow decision, off")
      ->check(CLI::IsMember({"enforce", "approval", "warn", "shadow", "off"}))
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
  run->add_flag("--audit-arguments{full}", run_options.audit_arguments,
                "Argument values in the audit trail: none (keys and a SHA-256 digest), redacted "
                "(the default: secrets' values replaced), full (bare flag)")
      ->check(CLI::IsMember({"none", "redacted", "full"}));
  run->add_option("--policy-shadow", run_options.policy_shadow_path,
                  "A candidate policy evaluated on every call beside --policy: its decisions "
                  "recorded in the audit, never enforced")
      ->check(CLI::ExistingFile);
  run->add_option("command", run_options.command,
                  "After --: the MCP server command to run as a child process");

  ValidateOptions validate_options;
  CLI::App* validate = app.add_subcommand(
      "validate", "Check policy files (or a serve config and its policies with -c); print every "
                  "problem as FILE:LINE:COLUMN: message");
  validate->add_option("files", validate_options.files, "Policy files");
  validate->add_option("-c,--config", validate_options.config, "A toolwarden.yaml (serve config)");
  validate->add_flag("--json", validate_options.json, "A JSON line per file: valid, problems");

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
  serve->add_option("--replica", serve_options.replica,
                    "This replica's name in a fleet: its session ids start with NAME.");
  serve->add_option("--audit-log", serve_options.audit_log,
                    "Also write audit records as JSON lines to FILE (- for stdout)");

  // grants, admin, approvals, audit, pins, state: the commands that read or change the state.
  const std::function<int()> state_commands = AddStateCommands(app);
  const std::function<int()> credentials_command = AddCredentialsCommand(app);

  ExplainOptions explain_options;
  CLI::App* explain = app.add_subcommand(
      "explain", "Show how a policy decides one call, without calling anything");
  explain->add_option("-p,--policy", explain_options.policy_path, "Policy file")
      ->required()
      ->check(CLI::ExistingFile);
  explain->add_option("--tool", explain_options.tool, "Tool name")->required();
  explain->add_option("--class", explain_options.cls,
                      "The tool's class as scan shows it (Destructive, or Destructive/High), for "
                      "classes: selectors");
  explain->add_option("--args", explain_options.args, "Arguments as a JSON object")
      ->capture_default_str();
  explain->add_option("--grant", explain_options.grant, "The grant calling")->capture_default_str();
  explain->add_option("--principal", explain_options.principal,
                      "The person behind the call (policies' principals:)");
  explain->add_option("--group", explain_options.groups, "A group of theirs (groups:); repeat for more")
      ->allow_extra_args(false);
  explain->add_flag("--json", explain_options.json, "One JSON object instead of text");
  explain->add_option("--state", explain_options.state,
                      "State store to read current counter values from (nothing is charged)");

  PolicyTestOptions test_options;
  CLI::App* test = app.add_subcommand(
      "test", "Check a policy's decisions against expected ones (exit 1 on a mismatch):\n"
              "  toolwarden test policies/stripe.yaml policies/stripe.cases.yaml --junit report.xml");
  test->add_option("policy", test_options.policy_path, "Policy file")->required()->check(CLI::ExistingFile);
  test->add_option("cases", test_options.cases_path, "Cases file (YAML or JSON)")
      ->required()
      ->check(CLI::ExistingFile);
  test->add_flag("--json", test_options.json, "One JSON object instead of a table");
  test->add_option("--junit", test_options.junit_path, "Also write a JUnit XML report to FILE");

  ReplayCliOptions replay_options;
  CLI::App* replay = app.add_subcommand(
      "replay", "What a candidate policy would have decided of the recorded calls:\n"
                "  toolwarden replay --policy policies/db.next.yaml -c toolwarden.yaml --since 7d");
  replay->add_option("--policy", replay_options.policy_path, "The candidate policy")
      ->required()
      ->check(CLI::ExistingFile);
  replay->add_option("-c,--config", replay_options.config_path,
                     "Replay this serve config's records (its one server unless --server)");
  replay->add_option("--state", replay_options.state, "State store (default: as `run`)");
  replay->add_option("--since", replay_options.since, "Records of the last DURATION")->capture_default_str();
  replay->add_option("--until", replay_options.until, "Records up to DURATION ago (default: now)");
  replay->add_option("--server", replay_options.server, "Only this server's calls");
  replay->add_option("--grant", replay_options.grant, "Only this grant's calls");
  replay->add_option("--examples", replay_options.examples, "Example calls per change")
      ->capture_default_str();
  replay->add_flag("--json", replay_options.json, "One JSON object instead of text");
  replay->add_flag("--fail-on-change", replay_options.fail_on_change,
                   "Exit 1 when any recorded call would be decided differently");

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

  InitOptions init_options;
  CLI::App* init = app.add_subcommand(
      "init",
      "Find MCP servers in Claude Desktop / Claude Code / Cursor configs, scan each, write a "
      "policy per server; --apply puts toolwarden in front of them");
  init->add_option("--client-config", init_options.configs,
                   "A client config file (repeatable; default: the usual locations)")
      ->allow_extra_args(false);
  init->add_option("-c,--config", init_options.config_file,
                   "The toolwarden.yaml to write, or to merge new servers into");
  init->add_flag("--list-clients", init_options.list_clients,
                 "Say which client configurations were found, and how many servers each has");
  init->add_option("--out", init_options.out_dir,
                   "Where to write policies/ and toolwarden.yaml (default ~/.config/toolwarden)");
  init->add_flag("--apply", init_options.apply,
                 "Rewrite the client configs to run each server through toolwarden (backed up)");
  init->add_flag("--undo", init_options.undo, "Revert the servers init rewrote (nothing else)");
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

  CLI::App* demo = app.add_subcommand(
      "demo", "Show toolwarden in front of a bundled demo MCP server (nothing to install)");
  bool version_json = false;
  app.add_subcommand("version", "Print the version (as -V does)")->add_flag("--json", version_json, "As JSON");
  std::string completion_shell;
  CLI::App* completions = app.add_subcommand("completions", "Print a shell completion script");
  completions->add_option("shell", completion_shell, "bash, zsh or fish")
      ->required()
      ->check(CLI::IsMember({"bash", "zsh", "fish"}));
  CLI::App* demo_server = app.add_subcommand("demo-server", "");  // hidden: no description
  demo_server->group("");

  try {
    for (CLI::App* sc : app.get_subcommands({})) {  // global flags may follow any subcommand
      sc->fallthrough();
      for (CLI::App* inner : sc->get_subcommands({})) inner->fallthrough();
    }
    app.name("toolwarden")->parse(argc, argv);  // usage names the command, not the binary's path
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
  if (int rc = state_commands(); rc >= 0) return rc;
  if (int rc = credentials_command(); rc >= 0) return rc;

  if (*run) return RunCommand(run_options);
  if (*serve) return ServeCommand(serve_options);
  if (*validate) return ValidateCommand(validate_options);
  if (*explain) return ExplainCommand(explain_options);
  if (*scan) return ScanCommand(scan_options);
  if (*test) return PolicyTestCommand(test_options);
  if (*replay) return ReplayCommand(replay_options);
  if (*tools) return ToolsCommand(tools_options);
  if (*init) return InitCommand(init_options, std::filesystem::read_symlink("/proc/self/exe").string());
  if (app.got_subcommand("version")) return VersionCommand(version_json);
  if (*completions) {
    WriteCompletions(app, completion_shell, std::cout);
    return kExitOk;
  }
  if (*demo) return DemoMain(std::filesystem::read_symlink("/proc/self/exe").string());
  if (*demo_server) return DemoServerMain();
  return kExitUsage;
}

}  // namespace tw::app
