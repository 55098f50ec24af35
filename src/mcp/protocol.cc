#include "mcp/protocol.h"

#include <algorithm>

namespace tw::mcp {

bool IsSupportedVersion(std::string_view v) {
  return std::find(std::begin(kSupportedVersions), std::end(kSupportedVersions), v) !=
         std::end(kSupportedVersions);
}

Result<ToolCall> ParseToolCall(const json::value& params) {
  if (!params.is_object()) return Fail(Error::InvalidArgument("tools/call needs params"));
  const json::object& p = params.as_object();
  const json::value* name = p.if_contains("name");
  if (!name || !name->is_string() || name->as_string().empty()) {
    return Fail(Error::InvalidArgument("tools/call params.name must be a non-empty string"));
  }
  ToolCall call;
  call.name = std::string(name->as_string());
  if (const json::value* args = p.if_contains("arguments")) {
    if (args->is_object()) {
      call.arguments = args->as_object();
    } else if (!args->is_null()) {
      return Fail(Error::InvalidArgument("tools/call params.arguments must be an object"));
    }
  }
  return call;
}

std::optional<json::value> ProgressToken(const json::value& params) {
  if (!params.is_object()) return std::nullopt;
  const json::value* meta = params.as_object().if_contains("_meta");
  if (!meta || !meta->is_object()) return std::nullopt;
  const json::value* token = meta->as_object().if_contains("progressToken");
  if (!token || !(token->is_string() || token->is_int64() || token->is_uint64())) {
    return std::nullopt;
  }
  return *token;
}

json::value DenialResult(const Denial& denial) {
  json::object decision{{"decision", "deny"}, {"rule", denial.rule}, {"reason", denial.reason}};
  if (denial.retry_after_s) decision["retry_after_s"] = *denial.retry_after_s;
  return json::object{
      {"content",
       json::array{json::object{{"type", "text"}, {"text", "[POLICY DENIED] " + denial.reason}}}},
      {"isError", true},
      {"_meta", json::object{{"toolwarden/decision", std::move(decision)}}},
  };
}

void FilterToolsList(json::value& result, const std::function<bool(std::string_view)>& hidden) {
  json::object* r = result.if_object();
  if (!r) return;
  json::value* tools = r->if_contains("tools");
  if (!tools || !tools->is_array()) return;
  json::array kept;
  for (json::value& tool : tools->as_array()) {
    const json::object* t = tool.if_object();
    const json::value* name = t ? t->if_contains("name") : nullptr;
    // A tool without a readable name cannot be called by name, but it cannot be checked
    // against the policy either: drop it rather than show something undecidable.
    if (!name || !name->is_string()) continue;
    if (hidden(name->as_string())) continue;
    kept.push_back(std::move(tool));
  }
  *tools = std::move(kept);
}

json::value RelayedCapabilities(const json::value& capabilities, Side side) {
  static constexpr std::string_view kClientCaps[] = {"roots", "sampling", "elicitation"};
  static constexpr std::string_view kServerCaps[] = {"tools", "resources", "prompts", "logging",
                                                     "completions"};
  json::object out;
  const json::object* in = capabilities.if_object();
  if (!in) return out;
  auto keep = [&](std::string_view key) {
    if (const json::value* v = in->if_contains(key)) out[key] = *v;
  };
  if (side == Side::kClient) {
    for (auto k : kClientCaps) keep(k);
  } else {
    for (auto k : kServerCaps) keep(k);
  }
  return out;
}

}  // namespace tw::mcp
