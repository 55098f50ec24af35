#include "transport/http_server.h"

#include "common/address_set.h"
#include "common/failure_throttle.h"
#include "transport/http_wire.h"

#include <spdlog/spdlog.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/url/parse.hpp>
#include <charconv>
#include <deque>
#include <map>
#include <unordered_map>
#include <unordered_set>

#include "common/random.h"
#include "mcp/protocol.h"
#include "transport/framing.h"
#include "transport/http_session.h"

namespace tw::transport {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::awaitable;
using asio::use_awaitable;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::string_view kSessionHeader = "Mcp-Session-Id";
constexpr std::string_view kVersionHeader = "MCP-Protocol-Version";
constexpr std::string_view kLastEventIdHeader = "Last-Event-ID";

// SEP-1699 priming events exist from this revision on; older clients are not sent them.
bool WantsPriming(std::string_view version) { return version >= "2025-11-25"; }

std::string JsonRpcErrorBody(int code, std::string_view message) {
  return jsonrpc::Serialize(jsonrpc::MakeError(nullptr, code, message));
}

bool AcceptsType(std::string_view accept, std::string_view type) {
  return accept.find(type) != std::string_view::npos ||
         accept.find("*/*") != std::string_view::npos;
}

}  // namespace

class HttpServer::Impl : public std::enable_shared_from_this<HttpServer::Impl> {
 public:
  Impl(asio::io_context& io, HttpServerOptions options, SessionFactory sessions)
      : io_(io),
        options_(std::move(options)),
        sessions_factory_(std::move(sessions)),
        acceptor_(io),
        sweep_timer_(io) {}

