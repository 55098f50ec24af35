// HttpServer: the client side over HTTP.
//
//   /mcp       Streamable HTTP (MCP 2025-03-26 .. 2025-11-25): POST (answers with JSON or an SSE
//              stream), GET (the server-initiated stream, resumable with Last-Event-ID), DELETE.
//              Sessions by Mcp-Session-Id (128 random bits); 400 without one, 404 unknown.
//   /sse       legacy HTTP+SSE (2024-11-05): GET opens the stream whose first event names the
//   /messages  POST endpoint (/messages?sessionId=…); answers arrive on the stream.
//   /mcp/<s>   the same, for one server of a gateway (when the session factory knows it).
//   /healthz   liveness; /readyz readiness (503 while draining); /metrics Prometheus text.
//   /api/...   the admin API and /ui/... the web console (both handled by options.admin, when
//              set; / then redirects to /ui/).
//
// Every request passes the Origin/Host check (403), a header and body size limit (431/413) and
// a read timeout (slow clients are dropped). With options.authenticate, every MCP request must
// carry a bearer token the callback accepts (401 with WWW-Authenticate otherwise), and a session
// can only be used by the grant that opened it (404 for anyone else). The session factory makes
// the relay of each new MCP session (a gateway::Session or an AggregateSession). Responses are sent as plain JSON when the
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
#include <vector>

#include "common/event_hub.h"
#include "common/result.h"
#include "gateway/session.h"
#include "transport/http_session.h"
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
  // The most sessions one grant may hold (0: no share, max_sessions for all); past it a new
  // session is refused with 503 and Retry-After, unless one of the grant's own sessions has
  // been idle for a minute, which is closed to make room. When the gateway is full, the idle
  // sessions of the grant holding the most are closed first.
  size_t max_sessions_per_grant = 0;
  // Authentication failures one client address may make per minute before it is answered
  // 429 without its token being checked (MCP bearer tokens; the admin API has its own).
  int auth_failures_per_minute = 20;
  // Addresses or CIDR ranges of the load balancers in front of the gateway (AddressSet): for a
  // connection from one of them, the client is the rightmost X-Forwarded-For entry that is not
  // one of them. Listen fails on an entry that is neither.
  std::vector<std::string> trusted_proxies;
  size_t max_events_per_stream = 512;  // kept for Last-Event-ID resumption
  long sse_retry_ms = 1000;
  // Serves GET /metrics with what this returns (Prometheus text), when set.
  std::function<std::string()> metrics;
  // Checks the Authorization header of an MCP request; returns the caller's grant name, or the
  // reason for a 401. Unset: no authentication, every caller is the grant "local".
  std::function<Result<std::string>(std::string_view authorization)> authenticate;
  // Serves everything under /api/ and /ui/ when set.
  struct AdminCall {
    std::string method;  // GET, POST, DELETE, ...
    std::string target;  // path and query
    std::string body;
    std::string authorization;
    std::string origin;
    std::string content_type;
    std::string cookie;
    std::string csrf;           // X-CSRF-Token
    std::string if_none_match;  // for cached console assets
    std::string client;         // the client's address (see trusted_proxies)
  };
  struct AdminReply {
    int status = 200;
    std::string body;
    std::string content_type = "application/json";
    std::vector<std::pair<std::string, std::string>> headers;
    // When set, the reply is a text/event-stream of this queue's frames (keep-alive comments
    // while idle) until the client goes away or the server stops.
    std::shared_ptr<EventQueue> events;
  };
  std::function<AdminReply(const AdminCall&)> admin;
};

// What a new MCP session is for: its id, the server route ("" for /mcp) and the caller.
struct SessionRequest {
  std::string id;
  std::string route;
  std::string grant;
};
// Makes the relay of a new session, or refuses: NotFound → 404 (no such server), anything else
// → 403 (this grant may not use it).
using SessionFactory =
    std::function<Result<HttpMcpSession::RelayMaker>(const SessionRequest&)>;

class HttpServer {
 public:
  HttpServer(boost::asio::io_context& io, HttpServerOptions options, SessionFactory sessions);
  ~HttpServer();

  // Binds and starts accepting. Returns the bound port (useful with port 0).
  Result<uint16_t> Listen(const std::string& host, uint16_t port);
  // Stops accepting new connections and new sessions (/readyz turns 503); sessions already
  // open keep being served, so calls in flight can finish.
  void Drain();
  // Stops accepting, closes every session (and so every upstream) and every connection.
  void Stop();

  size_t session_count() const;
  // Client requests awaiting answers, over every session.
  size_t requests_in_flight() const;

  class Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace tw::transport
