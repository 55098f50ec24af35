// HttpRouter: everything the HTTP server decides about a request without I/O — the request
// checks (repeated fields, Host and Origin), liveness and readiness, CORS preflight, the bearer
// token and the per-address brake on guessing it, the route, the session table (open, find,
// share per grant, reap, close) and, for an MCP POST, the JSON-RPC checks and the hand-over of
// its messages to the session's relay. A request and its fields in; out a `Routed`: the
// response to send, or the stream the connection coroutine is to write (HttpServer does every
// read and write). Apart from the server so that it can be tested and fuzzed in-process,
// without sockets.
//
// With several event loops (EventLoops) each loop has a router of its own, and the routers of
// one server share a RouterShared: the session limits count every loop's sessions, and the
// brake on guessing tokens counts every loop's failures. A session id names the loop that
// holds the session (LoopOfSession), so a request for it can be handed to that loop.
//
// Thread: one io_context's (the executor given is where stream writers wait); no locks of its
// own (RouterShared's are taken when a session opens or closes and when a token fails).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/address_set.h"
#include "common/event_hub.h"
#include "common/failure_throttle.h"
#include "common/result.h"
#include "transport/http_session.h"
#include "transport/origin.h"
#include "transport/stateless_channel.h"

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
  // sessions of the grant holding the most are closed first. The limits count every event
  // loop's sessions; the session closed to make room is one of the receiving loop's.
  size_t max_sessions_per_grant = 0;
  // Authentication failures one client address may make per minute before it is answered
  // 429 without its token being checked (MCP bearer tokens; the admin API has its own).
  int auth_failures_per_minute = 20;
  // Addresses or CIDR ranges of the load balancers in front of the gateway (AddressSet): for a
  // connection from one of them, the client is the rightmost X-Forwarded-For entry that is not
  // one of them. Listen fails on an entry that is neither.
  std::vector<std::string> trusted_proxies;
  // Put before every session id this gateway issues ("" for none): a fleet's replica name and
  // a dot ("r1."), so that a load balancer can send a session's requests to the replica
  // holding it (README, "Running a fleet").
  std::string session_prefix;
  size_t max_events_per_stream = 512;  // kept for Last-Event-ID resumption
  long sse_retry_ms = 1000;
  // Why the gateway cannot serve calls now ("" when it can), asked by /readyz (503 with the
  // reason): e.g. the shared state store is unreachable. Unset: always ready.
  std::function<std::string()> readiness;
  // Serves GET /metrics with what this returns (Prometheus text), when set.
  std::function<std::string()> metrics;
  // Checks the Authorization header of an MCP request for `route` (a server's name, "" for
  // /mcp); returns the caller's name, or why not: InvalidArgument → 401, PermissionDenied →
  // 403 with the insufficient_scope error, Unavailable → 503 with Retry-After. Unset: no
  // authentication, every caller is the grant "local".
  std::function<Result<std::string>(std::string_view authorization, std::string_view route)>
      authenticate;
  // OAuth sign-in (docs/oauth.md), when set: a 401 names the Protected Resource Metadata
  // (RFC 9728), served at /.well-known/oauth-protected-resource and below it; the paths `owns`
  // says are the authorization server's go to `admin` (on the home loop).
  struct OAuth {
    // The gateway's origin ("https://gw.example.com"); empty: "http://" + the request's Host,
    // which the Host check has already held to the allowed hosts.
    std::string public_url;
    std::function<std::string(const std::string& base)> resource_metadata;
    std::function<bool(std::string_view path)> owns;
  };
  std::optional<OAuth> oauth;
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
    std::string base;           // the gateway's origin as the client reached it (OAuth)
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
using SessionFactory = std::function<Result<HttpMcpSession::RelayMaker>(const SessionRequest&)>;

// What the routers of every event loop of one server share. Thread-safe.
class RouterShared {
 public:
  explicit RouterShared(int auth_failures_per_minute) : auth_throttle(auth_failures_per_minute) {}
  enum class Open { kOk, kGrantFull, kFull };
  // Takes a place for a new session of `grant`, or says which limit is reached (max_grant 0:
  // no share per grant).
  Open TryOpen(const std::string& grant, size_t max_total, size_t max_grant);
  // Gives back the place of a closed session of `grant`.
  void Closed(const std::string& grant);
  // Sessions open over every loop.
  size_t open() const { return open_.load(std::memory_order_relaxed); }