  Result<uint16_t> Listen(const std::string& host, uint16_t port) {
    auto proxies = AddressSet::Parse(options_.trusted_proxies);
    if (!proxies) return Fail(proxies.error().Context("trusted_proxies"));
    trusted_proxies_ = std::move(*proxies);
    boost::system::error_code ec;
    auto address = asio::ip::make_address(host, ec);
    if (ec) return Fail(Error::InvalidArgument("invalid listen address \"" + host + "\""));
    tcp::endpoint endpoint(address, port);
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return Fail(Error::Unavailable("cannot listen on " + host + ":" + std::to_string(port) +
                                     ": " + ec.message()));
    }
    if (!address.is_loopback()) {
      spdlog::warn(
          "listening on non-loopback address {}: anyone who can reach it can use the "
          "upstream server within the policy",
          host);
    }
    asio::co_spawn(io_, AcceptLoop(shared_from_this()), asio::detached);
    ScheduleSweep();
    return acceptor_.local_endpoint().port();
  }

  void Drain() {
    draining_ = true;
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    for (auto* t : admin_streams_) t->cancel();  // console event streams end now
  }

  size_t requests_in_flight() const {
    size_t n = 0;
    for (const auto& [id, s] : sessions_) n += s->relay().pending_requests();
    return n;
  }

  void Stop() {
    stopped_ = true;
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    sweep_timer_.cancel();
    auto sessions = std::move(sessions_);
    sessions_.clear();
    grant_sessions_.clear();
    for (auto& [id, s] : sessions) s->Close();
    for (auto* socket : connections_) socket->close(ignored);
    for (auto* t : admin_streams_) t->cancel();
  }

  size_t session_count() const { return sessions_.size(); }

 private:
  using Request = http::request<http::string_body>;
  using Response = http::response<http::string_body>;

  static awaitable<void> AcceptLoop(std::shared_ptr<Impl> self) {
    while (!self->stopped_) {
      auto [ec, socket] = co_await self->acceptor_.async_accept(asio::as_tuple(use_awaitable));
      if (ec) {
        if (self->stopped_ || self->draining_ || ec == asio::error::operation_aborted) break;
        spdlog::warn("http: accept failed: {}", ec.message());
        continue;
      }
      asio::co_spawn(self->io_, Connection(self, std::move(socket)), asio::detached);
    }
  }

  void ScheduleSweep() {
    sweep_timer_.expires_after(
        std::min<std::chrono::milliseconds>(options_.session_idle, std::chrono::seconds(60)));
    sweep_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (ec || self->stopped_) return;
      const auto now = Clock::now();
      for (auto it = self->sessions_.begin(); it != self->sessions_.end();) {
        auto& s = it->second;
        if (!s->Busy() && now - s->last_active() > self->options_.session_idle) {
          spdlog::info("http: session {} idle; closing it", it->first.substr(0, 8));
          it = self->CloseSession(it);
        } else {
          ++it;
        }
      }
      self->ScheduleSweep();
    });
  }

  // The answer of a single-request POST does not come through here: JsonAnswerHead
  // (http_wire.h) writes these same fields for it, so a field added here goes there too.
  Response MakeResponse(const Request& req, http::status status, std::string body = {},
                        std::string_view content_type = "application/json") {
    Response res{status, req.version()};
    res.set(http::field::server, "toolwarden");
    if (!body.empty()) res.set(http::field::content_type, content_type);
    AddCors(req, res);
    res.keep_alive(req.keep_alive());
    res.body() = std::move(body);
    res.prepare_payload();
    return res;
  }

  Response ErrorResponse(const Request& req, http::status status, int code,
                         std::string_view message) {
    return MakeResponse(req, status, JsonRpcErrorBody(code, message));
  }

  template <typename Res>
  void AddCors(const Request& req, Res& res) {
    auto origin = req[http::field::origin];
    if (!options_.origins.CorsAllowed(origin)) return;
    res.set(http::field::access_control_allow_origin, origin);
    res.set(http::field::vary, "Origin");
    res.set(http::field::access_control_expose_headers, "Mcp-Session-Id");
  }

  static awaitable<void> Connection(std::shared_ptr<Impl> self, tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    self->connections_.insert(&stream.socket());
    boost::system::error_code nodelay_ec;
    stream.socket().set_option(tcp::no_delay(true), nodelay_ec);
    beast::flat_buffer buffer;
    boost::system::error_code peer_ec;
    const std::string peer = stream.socket().remote_endpoint(peer_ec).address().to_string();
    try {
      for (;;) {
        http::request_parser<http::string_body> parser;
        parser.header_limit(static_cast<uint32_t>(self->options_.max_header_bytes));
        parser.body_limit(self->options_.max_body_bytes);
        stream.expires_after(self->options_.read_timeout);
        auto [ec, n] =
            co_await http::async_read(stream, buffer, parser, asio::as_tuple(use_awaitable));
        if (ec == http::error::body_limit || ec == http::error::header_limit) {
          Request req;
          req.version(11);
          bool body = ec == http::error::body_limit;
          Response res = self->ErrorResponse(
              req,
              body ? http::status::payload_too_large
                   : http::status::request_header_fields_too_large,
              jsonrpc::kInvalidRequest,
              body ? "Request body exceeds " + std::to_string(self->options_.max_body_bytes) +
                         " bytes"
                   : "Request headers exceed " + std::to_string(self->options_.max_header_bytes) +
                         " bytes");
          res.keep_alive(false);
          co_await self->Send(stream, std::move(res));
          break;
        }
        if (ec) break;  // closed, timed out (slow client) or garbage: drop the connection
        Request req = parser.release();
        Fields fields = ReadFields(req);
        fields.peer = peer;
        bool keep = co_await self->Handle(stream, req, fields);
        if (!keep || !fields.keep_alive || self->stopped_) break;
      }
    } catch (const std::exception& e) {
      spdlog::warn("http: connection error: {}", e.what());
    }
    self->connections_.erase(&stream.socket());
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream.socket().close(ignored);
  }

  // The request fields the server reads, found in one pass over the request: each of Beast's
  // lookups walks its tree with case-insensitive compares, and a call made ten of them. As with
  // Beast's `operator[]`, the first field of a name is the one that counts.
  struct Fields {
    std::string_view host, origin, authorization, content_type, accept, session_id,
        protocol_version, last_event_id, forwarded_for;
    std::string_view peer;  // the connection's remote address
    bool keep_alive = false;
    // Host, Origin, Authorization, Mcp-Session-Id or MCP-Protocol-Version given twice (RFC
    // 9112 §3.2: a 400): which one a check saw and which one something behind it reads would be
    // anyone's guess.
    bool repeated_singleton = false;
  };

  static Fields ReadFields(const Request& req) {
    Fields f;
    f.keep_alive = req.keep_alive();
    unsigned seen = 0;
    // Keeps the first field of a name; false for a repetition.
    auto take = [&seen](unsigned bit, std::string_view& slot, std::string_view value) {
      if (seen & bit) return false;
      seen |= bit;
      slot = value;
      return true;
    };
    for (const auto& field : req) {
      switch (field.name()) {
        case http::field::host:
          if (!take(1u << 0, f.host, field.value())) f.repeated_singleton = true;
          break;
        case http::field::origin:
          if (!take(1u << 1, f.origin, field.value())) f.repeated_singleton = true;
          break;
        case http::field::authorization:
          if (!take(1u << 2, f.authorization, field.value())) f.repeated_singleton = true;
          break;
        case http::field::content_type: take(1u << 3, f.content_type, field.value()); break;
        case http::field::accept: take(1u << 4, f.accept, field.value()); break;
        case http::field::unknown: {
          const std::string_view name = field.name_string();
          if (beast::iequals(name, kSessionHeader)) {
            if (!take(1u << 5, f.session_id, field.value())) f.repeated_singleton = true;
          } else if (beast::iequals(name, kVersionHeader)) {
            if (!take(1u << 6, f.protocol_version, field.value())) f.repeated_singleton = true;
          } else if (beast::iequals(name, kLastEventIdHeader)) {
            take(1u << 7, f.last_event_id, field.value());
          } else if (beast::iequals(name, "X-Forwarded-For")) {
            // A proxy appends to the last one: that is the one it vouches for.
            f.forwarded_for = field.value();
          }
          break;
        }
        default: break;
      }
    }
    return f;
  }

  // What is left to do for a request once everything that needs no I/O is done.
  struct Routed {
    // kStream: a POST's answers, as one JSON body or an SSE stream (WriteStream);
    // kSse: a GET's SSE stream (WriteSse); kLegacySse: a legacy transport's session stream.
    enum class To { kRespond, kStream, kSse, kAdmin, kLegacySse };
    To to = To::kRespond;
    std::optional<Response> response;  // kRespond
    std::string grant;                 // kLegacySse: the caller
    // kStream, kSse: what `writer` receives goes out as stream `sid` of `session`.
    std::shared_ptr<HttpMcpSession> session;
    std::shared_ptr<StreamWriter> writer;
    uint64_t sid = 0;
    bool batch = false;

    static Routed Respond(Response res) {
      Routed r;
      r.response = std::move(res);
      return r;
    }
  };

  // Handles one request. Returns false when the connection must close. The decisions are made
  // in Route (no I/O); this coroutine only writes — its frame stays small enough for Asio to
  // recycle, where one holding every response of every branch took 2.5 KiB from malloc per call.
  awaitable<bool> Handle(beast::tcp_stream& stream, Request& req, const Fields& fields) {
    Routed r = Route(req, fields);
    switch (r.to) {
      case Routed::To::kRespond:
        co_return co_await Send(stream, std::move(*r.response));
      case Routed::To::kStream:
        co_return co_await WriteStream(stream, req, fields, std::move(r.session), r.sid,
                                       std::move(r.writer), r.batch);
      case Routed::To::kAdmin:
        co_return co_await HandleAdmin(stream, req, fields);
      case Routed::To::kSse:
        co_return co_await WriteSse(stream, req, fields, std::move(r.session), r.sid,
                                    std::move(r.writer));
      case Routed::To::kLegacySse:
        co_return co_await HandleLegacySse(stream, req, fields, r.grant);
    }
    co_return false;
  }

  // Everything of a request that needs no I/O: the Host/Origin and token checks, routing, and
  // for MCP requests the session and the relay.
  Routed Route(Request& req, const Fields& fields) {
    std::string_view target = req.target();
    std::string_view path = target.substr(0, target.find('?'));

    if (fields.repeated_singleton) {
      return Routed::Respond(ErrorResponse(
          req, http::status::bad_request, jsonrpc::kConnectionClosed,
          "Bad Request: more than one Host, Origin, Authorization, Mcp-Session-Id or "
          "MCP-Protocol-Version field"));
    }
    if (!options_.origins.HostAllowed(fields.host) ||
        !options_.origins.OriginAllowed(fields.origin)) {
      spdlog::warn("http: refused {} {} from Host \"{}\" Origin \"{}\"",
                   std::string(req.method_string()), std::string(path), std::string(fields.host),
                   std::string(fields.origin));
      return Routed::Respond(ErrorResponse(req, http::status::forbidden, jsonrpc::kConnectionClosed,
                                           "Forbidden: Host or Origin not allowed"));
    }
    if (path == "/healthz") {
      return Routed::Respond(MakeResponse(req, http::status::ok, "ok\n", "text/plain"));
    }
    if (path == "/readyz") {
      // Listening and not shutting down: ready for sessions.
      const bool stopping = stopped_ || draining_;
      return Routed::Respond(MakeResponse(
          req, stopping ? http::status::service_unavailable : http::status::ok,
          stopping ? "stopping\n" : "ready\n", "text/plain"));
    }
    if (path == "/metrics" && options_.metrics && req.method() == http::verb::get) {
      return Routed::Respond(MakeResponse(req, http::status::ok, options_.metrics(),
                                          "text/plain; version=0.0.4"));
    }
    if (req.method() == http::verb::options) {
      Response res = MakeResponse(req, http::status::no_content);
      res.set(http::field::access_control_allow_methods, "GET, POST, DELETE, OPTIONS");
      res.set(http::field::access_control_allow_headers,
              "Content-Type, Accept, Authorization, Mcp-Session-Id, MCP-Protocol-Version, "
              "Last-Event-ID");
      res.set(http::field::access_control_max_age, "86400");
      return Routed::Respond(std::move(res));
    }
    if (options_.admin && (path == "/api" || path.starts_with("/api/") || path == "/ui" ||
                           path.starts_with("/ui/"))) {
      Routed r;
      r.to = Routed::To::kAdmin;
      return r;
    }
    if (options_.admin && path == "/" && req.method() == http::verb::get) {
      Response res = MakeResponse(req, http::status::found, "", "text/plain");
      res.set(http::field::location, "/ui/");
      return Routed::Respond(std::move(res));
    }
    std::optional<std::string> route = McpRoute(path);
    const bool legacy = path == "/sse" || path == "/messages";
    if (!route && !legacy) {
      return Routed::Respond(
          ErrorResponse(req, http::status::not_found, jsonrpc::kConnectionClosed, "Not found"));
    }
    // Every MCP request names its caller.
    std::string grant = "local";
    if (options_.authenticate) {
      const std::string client = ClientAddress(fields);
      const int64_t now_ms = NowMs();
      if (auto wait = auth_throttle_.Blocked(client, now_ms)) {
        spdlog::warn("http: {} is refused for a while after too many bad tokens", client);
        Response res = ErrorResponse(req, http::status::too_many_requests,
                                     jsonrpc::kConnectionClosed,
                                     "Too Many Requests: too many failed authentications from "
                                     "this address; try again later");
        res.set(http::field::retry_after, std::to_string(*wait));
        return Routed::Respond(std::move(res));
      }
      auto who = options_.authenticate(fields.authorization);
      if (!who) auth_throttle_.Failed(client, now_ms);
      if (!who) {
        Response res = ErrorResponse(req, http::status::unauthorized, jsonrpc::kConnectionClosed,
                                     "Unauthorized: " + who.error().message());
        res.set(http::field::www_authenticate,
                fields.authorization.empty()
                    ? std::string("Bearer realm=\"toolwarden\"")
                    : "Bearer realm=\"toolwarden\", error=\"invalid_token\", "
                      "error_description=\"" + who.error().message() + "\"");
        return Routed::Respond(std::move(res));
      }
      grant = std::move(*who);
    }
    if (route) {
      switch (req.method()) {
        case http::verb::post:
          return RoutePost(req, fields, grant, *route);
        case http::verb::get:
          return RouteGet(req, fields, grant, *route);
        case http::verb::delete_:
          return Routed::Respond(Delete(req, fields, grant, *route));
        default: {
          Response res = ErrorResponse(req, http::status::method_not_allowed,
                                       jsonrpc::kConnectionClosed, "Method not allowed");
          res.set(http::field::allow, "GET, POST, DELETE, OPTIONS");
          return Routed::Respond(std::move(res));
        }
      }
    }
    if (path == "/sse" && req.method() == http::verb::get) {
      Routed r;
      r.to = Routed::To::kLegacySse;
      r.grant = std::move(grant);
      return r;
    }
    if (path == "/messages" && req.method() == http::verb::post) {
      return Routed::Respond(LegacyPost(req, grant));
    }
    return Routed::Respond(ErrorResponse(req, http::status::method_not_allowed,
                                         jsonrpc::kConnectionClosed, "Method not allowed"));
  }

  static int64_t NowMs() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }

  // Who the client is: the connection's peer, or — when the peer is a trusted proxy — the
  // rightmost X-Forwarded-For entry that is not a trusted proxy.
  std::string ClientAddress(const Fields& fields) const {
    auto trusted = [this](std::string_view a) { return trusted_proxies_.Contains(a); };
    std::string_view client = fields.peer;
    if (!trusted(client) || fields.forwarded_for.empty()) return std::string(client);
    std::string_view rest = fields.forwarded_for;
    while (!rest.empty()) {
      const size_t comma = rest.rfind(',');
      std::string_view hop = comma == std::string_view::npos ? rest : rest.substr(comma + 1);
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(0, comma);
      while (!hop.empty() && hop.front() == ' ') hop.remove_prefix(1);
      while (!hop.empty() && hop.back() == ' ') hop.remove_suffix(1);
      if (hop.empty()) continue;
      client = hop;
      if (!trusted(hop)) break;
    }
    return std::string(client.substr(0, 64));
  }

  // "/mcp" → "" (every server), "/mcp/<server>" → server; nullopt for other paths.
  static std::optional<std::string> McpRoute(std::string_view path) {
    if (path == "/mcp" || path == "/mcp/") return std::string();
    if (!path.starts_with("/mcp/")) return std::nullopt;
    std::string_view rest = path.substr(5);
    if (rest.ends_with('/')) rest.remove_suffix(1);
    if (rest.empty() || rest.find('/') != std::string_view::npos) return std::nullopt;
    return std::string(rest);
  }

  awaitable<bool> HandleAdmin(beast::tcp_stream& stream, Request& req, const Fields& fields) {
    HttpServerOptions::AdminCall call{std::string(req.method_string()),
                                      std::string(req.target()),
                                      req.body(),
                                      std::string(req[http::field::authorization]),
                                      std::string(req[http::field::origin]),
                                      std::string(req[http::field::content_type]),
                                      std::string(req[http::field::cookie]),
                                      std::string(req["X-CSRF-Token"]),
                                      std::string(req[http::field::if_none_match]),
                                      ClientAddress(fields)};
    HttpServerOptions::AdminReply reply = options_.admin(call);
    if (reply.events && reply.status == 200) co_return co_await StreamAdminEvents(stream, req, reply);
    Response res = MakeResponse(req, static_cast<http::status>(reply.status), std::move(reply.body),
                                reply.content_type);
    for (auto& [name, value] : reply.headers) res.insert(name, value);
    // API answers are never cached; console assets say how they may be.
    if (!res.count(http::field::cache_control)) res.set(http::field::cache_control, "no-store");
    if (reply.status == 401) res.set(http::field::www_authenticate, "Bearer realm=\"toolwarden-admin\"");
    co_return co_await Send(stream, std::move(res));
  }

  // The admin event stream: frames from the queue as they come, keep-alive comments between,
  // until the client leaves or the server stops.
  awaitable<bool> StreamAdminEvents(beast::tcp_stream& stream, Request& req,
                                    HttpServerOptions::AdminReply& reply) {
    http::response<http::empty_body> res{http::status::ok, req.version()};
    res.set(http::field::server, "toolwarden");
    res.set(http::field::content_type, "text/event-stream");
    res.set(http::field::cache_control, "no-store");
    res.set("X-Accel-Buffering", "no");
    for (auto& [name, value] : reply.headers) res.insert(name, value);
    res.chunked(true);
    res.keep_alive(false);
    http::response_serializer<http::empty_body> sr{res};
    stream.expires_after(options_.write_timeout);
    auto [hec, hn] = co_await http::async_write_header(stream, sr, asio::as_tuple(use_awaitable));
    if (hec) co_return false;
    std::shared_ptr<EventQueue> queue = std::move(reply.events);
    auto wake = std::make_shared<asio::steady_timer>(stream.get_executor());
    admin_streams_.insert(wake.get());
    queue->SetWaker([w = std::weak_ptr(wake)] {
      if (auto t = w.lock()) t->cancel();
    });
    bool ok = co_await WriteChunk(stream, "retry: 2000\n\n");
    while (ok && !stopped_ && !draining_) {
      // Everything waiting goes out in one write (a busy gateway publishes many per turn).
      std::string batch;
      for (const std::string& frame : queue->Take()) batch += frame;
      if (!batch.empty()) ok = co_await WriteChunk(stream, batch);
      if (!ok || stopped_ || draining_ || !queue->empty()) continue;
      wake->expires_after(options_.keepalive);
      auto [ec] = co_await wake->async_wait(asio::as_tuple(use_awaitable));
      if (!ec && queue->empty()) ok = co_await WriteChunk(stream, kSseKeepAlive);
    }
    queue->SetWaker(nullptr);
    admin_streams_.erase(wake.get());
    co_return false;  // the connection closes with the stream
  }

  awaitable<bool> Send(beast::tcp_stream& stream, Response res) {
    if (HasWireHead(res)) co_return co_await SendWire(stream, WireHead(res), res.body(), res.keep_alive());
    stream.expires_after(options_.write_timeout);
    auto [ec, n] = co_await http::async_write(stream, res, asio::as_tuple(use_awaitable));
    co_return !ec && res.keep_alive();
  }

  // A message already formatted (http_wire.h): head and body in one gathered write.
  awaitable<bool> SendWire(beast::tcp_stream& stream, const std::string& head,
                           const std::string& body, bool keep_alive) {
    stream.expires_after(options_.write_timeout);
    const std::array<asio::const_buffer, 2> bufs{asio::buffer(head), asio::buffer(body)};
    auto [ec, n] = co_await asio::async_write(stream, bufs, asio::as_tuple(use_awaitable));
    co_return !ec && keep_alive;
  }

  // Looks up the session a request names. On failure `error` holds the response to send.
  std::shared_ptr<HttpMcpSession> FindSession(const Request& req, const Fields& fields,
                                              std::optional<Response>& error,
                                              const std::string& grant, const std::string& route) {
    if (fields.session_id.empty()) {
      error = ErrorResponse(req, http::status::bad_request, jsonrpc::kConnectionClosed,
                            "Bad Request: Mcp-Session-Id header is required");
      return nullptr;
    }
    auto it = sessions_.find(std::string(fields.session_id));
    // A session exists only for the caller that opened it, on the endpoint it was opened on.
    if (it == sessions_.end() || it->second->legacy() || it->second->grant() != grant ||
        it->second->route() != route) {
      error = ErrorResponse(req, http::status::not_found, jsonrpc::kConnectionClosed,
                            "Session not found");
      return nullptr;
    }
    const std::string_view version = fields.protocol_version;
    if (!version.empty() && !mcp::IsSupportedVersion(version)) {
      error = ErrorResponse(req, http::status::bad_request, jsonrpc::kConnectionClosed,
                            "Bad Request: Unsupported protocol version " + std::string(version));
      return nullptr;
    }
    it->second->Touch();
    return it->second;
  }

  // Makes a session, or the response refusing it.
  std::shared_ptr<HttpMcpSession> NewSession(const Request& req, bool legacy,
                                             const std::string& grant, const std::string& route,
                                             std::optional<Response>& error) {
    if (draining_) {
      error = ErrorResponse(req, http::status::service_unavailable, jsonrpc::kConnectionClosed,
                            "The gateway is shutting down");
      return nullptr;
    }
    if (options_.max_sessions_per_grant > 0 &&
        GrantSessions(grant) >= options_.max_sessions_per_grant && !ReapIdle(grant)) {
      error = ErrorResponse(req, http::status::service_unavailable, jsonrpc::kConnectionClosed,
                            "Too many sessions for this grant (" +
                                std::to_string(options_.max_sessions_per_grant) +
                                "); close some or try again later");
      error->set(http::field::retry_after, "30");
      return nullptr;
    }
    if (sessions_.size() >= options_.max_sessions && !ReapIdle(LargestGrant())) {
      error = ErrorResponse(req, http::status::service_unavailable, jsonrpc::kConnectionClosed,
                            "Too many sessions; try again later");
      error->set(http::field::retry_after, "30");
      return nullptr;
    }
    std::string id = RandomHex(16);
    auto maker = sessions_factory_(SessionRequest{id, route, grant});
    if (!maker) {
      const bool missing = maker.error().code() == ErrorCode::kNotFound;
      error = ErrorResponse(req, missing ? http::status::not_found : http::status::forbidden,
                            jsonrpc::kConnectionClosed, maker.error().message());
      return nullptr;
    }
    auto session = std::make_shared<HttpMcpSession>(
        id,
        legacy ? HttpMcpSession::Transport::kLegacySse : HttpMcpSession::Transport::kStreamableHttp,
        *maker, options_.max_events_per_stream, grant, route);
    sessions_.emplace(id, session);
    ++grant_sessions_[grant];
    session->relay().Start();
    spdlog::info("http: session {} opened{} for {}{} ({} open)", id.substr(0, 8),
                 legacy ? " (legacy SSE)" : "", grant, route.empty() ? "" : " on " + route,
                 sessions_.size());
    return session;
  }

  // A POST of MCP messages: checked, handed to the session's relay, and either answered at
  // once (202, or a refusal) or left to WriteStream with the stream its answers will take.
  Routed RoutePost(const Request& req, const Fields& fields, const std::string& grant,
                   const std::string& route) {
    if (fields.content_type.find("application/json") == std::string_view::npos) {
      return Routed::Respond(
          ErrorResponse(req, http::status::unsupported_media_type, jsonrpc::kConnectionClosed,
                        "Unsupported Media Type: Content-Type must be application/json"));
    }
    if (!AcceptsType(fields.accept, "application/json") ||
        !AcceptsType(fields.accept, "text/event-stream")) {
      return Routed::Respond(
          ErrorResponse(req, http::status::not_acceptable, jsonrpc::kConnectionClosed,
                        "Not Acceptable: Client must accept both application/json and "
                        "text/event-stream"));
    }
    jsonrpc::Incoming in = jsonrpc::Parse(req.body());
    if (!in.is_batch && !in.items[0]) {
      return Routed::Respond(MakeResponse(
          req, http::status::bad_request,
          jsonrpc::Serialize(jsonrpc::MakeError(in.items[0].error()))));
    }
    bool has_initialize = false;
    for (auto& item : in.items) {
      if (item && item->IsRequest() && item->method == mcp::method::kInitialize) {
        has_initialize = true;
      }
    }

    std::shared_ptr<HttpMcpSession> session;
    std::optional<Response> error;
    if (has_initialize) {
      if (in.is_batch) {
        return Routed::Respond(
            ErrorResponse(req, http::status::bad_request, jsonrpc::kInvalidRequest,
                          "Invalid Request: initialize must not be part of a batch"));
      }
      if (!fields.session_id.empty() && sessions_.contains(std::string(fields.session_id))) {
        return Routed::Respond(ErrorResponse(req, http::status::bad_request,
                                             jsonrpc::kInvalidRequest,
                                             "Invalid Request: Server already initialized"));
      }
      session = NewSession(req, false, grant, route, error);
    } else {
      session = FindSession(req, fields, error, grant, route);
    }
    if (!session) return Routed::Respond(std::move(*error));

    bool has_requests = false;
    for (auto& item : in.items) {
      if (!item || item->IsRequest()) has_requests = true;
    }
    if (!has_requests) {
      for (auto& item : in.items) session->relay().HandleClientMessage(std::move(*item));
      Response res = MakeResponse(req, http::status::accepted);
      res.set(kSessionHeader, session->id());
      return Routed::Respond(std::move(res));
    }

    Routed r;
    r.to = Routed::To::kStream;
    r.batch = in.is_batch;
    r.writer = std::make_shared<StreamWriter>(io_.get_executor());
    r.writer->single = !in.is_batch;
    r.sid = session->OpenStream(r.writer);
    std::vector<jsonrpc::Message> to_relay;
    size_t accepted = 0;  // requests whose answers this stream waits for
    for (auto& item : in.items) {
      if (!item) {
        session->DeliverOn(r.sid, jsonrpc::MakeError(item.error()));
        continue;
      }
      if (item->IsRequest()) {
        // In flight already — from an earlier POST or earlier in this batch.
        if (session->IsPending(item->id)) {
          session->DeliverOn(
              r.sid, jsonrpc::MakeError(item->id, jsonrpc::kInvalidRequest,
                                        "Invalid Request: id " + jsonrpc::IdToString(item->id) +
                                            " is already in use by a pending request"));
          continue;
        }
        session->AddRequest(r.sid, item->id);
        ++accepted;
      }
      to_relay.push_back(std::move(*item));
    }
    for (auto& m : to_relay) session->relay().HandleClientMessage(std::move(m));
    // Nothing left to wait for (every request refused or invalid): the stream ends with the
    // refusals instead of staying open.
    if (accepted == 0 && !r.writer->done) r.writer->Finish();
    r.session = std::move(session);
    return r;
  }

  // Writes what `writer` receives for a POST: as a single JSON body if the answer comes first,
  // else as an SSE stream (WriteSse). Returns whether the connection may be reused.
  awaitable<bool> WriteStream(beast::tcp_stream& stream, const Request& req, const Fields& fields,
                              std::shared_ptr<HttpMcpSession> session, uint64_t sid,
                              std::shared_ptr<StreamWriter> writer, bool batch) {
    writer->wake.expires_after(options_.keepalive);
    while (writer->queue.empty() && !writer->done) {
      auto [ec] = co_await writer->wake.async_wait(asio::as_tuple(use_awaitable));
      if (!ec) break;  // the keep-alive interval passed with nothing to send
      writer->wake.expires_after(options_.keepalive);
    }
    if (!batch && writer->done && writer->queue.size() == 1 &&
        writer->queue.front().is_response) {
      // MakeResponse(req, 200, answer) plus the session header, written without building
      // Beast's fields for it (the answer of every call takes this path).
      const std::string body = std::move(writer->queue.front().data);
      writer->queue.clear();
      co_return co_await SendWire(stream,
                                  JsonAnswerHead(req.version(), fields.keep_alive,
                                                 options_.origins.CorsAllowed(fields.origin)
                                                     ? fields.origin
                                                     : std::string_view(),
                                                 session->id(), body.size()),
                                  body, fields.keep_alive);
    }
    if (!batch && writer->done && writer->queue.empty()) {
      // The session closed before anything was sent.
      co_return co_await Send(stream, ErrorResponse(req, http::status::not_found,
                                                    jsonrpc::kConnectionClosed, "Session closed"));
    }
    co_return co_await WriteSse(stream, req, fields, std::move(session), sid, std::move(writer));
  }

  // Writes what `writer` receives as an SSE stream until it is finished.
  awaitable<bool> WriteSse(beast::tcp_stream& stream, const Request& req, const Fields& fields,
                           std::shared_ptr<HttpMcpSession> session, uint64_t sid,
                           std::shared_ptr<StreamWriter> writer) {
    writer->sse = true;  // from here on, what the session pushes is kept for resumption
    http::response<http::empty_body> res{http::status::ok, req.version()};
    res.set(http::field::server, "toolwarden");
    res.set(http::field::content_type, "text/event-stream");
    res.set(http::field::cache_control, "no-cache, no-transform");
    res.set(kSessionHeader, session->id());
    res.set("X-Accel-Buffering", "no");
    AddCors(req, res);
    res.chunked(true);
    res.keep_alive(fields.keep_alive);
    http::response_serializer<http::empty_body> sr{res};
    stream.expires_after(options_.write_timeout);
    auto [hec, hn] = co_await http::async_write_header(stream, sr, asio::as_tuple(use_awaitable));
    bool ok = !hec;
    if (ok && !session->legacy() && WantsPriming(session->relay().protocol_version())) {
      // The priming id points just before the first event this response carries, so a client
      // that resumes from it misses nothing.
      const uint64_t before =
          writer->queue.empty() ? session->LastSeq(sid) : writer->queue.front().seq - 1;
      std::string priming = FormatSsePriming(FormatEventId(sid, before), options_.sse_retry_ms);
      ok = co_await WriteChunk(stream, priming);
    }
    if (ok) ok = co_await PumpEvents(stream, writer);
    session->DetachWriter(sid, writer);
    writer->detached = true;
    if (!ok) co_return false;
    stream.expires_after(options_.write_timeout);
    auto [ec, n] =
        co_await asio::async_write(stream, http::make_chunk_last(), asio::as_tuple(use_awaitable));
    co_return !ec && fields.keep_alive;
  }

  // Writes events until the writer is finished; keep-alive comments while idle.
  awaitable<bool> PumpEvents(beast::tcp_stream& stream, std::shared_ptr<StreamWriter> writer) {
    for (;;) {
      while (!writer->queue.empty()) {
        StreamWriter::Item item = std::move(writer->queue.front());
        writer->queue.pop_front();
        if (!co_await WriteChunk(stream,
                                 FormatSseEvent(item.event_id, item.data, item.event_name))) {
          co_return false;
        }
      }
      if (writer->done || stopped_) co_return true;
      writer->wake.expires_after(options_.keepalive);
      auto [ec] = co_await writer->wake.async_wait(asio::as_tuple(use_awaitable));
      if (!ec && writer->queue.empty() && !writer->done) {
        if (!co_await WriteChunk(stream, kSseKeepAlive)) co_return false;
      }
    }
  }

  awaitable<bool> WriteChunk(beast::tcp_stream& stream, std::string_view data) {
    stream.expires_after(options_.write_timeout);
    auto [ec, n] = co_await asio::async_write(stream, http::make_chunk(asio::buffer(data)),
                                              asio::as_tuple(use_awaitable));
    co_return !ec;
  }

  // A GET: the session's stream (a new one, or the one Last-Event-ID resumes, taken over from
  // the connection that had it) with a writer attached, or the refusal.
  Routed RouteGet(const Request& req, const Fields& fields, const std::string& grant,
                  const std::string& route) {
    if (!AcceptsType(fields.accept, "text/event-stream")) {
      return Routed::Respond(ErrorResponse(req, http::status::not_acceptable,
                                           jsonrpc::kConnectionClosed,
                                           "Not Acceptable: Client must accept text/event-stream"));
    }
    std::optional<Response> error;
    auto session = FindSession(req, fields, error, grant, route);
    if (!session) return Routed::Respond(std::move(*error));

    Routed r;
    uint64_t after = 0;
    // Our ids are "<stream>_<seq>".
    if (!fields.last_event_id.empty() && !ParseEventId(fields.last_event_id, r.sid, after)) {
      return Routed::Respond(ErrorResponse(req, http::status::bad_request,
                                           jsonrpc::kConnectionClosed,
                                           "Bad Request: unknown Last-Event-ID"));
    }
    r.writer = std::make_shared<StreamWriter>(io_.get_executor());
    const auto mode = fields.last_event_id.empty() ? HttpMcpSession::Mode::kExclusive
                                                   : HttpMcpSession::Mode::kTakeOver;
    switch (session->AttachWriter(r.sid, after, r.writer, mode)) {
      case HttpMcpSession::Attach::kBusy:
        return Routed::Respond(
            ErrorResponse(req, http::status::conflict, jsonrpc::kConnectionClosed,
                          "Conflict: Only one SSE stream is allowed per session"));
      case HttpMcpSession::Attach::kUnknown:
        return Routed::Respond(ErrorResponse(req, http::status::bad_request,
                                             jsonrpc::kConnectionClosed,
                                             "Bad Request: unknown Last-Event-ID"));
      case HttpMcpSession::Attach::kOk:
        break;
    }
    r.to = Routed::To::kSse;
    r.session = std::move(session);
    return r;
  }

  Response Delete(const Request& req, const Fields& fields, const std::string& grant,
                  const std::string& route) {
    std::optional<Response> error;
    auto session = FindSession(req, fields, error, grant, route);
    if (!session) return std::move(*error);
    if (auto it = sessions_.find(session->id()); it != sessions_.end()) CloseSession(it);
    spdlog::info("http: session {} deleted by the client", session->id().substr(0, 8));
    return MakeResponse(req, http::status::ok);
  }

  awaitable<bool> HandleLegacySse(beast::tcp_stream& stream, Request& req, const Fields& fields,
                                  const std::string& grant) {
    if (!AcceptsType(fields.accept, "text/event-stream")) {
      co_return co_await Send(
          stream, ErrorResponse(req, http::status::not_acceptable, jsonrpc::kConnectionClosed,
                                "Not Acceptable: text/event-stream"));
    }
    std::optional<Response> error;
    auto session = NewSession(req, true, grant, "", error);
    if (!session) co_return co_await Send(stream, std::move(*error));
    auto writer = std::make_shared<StreamWriter>(stream.get_executor());
    writer->Push({0, "", "endpoint", "/messages?sessionId=" + session->id(), false});
    session->AttachWriter(0, 0, writer);
    co_await WriteSse(stream, req, fields, session, 0, writer);
    // The legacy transport's session lives exactly as long as its stream.
    if (auto it = sessions_.find(session->id()); it != sessions_.end()) CloseSession(it);
    spdlog::info("http: legacy session {} closed", session->id().substr(0, 8));
    co_return false;
  }

  Response LegacyPost(const Request& req, const std::string& grant) {
    std::string session_id;
    auto url = boost::urls::parse_origin_form(req.target());
    if (url) {
      auto params = url->params();
      auto it = params.find("sessionId");
      if (it != params.end()) session_id = (*it).value;
    }
    auto found = sessions_.find(session_id);
    if (found == sessions_.end() || !found->second->legacy() || found->second->grant() != grant) {
      return ErrorResponse(req, http::status::not_found, jsonrpc::kConnectionClosed,
                           "Session not found");
    }
    auto session = found->second;
    session->Touch();
    jsonrpc::Incoming in = jsonrpc::Parse(req.body());
    if (!in.is_batch && !in.items[0]) {
      return MakeResponse(req, http::status::bad_request,
                          jsonrpc::Serialize(jsonrpc::MakeError(in.items[0].error())));
    }
    for (auto& item : in.items) {
      if (!item) {
        session->DeliverOn(0, jsonrpc::MakeError(item.error()));
        continue;
      }
      session->relay().HandleClientMessage(std::move(*item));
    }
    return MakeResponse(req, http::status::accepted, "Accepted", "text/plain");
  }

  size_t GrantSessions(const std::string& grant) const {
    auto it = grant_sessions_.find(grant);
    return it == grant_sessions_.end() ? 0 : it->second;
  }

  std::string LargestGrant() const {
    std::string largest;
    size_t most = 0;
    for (const auto& [grant, n] : grant_sessions_) {
      if (n > most) {
        most = n;
        largest = grant;
      }
    }
    return largest;
  }

  // Closes the session of `grant` idle the longest, if one has been idle for a minute (an agent
  // between two calls is idle for seconds). Returns whether one was closed.
  bool ReapIdle(const std::string& grant) {
    const auto now = std::chrono::steady_clock::now();
    auto victim = sessions_.end();
    for (auto it = sessions_.begin(); it != sessions_.end(); ++it) {
      const HttpMcpSession& s = *it->second;
      if (s.grant() != grant || s.Busy() || now - s.last_active() < std::chrono::minutes(1)) continue;
      if (victim == sessions_.end() || s.last_active() < victim->second->last_active()) victim = it;
    }
    if (victim == sessions_.end()) return false;
    spdlog::info("http: session {} of {} idle; closed to make room", victim->first.substr(0, 8),
                 grant);
    CloseSession(victim);
    return true;
  }

  // Closes a session and forgets it; returns the next one.
  using SessionMap = std::unordered_map<std::string, std::shared_ptr<HttpMcpSession>>;
  SessionMap::iterator CloseSession(SessionMap::iterator it) {
    std::shared_ptr<HttpMcpSession> session = it->second;
    if (auto g = grant_sessions_.find(session->grant()); g != grant_sessions_.end() && --g->second == 0) {
      grant_sessions_.erase(g);
    }
    auto next = sessions_.erase(it);
    session->Close();
    return next;
  }

  asio::io_context& io_;
  HttpServerOptions options_;
  SessionFactory sessions_factory_;
  FailureThrottle auth_throttle_{options_.auth_failures_per_minute};
  AddressSet trusted_proxies_;  // options_.trusted_proxies, parsed by Listen
  std::unordered_map<std::string, size_t> grant_sessions_;  // open sessions per grant
  tcp::acceptor acceptor_;
  asio::steady_timer sweep_timer_;
  std::unordered_map<std::string, std::shared_ptr<HttpMcpSession>> sessions_;
  std::unordered_set<tcp::socket*> connections_;
  std::unordered_set<asio::steady_timer*> admin_streams_;  // console event streams, woken on stop
  bool stopped_ = false;
  bool draining_ = false;
};

HttpServer::HttpServer(asio::io_context& io, HttpServerOptions options, SessionFactory sessions)
    : impl_(std::make_shared<Impl>(io, std::move(options), std::move(sessions))) {}

HttpServer::~HttpServer() { impl_->Stop(); }

Result<uint16_t> HttpServer::Listen(const std::string& host, uint16_t port) {
  return impl_->Listen(host, port);
}

void HttpServer::Drain() { impl_->Drain(); }

void HttpServer::Stop() { impl_->Stop(); }

size_t HttpServer::requests_in_flight() const { return impl_->requests_in_flight(); }

size_t HttpServer::session_count() const { return impl_->session_count(); }

}  // namespace tw::transport
