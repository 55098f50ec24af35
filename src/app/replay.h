// Replay: what a candidate policy would have decided of the calls the audit recorded.
//
// Records are read oldest first (audit::ScanAudit) and each is decided by the candidate as the
// guard would decide it — policy::Evaluate, then its limits charged in a counter store of the
// replay's own, in time order, so a rate limit fires when it would have; a limit that refunds
// failed calls is refunded where the recorded outcome failed — and compared with the recorded
// decision. What replay cannot know it says, and never guesses:
//   - a call refused before any policy (an unknown tool, arguments its schema refused, a
//     protocol drop) or decided by the state store or audit log failing: kept as recorded
//     ("outside the policy");
//   - a call held or denied by pins: still held or denied unless the candidate denies it;
//   - a call whose decision under the candidate reads argument values the audit does not have
//     (audit.arguments: none, values erased by arguments_retention, or a redacted value at a
//     path the candidate reads), or a class selector for a tool the record has no class for:
//     "undecidable", counted per tool with the reason;
//   - counters start empty at the first record read: calls before --since are not counted.
// Pure but for the audit store it reads.
#pragma once

#include <cstdint>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "common/result.h"
#include "policy/policy.h"

namespace tw::app {

struct ReplayOptions {
  std::string audit_spec;  // sqlite:PATH, or the shared trail's postgresql:// URL
  std::string server;      // "": every server (all the records must then be of one)
  std::string grant;       // "": every grant
  int64_t since_ms = 0;
  int64_t until_ms = 0;    // 0: up to now
  size_t examples = 3;     // per change
  int64_t max_records = 0;  // stop after this many, oldest first (0: read them all)
};

struct ReplayExample {
  std::string id;
  int64_t ts_ms = 0;
  std::string grant;
  std::string reason;  // the candidate's reason for a denial or hold; the recorded one otherwise
};

// Calls of one tool whose decision changes the same way for the same rule.
struct ReplayChange {
  std::string tool;
  std::string change;    // newly_denied | newly_allowed | newly_held | no_longer_held
  std::string rule;      // the candidate's rule
  std::string was_rule;  // the recorded rule
  int64_t calls = 0;
  int64_t first_ms = 0;  // for a limit: when it would first have fired
  int64_t last_ms = 0;
  std::vector<ReplayExample> examples;
};

struct ReplayReport {
  std::string policy_source, policy_version;
  std::string server;
  int64_t since_ms = 0, until_ms = 0;
  int64_t first_ms = 0, last_ms = 0;  // of the records read
  int64_t records = 0;                // read
  int64_t unchanged = 0;              // decided by the candidate as recorded
  int64_t outside_policy = 0;         // kept as recorded (see above)
  int64_t undecidable = 0;
  bool truncated = false;  // max_records stopped it before the end of the window
  std::map<std::string, int64_t> changed;  // by change kind
  std::vector<ReplayChange> changes;       // most calls first
  // tool → (calls, why) of the undecidable ones.
  std::map<std::string, std::pair<int64_t, std::string>> undecidable_tools;
  int64_t elapsed_ms = 0;

  // Calls of one change kind; with none given, of every kind.
  int64_t Changed(const std::string& kind = {}) const {
    if (!kind.empty()) return changed.contains(kind) ? changed.at(kind) : 0;
    int64_t n = 0;
    for (const auto& [k, calls] : changed) n += calls;
    return n;
  }
};

Result<ReplayReport> Replay(const policy::Policy& candidate, const ReplayOptions& options);

boost::json::object ReplayJson(const ReplayReport& report);
void PrintReplay(std::ostream& out, const ReplayReport& report);

struct ReplayCliOptions {
  std::string policy_path;
  std::string config_path;
  std::string state;
  std::string since = "7d";
  std::string until;  // a duration ago; "": now
  std::string server;
  std::string grant;
  size_t examples = 3;
  bool json = false;
  bool fail_on_change = false;
};

// Exit: 0; 1 when --fail-on-change and a decision changed, or the policy is invalid; 2 usage;
// 3 when the audit store cannot be read.
int ReplayCommand(const ReplayCliOptions& options);

}  // namespace tw::app
