// HttpServer: the client side over HTTP.
//
//   /mcp       Streamable HTTP (MCP 2025-03-26 .. 2025-11-25): POST (answers with JSON or an SSE
//              stream), GET (the server-initiated stream, resumable with Last-Event-ID), DELETE.
//              Sessions by Mcp-Session-Id (128 random bits); 400 without one, 404 unknown.
//   /sse       legacy HTTP+SSE (2024-11-05): GET opens the stream whose first event names the
//   /messages  POST endpoint (/messages?sessionId=…); answers arrive on the stream.
//   /healthz   liveness.
//
// Every request passes the Origin/Host check (403), a header and body size limit (431/413) and
// a read timeout (slow clients are dropped). Each MCP session gets its own upstream connection
// from the factory and its own gateway::Session. Responses are sent as plain JSON when the
// answer is the first thing ready, and as an SSE stream (with a priming event for resumption)
// when anything comes before it or it takes longer than the keep-alive interval.
//
// Thread: one io_context; no locks.
#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "common/result.h"
#include "gateway/session.h"
#include "transport/origin.h"

namespace tw::transport {

struct HttpServerOptions {
  size_t max_body_bytes = 4 << 20;
  size_t max_header_bytes = 16 << 10;
  OriginPolicy origins{{}, {}};
  std::chrono::milliseconds read_timeout{30000};   // to receive one whole request
  std::chrono::milliseconds write_timeout{30000};  // for one write to a client
  std::chrono::milliseconds keepalive{15000};      // SSE comment interval; JSON→SSE switch
  std::chrono::milliseconds session_idle{30 * 60 * 1000};
  size_t max_sessions = 10000;
  size_t max_events_per_stream = 512;  // kept for Last-Event-ID resumption
  long sse_retry_ms = 1000;
  // Serves GET /metrics with what this returns (Prometheus text), when set.
  std::function<std::string()> metrics;
};

using UpstreamFactory = std::function<std::unique_ptr<gateway::Upstream>()>;

class HttpServer {
 public:
  // `guard` must outlive the server.
  HttpServer(boost::asio::io_context& io, HttpServerOptions options, UpstreamFactory upstreams,
             const gateway::ToolCallGuard& guard);
  ~HttpServer();

  // Binds and starts accepting. Returns the bound port (useful with port 0).
  Result<uint16_t> Listen(const std::string& host, uint16_t port);
  // Stops accepting, closes every session (and so every upstream) and every connection.
  void Stop();

  size_t session_count() const;

  class Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace tw::transport
