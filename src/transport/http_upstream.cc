#include "transport/http_upstream.h"

#include "common/system_roots.h"
#include "transport/http_wire.h"

#include <spdlog/spdlog.h>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/url/parse.hpp>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <unordered_set>

#include "mcp/modern.h"
#include "mcp/protocol.h"
#include "transport/framing.h"

namespace tw::transport {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using asio::awaitable;
using asio::use_awaitable;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

std::string UpstreamUrl::ToString() const {
  return std::string(tls ? "https://" : "http://") + host + ":" + port + target;
}

Result<UpstreamUrl> ParseUpstreamUrl(const std::string& text) {
  auto url = boost::urls::parse_absolute_uri(text);
  if (!url) return Fail(Error::InvalidArgument("invalid upstream URL \"" + text + "\""));
  UpstreamUrl out;
  std::string scheme(url->scheme());
  if (scheme == "https") {
    out.tls = true;
  } else if (scheme != "http") {
    return Fail(
        Error::InvalidArgument("upstream URL \"" + text + "\" must be http:// or https://"));
  }
  out.host = std::string(url->host_name().empty() ? url->host() : url->host_name());
  if (out.host.empty())
    return Fail(Error::InvalidArgument("upstream URL \"" + text + "\" has no host"));
  if (out.host.size() > 2 && out.host.front() == '[')
    out.host = out.host.substr(1, out.host.size() - 2);
  out.port = url->has_port() ? std::string(url->port()) : (out.tls ? "443" : "80");
  out.target = std::string(url->encoded_path());
  if (out.target.empty()) out.target = "/";
  if (url->has_query()) out.target += "?" + std::string(url->encoded_query());
  return out;
}

namespace {

// One HTTP/1.1 connection, plain or TLS.
struct Conn {
  std::unique_ptr<beast::tcp_stream> plain;
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> tls;
  beast::flat_buffer buffer;
  // Where response bodies are read, reused by every exchange on the connection (allocated
  // once and never cleared: zeroing 16 KiB per call showed up as 7 % of the gateway's work).
  static constexpr size_t kChunk = 16 * 1024;
  std::unique_ptr<char[]> chunk = std::make_unique_for_overwrite<char[]>(kChunk);
  // The parser of the answer being read (one per exchange; kept here rather than in the
  // exchange's coroutine frame, which it would push past what Asio recycles).
  std::optional<http::response_parser<http::buffer_body>> parser;

  beast::tcp_stream& lowest() { return tls ? beast::get_lowest_layer(*tls) : *plain; }
};

// A request as it goes on the wire: its head (start line, fields, blank line) and its body.
struct WireRequest {
  std::string head;
  std::string body;
};

// What one exchange produced.
struct Exchange {
  boost::system::error_code ec;  // transport failure
  bool sent = false;             // the request was written completely
  unsigned status = 0;
  std::string content_type;
  std::string session_id;
  std::string body;  // JSON bodies and error bodies (bounded); SSE goes to the callback
  bool reusable = false;
};

}  // namespace

// The TLS client context for `ca_file` (system store plus that file), made once per process:
// loading the system CA store takes tens of milliseconds, far too long to pay per session.
std::shared_ptr<ssl::context> TlsClientContext(const std::string& ca_file) {
  static std::mutex mu;
  static std::map<std::string, std::shared_ptr<ssl::context>> contexts;
  std::lock_guard lock(mu);
  auto& ctx = contexts[ca_file];
  if (ctx) return ctx;
  ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  TrustSystemRoots(SSL_CTX_get_cert_store(ctx->native_handle()));
  ctx->set_verify_mode(ssl::verify_peer);
  if (!ca_file.empty()) {
    boost::system::error_code ec;
    ctx->load_verify_file(ca_file, ec);
    // The file was checked when the command line was read; a failure here is logged.
    if (ec) spdlog::error("cannot load CA file {}: {}", ca_file, ec.message());
  }
  return ctx;
}

struct HttpUpstream::State : std::enable_shared_from_this<HttpUpstream::State> {
  State(asio::io_context& io_, HttpUpstreamOptions options_)
      : io(io_), options(std::move(options_)) {}

