#include "transport/http_server.h"

#include "transport/http_wire.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <atomic>
#include <charconv>
#include <optional>
#include <deque>
#include <map>
#include <unordered_map>
#include <unordered_set>

#include "mcp/modern.h"
#include "transport/framing.h"
#include "transport/http_session.h"

namespace tw::transport {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::awaitable;
using asio::use_awaitable;
using tcp = asio::ip::tcp;

namespace {

constexpr std::string_view kSessionHeader = "Mcp-Session-Id";

// SEP-1699 priming events exist from this revision on; older clients are not sent them.
bool WantsPriming(std::string_view version) { return version >= "2025-11-25"; }

}  // namespace

// The listeners of one server, one per event loop (Impl 0 on the home loop accepts for all).
struct HttpServer::Group {
  std::vector<std::weak_ptr<Impl>> loops;
  std::shared_ptr<RouterShared> shared;
  size_t next = 0;  // round robin of accepted connections (home loop only)
};

class HttpServer::Impl : public std::enable_shared_from_this<HttpServer::Impl> {
 public:
  Impl(asio::io_context& io, HttpServerOptions options, SessionFactory sessions, size_t index,
       std::shared_ptr<Group> group)
      : io_(io),
        options_(std::move(options)),
        sessions_factory_(std::move(sessions)),
        index_(index),
        group_(std::move(group)),
        acceptor_(io),
        sweep_timer_(io) {}

  // Makes the router (every loop); `options_` is final from here on.
  Result<void> Prepare() {
    auto router = HttpRouter::Create(io_.get_executor(), options_, std::move(sessions_factory_),
                                     RouterPlace{index_, group_->loops.size(), group_->shared});
    if (!router) return Fail(router.error());
    router_ = std::move(*router);
    return {};
  }

  // Starts the sweep of idle sessions (on this loop).
  void Begin() {
    asio::post(io_, [self = shared_from_this()] { self->ScheduleSweep(); });
  }

  // Binds and accepts (the home loop's listener only).
  Result<uint16_t> Listen(const std::string& host, uint16_t port) {
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
    return acceptor_.local_endpoint().port();
  }

  // Serves a connection another loop accepted, or read `first` from (the request names a
  // session of this loop, or is for the home loop). `fd` is the socket, released by that loop.
  // The socket is registered with this loop's reactor here, by this loop's own thread: a loop
  // that forks a server process must hold the only lock on its reactor at that moment (the
  // child re-registers everything under that lock: asio's notify_fork), so no other thread
  // may ever register descriptors with it.
  void Adopt(std::shared_ptr<int> fd, tcp protocol, std::optional<HttpRouter::Request> first,
             std::string peer, std::string unread) {
    tcp::socket socket(io_);
    boost::system::error_code ec;
    socket.assign(protocol, *fd, ec);
    if (ec) return;  // `fd` closes with its holder
    *fd = -1;        // the socket owns it now
    if (stopped_) return;
    asio::co_spawn(io_,
                   Connection(shared_from_this(), std::move(socket), std::move(first),
                              std::move(peer), std::move(unread)),
                   asio::detached);
  }

  void Drain() {
    draining_ = true;
    if (router_) router_->Drain();
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    for (auto* t : admin_streams_) t->cancel();  // console event streams end now
  }

  void Stop() {
    stopped_ = true;
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    sweep_timer_.cancel();
    if (router_) router_->Stop();
    for (auto* socket : connections_) socket->close(ignored);
    for (auto* t : admin_streams_) t->cancel();
  }

  size_t session_count() const { return router_ ? router_->session_count() : 0; }
  size_t requests_in_flight() const { return router_ ? router_->requests_in_flight() : 0; }

  asio::io_context& io() { return io_; }

 private:
  using Request = HttpRouter::Request;
  using Response = HttpRouter::Response;
  using Fields = HttpRouter::Fields;
  using Routed = HttpRouter::Routed;

