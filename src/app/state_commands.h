// The subcommands that change who may do what: `grants` (agents' tokens), `approvals` (held
// calls: list, approve, deny — on the state store or through a running gateway's admin API),
// `admin reset-token`.
#pragma once

#include <string>
#include <vector>

namespace tw::app {

struct GrantsOptions {
  std::string config;
  std::string state;
  std::string name;
  std::string servers;  // comma-separated
  std::string expires;
  std::vector<std::string> policies;  // server=path
  std::string principal;              // the person the grant acts for
  bool json = false;
};
// `action`: create, list or revoke.
int GrantsCommand(const std::string& action, const GrantsOptions& options);

struct ApprovalsOptions {
  std::string config;
  std::string state;
  std::string api;  // a running serve's base URL: use its admin API instead of the state store
  std::string id;
  std::string reason;
  bool all = false;
  bool json = false;
};
// `action`: list, approve or deny.
int ApprovalsCommand(const std::string& action, const ApprovalsOptions& options);

int AdminTokenCommand(const std::string& config_path, const std::string& state);

}  // namespace tw::app