  asio::io_context& io;
  HttpUpstreamOptions options;
  std::shared_ptr<ssl::context> ssl_ctx;  // made on the first https connection
  Events events;
  bool closed = false;
  std::string session_id;
  std::string protocol_version;
  std::optional<json::value> initialize_id;  // of the initialize request in flight
  bool get_stream_started = false;
  std::vector<std::unique_ptr<Conn>> idle;
  std::unordered_set<Conn*> active;  // connections with an exchange in progress
  uint64_t generation = 0;           // bumps when the server forgets the session

  // The head of this session's POSTs up to their Content-Length, built by MakeRequest once
  // and again when the session id or protocol version it carries changes (PostRequest).
  std::string post_head_prefix;
  std::string post_head_session_id, post_head_protocol_version;

  // Legacy HTTP+SSE mode.
  bool legacy = false;
  std::optional<UpstreamUrl> legacy_endpoint;
  std::deque<jsonrpc::Message> legacy_queue;

  awaitable<std::unique_ptr<Conn>> Connect(const UpstreamUrl& url, boost::system::error_code& ec) {
    auto conn = std::make_unique<Conn>();
    tcp::resolver resolver(io);
    asio::steady_timer deadline(io);
    auto [rec, results] =
        co_await resolver.async_resolve(url.host, url.port, asio::as_tuple(use_awaitable));
    if (rec) {
      ec = rec;
      co_return nullptr;
    }
    if (url.tls) {
      if (!ssl_ctx) ssl_ctx = TlsClientContext(options.ca_file);
      conn->tls = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(io, *ssl_ctx);
      if (!SSL_set_tlsext_host_name(conn->tls->native_handle(), url.host.c_str())) {
        ec = boost::system::error_code(static_cast<int>(::ERR_get_error()),
                                       asio::error::get_ssl_category());
        co_return nullptr;
      }
      conn->tls->set_verify_callback(ssl::host_name_verification(url.host));
    } else {
      conn->plain = std::make_unique<beast::tcp_stream>(io);
    }
    conn->lowest().expires_after(options.connect_timeout);
    auto [cec, ep] = co_await conn->lowest().async_connect(results, asio::as_tuple(use_awaitable));
    if (cec) {
      ec = cec;
      co_return nullptr;
    }
    boost::system::error_code ignored;
    conn->lowest().socket().set_option(tcp::no_delay(true), ignored);
    if (conn->tls) {
      conn->lowest().expires_after(options.connect_timeout);
      auto [hec] = co_await conn->tls->async_handshake(ssl::stream_base::client,
                                                       asio::as_tuple(use_awaitable));
      if (hec) {
        ec = hec;
        co_return nullptr;
      }
    }
    co_return conn;
  }

  http::request<http::string_body> MakeRequest(http::verb verb, const UpstreamUrl& url,
                                               std::string body) {
    http::request<http::string_body> req{verb, url.target, 11};
    req.set(http::field::host,
            (url.port == "80" || url.port == "443") ? url.host : url.host + ":" + url.port);
    req.set(http::field::user_agent, "toolwarden");
    if (verb == http::verb::post) {
      req.set(http::field::content_type, "application/json");
      req.set(http::field::accept, "application/json, text/event-stream");
    } else if (verb == http::verb::get) {
      req.set(http::field::accept, "text/event-stream");
    }
    if (!legacy) {
      if (!session_id.empty()) req.set("Mcp-Session-Id", session_id);
      if (!protocol_version.empty()) req.set("MCP-Protocol-Version", protocol_version);
    }
    for (const auto& [name, value] : options.headers) req.set(name, value);
    req.body() = std::move(body);
    req.keep_alive(true);
    req.prepare_payload();
    return req;
  }

  static WireRequest ToWire(http::request<http::string_body>&& req) {
    std::string head = WireHead(req);  // MakeRequest: never chunked
    return {std::move(head), std::move(req.body())};
  }