  // Accepts for every loop, in turn, and hands each connection to the loop that will read it
  // (Adopt: the socket is registered there, by that loop).
  static awaitable<void> AcceptLoop(std::shared_ptr<Impl> self) {
    while (!self->stopped_) {
      auto [ec, socket] = co_await self->acceptor_.async_accept(asio::as_tuple(use_awaitable));
      if (ec) {
        if (self->stopped_ || self->draining_ || ec == asio::error::operation_aborted) break;
        spdlog::warn("http: accept failed: {}", ec.message());
        continue;
      }
      const size_t to = self->group_->next++ % self->group_->loops.size();
      if (to == self->index_ || !self->Give(std::move(socket), to, std::nullopt, {}, {})) {
        asio::co_spawn(self->io_, Connection(self, std::move(socket), std::nullopt, {}, {}),
                       asio::detached);
      }
    }
  }

  // Releases `socket` and posts it to loop `to_index` (Adopt), with what was read from it.
  // False when that loop is gone (the socket is then left as it was).
  bool Give(tcp::socket&& socket, size_t to_index, std::optional<Request> first, std::string peer,
            std::string unread) {
    std::shared_ptr<Impl> to = Peer(to_index);
    if (!to || stopped_) return false;
    boost::system::error_code ec;
    const tcp protocol = socket.local_endpoint(ec).protocol();
    if (ec) return false;
    const int raw = socket.release(ec);
    if (ec) return false;
    auto fd = std::shared_ptr<int>(new int(raw), [](int* p) {
      if (*p >= 0) ::close(*p);
      delete p;
    });
    asio::post(to->io_, [to, fd, protocol, first = std::move(first), peer = std::move(peer),
                         unread = std::move(unread)]() mutable {
      to->Adopt(fd, protocol, std::move(first), std::move(peer), std::move(unread));
    });
    return true;
  }

  std::shared_ptr<Impl> Peer(size_t i) const { return group_->loops[i].lock(); }

  // The loop that must serve `req`: the one holding the session it names, the home loop for
  // the admin API, the console and /metrics (what exists once per gateway lives there), or
  // this one.
  size_t OwnerOf(const Request& req, const Fields& fields) const {
    const size_t n = group_->loops.size();
    if (n == 1) return index_;
    const std::string_view target = req.target();
    const std::string_view path = target.substr(0, target.find('?'));
    if (path == "/" || path == "/metrics" || path.starts_with("/api/") || path == "/ui" ||
        path.starts_with("/ui/")) {
      return 0;
    }
    if (path == "/messages") {
      return HttpRouter::LoopOfSession(HttpRouter::LegacySessionId(target), n).value_or(index_);
    }
    if (fields.session_id.empty()) {
      // A 2026-07-28 request (it must name its version) is served by its caller's channel for
      // the route, which lives on one loop: the one its credentials and path choose, so that
      // one client's requests reach one upstream connection (a stateful server keeps its
      // state) while different callers spread over the loops.
      if (mcp::modern::IsModernVersion(fields.protocol_version)) {
        const size_t h = std::hash<std::string_view>{}(fields.authorization);
        return (h ^ (std::hash<std::string_view>{}(path) + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2))) % n;
      }
      return index_;
    }
    return HttpRouter::LoopOfSession(fields.session_id, n).value_or(index_);
  }

  // Hands the connection, with the request read from it and whatever of the next ones was
  // read too, to the loop `to`. False when it cannot (the connection is then closed).
  bool HandOver(beast::tcp_stream& stream, Request& req, const std::string& peer,
                beast::flat_buffer& buffer, size_t to_index) {
    stream.expires_never();
    std::string unread(static_cast<const char*>(buffer.data().data()), buffer.size());
    if (!Give(std::move(stream.socket()), to_index, std::move(req), peer, std::move(unread))) {
      return false;
    }
    connections_.erase(&stream.socket());
    return true;
  }

