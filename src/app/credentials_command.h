// `toolwarden credentials`: the per-person upstream credentials of servers with
// `credentials: per_principal` (auth/credential_store.h) — a key, set, list, delete.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace tw::app {

// Adds `credentials` to `app`. After parsing, the returned function runs it and returns its
// exit code, or -1 when another subcommand was chosen.
std::function<int()> AddCredentialsCommand(CLI::App& app);

}  // namespace tw::app
