// Logging facade: spdlog writing to stderr only (stdout belongs to the stdio JSON-RPC stream).
#pragma once

#include <spdlog/spdlog.h>

#include <string_view>

namespace tw {

// Installs a stderr logger as the default spdlog logger at `level` (trace, debug, info, warn,
// error, off). Returns false for an unknown level name, leaving the logger unchanged.
bool InitLogging(std::string_view level);

}  // namespace tw
