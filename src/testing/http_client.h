// Test-only: a blocking HTTP client for MCP over Streamable HTTP against a server on
// 127.0.0.1 — one keep-alive connection, one exchange at a time (10 s deadline each).
#pragma once

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdint>
#include <string>

namespace tw::testing {

class McpHttpConnection {
 public:
  using Response = boost::beast::http::response<boost::beast::http::string_body>;
  using Request = boost::beast::http::request<boost::beast::http::string_body>;

  McpHttpConnection(boost::asio::io_context& io, uint16_t port) : stream_(io) {
    stream_.connect(boost::asio::ip::tcp::endpoint(
        boost::asio::ip::make_address("127.0.0.1"), port));
  }

  // A JSON-RPC POST to `target`, in session `sid` when given.
  Response Post(const std::string& body, const std::string& sid = {},
                const std::string& target = "/mcp") {
    Request req{boost::beast::http::verb::post, target, 11};
    req.set(boost::beast::http::field::host, "127.0.0.1");
    req.set(boost::beast::http::field::content_type, "application/json");
    req.set(boost::beast::http::field::accept, "application/json, text/event-stream");
    if (!sid.empty()) req.set("Mcp-Session-Id", sid);
    req.body() = body;
    req.prepare_payload();
    return Exchange(req);
  }

  Response Exchange(Request& req) {
    stream_.expires_after(std::chrono::seconds(10));
    boost::beast::http::write(stream_, req);
    boost::beast::flat_buffer buf;
    Response res;
    boost::beast::http::read(stream_, buf, res);
    return res;
  }

 private:
  boost::beast::tcp_stream stream_;
};

}  // namespace tw::testing
