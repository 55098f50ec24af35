// `toolwarden init`: find the MCP servers in the usual client configurations, scan each, write
// one policy per server next to a toolwarden.yaml — and only with --apply, rewrite the client
// configurations so each server runs through `toolwarden run` (what it changed is recorded
// beside each file, app/init_record.h; --undo reverts exactly that). Re-runs merge into an
// existing toolwarden.yaml. `env` values stay in the client configuration, are passed to the
// scanned server only, and are never printed or copied.
#pragma once

#include <string>
#include <vector>

namespace tw::app {

struct InitOptions {
  std::vector<std::string> configs;  // client config files (--client-config); empty: the known ones
  std::string config_file;           // the toolwarden.yaml to write or merge into (-c)
  std::string out_dir;               // where policies and toolwarden.yaml go (without -c)
  bool list_clients = false;
  bool apply = false;
  bool undo = false;
  bool force = false;  // overwrite existing policies
  double timeout_s = 60;
};

// `self` is this executable's absolute path (what rewritten configs run).
int InitCommand(const InitOptions& options, const std::string& self);

}  // namespace tw::app