  FailureThrottle auth_throttle;

 private:
  std::mutex mu_;
  std::unordered_map<std::string, size_t> per_grant_;  // Guarded by mu_.
  std::atomic<size_t> open_{0};
};

// Where a router runs: loop `loop` of `loops`, sharing `shared` with the routers of the others
// (a router of its own when null).
struct RouterPlace {
  size_t loop = 0;
  size_t loops = 1;
  std::shared_ptr<RouterShared> shared;
};

class HttpRouter {
 public:
  using Request = boost::beast::http::request<boost::beast::http::string_body>;
  using Response = boost::beast::http::response<boost::beast::http::string_body>;

  // The request fields the router reads, found in one pass over the request: each of Beast's
  // lookups walks its tree with case-insensitive compares, and a call made ten of them. As
  // with Beast's `operator[]`, the first field of a name is the one that counts.
  struct Fields {
    std::string_view host, origin, authorization, content_type, accept, session_id,
        protocol_version, last_event_id, forwarded_for;
    // Mcp-Method and Mcp-Name (2026-07-28): whether present, and the first of each.
    std::string_view mcp_method, mcp_name;
    bool has_mcp_method = false, has_mcp_name = false;
    std::string_view peer;  // the connection's remote address
    bool keep_alive = false;
    // Host, Origin, Authorization, Mcp-Session-Id, MCP-Protocol-Version, Mcp-Method or
    // Mcp-Name given twice (RFC
    // 9112 §3.2: a 400): which one a check saw and which one something behind it reads would
    // be anyone's guess.
    bool repeated_singleton = false;
  };
  // `peer` is left empty: the connection knows it.
  static Fields ReadFields(const Request& req);
  // The gateway's origin as this request reached it: options.oauth's public_url, or "http://"
  // and the Host (checked by then against the allowed hosts).
  std::string PublicBase(const Fields& fields) const;

  // What is left to do for a request once everything that needs no I/O is done.
  struct Routed {
    // kStream: a POST's answers, as one JSON body or an SSE stream; kSse: a GET's SSE stream;
    // kAdmin: the admin API or console (options.admin); kLegacySse: a legacy transport's
    // session stream, opened by the connection (OpenLegacySession).
    enum class To { kRespond, kStream, kSse, kAdmin, kLegacySse, kStateless };
    To to = To::kRespond;
    std::optional<Response> response;  // kRespond
    std::string grant;                 // kLegacySse: the caller
    // kStream, kSse: what `writer` receives goes out as stream `sid` of `session`.
    // kStateless: what `writer` receives is the answer to one 2026-07-28 request served by
    // `channel` (told when the client closes the stream before the answer).
    std::shared_ptr<HttpMcpSession> session;
    std::shared_ptr<StatelessChannel> channel;
    std::shared_ptr<StreamWriter> writer;
    uint64_t sid = 0;
    bool batch = false;

    static Routed Respond(Response res) {
      Routed r;
      r.response = std::move(res);
      return r;
    }
  };

  // `options` must outlive the router. Fails on a trusted_proxies entry that is neither an
  // address nor a CIDR range.
  static Result<std::unique_ptr<HttpRouter>> Create(boost::asio::any_io_executor executor,
                                                    const HttpServerOptions& options,
                                                    SessionFactory sessions,
                                                    RouterPlace place = {});

  // The loop (of `loops`) that holds the session `id`, or nullopt when `id` is not one of ours
  // (then any loop may answer that it is unknown). A new session's 128-bit random id has its
  // first byte chosen congruent to its loop modulo `loops`: at most 8 of its bits are spent.
  static std::optional<size_t> LoopOfSession(std::string_view id, size_t loops);
  // The sessionId of a legacy `/messages?sessionId=…` target ("" when it has none).
  static std::string LegacySessionId(std::string_view target);
  // A new session id for loop `loop` of `loops` (at most 256 loops), after `prefix`.
  static std::string NewSessionId(size_t loop, size_t loops, std::string_view prefix = {});

  // Decides one request. `req` is not changed (a POST's body is parsed from it).
  Routed Route(const Request& req, const Fields& fields);

  // A legacy (HTTP+SSE) session for `grant`, or the response refusing it.
  std::shared_ptr<HttpMcpSession> OpenLegacySession(const Request& req, const std::string& grant,
                                                    std::optional<Response>& error);
  // Closes and forgets the session `id` (nothing when it is gone already).
  void CloseSession(const std::string& id);
  // Closes every session idle past options.session_idle with nothing in flight.
  void CloseIdleSessions();