  // A streamable-HTTP POST of `body` to the server: what MakeRequest builds, byte for byte,
  // without building it per message (Beast's fields cost a dozen allocations per call).
  // `extra`: header lines for this request only (a 2026-07-28 request's mirrored headers).
  WireRequest PostRequest(std::string body, std::string_view extra = {}) {
    if (post_head_prefix.empty() || post_head_session_id != session_id ||
        post_head_protocol_version != protocol_version) {
      const std::string head = WireHead(MakeRequest(http::verb::post, options.url, " "));
      const auto prefix = HeadBeforeContentLength(head);
      if (!prefix) return ToWire(MakeRequest(http::verb::post, options.url, std::move(body)));
      post_head_prefix = std::string(*prefix);
      post_head_session_id = session_id;
      post_head_protocol_version = protocol_version;
    }
    if (!extra.empty()) {
      std::string prefix = post_head_prefix;
      prefix.append(extra);
      return {HeadWithLength(prefix, body.size()), std::move(body)};
    }
    std::string head = HeadWithLength(post_head_prefix, body.size());
    return {std::move(head), std::move(body)};
  }

  // Sends `req` on `conn` and reads the answer into `ex`; SSE events go to `on_event`.
  template <typename Stream>
  awaitable<void> Run(Stream& s, Conn& conn, const WireRequest& req,
                      const std::function<void(SseEvent)>& on_event,
                      std::chrono::milliseconds timeout, Exchange& ex) {
    conn.lowest().expires_after(timeout);
    const std::array<asio::const_buffer, 2> bufs{asio::buffer(req.head), asio::buffer(req.body)};
    auto [wec, wn] = co_await asio::async_write(s, bufs, asio::as_tuple(use_awaitable));
    if (wec) {
      ex.ec = wec;
      co_return;
    }
    ex.sent = true;
    http::response_parser<http::buffer_body>& parser = conn.parser.emplace();
    parser.body_limit(boost::none);
    parser.header_limit(64 * 1024);
    conn.lowest().expires_after(timeout);
    auto [hec, hn] =
        co_await http::async_read_header(s, conn.buffer, parser, asio::as_tuple(use_awaitable));
    if (hec) {
      ex.ec = hec;
      co_return;
    }
    auto& head = parser.get();
    ex.status = head.result_int();
    ex.content_type = std::string(head[http::field::content_type]);
    ex.session_id = std::string(head["Mcp-Session-Id"]);
    // Known before any event of the body is delivered: the client may answer at once.
    if (!ex.session_id.empty() && session_id.empty() && !legacy) session_id = ex.session_id;
    const bool sse =
        ex.content_type.find("text/event-stream") != std::string::npos && ex.status / 100 == 2;
    SseParser sse_parser(options.max_message_bytes, on_event);
    char* const chunk = conn.chunk.get();
    while (!parser.is_done()) {
      head.body().data = chunk;
      head.body().size = Conn::kChunk;
      conn.lowest().expires_after(timeout);
      auto [rec, rn] =
          co_await http::async_read_some(s, conn.buffer, parser, asio::as_tuple(use_awaitable));
      if (rec == http::error::need_buffer) rec = {};
      if (rec) {
        ex.ec = rec;
        co_return;
      }
      const size_t got = Conn::kChunk - head.body().size;
      std::string_view data(chunk, got);
      if (sse) {
        if (!sse_parser.Append(data)) {
          ex.ec = make_error_code(http::error::body_limit);
          co_return;
        }
      } else {
        if (ex.body.size() + got > options.max_message_bytes) {
          ex.ec = make_error_code(http::error::body_limit);
          co_return;
        }
        ex.body.append(data);
      }
    }
    ex.reusable = parser.keep_alive();
    co_return;
  }

