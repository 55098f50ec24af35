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
Result<HttpReply> Exchange(Stream& stream, http::request<http::string_body>& req,
                           size_t max_body = 64 << 20) {
  beast::error_code ec;
  http::write(stream, req, ec);
  if (ec) return Fail(Error::Unavailable("sending the request: " + ec.message()));
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(max_body);
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

bool IsPublicAddress(const std::string& text) {
  beast::error_code ec;
  asio::ip::address a = asio::ip::make_address(text, ec);
  if (ec) return false;
  if (a.is_v6() && a.to_v6().is_v4_mapped()) a = asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
  if (a.is_unspecified() || a.is_loopback() || a.is_multicast()) return false;
  if (a.is_v4()) {
    const uint32_t v = a.to_v4().to_uint();
    auto in = [v](uint32_t net, int bits) { return (v >> (32 - bits)) == (net >> (32 - bits)); };
    return !(in(0x0A000000, 8) || in(0xAC100000, 12) || in(0xC0A80000, 16) ||  // private
             in(0xA9FE0000, 16) || in(0x64400000, 10) || in(0x00000000, 8) ||  // link-local, CGNAT, "this"
             in(0xC0000000, 24) || in(0xC6120000, 15) || in(0xF0000000, 4));   // IETF, benchmark, reserved
  }
  const asio::ip::address_v6 v6 = a.to_v6();
  const auto b = v6.to_bytes();
  if (v6.is_link_local() || v6.is_site_local()) return false;
  if ((b[0] & 0xfe) == 0xfc) return false;  // unique local fc00::/7
  return true;
}

Result<HttpReply> FetchGuarded(const std::string& url, const GuardedFetch& o) {
  auto u = ParseUpstreamUrl(url);
  if (!u) return Fail(u.error());
  asio::io_context io;
  beast::error_code ec;
  auto resolved = asio::ip::tcp::resolver(io).resolve(u->host, u->port, ec);
  if (ec) return Fail(Error::Unavailable("cannot resolve " + u->host + ": " + ec.message()));
  std::vector<asio::ip::tcp::endpoint> endpoints;
  for (const auto& e : resolved) {
    if (!o.address_allowed || o.address_allowed(e.endpoint().address().to_string())) endpoints.push_back(e.endpoint());
  }
  if (endpoints.empty()) {
    return Fail(Error::InvalidArgument(u->host + " is not an address the gateway may fetch from"));
  }
  http::request<http::string_body> req{http::verb::get, u->target.empty() ? "/" : u->target, 11};
  std::string host = u->host.find(':') != std::string::npos ? "[" + u->host + "]" : u->host;
  if (u->port != (u->tls ? "443" : "80")) host.append(":").append(u->port);
  req.set(http::field::host, host);
  req.set(http::field::user_agent, "toolwarden");
  req.set(http::field::accept, "application/json");
  if (!u->tls) return Fail(Error::InvalidArgument("only https URLs are fetched"));
  auto ctx = TlsClientContext(o.ca_file);
  if (!ctx) return Fail(Error::InvalidArgument("the CA file " + o.ca_file + " cannot be used"));
  beast::ssl_stream<beast::tcp_stream> stream(io, *ctx);
  SSL_set_tlsext_host_name(stream.native_handle(), u->host.c_str());
  stream.set_verify_callback(asio::ssl::host_name_verification(u->host));
  beast::get_lowest_layer(stream).expires_after(o.timeout);
  beast::get_lowest_layer(stream).connect(endpoints, ec);
  if (!ec) stream.handshake(asio::ssl::stream_base::client, ec);
  if (ec) return Fail(Error::Unavailable("cannot reach " + u->ToString() + ": " + ec.message()));
  return Exchange(stream, req, o.max_body_bytes);
}

}  // namespace tw::transport
