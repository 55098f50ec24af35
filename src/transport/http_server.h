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
// the relay of each new MCP session (a gateway::Session or an AggregateSession). Responses are sent
// as plain JSON when the answer is the first thing ready, and as an SSE stream (with a priming
// event for resumption) when anything comes before it or it takes longer than the keep-alive
// interval.
//
// What needs no I/O — the checks, authentication, routes and the session table — is the
// HttpRouter's (http_router.h); this class reads requests, writes responses and streams.
//
// Event loops: given an EventLoops, the server listens on the home loop and accepts each
// connection onto the next loop in turn. A session lives on the loop whose connection opened
// it (its id says which: HttpRouter::LoopOfSession); a request that arrives on another loop's
// connection hands that connection over to the session's loop (the socket moves, with what was
// read from it), where it stays. The admin API, the console and /metrics are served on the
// home loop. Session limits and the brake on guessing tokens count across loops (RouterShared).
//
// Thread: Listen, Drain, Stop and the counts on the home loop's thread (or before the loops
// run); destroy after the loops have returned. Each loop's listener touches only its loop.
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
#include "transport/http_router.h"
#include "transport/event_loops.h"
#include "transport/http_session.h"

namespace tw::transport {

class HttpServer {
 public:
  // One loop.
  HttpServer(boost::asio::io_context& io, HttpServerOptions options, SessionFactory sessions);
  // Every loop of `loops`; the session factory is called on the loop the session will live on.
  HttpServer(EventLoops& loops, HttpServerOptions options, SessionFactory sessions);
  ~HttpServer();

  // Binds and starts accepting. Returns the bound port (useful with port 0).
  Result<uint16_t> Listen(const std::string& host, uint16_t port);
  // Stops accepting new connections and new sessions (/readyz turns 503); sessions already
  // open keep being served, so calls in flight can finish.
  void Drain();
  // Stops accepting, closes every session (and so every upstream) and every connection.
  void Stop();

  size_t session_count() const;
  // Calls `done` on the home loop with the client requests awaiting answers, over every
  // session of every loop (each loop counts its own; nothing waits).
  void CountInFlight(std::function<void(size_t)> done);

  class Impl;
  struct Group;

 private:
  HttpServer(std::vector<boost::asio::io_context*> loops, HttpServerOptions options,
             SessionFactory sessions);
  void OnEveryLoop(const std::function<void(Impl&)>& fn);

  std::shared_ptr<Group> group_;
  std::vector<std::shared_ptr<Impl>> impls_;  // [0] on the home loop
};

}  // namespace tw::transport