  // One request/response with a connection from the pool (or a new one). A pooled connection
  // the server had already closed is retried once on a fresh one.
  awaitable<Exchange> Perform(const UpstreamUrl& url, WireRequest req,
                              std::function<void(SseEvent)> on_event,
                              std::optional<std::chrono::milliseconds> timeout = std::nullopt) {
    const auto silence = timeout.value_or(options.request_timeout);
    for (int attempt = 0; attempt < 2; ++attempt) {
      std::unique_ptr<Conn> conn;
      bool pooled = false;
      if (&url == &options.url && !idle.empty()) {
        conn = std::move(idle.back());
        idle.pop_back();
        pooled = true;
      } else {
        boost::system::error_code ec;
        conn = co_await Connect(url, ec);
        if (!conn) {
          Exchange ex;
          ex.ec = ec;
          co_return ex;
        }
      }
      if (closed) {
        // Closed while this connection was being made: Close could not cancel it, and an
        // exchange that outlives the upstream (a listen stream above all) would hold the loop.
        Exchange ex;
        ex.ec = asio::error::operation_aborted;
        co_return ex;
      }
      active.insert(conn.get());
      // (No co_await inside ?: — GCC 12 miscompiles it.)
      Exchange ex;
      if (conn->tls) {
        co_await Run(*conn->tls, *conn, req, on_event, silence, ex);
      } else {
        co_await Run(*conn->plain, *conn, req, on_event, silence, ex);
      }
      active.erase(conn.get());
      if (ex.ec && pooled && ex.status == 0) continue;  // stale keep-alive connection
      if (!ex.ec && ex.reusable && &url == &options.url && idle.size() < 8 && !closed) {
        idle.push_back(std::move(conn));
      }
      co_return ex;
    }
    Exchange ex;
    ex.ec = asio::error::connection_reset;
    co_return ex;
  }

  void Deliver(jsonrpc::Message msg, std::optional<json::value> related) {
    if (closed || !events.on_message) return;
    if (msg.IsResponse() && initialize_id && msg.id == *initialize_id) {
      initialize_id.reset();
      if (msg.kind == jsonrpc::Kind::kResponse && msg.result.is_object()) {
        if (const json::value* v = msg.result.as_object().if_contains("protocolVersion")) {
          if (v->is_string()) protocol_version = std::string(v->as_string());
        }
      }
    }
    events.on_message(std::move(msg), std::move(related));
  }

  // Parses a body or SSE data into messages and delivers them.
  bool DeliverText(std::string_view text, const std::optional<json::value>& related,
                   const json::value* awaited_id) {
    bool answered = false;
    jsonrpc::Incoming in = jsonrpc::Parse(text);
    for (auto& item : in.items) {
      if (!item) {
        spdlog::warn("upstream sent an invalid message ({}): {:.200}", item.error().message, text);
        continue;
      }
      if (awaited_id && item->IsResponse() && item->id == *awaited_id) answered = true;
      Deliver(std::move(*item), related);
    }
    return answered;
  }

  void Fail(const json::value& id, const Error& error, bool sent) {
    if (closed || !events.on_request_failed) return;
    events.on_request_failed(id, error, sent);
  }

  static std::string Describe(const Exchange& ex) {
    std::string body = ex.body.substr(0, 300);
    return "HTTP " + std::to_string(ex.status) + (body.empty() ? "" : ": " + body);
  }

  // What a POST's answer has told so far (its SSE events as they come, then the exchange).
  struct Reading {
    State* state;
    std::optional<json::value> related;  // the request's id; none for a notification
    bool answered = false;
    std::string last_event_id;
  };

  // POSTs `msg`. The coroutine holds only what crosses the exchange (its frame small enough
  // for Asio to recycle); what the answer means is worked out by AfterPost.
  static awaitable<void> Post(std::shared_ptr<State> self, jsonrpc::Message msg) {
    if (self->legacy) {
      co_await PostLegacy(self, std::move(msg));
      co_return;
    }
    if (msg.IsRequest() && msg.method == mcp::method::kInitialize) self->initialize_id = msg.id;
    const uint64_t generation = self->generation;
    Reading reading{self.get(), msg.IsRequest() ? std::optional<json::value>(msg.id) : std::nullopt,
                    false, {}};
    // Captures one reference: a std::function holds so small a callable without allocating.
    auto on_event = [&reading](SseEvent e) {
      if (!e.id.empty()) reading.last_event_id = e.id;
      if (e.data.empty()) return;  // priming
      const json::value* awaited = reading.related ? &*reading.related : nullptr;
      if (reading.state->DeliverText(e.data, reading.related, awaited)) reading.answered = true;
    };
    // A 2026-07-28 request names its version, method and target in headers as well.
    Exchange ex = co_await self->Perform(
        self->options.url,
        self->PostRequest(jsonrpc::Serialize(msg), mcp::modern::MirrorHeaderLines(msg) + msg.http_headers),
        on_event);
    if (self->closed) co_return;
    if (self->AfterPost(std::move(msg), ex, reading, generation)) {
      co_await Resume(self, std::move(*reading.related), std::move(reading.last_event_id));
    }
  }

