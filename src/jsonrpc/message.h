// JSON-RPC 2.0 messages as MCP uses them: parsing, validation and serialization.
//
// A Message is a validated value: Parse() never returns a Message that violates JSON-RPC 2.0
// (and MCP's stricter rules: ids are strings or integers, never null; params are objects).
// Invalid input yields an ErrorReply that is ready to send back (-32700 or -32600) and is never
// forwarded anywhere.
#pragma once

#include <boost/json.hpp>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tl/expected.hpp>
#include <vector>

#include "common/number_literal.h"

namespace tw {
// Every layer above jsonrpc speaks Boost.JSON values; one alias for all of them.
namespace json = boost::json;
}  // namespace tw

namespace tw::jsonrpc {

// Error codes named by JSON-RPC 2.0 and the MCP SDKs.
inline constexpr int kParseError = -32700;
inline constexpr int kInvalidRequest = -32600;
inline constexpr int kMethodNotFound = -32601;
inline constexpr int kInvalidParams = -32602;
inline constexpr int kInternalError = -32603;
// The SDKs' ConnectionClosed: the server went away before answering.
inline constexpr int kConnectionClosed = -32000;
// The SDKs' RequestTimeout.
inline constexpr int kRequestTimeout = -32001;

enum class Kind { kRequest, kNotification, kResponse, kError };

struct Message {
  Kind kind = Kind::kNotification;
  json::value id;      // request, response, error (null only for errors about unparseable input)
  std::string method;  // request, notification
  json::value params;  // request, notification: an object, or null when absent
  json::value result;  // response
  json::object error;  // error: {code, message, data?}
  // Set by Parse when the text this message came from holds a number that is not exact
  // (common/number_literal.h): null in the common case. For a batch, every item of it carries
  // the text's finding. The gateway refuses what it cannot forward faithfully.
  std::shared_ptr<const NumberFinding> numbers;
  // Header lines ("Name: value\r\n" each) a Streamable HTTP transport sends with this message
  // besides its own: a 2026-07-28 tools/call's Mcp-Param-* headers (gateway::EraUpstream).
  // Never read from the wire; empty in the common case.
  std::string http_headers;

  bool IsRequest() const { return kind == Kind::kRequest; }
  bool IsNotification() const { return kind == Kind::kNotification; }
  // True for both successful and error responses.
  bool IsResponse() const { return kind == Kind::kResponse || kind == Kind::kError; }
};

// A reply to input that could not be accepted: send it back as is.
struct ErrorReply {
  json::value id;  // null when the id could not be read
  int code;
  std::string message;
};

using ParsedMessage = tl::expected<Message, ErrorReply>;

// One JSON text as received: a single message or a batch. A JSON syntax error gives a single
// item holding a -32700 ErrorReply; an empty batch gives one -32600 item.
struct Incoming {
  bool is_batch = false;
  std::vector<ParsedMessage> items;
};

// Parses and validates one JSON text.
Incoming Parse(std::string_view text);

// Validates one already-parsed JSON value as a message.
ParsedMessage FromValue(json::value v);

// A copy of `v` in the default memory resource, for what outlives its message: a parsed
// message's values share one arena (Parse), which lives as long as any value using it — a
// request id kept until the answer comes would otherwise keep the whole request.
inline json::value Detached(const json::value& v) { return json::value(v, json::storage_ptr()); }
// `m` with every value copied into the default memory resource: what crosses to another
// thread (an event loop of its own) must share no arena with what stays — an arena is not
// thread-safe, and a copy of a value shares its source's.
inline Message Detached(const Message& m) {
  Message out;
  out.kind = m.kind;
  out.id = Detached(m.id);
  out.method = m.method;
  out.params = Detached(m.params);
  out.result = Detached(m.result);
  out.error = json::object(m.error, json::storage_ptr());
  out.numbers = m.numbers;  // immutable
  return out;
}

// Serializes a message in canonical member order (jsonrpc, id, method, params | result | error).
std::string Serialize(const Message& m);
json::value ToValue(const Message& m);

Message MakeRequest(json::value id, std::string method, json::value params);
Message MakeNotification(std::string method, json::value params);
Message MakeResponse(json::value id, json::value result);
Message MakeError(json::value id, int code, std::string_view message,
                  std::optional<json::value> data = std::nullopt);
Message MakeError(const ErrorReply& reply);

// A short printable form of an id for logs.
std::string IdToString(const json::value& id);

// Appends what `sr` (reset to a value) writes to `out`, through a buffer on the stack: one
// serializer for many values, and no string of its own per value as json::serialize builds.
void AppendSerialized(std::string& out, json::serializer& sr);

// A map key for an id: json::serialize(id), byte for byte (so 1 and "1" differ), without
// setting up a serializer for the common integer ids — a call looks its ids up ~7 times.
std::string IdKey(const json::value& id);

}  // namespace tw::jsonrpc
