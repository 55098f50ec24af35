// ToolPins: rug-pull protection for one server. Observes every tools/list the server answers
// (pinning new tools, recording changed ones) and tells the guard whether a tool is blocked
// because its definition changed since it was approved.
//
// Mode: kEnforce denies calls to changed tools until an administrator accepts the change
// (`toolwarden pins accept`); kApproval holds each of their calls for a human instead; kWarn
// only logs; kShadow decides like kWarn and records the block kEnforce would have made as
// the call's shadow decision — except, in both, for a tool whose risk rose with the change (the classifier's reading of
// the new definition against the approved one), whose calls are held for a human in every mode
// that does not deny them; kOff does nothing. A tool that appears with a
// name that looks like another pinned tool's (same after folding confusables and case) is
// treated as changed. New tools are otherwise pinned on first sight (and left to the policy:
// `default: deny` covers them).
//
// Thread-safe (the store is; the changed-set is guarded).
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include "catalog/pin_store.h"
#include "common/clock.h"
#include "policy/policy.h"

namespace tw::gateway {

enum class PinMode { kEnforce, kApproval, kWarn, kShadow, kOff };

// What a pending change means for a call: denied, held for a human's approval, or — in
// kShadow mode — denied only in the call's shadow decision.
struct PinVerdict {
  std::string reason;
  bool hold = false;
  bool shadow = false;
};

class ToolPins {
 public:
  // `store` and `clock` must outlive this.
  ToolPins(catalog::PinStore& store, std::string server, PinMode mode, const Clock& clock);

  // Records the tools of one tools/list result (one page).
  void Observe(const json::value& tools_list_result);
  // What a pending change of `tool` means for its calls, or nullopt when it has none (or none
  // that counts in this mode).
  std::optional<PinVerdict> Check(std::string_view tool) const;

  const std::string& server() const { return server_; }
  PinMode mode() const { return mode_; }

 private:
  catalog::PinStore& store_;
  std::string server_;
  PinMode mode_;
  const Clock& clock_;
  mutable std::mutex mu_;
  mutable std::set<std::string, std::less<>> changed_;  // Guarded by mu_: known pending changes
  // Guarded by mu_: tool → hash of a definition the store confirmed as the approved one, so a
  // repeated tools/list costs no store round trip per tool.
  std::map<std::string, std::string> confirmed_;
  // Guarded by mu_: changed tools whose change could not be recorded yet (blocked all the same).
  std::set<std::string, std::less<>> unrecorded_;
  // Guarded by mu_: changed tools whose new definition reads as riskier than the approved one.
  mutable std::set<std::string, std::less<>> riskier_;
};

}  // namespace tw::gateway