  // Acts on the exchange of a POST of `msg`. Returns true when the request's answer is to be
  // resumed from reading.last_event_id (the stream ended before it).
  bool AfterPost(jsonrpc::Message msg, const Exchange& ex, Reading& reading,
                 uint64_t generation_then) {
    const bool is_request = msg.IsRequest();
    const json::value& id = msg.id;
    const bool is_initialize = is_request && msg.method == mcp::method::kInitialize;
    const bool is_initialized = msg.method == mcp::method::kInitialized;
    bool& answered = reading.answered;
    const std::string& last_event_id = reading.last_event_id;
    const std::optional<json::value>& related = reading.related;
    if (ex.ec) {
      if (ex.ec == http::error::body_limit) {
        if (is_request)
          Fail(id, Error::LimitExceeded("upstream answer exceeds the message size limit"), true);
        return false;
      }
      const bool timeout = ex.ec == beast::error::timeout;
      // A stream the server dropped (not one that went silent) is resumed, SEP-1699.
      if (is_request && !answered && ex.sent && !timeout && !last_event_id.empty()) return true;
      if (is_request && !answered && timeout) {
        // Stop the server working on an answer nobody will read.
        asio::co_spawn(
            io,
            Post(shared_from_this(),
                 jsonrpc::MakeNotification(
                     std::string(mcp::method::kCancelled),
                     json::object{{"requestId", id},
                                  {"reason", "request timed out at the gateway"}})),
            asio::detached);
      }
      if (is_request && !answered) {
        Fail(id,
             timeout ? Error::Timeout("no answer from " + options.url.ToString() +
                                      " within the request timeout")
                     : Error::Unavailable("cannot reach " + options.url.ToString() + ": " +
                                          ex.ec.message()),
             ex.sent);
      }
      return false;
    }
    if (!ex.session_id.empty() && session_id.empty()) session_id = ex.session_id;

    if (ex.status == 404 && !session_id.empty() && !is_initialize &&
        generation_then == generation) {
      // The server no longer knows our session: start over, transparently for the client.
      spdlog::warn("upstream forgot session {}; re-initializing", session_id.substr(0, 8));
      session_id.clear();
      get_stream_started = false;
      ++generation;
      if (events.on_disconnected) {
        events.on_disconnected(Error::Unavailable("upstream session expired"));
      }
      if (!closed && events.on_reconnected) events.on_reconnected();
      return false;
    }
    if (is_initialize && (ex.status == 400 || ex.status == 404 || ex.status == 405)) {
      spdlog::info(
          "upstream answered initialize with HTTP {}; trying the legacy HTTP+SSE "
          "transport",
          ex.status);
      legacy = true;
      legacy_queue.push_back(std::move(msg));
      asio::co_spawn(io, LegacyStream(shared_from_this()), asio::detached);
      return false;
    }
    if (ex.status / 100 != 2) {
      // A JSON-RPC error about our request is the server's answer; anything else is a failure.
      if (is_request && ex.content_type.find("application/json") != std::string::npos &&
          DeliverText(ex.body, related, &id)) {
        return false;
      }
      if (is_request)
        Fail(id, Error::Unavailable("upstream refused: " + Describe(ex)), true);
      else
        spdlog::warn("upstream refused a {}: {}", msg.method, Describe(ex));
      return false;
    }
    if (ex.content_type.find("application/json") != std::string::npos && !ex.body.empty()) {
      if (DeliverText(ex.body, related, is_request ? &id : nullptr)) answered = true;
    }
    if (is_request && !answered) {
      if (!last_event_id.empty()) return true;
      Fail(id, Error::Unavailable("upstream ended its response without an answer"), true);
      return false;
    }
    if (is_initialized && !get_stream_started) {
      get_stream_started = true;
      asio::co_spawn(io, ListenStream(shared_from_this(), generation), asio::detached);
    }
    return false;
  }