  void ScheduleSweep() {
    sweep_timer_.expires_after(
        std::min<std::chrono::milliseconds>(options_.session_idle, std::chrono::seconds(60)));
    sweep_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (ec || self->stopped_) return;
      self->router_->CloseIdleSessions();
      self->ScheduleSweep();
    });
  }

  template <typename Res>
  void AddCors(const Request& req, Res& res) {
    auto origin = req[http::field::origin];
    if (!options_.origins.CorsAllowed(origin)) return;
    res.set(http::field::access_control_allow_origin, origin);
    res.set(http::field::vary, "Origin");
    res.set(http::field::access_control_expose_headers, "Mcp-Session-Id");
  }

  // Serves one connection: `first`, when another loop read it and handed the connection over
  // (with `peer` and the bytes it had read past it, `unread`), then every request that follows.
  static awaitable<void> Connection(std::shared_ptr<Impl> self, tcp::socket socket,
                                    std::optional<Request> first, std::string peer,
                                    std::string unread) {
    beast::tcp_stream stream(std::move(socket));
    self->connections_.insert(&stream.socket());
    boost::system::error_code nodelay_ec;
    stream.socket().set_option(tcp::no_delay(true), nodelay_ec);
    beast::flat_buffer buffer;
    if (!unread.empty()) {
      buffer.commit(asio::buffer_copy(buffer.prepare(unread.size()), asio::buffer(unread)));
    }
    if (peer.empty()) {
      boost::system::error_code peer_ec;
      peer = stream.socket().remote_endpoint(peer_ec).address().to_string();
    }
    bool handed_over = false;
    try {
      for (;;) {
        if (first) {
          Request req = std::move(*first);
          first.reset();
          Fields fields = HttpRouter::ReadFields(req);
          fields.peer = peer;
          bool keep = co_await self->Handle(stream, req, fields);
          if (!keep || !fields.keep_alive || self->stopped_) break;
          continue;
        }
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
          Response res = self->router_->ErrorResponse(
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
        Fields fields = HttpRouter::ReadFields(req);
        fields.peer = peer;
        if (const size_t owner = self->OwnerOf(req, fields); owner != self->index_) {
          handed_over = self->HandOver(stream, req, peer, buffer, owner);
          break;
        }
        bool keep = co_await self->Handle(stream, req, fields);
        if (!keep || !fields.keep_alive || self->stopped_) break;
      }
    } catch (const std::exception& e) {
      spdlog::warn("http: connection error: {}", e.what());
    }
    if (handed_over) co_return;
    self->connections_.erase(&stream.socket());
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream.socket().close(ignored);
  }

  // Handles one request. Returns false when the connection must close. The decisions are made
  // in Route (no I/O); this coroutine only writes — its frame stays small enough for Asio to
  // recycle, where one holding every response of every branch took 2.5 KiB from malloc per call.
  awaitable<bool> Handle(beast::tcp_stream& stream, Request& req, const Fields& fields) {
    Routed r = router_->Route(req, fields);
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
      case Routed::To::kStateless:
        co_return co_await WriteStateless(stream, req, fields, std::move(r.channel),
                                          std::move(r.writer));
    }
    co_return false;
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
                                      router_->ClientAddress(fields),
                                      router_->PublicBase(fields)};
    HttpServerOptions::AdminReply reply = options_.admin(call);
    if (reply.events && reply.status == 200) co_return co_await StreamAdminEvents(stream, req, reply);
    Response res = router_->MakeResponse(req, static_cast<http::status>(reply.status),
                                         std::move(reply.body), reply.content_type);
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

  // Waits until `writer` has something, is finished, or a keep-alive interval passed with
  // nothing (then the answer goes out as an SSE stream).
  awaitable<void> AwaitFirst(StreamWriter& writer) {
    writer.wake.expires_after(options_.keepalive);
    while (writer.queue.empty() && !writer.done) {
      auto [ec] = co_await writer.wake.async_wait(asio::as_tuple(use_awaitable));
      if (!ec) break;  // the keep-alive interval passed with nothing to send
      writer.wake.expires_after(options_.keepalive);
    }
  }

  // Writes what `writer` receives for a POST: as a single JSON body if the answer comes first,
  // else as an SSE stream (WriteSse). Returns whether the connection may be reused.
  awaitable<bool> WriteStream(beast::tcp_stream& stream, const Request& req, const Fields& fields,
                              std::shared_ptr<HttpMcpSession> session, uint64_t sid,
                              std::shared_ptr<StreamWriter> writer, bool batch) {
    co_await AwaitFirst(*writer);
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
      co_return co_await Send(
          stream, router_->ErrorResponse(req, http::status::not_found, jsonrpc::kConnectionClosed,
                                         "Session closed"));
    }
    co_return co_await WriteSse(stream, req, fields, std::move(session), sid, std::move(writer));
  }

  // Writes the answer to one 2026-07-28 request: a JSON body (with the answer's status) when it
  // is all there is, else an SSE stream of its notifications and then the answer. There is no
  // session, no event id and no resumption in that era; a stream the client closes before the
  // answer cancels the request.
  awaitable<bool> WriteStateless(beast::tcp_stream& stream, const Request& req,
                                 const Fields& fields, std::shared_ptr<StatelessChannel> channel,
                                 std::shared_ptr<StreamWriter> writer) {
    co_await AwaitFirst(*writer);
    const std::string_view origin =
        options_.origins.CorsAllowed(fields.origin) ? fields.origin : std::string_view();
    if (writer->done && writer->queue.size() == 1 && writer->queue.front().is_response) {
      const std::string body = std::move(writer->queue.front().data);
      const int status = writer->queue.front().http_status;
      writer->queue.clear();
      co_return co_await SendWire(
          stream, JsonAnswerHead(req.version(), fields.keep_alive, origin, {}, body.size(), status),
          body, fields.keep_alive);
    }
    if (writer->done && writer->queue.empty()) {
      co_return co_await Send(
          stream, router_->ErrorResponse(req, http::status::service_unavailable,
                                         jsonrpc::kConnectionClosed, "The gateway is closing"));
    }
    bool ok = co_await WriteSseHead(stream, req, fields, {}) && co_await PumpEvents(stream, writer);
    writer->detached = true;
    if (!writer->done) channel->Cancelled(writer);
    if (!ok) co_return false;
    stream.expires_after(options_.write_timeout);
    auto [ec, n] =
        co_await asio::async_write(stream, http::make_chunk_last(), asio::as_tuple(use_awaitable));
    co_return !ec && fields.keep_alive;
  }

  // Writes the head of an SSE response (chunked; the session id when there is one).
  awaitable<bool> WriteSseHead(beast::tcp_stream& stream, const Request& req, const Fields& fields,
                               std::string_view session_id) {
    http::response<http::empty_body> res{http::status::ok, req.version()};
    res.set(http::field::server, "toolwarden");
    res.set(http::field::content_type, "text/event-stream");
    res.set(http::field::cache_control, "no-cache, no-transform");
    if (!session_id.empty()) res.set(kSessionHeader, session_id);
    res.set("X-Accel-Buffering", "no");
    AddCors(req, res);
    res.chunked(true);
    res.keep_alive(fields.keep_alive);
    http::response_serializer<http::empty_body> sr{res};
    stream.expires_after(options_.write_timeout);
    auto [ec, n] = co_await http::async_write_header(stream, sr, asio::as_tuple(use_awaitable));
    co_return !ec;
  }

  // Writes what `writer` receives as an SSE stream until it is finished.
  awaitable<bool> WriteSse(beast::tcp_stream& stream, const Request& req, const Fields& fields,
                           std::shared_ptr<HttpMcpSession> session, uint64_t sid,
                           std::shared_ptr<StreamWriter> writer) {
    writer->sse = true;  // from here on, what the session pushes is kept for resumption
    bool ok = co_await WriteSseHead(stream, req, fields, session->id());
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

  awaitable<bool> HandleLegacySse(beast::tcp_stream& stream, Request& req, const Fields& fields,
                                  const std::string& grant) {
    std::optional<Response> error;
    auto session = router_->OpenLegacySession(req, grant, error);
    if (!session) co_return co_await Send(stream, std::move(*error));
    auto writer = std::make_shared<StreamWriter>(stream.get_executor());
    writer->Push({0, "", "endpoint", "/messages?sessionId=" + session->id(), false});
    session->AttachWriter(0, 0, writer);
    co_await WriteSse(stream, req, fields, session, 0, writer);
    // The legacy transport's session lives exactly as long as its stream.
    router_->CloseSession(session->id());
    spdlog::info("http: legacy session {} closed", session->id().substr(0, 8));
    co_return false;
  }

  // Closes a session and forgets it; returns the next one.
  asio::io_context& io_;
  HttpServerOptions options_;
  SessionFactory sessions_factory_;     // until Prepare hands it to the router
  const size_t index_;                  // of this loop in group_
  std::shared_ptr<Group> group_;
  std::unique_ptr<HttpRouter> router_;  // from Prepare on
  tcp::acceptor acceptor_;
  asio::steady_timer sweep_timer_;
  std::unordered_set<tcp::socket*> connections_;
  std::unordered_set<asio::steady_timer*> admin_streams_;  // console event streams, woken on stop
  bool stopped_ = false;
  bool draining_ = false;
};

