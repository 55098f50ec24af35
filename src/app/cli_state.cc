// The commands that read or change the state store: grants, admin, approvals, audit, pins and
// state (info, backup, restore). Their flags, and the -c/--state resolution they share.
#include "app/cli_state.h"

#include <iostream>
#include <memory>

#include "app/cli_common.h"
#include "app/inspect_commands.h"
#include "app/state_commands.h"
#include "app/state_file.h"

namespace tw::app {
namespace {

struct StateCliOptions {
  GrantsOptions grants;
  ApprovalsOptions approvals;
  AuditOptions audit;
  PinsOptions pins;
  StateFileOptions file;
  std::string admin_config, admin_state;
};

}  // namespace

std::function<int()> AddStateCommands(CLI::App& app) {
  auto o = std::make_shared<StateCliOptions>();
  CLI::App* grants_cmd =
      app.add_subcommand("grants", "Who may call the gateway: grant tokens for agents");
  grants_cmd->require_subcommand(1);
  grants_cmd->fallthrough();  // parent options (-c, --state) may follow the subcommand
  grants_cmd->add_option("-c,--config", o->grants.config, "Use the state of this serve config");
  grants_cmd->add_option("--state", o->grants.state, "State store (default: the config's)");
  CLI::App* grants_create =
      grants_cmd->add_subcommand("create",
                                 "Create a grant and print its token once:\n"
                                 "  toolwarden grants create ci-runner --servers github,stripe "
                                 "--expires 30d -c toolwarden.yaml");
  grants_create->add_option("name", o->grants.name, "Grant name")->required();
  grants_create->add_option("--servers", o->grants.servers,
                            "Comma-separated servers it may use (default: all)");
  grants_create->add_option("--expires", o->grants.expires, "Lifetime, e.g. 12h, 30d");
  grants_create
      ->add_option("--policy", o->grants.policies,
                   "SERVER=FILE: a policy replacing that server's own for this grant")
      ->allow_extra_args(false);
  grants_create->add_option("--principal", o->grants.principal,
                            "The person it acts for (policies' principals:, limits' scope: principal)");
  grants_create->add_flag("--json", o->grants.json, "Print the grant and token as JSON");
  CLI::App* grants_list = grants_cmd->add_subcommand("list", "Every grant (never tokens)");
  grants_list->add_flag("--json", o->grants.json, "JSON lines");
  CLI::App* grants_revoke =
      grants_cmd->add_subcommand("revoke", "Revoke a grant: its token stops working at once");
  grants_revoke->add_option("name", o->grants.name, "Grant name")->required();

  CLI::App* admin_cmd = app.add_subcommand("admin", "The admin API's token");
  admin_cmd->require_subcommand(1);
  admin_cmd->fallthrough();  // parent options (-c, --state) may follow the subcommand
  admin_cmd->add_option("-c,--config", o->admin_config, "Use the state of this serve config");
  admin_cmd->add_option("--state", o->admin_state, "State store");
  CLI::App* admin_reset = admin_cmd->add_subcommand(
      "reset-token", "Replace the admin API token (prints the new one once)");

  CLI::App* approvals_cmd = app.add_subcommand("approvals", "Calls waiting for a human's decision");
  approvals_cmd->require_subcommand(1);
  approvals_cmd->fallthrough();  // parent options (-c, --state) may follow the subcommand
  approvals_cmd->add_option("--state", o->approvals.state, "State store (default: as `run`)");
  approvals_cmd->add_option("-c,--config", o->approvals.config,
                            "Use the state of this serve config");
  approvals_cmd->add_option("--api", o->approvals.api,
                            "A running gateway's base URL (http://127.0.0.1:8421): use its admin "
                            "API, with the token in TOOLWARDEN_ADMIN_TOKEN");
  CLI::App* approvals_list =
      approvals_cmd->add_subcommand("list", "Pending approvals (--all: every one)");
  approvals_list->add_flag("--all", o->approvals.all, "Resolved ones too");
  approvals_list->add_flag("--json", o->approvals.json, "JSON lines");
  CLI::App* approvals_approve = approvals_cmd->add_subcommand("approve", "Let a held call through");
  approvals_approve->add_option("id", o->approvals.id, "Approval id")->required();
  approvals_approve->add_option("--reason", o->approvals.reason, "Why (recorded)");
  CLI::App* approvals_deny = approvals_cmd->add_subcommand("deny", "Refuse a held call");
  approvals_deny->add_option("id", o->approvals.id, "Approval id")->required();
  approvals_deny->add_option("--reason", o->approvals.reason, "Why (the agent sees it)");

  CLI::App* audit_cmd = app.add_subcommand("audit", "Query the audit trail (newest first)");
  audit_cmd->add_option("--state", o->audit.state, "State store (default: as `run`)");
  audit_cmd->add_option("-c,--config", o->audit.config, "Use the state of this serve config");
  audit_cmd->add_option("--since", o->audit.since, "Only the last DURATION (30m, 1h, 7d)");
  audit_cmd->add_option("--grant", o->audit.grant, "Only this grant");
  audit_cmd->add_option("--server", o->audit.server, "Only this server");
  audit_cmd->add_option("--tool", o->audit.tool, "Only this tool");
  audit_cmd
      ->add_option("--decision", o->audit.decision,
                   "Only this decision: allow, deny, approval (held for a human) or dropped "
                   "(a message the protocol allow-list refused)")
      ->check(CLI::IsMember({"allow", "deny", "approval", "dropped"}));
  audit_cmd->add_option("--limit", o->audit.limit, "At most N records")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  audit_cmd->add_flag("--json", o->audit.json, "JSON lines instead of a table");

  CLI::App* pins = app.add_subcommand(
      "pins", "Tool pins: definitions approved per server, and changes waiting for review");
  pins->require_subcommand(1);
  pins->fallthrough();  // parent options (-c, --state) may follow the subcommand
  pins->add_option("--state", o->pins.state, "State store (default: as `run`)");
  pins->add_option("-c,--config", o->pins.config, "Use the state of this serve config");
  CLI::App* pins_list = pins->add_subcommand("list", "List pins and pending changes");
  pins_list->add_option("--server", o->pins.server, "Only this server");
  pins_list->add_flag("--json", o->pins.json, "JSON lines instead of a table");
  CLI::App* pins_diff = pins->add_subcommand("diff", "Show what changed in a tool's definition");
  pins_diff->add_option("server", o->pins.server, "Server name")->required();
  pins_diff->add_option("tool", o->pins.tool, "Tool name")->required();
  CLI::App* pins_accept =
      pins->add_subcommand("accept", "Approve a tool's changed definition (or all)");
  pins_accept->add_option("server", o->pins.server, "Server name")->required();
  pins_accept->add_option("tool", o->pins.tool, "Tool name (default: every changed tool)");

  CLI::App* state_cmd = app.add_subcommand(
      "state", "The state file itself: its schema version and size, a backup, a restore");
  state_cmd->require_subcommand(1);
  state_cmd->add_option("-c,--config", o->file.config, "Use the state of this serve config");
  state_cmd->add_option("--state", o->file.state, "State store (sqlite:PATH; default: as `run`)");
  CLI::App* state_info =
      state_cmd->add_subcommand("info", "Path, schema version, size, rows per table");
  state_info->add_flag("--json", o->file.json, "One JSON object");
  CLI::App* state_backup =
      state_cmd->add_subcommand("backup",
                                "Copy the state file, consistent while a gateway writes it:\n"
                                "  toolwarden state backup -c toolwarden.yaml state-2026-12-07.db");
  state_backup->add_option("file", o->file.file, "Where to write the copy")->required();
  state_backup->add_flag("--force", o->file.force, "Replace FILE if it exists");
  CLI::App* state_restore = state_cmd->add_subcommand(
      "restore",
      "Replace the state file with a backup (stop the gateway first); the file it "
      "replaces is kept as PATH.before-restore");
  state_restore->add_option("file", o->file.file, "A backup made by `state backup`")
      ->required()
      ->check(CLI::ExistingFile);

  return [o, grants_cmd, grants_create, grants_list, admin_cmd, admin_reset, approvals_cmd,
          approvals_list, approvals_approve, audit_cmd, pins, pins_list, pins_diff, state_cmd,
          state_info, state_backup]() -> int {
    if (!*grants_cmd && !*admin_cmd && !*approvals_cmd && !*audit_cmd && !*pins && !*state_cmd) {
      return -1;
    }
    // -c CONFIG: the state store the config names, for every subcommand that reads state.
    for (auto [config, state] : {std::pair{&o->approvals.config, &o->approvals.state},
                                 std::pair{&o->audit.config, &o->audit.state},
                                 std::pair{&o->pins.config, &o->pins.state}}) {
      if (config->empty() && state != &o->audit.state) continue;
      auto spec = state == &o->audit.state ? ResolveAuditStore(*config, *state)
                                           : ResolveState(*config, *state);
      if (!spec) {
        std::cerr << spec.error().message() << "\n";
        return kExitInvalid;
      }
      *state = *spec;
    }
    if (*state_cmd) {
      auto spec = ResolveState(o->file.config, o->file.state);
      if (!spec) {
        std::cerr << spec.error().message() << "\n";
        return kExitInvalid;
      }
      o->file.state = *spec;
    }
    if (*grants_cmd) {
      return GrantsCommand(*grants_create ? "create" : *grants_list ? "list" : "revoke", o->grants);
    }
    if (*admin_cmd && *admin_reset) return AdminTokenCommand(o->admin_config, o->admin_state);
    if (*audit_cmd) return AuditCommand(o->audit);
    if (*approvals_cmd) {
      return ApprovalsCommand(*approvals_list      ? "list"
                              : *approvals_approve ? "approve"
                                                   : "deny",
                              o->approvals);
    }
    if (*pins) return PinsCommand(*pins_list ? "list" : *pins_diff ? "diff" : "accept", o->pins);
    return StateFileCommand(*state_info ? "info" : *state_backup ? "backup" : "restore", o->file);
  };
}

}  // namespace tw::app