  // SEP-1699: the server closed the stream before answering; reconnect with Last-Event-ID.
  static awaitable<void> Resume(std::shared_ptr<State> self, json::value id,
                                std::string last_event_id) {
    asio::steady_timer timer(self->io);
    long retry_ms = 500;
    for (int attempt = 0; attempt < 5 && !self->closed; ++attempt) {
      timer.expires_after(std::chrono::milliseconds(retry_ms));
      co_await timer.async_wait(asio::as_tuple(use_awaitable));
      if (self->closed) co_return;
      bool answered = false;
      auto on_event = [&](SseEvent e) {
        if (!e.id.empty()) last_event_id = e.id;
        if (e.retry_ms) retry_ms = std::clamp(*e.retry_ms, 10L, 30000L);
        if (!e.data.empty() && self->DeliverText(e.data, id, &id)) answered = true;
      };
      auto req = self->MakeRequest(http::verb::get, self->options.url, {});
      req.set("Last-Event-ID", last_event_id);
      Exchange ex = co_await self->Perform(self->options.url, ToWire(std::move(req)), on_event);
      if (answered || self->closed) co_return;
      if (!ex.ec && ex.status / 100 != 2) break;
    }
    self->Fail(id,
               Error::Unavailable("upstream stream broke before the answer and could not be "
                                  "resumed"),
               true);
  }

  // The GET stream for server-initiated messages; reconnects with backoff until closed.
  static awaitable<void> ListenStream(std::shared_ptr<State> self, uint64_t generation) {
    asio::steady_timer timer(self->io);
    std::string last_event_id;
    auto backoff = 500ms;
    while (!self->closed && generation == self->generation) {
      long retry_ms = -1;
      auto on_event = [&](SseEvent e) {
        if (!e.id.empty()) last_event_id = e.id;
        if (e.retry_ms) retry_ms = *e.retry_ms;
        if (!e.data.empty()) self->DeliverText(e.data, std::nullopt, nullptr);
      };
      auto req = self->MakeRequest(http::verb::get, self->options.url, {});
      if (!last_event_id.empty()) req.set("Last-Event-ID", last_event_id);
      // A server-initiated stream is idle for long stretches: no request timeout on it.
      Exchange ex = co_await self->Perform(self->options.url, ToWire(std::move(req)), on_event,
                                           std::chrono::hours(24));
      if (self->closed) co_return;
      if (!ex.ec && (ex.status == 405 || ex.status == 404 || ex.status / 100 == 4)) {
        spdlog::debug("upstream offers no GET stream (HTTP {})", ex.status);
        co_return;
      }
      timer.expires_after(retry_ms > 0
                              ? std::chrono::milliseconds(retry_ms)
                              : std::chrono::duration_cast<std::chrono::milliseconds>(backoff));
      co_await timer.async_wait(asio::as_tuple(use_awaitable));
      backoff = std::min<std::chrono::milliseconds>(backoff * 2, 30s);
    }
  }

  // Legacy transport: the GET stream that carries every server message.
  static awaitable<void> LegacyStream(std::shared_ptr<State> self) {
    asio::steady_timer timer(self->io);
    auto backoff = 500ms;
    bool connected_before = false;
    while (!self->closed) {
      bool got_endpoint = false;
      auto on_event = [&](SseEvent e) {
        if (e.event == "endpoint") {
          auto endpoint = self->ResolveEndpoint(e.data);
          if (!endpoint) {
            spdlog::error("upstream legacy SSE: {}", endpoint.error().message());
            return;
          }
          self->legacy_endpoint = *endpoint;
          got_endpoint = true;
          backoff = 500ms;
          if (connected_before && self->events.on_reconnected) self->events.on_reconnected();
          connected_before = true;
          while (!self->legacy_queue.empty()) {
            asio::co_spawn(self->io, PostLegacy(self, std::move(self->legacy_queue.front())),
                           asio::detached);
            self->legacy_queue.pop_front();
          }
          return;
        }
        if (e.event.empty() || e.event == "message") {
          self->DeliverText(e.data, std::nullopt, nullptr);
        }
      };
      auto req = self->MakeRequest(http::verb::get, self->options.url, {});
      Exchange ex = co_await self->Perform(self->options.url, ToWire(std::move(req)), on_event,
                                           std::chrono::hours(24));
      if (self->closed) co_return;
      self->legacy_endpoint.reset();
      const std::string why = ex.ec ? ex.ec.message() : Describe(ex);
      if (!got_endpoint) {
        // Neither transport works: fail what waits, then keep trying with backoff.
        for (auto& m : self->legacy_queue) {
          if (m.IsRequest())
            self->Fail(m.id, Error::Unavailable("upstream legacy SSE: " + why), false);
        }
        self->legacy_queue.clear();
      } else if (self->events.on_disconnected) {
        self->events.on_disconnected(Error::Unavailable("upstream SSE stream ended: " + why));
      }
      timer.expires_after(backoff);
      co_await timer.async_wait(asio::as_tuple(use_awaitable));
      backoff = std::min<std::chrono::milliseconds>(backoff * 2, 30s);
    }
  }