HttpServer::HttpServer(asio::io_context& io, HttpServerOptions options, SessionFactory sessions)
    : HttpServer(std::vector<asio::io_context*>{&io}, std::move(options), std::move(sessions)) {}

HttpServer::HttpServer(EventLoops& loops, HttpServerOptions options, SessionFactory sessions)
    : HttpServer(
          [&loops] {
            std::vector<asio::io_context*> v;
            for (size_t i = 0; i < loops.size(); ++i) v.push_back(&loops.at(i));
            return v;
          }(),
          std::move(options), std::move(sessions)) {}

HttpServer::HttpServer(std::vector<asio::io_context*> loops, HttpServerOptions options,
                       SessionFactory sessions) {
  group_ = std::make_shared<Group>();
  group_->shared = std::make_shared<RouterShared>(options.auth_failures_per_minute);
  for (size_t i = 0; i < loops.size(); ++i) {
    impls_.push_back(std::make_shared<Impl>(*loops[i], options, sessions, i, group_));
    group_->loops.push_back(impls_.back());
  }
}

HttpServer::~HttpServer() {
  for (auto& impl : impls_) impl->Stop();
}

Result<uint16_t> HttpServer::Listen(const std::string& host, uint16_t port) {
  for (auto& impl : impls_) {
    if (auto ok = impl->Prepare(); !ok) return Fail(ok.error());
  }
  auto bound = impls_[0]->Listen(host, port);
  if (!bound) return bound;
  for (auto& impl : impls_) impl->Begin();
  return bound;
}

