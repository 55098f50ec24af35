// `toolwarden completions bash|zsh|fish`: shell completion scripts generated from the command
// line's own definition (every subcommand and flag CLI11 knows), so they never fall behind it.
// The packages install them where each shell looks (make package).
#pragma once

#include <CLI/CLI.hpp>
#include <ostream>
#include <string>

namespace tw::app {

// Writes the script for `shell` (bash, zsh or fish) describing `app`. Hidden subcommands (no
// group) are left out.
void WriteCompletions(const CLI::App& app, const std::string& shell, std::ostream& out);

}  // namespace tw::app
