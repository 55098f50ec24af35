// `toolwarden serve -c toolwarden.yaml`: the gateway for a fleet — many servers behind one
// endpoint, agents identified by grant tokens, approvals, the audit trail and the admin API.
#pragma once

#include <string>

namespace tw::app {

struct ServeOptions {
  std::string config_path;
  std::string listen;     // overrides the config's
  std::string state;      // overrides the config's
  std::string audit_log;  // overrides the config's audit.log
  std::string replica;    // overrides the config's
};

int ServeCommand(const ServeOptions& options);

}  // namespace tw::app