// Each listener is told on its own loop; the caller's (the home loop's) at once.
void HttpServer::OnEveryLoop(const std::function<void(Impl&)>& fn) {
  for (size_t i = 0; i < impls_.size(); ++i) {
    if (i == 0 || impls_.size() == 1) {
      fn(*impls_[i]);
    } else {
      asio::post(impls_[i]->io(), [impl = impls_[i], fn] { fn(*impl); });
    }
  }
}

void HttpServer::Drain() {
  OnEveryLoop([](Impl& impl) { impl.Drain(); });
}

void HttpServer::Stop() {
  OnEveryLoop([](Impl& impl) { impl.Stop(); });
}

void HttpServer::CountInFlight(std::function<void(size_t)> done) {
  if (impls_.size() == 1) {
    done(impls_[0]->requests_in_flight());
    return;
  }
  // Each loop counts its own sessions; the last to finish hands the sum to the home loop.
  struct Tally {
    std::atomic<size_t> sum{0};
    std::atomic<size_t> left;
    std::function<void(size_t)> done;
  };
  auto tally = std::make_shared<Tally>();
  tally->left = impls_.size() - 1;
  tally->sum = impls_[0]->requests_in_flight();
  tally->done = std::move(done);
  asio::io_context& home = impls_[0]->io();
  for (size_t i = 1; i < impls_.size(); ++i) {
    asio::post(impls_[i]->io(), [impl = impls_[i], tally, &home] {
      tally->sum += impl->requests_in_flight();
      if (tally->left.fetch_sub(1) == 1) {
        asio::post(home, [tally] { tally->done(tally->sum.load()); });
      }
    });
  }
}

size_t HttpServer::session_count() const { return group_->shared->open(); }

}  // namespace tw::transport
