// The CLI: subcommands and their wiring. Main() returns the process exit code.
#pragma once

#include <cstdint>
#include <string>
#include <utility>

#include "common/result.h"

namespace tw::app {

// Exit codes (README "Exit codes").
inline constexpr int kExitOk = 0;
inline constexpr int kExitInvalid = 1;      // a policy or config file is invalid; validate failed
inline constexpr int kExitUsage = 2;        // bad command line
inline constexpr int kExitUnavailable = 3;  // the upstream or the listen address cannot be used

int Main(int argc, char** argv);

// Splits "host:port" (IPv6 in brackets).
Result<std::pair<std::string, uint16_t>> ParseListen(const std::string& listen);
// "2026-11-28T12:00:00Z".
std::string FormatTime(int64_t ms);

}  // namespace tw::app