  static awaitable<void> PostLegacy(std::shared_ptr<State> self, jsonrpc::Message msg) {
    if (!self->legacy_endpoint) {
      self->legacy_queue.push_back(std::move(msg));
      co_return;
    }
    const bool is_request = msg.IsRequest();
    const json::value id = msg.id;
    UpstreamUrl endpoint = *self->legacy_endpoint;
    auto req = self->MakeRequest(http::verb::post, endpoint, jsonrpc::Serialize(msg));
    Exchange ex = co_await self->Perform(endpoint, ToWire(std::move(req)), [](SseEvent) {});
    if (self->closed || !is_request) co_return;
    if (ex.ec) {
      self->Fail(id, Error::Unavailable("cannot reach upstream: " + ex.ec.message()), ex.sent);
    } else if (ex.status / 100 != 2) {
      self->Fail(id, Error::Unavailable("upstream refused: " + Describe(ex)), true);
    }
  }

  // The endpoint event's URL, relative to the server URL; it must stay on the same origin.
  Result<UpstreamUrl> ResolveEndpoint(const std::string& data) {
    UpstreamUrl out = options.url;
    if (data.starts_with("http://") || data.starts_with("https://")) {
      auto parsed = ParseUpstreamUrl(data);
      if (!parsed) return parsed;
      if (parsed->host != out.host || parsed->port != out.port || parsed->tls != out.tls) {
        return tw::Fail(Error::InvalidArgument("endpoint \"" + data + "\" is on another origin"));
      }
      return parsed;
    }
    if (data.starts_with("/")) {
      out.target = data;
    } else {
      std::string base = out.target.substr(0, out.target.find('?'));
      out.target = base.substr(0, base.rfind('/') + 1) + data;
    }
    return out;
  }

  static awaitable<void> DeleteSession(std::shared_ptr<State> self) {
    auto req = self->MakeRequest(http::verb::delete_, self->options.url, {});
    co_await self->Perform(
        self->options.url, ToWire(std::move(req)), [](SseEvent) {}, 2s);
    self->idle.clear();
  }
};

HttpUpstream::HttpUpstream(asio::io_context& io, HttpUpstreamOptions options)
    : state_(std::make_shared<State>(io, std::move(options))) {}

HttpUpstream::~HttpUpstream() { Close(); }

void HttpUpstream::Start(Events events) { state_->events = std::move(events); }

void HttpUpstream::Send(jsonrpc::Message msg) {
  if (state_->closed) return;
  asio::co_spawn(state_->io, State::Post(state_, std::move(msg)), asio::detached);
}

void HttpUpstream::Close() {
  if (state_->closed) return;
  // Tell the server the session is over (best effort); nothing is reported after this.
  const bool had_session = !state_->session_id.empty() && !state_->legacy;
  state_->events = Events{};
  // Abort every exchange in progress (the GET stream above all) so nothing outlives us.
  for (Conn* c : state_->active) {
    boost::system::error_code ignored;
    c->lowest().socket().cancel(ignored);
    c->lowest().socket().close(ignored);
  }
  state_->idle.clear();
  if (had_session) {
    asio::co_spawn(state_->io, State::DeleteSession(state_), asio::detached);
  }
  state_->closed = true;
}

}  // namespace tw::transport
