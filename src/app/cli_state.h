// The state commands' part of the command line (cli.cc holds the rest).
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace tw::app {

// Adds grants, admin, approvals, audit, pins and state to `app`. After parsing, the returned
// function runs the one that was chosen and returns its exit code, or -1 when another
// subcommand was chosen.
std::function<int()> AddStateCommands(CLI::App& app);

}  // namespace tw::app
