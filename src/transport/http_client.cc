#include "transport/http_client.h"

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "transport/http_upstream.h"

namespace tw::transport {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

template <typename Stream>
Result<HttpReply> Exchange(Stream& stream, http::request<http::string_body>& req) {
  beast::error_code ec;
  http::write(stream, req, ec);
  if (ec) return Fail(Error::Unavailable("sending the request: " + ec.message()));
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(64 << 20);
  http::read(stream, buffer, parser, ec);
  if (ec) return Fail(Error::Unavailable("reading the answer: " + ec.message()));
  return HttpReply{static_cast<int>(parser.get().result_int()), parser.get().body()};
}

}  // namespace

Result<HttpReply> FetchSync(const std::string& method, const std::string& url,
                            const std::vector<std::pair<std::string, std::string>>& headers,
                            const std::string& body, std::chrono::milliseconds timeout) {
  auto u = ParseUpstreamUrl(url);
  if (!u) return Fail(u.error());
  asio::io_context io;
  beast::error_code ec;
  auto endpoints = asio::ip::tcp::resolver(io).resolve(u->host, u->port, ec);
  if (ec) return Fail(Error::Unavailable("cannot resolve " + u->host + ": " + ec.message()));
  http::request<http::string_body> req{http::string_to_verb(method), u->target.empty() ? "/" : u->target, 11};
  // RFC 9110 §7.2: the port too, unless it is the scheme's default.
  std::string host = u->host.find(':') != std::string::npos ? "[" + u->host + "]" : u->host;
  if (u->port != (u->tls ? "443" : "80")) host.append(":").append(u->port);
  req.set(http::field::host, host);
  req.set(http::field::user_agent, "toolwarden");
  for (const auto& [k, v] : headers) req.set(k, v);
  req.body() = body;
  req.prepare_payload();
  if (!u->tls) {
    beast::tcp_stream stream(io);
    stream.expires_after(timeout);
    stream.connect(endpoints, ec);
    if (ec) return Fail(Error::Unavailable("cannot reach " + u->ToString() + ": " + ec.message()));
    return Exchange(stream, req);
  }
  beast::ssl_stream<beast::tcp_stream> stream(io, *TlsClientContext(""));
  SSL_set_tlsext_host_name(stream.native_handle(), u->host.c_str());
  stream.set_verify_callback(asio::ssl::host_name_verification(u->host));
  beast::get_lowest_layer(stream).expires_after(timeout);
  beast::get_lowest_layer(stream).connect(endpoints, ec);
  if (!ec) stream.handshake(asio::ssl::stream_base::client, ec);
  if (ec) return Fail(Error::Unavailable("cannot reach " + u->ToString() + ": " + ec.message()));
  return Exchange(stream, req);
}

}  // namespace tw::transport
