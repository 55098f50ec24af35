// MCP vocabulary shared by the gateway and the transports: protocol versions, method names,
// tools/call parsing, the denial result, and tools/list filtering.
#pragma once

#include <boost/json.hpp>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "jsonrpc/message.h"

namespace tw::mcp {

// Protocol revisions the gateway speaks on both sides, newest first.
inline constexpr std::string_view kSupportedVersions[] = {"2025-11-25", "2025-06-18", "2025-03-26",
                                                          "2024-11-05"};
inline constexpr std::string_view kLatestVersion = kSupportedVersions[0];
// What an HTTP request without MCP-Protocol-Version is assumed to speak (spec 2025-06-18).
inline constexpr std::string_view kDefaultHttpVersion = "2025-03-26";

bool IsSupportedVersion(std::string_view v);

// Method names, spelled once.
namespace method {
inline constexpr std::string_view kInitialize = "initialize";
inline constexpr std::string_view kInitialized = "notifications/initialized";
inline constexpr std::string_view kToolsCall = "tools/call";
inline constexpr std::string_view kToolsList = "tools/list";
inline constexpr std::string_view kCancelled = "notifications/cancelled";
inline constexpr std::string_view kProgress = "notifications/progress";
inline constexpr std::string_view kPing = "ping";
inline constexpr std::string_view kToolsListChanged = "notifications/tools/list_changed";
inline constexpr std::string_view kResourcesList = "resources/list";
inline constexpr std::string_view kResourceTemplatesList = "resources/templates/list";
inline constexpr std::string_view kResourcesRead = "resources/read";
inline constexpr std::string_view kResourcesSubscribe = "resources/subscribe";
inline constexpr std::string_view kResourcesUnsubscribe = "resources/unsubscribe";
inline constexpr std::string_view kPromptsList = "prompts/list";
inline constexpr std::string_view kPromptsGet = "prompts/get";
inline constexpr std::string_view kComplete = "completion/complete";
inline constexpr std::string_view kSetLevel = "logging/setLevel";
inline constexpr std::string_view kResourceUpdated = "notifications/resources/updated";
inline constexpr std::string_view kResourcesListChanged = "notifications/resources/list_changed";
inline constexpr std::string_view kPromptsListChanged = "notifications/prompts/list_changed";
inline constexpr std::string_view kRootsListChanged = "notifications/roots/list_changed";
inline constexpr std::string_view kLoggingMessage = "notifications/message";
inline constexpr std::string_view kElicitationComplete = "notifications/elicitation/complete";
inline constexpr std::string_view kCreateMessage = "sampling/createMessage";
inline constexpr std::string_view kRootsList = "roots/list";
inline constexpr std::string_view kElicitationCreate = "elicitation/create";
}  // namespace method

// The rank of a log level as MCP names RFC 5424's severities, least severe first ("debug" 0 …
// "emergency" 7); -1 for an unknown name.
int LogSeverity(std::string_view level);

// Which side sends a message across the gateway.
enum class Direction { kClientToServer, kServerToClient };

// The protocol allow-lists: whether `method` is a request (a notification) that `direction` may
// send in protocol `version`. An empty or unknown version is judged by the newest revision's
// list (before initialize nothing else is known). Everything not listed is refused at the
// crossing: an unknown request is answered -32601, an unknown notification dropped. The lists
// are the specification's ClientRequest / ClientNotification / ServerRequest /
// ServerNotification unions of each revision, less what the gateway does not relay (tasks: the
// `tasks` capability is never relayed, so task methods are unknown here).
bool RequestAllowed(Direction direction, std::string_view version, std::string_view method);
bool NotificationAllowed(Direction direction, std::string_view version, std::string_view method);
// Whether `method` names a request in any revision and either direction: a notification with
// such a name is a request in disguise (no id, so no answer, and no decision either).
bool IsRequestMethod(std::string_view method);

// Why a tool name can never be called: invalid UTF-8, a control character, whitespace, or an
// invisible format character (zero-width space and joiners, bidirectional controls, the soft
// hyphen, tag characters, the byte-order mark…) — the characters that make two names look
// equal to a person or to a server that trims or folds them. nullopt for a name without any.
std::optional<std::string> ToolNameProblem(std::string_view name);

// The parts of a tools/call request that policy decides on.
struct ToolCall {
  std::string name;
  json::object arguments;  // empty when the client sent none
};

// Validates tools/call params: `name` a non-empty string, `arguments` absent or an object.
// Failure is an InvalidArgument whose message suits a -32602 error.
Result<ToolCall> ParseToolCall(const json::value& params);

// The progress token of a request (params._meta.progressToken), if any.
std::optional<json::value> ProgressToken(const json::value& params);

// What the agent sees when a call is denied (PRODUCT.md §3): a successful tool result with
// isError, readable text and machine-readable metadata under _meta["toolwarden/decision"].
struct Denial {
  std::string rule;    // e.g. "tools.delete_*" or "default"
  std::string reason;  // shown to the model after "[POLICY DENIED] "
  std::optional<long long> retry_after_s;
};
json::value DenialResult(const Denial& denial);

// Removes from a tools/list result every tool for which `hidden(name)` is true. Leaves the
// rest of the result (nextCursor, _meta) untouched. A result of the wrong shape is left as is.
void FilterToolsList(json::value& result, const std::function<bool(std::string_view)>& hidden);

// Keeps only the capabilities the gateway relays. `side` names whose capabilities these are.
enum class Side { kClient, kServer };
json::value RelayedCapabilities(const json::value& capabilities, Side side);

}  // namespace tw::mcp
