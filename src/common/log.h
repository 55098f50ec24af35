// Logging facade: spdlog writing to stderr only (stdout belongs to the stdio JSON-RPC stream).
#pragma once

#include <spdlog/spdlog.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace tw {

// Installs a stderr logger as the default spdlog logger at `level` (trace, debug, info, warn,
// error, off). Returns false for an unknown level name, leaving the logger unchanged.
// With `json`, each line is one JSON object: {"ts":"2026-11-28T12:00:00.000Z","level":"info","msg":"…"}.
bool InitLogging(std::string_view level, bool json = false);

// A Unix time in milliseconds as ISO 8601 UTC with milliseconds: "2026-11-28T14:26:00.123Z"
// (the JSON log lines' "ts", the audit CSV export's "time").
std::string IsoTimeUtc(int64_t epoch_ms);

// Formats one message as that JSON line (exposed for tests).
std::string FormatJsonLogLine(std::string_view level, std::string_view message, int64_t epoch_ms);

}  // namespace tw
