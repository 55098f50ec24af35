// Tool pins: the definition of each tool of each server as it was first seen (or last
// accepted), to catch servers that change a tool after it was approved ("rug pulls").
//
// A definition is pinned by the SHA-256 of its canonical JSON (common/canonical_json.h, arrays
// as sets, `_meta` left out), so benign changes — key order, whitespace, list order, number
// spelling — never count as changes. Thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "jsonrpc/message.h"

namespace tw::catalog {

struct Pin {
  std::string server;
  std::string tool;
  std::string hash;        // of the approved definition
  std::string definition;  // canonical JSON of it
  int64_t pinned_ms = 0;
  // A change seen since, waiting for an administrator.
  std::optional<std::string> pending_hash;
  std::optional<std::string> pending_definition;
  std::string pending_note;  // why, e.g. "look-alike of \"delete_file\""
  int64_t changed_ms = 0;
};

enum class Observation { kPinned, kUnchanged, kChanged };

class PinStore {
 public:
  virtual ~PinStore() = default;
  // Records a definition the server lists now: pins a tool seen for the first time, records a
  // pending change for one that differs from its pin. `note` explains a suspicious newcomer
  // (a look-alike name), which is recorded as a pending change of an empty pin.
  virtual Result<Observation> Observe(const std::string& server, const std::string& tool,
                                      const std::string& hash, const std::string& definition,
                                      int64_t now_ms, const std::string& note = {}) = 0;
  virtual Result<std::optional<Pin>> Get(const std::string& server, const std::string& tool) = 0;
  // Every pin of `server` (all servers when empty).
  virtual Result<std::vector<Pin>> List(const std::string& server) = 0;
  // Makes pending changes the pins (of one tool, or of every tool of the server when `tool` is
  // empty). Returns how many were accepted.
  virtual Result<int> Accept(const std::string& server, const std::string& tool, int64_t now_ms) = 0;
};

// The digest and canonical text of a tool definition.
struct PinnedDefinition {
  std::string hash;
  std::string canonical;
};
PinnedDefinition PinDefinition(const json::object& tool);

std::unique_ptr<PinStore> MakeMemoryPinStore();
// "memory", "sqlite:PATH" (the same file as the counters; table `pins`) or "redis://…".
Result<std::unique_ptr<PinStore>> OpenPinStore(const std::string& spec);
Result<std::unique_ptr<PinStore>> OpenRedisPinStore(const std::string& url);

}  // namespace tw::catalog
