// Launch: runs the Gateway a config::Config describes until it is told to stop — the one
// place `run` and `serve` both end up. With `listen: stdio` the one local session is this
// process's stdin and stdout (SIGINT/SIGTERM or EOF end it); otherwise it listens for HTTP
// (GracefulShutdown on SIGINT/SIGTERM). Prints the admin token once at the first start of a
// gateway with access: tokens. Returns the process exit code (app/cli_common.h).
#pragma once

#include <string>

#include "config/config.h"

namespace tw::app {

// `command` names the subcommand in messages ("run", "serve").
int Launch(const config::Config& config, const std::string& command);

}  // namespace tw::app
