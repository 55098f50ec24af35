#include "mcp/protocol.h"

#include <algorithm>
#include <cstdint>

#include <fmt/format.h>

namespace tw::mcp {

namespace {

// One method of an allow-list and the revision that introduced it.
struct Listed {
  std::string_view method;
  std::string_view since;
};

constexpr Listed kClientRequests[] = {
    {"initialize", "2024-11-05"},         {"ping", "2024-11-05"},
    {"tools/list", "2024-11-05"},         {"tools/call", "2024-11-05"},
    {"resources/list", "2024-11-05"},     {"resources/templates/list", "2024-11-05"},
    {"resources/read", "2024-11-05"},     {"resources/subscribe", "2024-11-05"},
    {"resources/unsubscribe", "2024-11-05"}, {"prompts/list", "2024-11-05"},
    {"prompts/get", "2024-11-05"},        {"completion/complete", "2024-11-05"},
    {"logging/setLevel", "2024-11-05"},
};
constexpr Listed kClientNotifications[] = {
    {"notifications/initialized", "2024-11-05"},
    {"notifications/cancelled", "2024-11-05"},
    {"notifications/progress", "2024-11-05"},
    {"notifications/roots/list_changed", "2024-11-05"},
};
constexpr Listed kServerRequests[] = {
    {"ping", "2024-11-05"},
    {"sampling/createMessage", "2024-11-05"},
    {"roots/list", "2024-11-05"},
    {"elicitation/create", "2025-06-18"},
};
constexpr Listed kServerNotifications[] = {
    {"notifications/cancelled", "2024-11-05"},
    {"notifications/progress", "2024-11-05"},
    {"notifications/message", "2024-11-05"},
    {"notifications/resources/updated", "2024-11-05"},
    {"notifications/resources/list_changed", "2024-11-05"},
    {"notifications/tools/list_changed", "2024-11-05"},
    {"notifications/prompts/list_changed", "2024-11-05"},
    {"notifications/elicitation/complete", "2025-11-25"},
};

template <size_t N>
bool Allowed(const Listed (&list)[N], std::string_view version, std::string_view method) {
  // Revisions are dates: a method is known from its revision on.
  if (!IsSupportedVersion(version)) version = kLatestVersion;
  for (const Listed& l : list) {
    if (l.method == method) return l.since <= version;
  }
  return false;
}

template <size_t N>
bool Names(const Listed (&list)[N], std::string_view method) {
  return std::any_of(std::begin(list), std::end(list),
                     [&](const Listed& l) { return l.method == method; });
}

// Decodes one UTF-8 sequence at `s[i]`; advances `i`. Returns -1 for an invalid sequence
// (overlong, surrogate, out of range, truncated).
int32_t DecodeUtf8(std::string_view s, size_t& i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  int n = 0;
  int32_t cp = 0;
  if (c < 0x80) {
    ++i;
    return c;
  } else if ((c & 0xE0) == 0xC0) {
    n = 1;
    cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    n = 2;
    cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    n = 3;
    cp = c & 0x07;
  } else {
    return -1;
  }
  for (int k = 1; k <= n; ++k) {
    if (i + k >= s.size() || (b(i + k) & 0xC0) != 0x80) return -1;
    cp = (cp << 6) | (b(i + k) & 0x3F);
  }
  static constexpr int32_t kMin[] = {0, 0x80, 0x800, 0x10000};
  if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return -1;
  i += n + 1;
  return cp;
}

// Whitespace (Unicode White_Space) and invisible format characters (category Cf, and the
// fillers that render as nothing: Hangul fillers, the Braille blank, variation selectors).
bool Invisible(int32_t cp) {
  if (cp <= 0x20 || (cp >= 0x7F && cp <= 0xA0)) return true;  // C0, space, DEL, C1, NBSP
  switch (cp) {
    case 0xAD: case 0x34F: case 0x61C: case 0x115F: case 0x1160: case 0x1680: case 0x180E:
    case 0x2028: case 0x2029: case 0x202F: case 0x205F: case 0x2800: case 0x3000:
    case 0x3164: case 0xFEFF: case 0xFFA0:
      return true;
    default:
      break;
  }
  return (cp >= 0x180B && cp <= 0x180F) || (cp >= 0x2000 && cp <= 0x200F) ||
         (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2060 && cp <= 0x206F) ||
         (cp >= 0xFE00 && cp <= 0xFE0F) || (cp >= 0xFFF0 && cp <= 0xFFFB) ||
         (cp >= 0x1D173 && cp <= 0x1D17A) || (cp >= 0xE0000 && cp <= 0xE0FFF);
}

}  // namespace

bool RequestAllowed(Direction direction, std::string_view version, std::string_view method) {
  return direction == Direction::kClientToServer ? Allowed(kClientRequests, version, method)
                                                 : Allowed(kServerRequests, version, method);
}

bool NotificationAllowed(Direction direction, std::string_view version, std::string_view method) {
  return direction == Direction::kClientToServer ? Allowed(kClientNotifications, version, method)
                                                 : Allowed(kServerNotifications, version, method);
}

bool IsRequestMethod(std::string_view method) {
  return Names(kClientRequests, method) || Names(kServerRequests, method);
}

std::optional<std::string> ToolNameProblem(std::string_view name) {
  for (size_t i = 0; i < name.size();) {
    const size_t at = i;
    const int32_t cp = DecodeUtf8(name, i);
    if (cp < 0) return fmt::format("the tool name is not valid UTF-8 (at byte {})", at);
    if (Invisible(cp)) {
      return fmt::format("the tool name contains U+{:04X}, a control, whitespace or invisible "
                         "character (at byte {})", cp, at);
    }
  }
  return std::nullopt;
}

int LogSeverity(std::string_view level) {
  static constexpr std::string_view kLevels[] = {"debug", "info",     "notice", "warning",
                                                 "error", "critical", "alert",  "emergency"};
  for (int i = 0; i < 8; ++i) {
    if (kLevels[i] == level) return i;
  }
  return -1;
}

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