  // A response with the server's common fields (and CORS when the Origin is allowed).
  Response MakeResponse(const Request& req, boost::beast::http::status status,
                        std::string body = {}, std::string_view content_type = "application/json");
  // A JSON-RPC error without an id as the body of a `status` response.
  Response ErrorResponse(const Request& req, boost::beast::http::status status, int code,
                         std::string_view message);
  // Whether an Origin may read the answers (options.origins).
  bool CorsAllowed(std::string_view origin) const { return options_.origins.CorsAllowed(origin); }

  // Who the client is: the connection's peer, or — when the peer is a trusted proxy — the
  // rightmost X-Forwarded-For entry that is not a trusted proxy.
  std::string ClientAddress(const Fields& fields) const;

  // No new sessions from now on (/readyz answers 503); open ones are served.
  void Drain() { draining_ = true; }
  // Closes every session.
  void Stop();
  bool draining() const { return draining_; }
  bool stopped() const { return stopped_; }

  size_t session_count() const { return sessions_.size(); }
  // Client requests awaiting answers, over every session.
  size_t requests_in_flight() const;

 private:
  HttpRouter(boost::asio::any_io_executor executor, const HttpServerOptions& options,
             SessionFactory sessions, AddressSet trusted_proxies, RouterPlace place);
  using SessionMap = std::unordered_map<std::string, std::shared_ptr<HttpMcpSession>>;

  // The WWW-Authenticate value of a refusal: the realm, the resource metadata (with OAuth),
  // the error and its description, the scope that would do.
  std::string Challenge(const Fields& fields, std::string_view error, std::string_view description,
                        std::string_view scope) const;
  Routed RoutePost(const Request& req, const Fields& fields, const std::string& grant,
                   const std::string& route);
  // Whether a POST is a 2026-07-28 request: it names no session and either declares a modern
  // version or is not a legacy client's initialize (http_router_modern.cc).
  static bool IsStateless(const Fields& fields, const jsonrpc::Incoming& in);
  // A 2026-07-28 request: checked (one message, its _meta, its version, its headers against
  // its body, its method) and handed to the grant's StatelessChannel for the route.
  Routed RouteStateless(const Request& req, const Fields& fields, jsonrpc::Incoming in,
                        const std::string& grant, const std::string& route);
  // The channel of (grant, route) on this loop, made (and started) when there is none or the
  // last one failed; nullptr with `error` the response refusing it.
  std::shared_ptr<StatelessChannel> Channel(const Request& req, const std::string& grant,
                                            const std::string& route,
                                            std::optional<Response>& error);
  Routed RouteGet(const Request& req, const Fields& fields, const std::string& grant,
                  const std::string& route);
  Response Delete(const Request& req, const Fields& fields, const std::string& grant,
                  const std::string& route);
  Response LegacyPost(const Request& req, const std::string& grant);
  // The session a request names, or nullptr with `error` the response to send.
  std::shared_ptr<HttpMcpSession> FindSession(const Request& req, const Fields& fields,
                                              std::optional<Response>& error,
                                              const std::string& grant, const std::string& route);
  // A new session, or nullptr with `error` the response refusing it.
  std::shared_ptr<HttpMcpSession> NewSession(const Request& req, bool legacy,
                                             const std::string& grant, const std::string& route,
                                             std::optional<Response>& error);
  RouterShared::Open TryOpen(const std::string& grant);
  std::string LargestGrant() const;
  // Closes the session of `grant` idle the longest, if one has been idle for a minute (an
  // agent between two calls is idle for seconds). Returns whether one was closed.
  bool ReapIdle(const std::string& grant);
  // Closes a session and forgets it; returns the next one.
  SessionMap::iterator Close(SessionMap::iterator it);

  boost::asio::any_io_executor executor_;
  const HttpServerOptions& options_;
  SessionFactory sessions_factory_;
  AddressSet trusted_proxies_;
  RouterPlace place_;  // place_.shared is never null
  SessionMap sessions_;
  // 2026-07-28 clients' channels by grant and route ("<grant>\n<route>").
  std::unordered_map<std::string, std::shared_ptr<StatelessChannel>> channels_;
  std::unordered_map<std::string, size_t> grant_sessions_;  // this loop's open sessions per grant
  bool draining_ = false;
  bool stopped_ = false;
};

}  // namespace tw::transport
