#include "transport/webhook.h"

#include <spdlog/spdlog.h>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <memory>

#include "transport/http_upstream.h"

namespace tw::transport {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using asio::use_awaitable;

namespace {

template <typename Stream>
asio::awaitable<std::string> Exchange(Stream& stream, const UpstreamUrl& url, std::string body) {
  http::request<http::string_body> req{http::verb::post, url.target.empty() ? "/" : url.target, 11};
  req.set(http::field::host, url.host);
  req.set(http::field::user_agent, "toolwarden");
  req.set(http::field::content_type, "application/json");
  req.body() = std::move(body);
  req.prepare_payload();
  auto [wec, wn] = co_await http::async_write(stream, req, asio::as_tuple(use_awaitable));
  if (wec) co_return "write: " + wec.message();
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(64 * 1024);
  auto [rec, rn] = co_await http::async_read(stream, buffer, parser, asio::as_tuple(use_awaitable));
  if (rec) co_return "read: " + rec.message();
  const unsigned status = parser.get().result_int();
  if (status < 200 || status >= 300) co_return "HTTP " + std::to_string(status);
  co_return "";
}

asio::awaitable<void> Post(asio::io_context& io, UpstreamUrl url, std::string body,
                           std::chrono::milliseconds timeout) {
  std::string error;
  asio::ip::tcp::resolver resolver(io);
  auto [rec, endpoints] =
      co_await resolver.async_resolve(url.host, url.port, asio::as_tuple(use_awaitable));
  if (rec) {
    error = "resolve: " + rec.message();
  } else if (!url.tls) {
    beast::tcp_stream stream(io);
    stream.expires_after(timeout);
    auto [cec, ep] = co_await stream.async_connect(endpoints, asio::as_tuple(use_awaitable));
    // (GCC 12 miscompiles co_await inside ?:, hence the ifs.)
    if (cec) {
      error = "connect: " + cec.message();
    } else {
      error = co_await Exchange(stream, url, std::move(body));
    }
  } else {
    beast::ssl_stream<beast::tcp_stream> stream(io, *TlsClientContext(""));
    SSL_set_tlsext_host_name(stream.native_handle(), url.host.c_str());
    stream.set_verify_callback(ssl::host_name_verification(url.host));
    beast::get_lowest_layer(stream).expires_after(timeout);
    auto [cec, ep] =
        co_await beast::get_lowest_layer(stream).async_connect(endpoints, asio::as_tuple(use_awaitable));
    if (cec) {
      error = "connect: " + cec.message();
    } else {
      auto [hec] = co_await stream.async_handshake(ssl::stream_base::client, asio::as_tuple(use_awaitable));
      if (hec) {
        error = "TLS: " + hec.message();
      } else {
        error = co_await Exchange(stream, url, std::move(body));
      }
    }
  }
  if (error.empty()) {
    spdlog::debug("webhook {}://{}:{} delivered", url.tls ? "https" : "http", url.host, url.port);
  } else {
    spdlog::warn("webhook {}://{}:{}{} failed: {}", url.tls ? "https" : "http", url.host, url.port,
                 url.target, error);
  }
}

}  // namespace

void PostWebhook(asio::io_context& io, const std::string& url, std::string body,
                 std::chrono::milliseconds timeout) {
  auto parsed = ParseUpstreamUrl(url);
  if (!parsed) {
    spdlog::warn("webhook: {}", parsed.error().message());
    return;
  }
  asio::co_spawn(io, Post(io, *parsed, std::move(body), timeout), asio::detached);
}

}  // namespace tw::transport
