// The subcommands that look without changing anything the gateway decides: `explain` (a
// policy's decision for one call), `audit` (the trail), `pins` (tool definitions: list, diff,
// and accept a change), `validate` (policies, or a serve config and its policies).
#pragma once

#include <string>
#include <vector>

namespace tw::app {

struct ExplainOptions {
  std::string policy_path;
  std::string tool;
  std::string args = "{}";
  std::string grant = "local";
  std::string state;
  std::string cls;    // "Destructive" or "Destructive/High": the tool's class, for `classes:`
  std::string principal;            // the person behind the call (principals:, scope: principal)
  std::vector<std::string> groups;  // their groups (groups:)
  bool json = false;  // one JSON object: decision, rule, selector, reason, limits, shadow
};
int ExplainCommand(const ExplainOptions& options);

struct AuditOptions {
  std::string config;
  std::string state;
  std::string since;
  std::string grant, server, tool, decision;
  int limit = 50;
  bool json = false;
};
// `toolwarden version [--json]`: "toolwarden X.Y.Z", or {"name": …, "version": …}.
int VersionCommand(bool json);

int AuditCommand(const AuditOptions& options);

struct PinsOptions {
  std::string config;
  std::string state;
  std::string server;
  std::string tool;
  bool json = false;  // list: JSON lines
};
// `action`: list, diff or accept.
int PinsCommand(const std::string& action, const PinsOptions& options);

// A serve config and every policy it names, then the policy files given.
struct ValidateOptions {
  std::vector<std::string> files;  // policy files
  std::string config;              // a serve config (its policies checked too)
  bool json = false;  // a JSON line per file: {"file", "valid", "problems": [{line, column, message}]}
};
int ValidateCommand(const ValidateOptions& options);

}  // namespace tw::app
