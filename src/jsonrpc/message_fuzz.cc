// Fuzz target: a client's or server's bytes through the JSON-RPC parser, the number scan, MCP's
// classification of what may cross, and back out through the serializer.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/number_literal.h"
#include "jsonrpc/message.h"
#include "mcp/protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tw;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  jsonrpc::Incoming in = jsonrpc::Parse(text);
  if (in.items.empty()) __builtin_trap();  // Parse always answers something
  for (auto& item : in.items) {
    if (!item) {
      (void)jsonrpc::Serialize(jsonrpc::MakeError(item.error()));
      continue;
    }
    const jsonrpc::Message& m = *item;
    for (auto dir : {mcp::Direction::kClientToServer, mcp::Direction::kServerToClient}) {
      for (std::string_view v : mcp::kSupportedVersions) {
        (void)mcp::RequestAllowed(dir, v, m.method);
        (void)mcp::NotificationAllowed(dir, v, m.method);
      }
    }
    (void)mcp::IsRequestMethod(m.method);
    if (m.method == mcp::method::kToolsCall) {
      if (auto call = mcp::ParseToolCall(m.params)) (void)mcp::ToolNameProblem(call->name);
    }
    (void)mcp::ProgressToken(m.params);
    // What the gateway forwards must parse again as the same kind of message — unless it holds
    // a non-finite number, which the gateway never forwards.
    const std::string out = jsonrpc::Serialize(m);
    if (m.numbers && m.numbers->what == NumberExactness::kNonFinite) continue;
    jsonrpc::Incoming again = jsonrpc::Parse(out);
    if (again.items.size() != 1 || !again.items[0] || again.items[0]->kind != m.kind) {
      __builtin_trap();
    }
    (void)jsonrpc::IdKey(m.id);
  }
  (void)FindInexactNumber(text);
  return 0;
}
