#include "gateway/tool_pins.h"

#include <map>

#include <spdlog/spdlog.h>

#include "catalog/classify.h"

namespace tw::gateway {

namespace {

// Whether the classifier reads `after` (a tool's canonical JSON) as riskier than `before`.
bool RiskRose(const std::string& before, const std::string& after) {
  boost::system::error_code e1, e2;
  const json::value b = json::parse(before, e1), a = json::parse(after, e2);
  if (e1 || e2 || !b.is_object() || !a.is_object()) return false;
  return catalog::Classify(a.get_object()).risk > catalog::Classify(b.get_object()).risk;
}

}  // namespace

ToolPins::ToolPins(catalog::PinStore& store, std::string server, PinMode mode, const Clock& clock)
    : store_(store), server_(std::move(server)), mode_(mode), clock_(clock) {
  if (mode_ == PinMode::kOff) return;
  // Changes recorded earlier (by this or another process) still block.
  if (auto pins = store_.List(server_)) {
    for (const auto& p : *pins) {
      if (!p.pending_hash) continue;
      changed_.insert(p.tool);
      if (p.pending_definition && RiskRose(p.definition, *p.pending_definition))
        riskier_.insert(p.tool);
    }
  }
}

void ToolPins::Observe(const json::value& result) {
  if (mode_ == PinMode::kOff) return;
  const json::object* r = result.if_object();
  const json::value* tools = r ? r->if_contains("tools") : nullptr;
  if (!tools || !tools->is_array()) return;
  // Folded names of the tools already pinned, to spot look-alike newcomers (read only if some
  // tool needs the store).
  std::optional<std::map<std::string, std::string>> folded;
  for (const json::value& t : tools->get_array()) {
    const json::object* tool = t.if_object();
    const json::value* name = tool ? tool->if_contains("name") : nullptr;
    if (!name || !name->is_string()) continue;
    const std::string tool_name(name->get_string());
    const catalog::PinnedDefinition d = catalog::PinDefinition(*tool);
    {
      // Seen before with this very definition, and it was the approved one: nothing to ask.
      std::lock_guard lock(mu_);
      auto it = confirmed_.find(tool_name);
      if (it != confirmed_.end() && it->second == d.hash) continue;
    }
    if (!folded) {
      folded.emplace();
      if (auto pins = store_.List(server_)) {
        for (const auto& p : *pins) {
          if (!p.hash.empty()) folded->emplace(catalog::FoldName(p.tool), p.tool);
        }
      }
    }
    std::string note;
    auto known = store_.Get(server_, tool_name);
    if (known && !*known) {
      auto it = folded->find(catalog::FoldName(tool_name));
      if (it != folded->end() && it->second != tool_name) {
        note = "look-alike of \"" + it->second + "\"";
      }
    }
    auto seen = store_.Observe(server_, tool_name, d.hash, d.canonical, clock_.NowMs(), note);
    bool recorded = true;
    if (!seen) {
      // Not recorded (on an event loop the state file may be locked by another process, and a
      // loop never waits for it): judged from what the store holds, so that a change blocks
      // the tool now all the same; a later listing records it.
      spdlog::warn("pins: {}", seen.error().message());
      recorded = false;
      if (!known) {
        // Neither read nor written (a store that cannot be reached): a definition this process
        // has not confirmed cannot be told from a changed one, so it is treated as one until a
        // listing the store answers says otherwise — never let through unjudged.
        seen = catalog::Observation::kChanged;
      } else {
        const std::optional<catalog::Pin>& pin = *known;
        seen = !pin ? (note.empty() ? catalog::Observation::kPinned : catalog::Observation::kChanged)
               : pin->pending_hash || pin->hash != d.hash ? catalog::Observation::kChanged
                                                          : catalog::Observation::kUnchanged;
      }
    }
    // A change that raises the tool's risk is held for a human even where changes only log.
    const bool riskier = *seen == catalog::Observation::kChanged && known && *known &&
                         RiskRose((*known)->definition, d.canonical);
    if (*seen != catalog::Observation::kChanged) {
      std::lock_guard lock(mu_);
      if (recorded && unrecorded_.erase(tool_name) > 0) {
        // Judged changed while the store could not say; it now says the definition is the
        // approved one.
        changed_.erase(tool_name);
        riskier_.erase(tool_name);
      }
      if (recorded && !changed_.contains(tool_name)) confirmed_[tool_name] = d.hash;
    } else {
      std::lock_guard lock(mu_);
      confirmed_.erase(tool_name);
      if (recorded) {
        unrecorded_.erase(tool_name);
      } else {
        unrecorded_.insert(tool_name);
      }
      if (riskier) riskier_.insert(tool_name);
      if (changed_.insert(tool_name).second) {
        spdlog::warn("pins: server {} changed tool \"{}\"{}{} since it was approved; {}", server_,
                     tool_name, note.empty() ? "" : " (" + note + ")",
                     riskier ? ", raising its risk," : "",
                     mode_ == PinMode::kEnforce ? "calls to it are denied until `toolwarden pins "
                                                  "accept` (see `toolwarden pins diff`)"
                     : mode_ == PinMode::kApproval || riskier
                         ? "each call to it is held for a human until `toolwarden pins accept`"
                     : mode_ == PinMode::kShadow
                         ? "on_drift: shadow: calls still allowed, each recorded as one a block would "
                           "have denied"
                         : "pin mode warn: calls still allowed");
      }
    }
  }
}

std::optional<PinVerdict> ToolPins::Check(std::string_view tool) const {
  if (mode_ == PinMode::kOff) return std::nullopt;
  bool unrecorded = false, riskier = false;
  {
    std::lock_guard lock(mu_);
    if (!changed_.contains(tool)) return std::nullopt;
    unrecorded = unrecorded_.contains(tool);
    riskier = riskier_.contains(tool);
  }
  if (mode_ == PinMode::kWarn && !riskier) return std::nullopt;
  const bool shadow = mode_ == PinMode::kShadow && !riskier;
  // Known changed here: ask the store, which an administrator may have updated since — unless
  // the change is not in the store yet (nobody can have accepted it).
  auto pin = store_.Get(server_, std::string(tool));
  if (!unrecorded && pin && *pin && !(*pin)->pending_hash) {
    std::lock_guard lock(mu_);
    changed_.erase(std::string(tool));
    riskier_.erase(std::string(tool));
    return std::nullopt;
  }
  const bool hold = mode_ != PinMode::kEnforce && !shadow;
  return PinVerdict{
      "Tool \"" + std::string(tool) + "\" changed since it was approved" +
          (riskier ? " and its risk rose" : "") +
          (pin && *pin && !(*pin)->pending_note.empty() ? " (" + (*pin)->pending_note + ")" : "") +
          (hold ? "; each call is held for a human until an administrator accepts the change"
                : "; an administrator must review the change") +
          " (toolwarden pins diff " + server_ + " " + std::string(tool) + ")",
      hold, shadow};
}

}  // namespace tw::gateway
