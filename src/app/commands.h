// The CLI: subcommands and their wiring. Main() returns the process exit code.
#pragma once

namespace tw::app {

// Exit codes (README "Exit codes").
inline constexpr int kExitOk = 0;
inline constexpr int kExitInvalid = 1;      // a policy or config file is invalid; validate failed
inline constexpr int kExitUsage = 2;        // bad command line
inline constexpr int kExitUnavailable = 3;  // the upstream or the listen address cannot be used

int Main(int argc, char** argv);

}  // namespace tw::app
