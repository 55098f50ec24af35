// The gateway's view of one MCP server connection. Implemented in transport/ (child process
// over stdio, Streamable HTTP, legacy SSE); the gateway never includes transport code.
#pragma once

#include <functional>
#include <optional>

#include "common/result.h"
#include "jsonrpc/message.h"

namespace tw::gateway {

// Thread: every method and every event runs on the io_context the upstream was created on.
class Upstream {
 public:
  struct Events {
    // A message from the server. `related` is the (gateway-assigned) id of the request on whose
    // response stream the message arrived, when the transport knows it (HTTP upstreams).
    std::function<void(jsonrpc::Message msg, std::optional<json::value> related)> on_message;
    // A request sent with Send() will get no answer (could not be delivered, or the connection
    // broke before its response). `sent` is false when it certainly never reached the server.
    std::function<void(const json::value& id, const Error& error, bool sent)> on_request_failed;
    // The connection broke; every request in flight is lost. The upstream may reconnect.
    std::function<void(const Error& error)> on_disconnected;
    // A fresh connection replaced a broken one: the server has no memory of this session.
    std::function<void()> on_reconnected;
  };

  virtual ~Upstream() = default;

  // Starts connecting. Events may fire from the next turn of the io_context on.
  virtual void Start(Events events) = 0;
  // Queues one message for the server. Never blocks.
  virtual void Send(jsonrpc::Message msg) = 0;
  // Closes gracefully; no events fire after it returns.
  virtual void Close() = 0;
};

}  // namespace tw::gateway
