// What the subcommands share: exit codes, and the few helpers every one of them needs.
#pragma once

#include <vector>

#include <ostream>

#include <cstdint>
#include <string>
#include <utility>

#include "common/result.h"

namespace tw::config {
struct Config;
}  // namespace tw::config

namespace tw::app {

// Exit codes (README "Exit codes").
inline constexpr int kExitOk = 0;
inline constexpr int kExitInvalid = 1;      // a policy or config file is invalid; validate failed
inline constexpr int kExitUsage = 2;        // bad command line
inline constexpr int kExitUnavailable = 3;  // the upstream or the listen address cannot be used

// Splits "host:port" (IPv6 in brackets).
Result<std::pair<std::string, uint16_t>> ParseListen(const std::string& listen);
// "2026-11-28T12:00:00Z".
std::string FormatTime(int64_t ms);
// Reads a serve config for the state subcommands, which need its state and server names but
// not the servers' secrets: a variable unset in this shell does not stop them (unless `state`
// needs it).
Result<config::Config> LoadConfigForState(const std::string& config_path);
// The state store a subcommand uses: `state`, else the one the serve config at `config_path`
// names, else the default.
Result<std::string> ResolveState(const std::string& config_path, const std::string& state);
// Prints `rows` (the first: the header) as columns two spaces apart, each as wide as its
// widest cell (the last column is not padded).
void PrintTable(std::ostream& out, const std::vector<std::vector<std::string>>& rows);
// Where the audit records of that state are (limits::AuditSpecFor; a config's audit.store).
Result<std::string> ResolveAuditStore(const std::string& config_path, const std::string& state);

}  // namespace tw::app
