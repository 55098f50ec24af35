// The 2026-07-28 ("modern") protocol era, as the gateway meets it: no initialize handshake and
// no protocol session — every request carries its protocol version and client capabilities in
// `_meta`, HTTP requests mirror the method and name in `Mcp-Method` / `Mcp-Name` headers, every
// result carries `resultType`, list results carry `ttlMs` / `cacheScope`. What is pure here:
// reading and validating a modern request, checking its headers against its body, the modern
// errors, and shaping results. The stateless channel (transport/stateless_channel.h) does the
// relaying.
#pragma once

#include <boost/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "jsonrpc/message.h"

namespace tw::mcp::modern {

// The modern revisions the gateway serves, newest first.
inline constexpr std::string_view kVersions[] = {"2026-07-28"};
inline constexpr std::string_view kVersion = kVersions[0];
bool IsModernVersion(std::string_view v);
// Every revision the gateway speaks to clients, modern and legacy, newest first (what
// `server/discover` lists and an UnsupportedProtocolVersionError names).
json::array SupportedVersions();

// `_meta` keys the protocol reserves.
inline constexpr std::string_view kMetaProtocolVersion = "io.modelcontextprotocol/protocolVersion";
inline constexpr std::string_view kMetaClientCapabilities =
    "io.modelcontextprotocol/clientCapabilities";
inline constexpr std::string_view kMetaClientInfo = "io.modelcontextprotocol/clientInfo";
inline constexpr std::string_view kMetaServerInfo = "io.modelcontextprotocol/serverInfo";
inline constexpr std::string_view kMetaLogLevel = "io.modelcontextprotocol/logLevel";
inline constexpr std::string_view kMetaSubscriptionId = "io.modelcontextprotocol/subscriptionId";

// Error codes of the range the specification reserves (-32020 … -32099).
inline constexpr int kHeaderMismatch = -32020;
inline constexpr int kMissingRequiredClientCapability = -32021;
inline constexpr int kUnsupportedProtocolVersion = -32022;

// Methods, spelled once.
inline constexpr std::string_view kDiscover = "server/discover";
inline constexpr std::string_view kListen = "subscriptions/listen";
inline constexpr std::string_view kAcknowledged = "notifications/subscriptions/acknowledged";

// The notification kinds a `subscriptions/listen` request asks for (params.notifications).
struct ListenFilter {
  bool tools = false;
  bool prompts = false;
  bool resources = false;
};
// What a modern request says about itself in `params._meta`.
struct RequestMeta {
  std::string version;
  json::object client_capabilities;
  std::optional<std::string> log_level;  // the least severe level the client wants to see
  std::optional<ListenFilter> listen;     // a subscriptions/listen's filter (CheckRequest)
};

// Reads the request's `_meta`. Missing `_meta`, protocol version or client capabilities (or
// ones of the wrong type) are an InvalidArgument whose message suits -32602. The version is
// returned as given (it may be one the gateway does not speak: see IsModernVersion).
Result<RequestMeta> ReadRequestMeta(const json::value& params);

// Checks a request of the modern era, whatever carries it: its `_meta` (into `meta`), its
// version, its method. nullopt when it may be served; else the error answering it (-32602,
// -32022 or -32601 — on HTTP a 404 for the last, a 400 for the others).
std::optional<jsonrpc::Message> CheckRequest(const jsonrpc::Message& msg, RequestMeta& meta);

// The client requests of the modern era the gateway relays or answers. Everything else —
// initialize, ping, logging/setLevel, resources/(un)subscribe, anything unknown — is answered
// 404 with -32601.
bool RequestAllowed(std::string_view method);

// The value of a header that may carry the Base64 sentinel (`=?base64?…?=`), decoded; nullopt
// when the sentinel's content is not valid Base64 or the plain value has characters a header
// may not carry.
std::optional<std::string> DecodeHeaderValue(std::string_view value);

// A value as an HTTP header carries it: as is when every character is header-safe, else (or
// when it looks like the sentinel itself, or has leading or trailing whitespace) in the
// Base64 sentinel.
std::string EncodeHeaderValue(std::string_view value);
// The header lines ("Name: value\r\n" each) a 2026-07-28 POST of `msg` carries —
// MCP-Protocol-Version, Mcp-Method and, for the methods that name something, Mcp-Name —
// when its `_meta` declares a modern version; "" for any other message.
std::string MirrorHeaderLines(const jsonrpc::Message& msg);

// A tool parameter its inputSchema marks `x-mcp-header`: mirrored into `Mcp-Param-{name}` on
// HTTP (spec, Streamable HTTP "Custom Headers from Tool Parameters").
struct HeaderParam {
  std::string name;               // the x-mcp-header value
  std::vector<std::string> path;  // the chain of `properties` keys from the schema root
};
// The header parameters of a tool's inputSchema, or why the annotations are invalid (empty,
// not a header token, not unique case-insensitively, on a type other than string, integer or
// boolean, or not reachable through `properties` alone) — a tool a client must drop.
Result<std::vector<HeaderParam>> ReadHeaderParams(const json::value& input_schema);
// The Mcp-Param-* header lines for `arguments`: a parameter with no value (or null) has none;
// integers in decimal, booleans lowercase, strings as EncodeHeaderValue writes them.
std::string ParamHeaderLines(const std::vector<HeaderParam>& params, const json::value& arguments);

// The headers of a modern HTTP request that mirror its body.
struct MirroredHeaders {
  std::string_view protocol_version;  // MCP-Protocol-Version
  std::string_view method;            // Mcp-Method
  std::string_view name;              // Mcp-Name
  bool has_method = false;
  bool has_name = false;
};
// Why the headers do not match `msg` (a request or notification), or nullopt when they do: a
// missing Mcp-Method, an Mcp-Method other than the method, an Mcp-Name missing or other than
// params.name (tools/call, prompts/get) or params.uri (resources/read), an MCP-Protocol-Version
// other than the `_meta` version. The headers are what a load balancer or a log routed on; a
// request whose headers say something else than its body is refused, never trusted.
std::optional<std::string> HeaderMismatch(const MirroredHeaders& headers,
                                          const jsonrpc::Message& msg,
                                          std::string_view meta_version);

// The error answering a request for a version the gateway does not speak.
jsonrpc::Message UnsupportedVersionError(const json::value& id, std::string_view requested);

// Removes the reserved per-request keys from `params._meta` (and `_meta` itself when nothing
// else is left), for relaying to a legacy session, which knows nothing of them.
void StripRequestMeta(json::value& params);

// How long and for whom a client may cache a result (CacheableResult).
struct CacheHints {
  long long ttl_ms = 60000;
  // "private": the result is one caller's view (a grant's policy hides tools from it), so a
  // shared cache must not give it to another caller.
  std::string_view scope = "private";
};
// Whether results of `method` carry cache hints.
bool IsCacheable(std::string_view method);
// Makes a legacy result a modern one: `resultType` "complete" unless the result names one,
// the server's identity in `_meta` (when `server_info` is an object), and for cacheable
// methods `ttlMs` (the smaller of the upstream's and `hints`) and `cacheScope` (private unless
// the upstream and `hints` both say public). A result that is not an object is left as is.
void DecorateResult(json::value& result, std::string_view method, const json::value& server_info,
                    const CacheHints& hints = {});

// The answer to `server/discover` from what an initialize result said (capabilities,
// serverInfo, instructions), with the versions the gateway speaks.
json::value DiscoverResult(const json::value& initialize_result, const CacheHints& hints = {});

Result<ListenFilter> ReadListenFilter(const json::value& params);
// Whether a server notification `method` is one the filter asked for.
bool Wants(const ListenFilter& filter, std::string_view method);

}  // namespace tw::mcp::modern
