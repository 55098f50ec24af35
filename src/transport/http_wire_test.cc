#include "transport/http_wire.h"

#include <gtest/gtest.h>

#include <sstream>

namespace tw::transport {
namespace {

namespace http = boost::beast::http;

// What Beast's own serializer writes for the message.
template <bool isRequest>
std::string BeastBytes(const http::message<isRequest, http::string_body>& m) {
  std::ostringstream out;
  out << m;
  return out.str();
}

TEST(HttpWireTest, RequestsAreByteForByteWhatBeastWrites) {
  http::request<http::string_body> req{http::verb::post, "/mcp?x=1", 11};
  req.set(http::field::host, "127.0.0.1:8080");
  req.set(http::field::content_type, "application/json");
  req.set("Mcp-Session-Id", "abc");
  req.set("X-Custom", "a value: with colon");
  req.body() = R"({"jsonrpc":"2.0","id":1,"method":"ping"})";
  req.keep_alive(true);
  req.prepare_payload();
  ASSERT_TRUE(HasWireHead(req));
  EXPECT_EQ(WireHead(req) + req.body(), BeastBytes(req));
}

TEST(HttpWireTest, ResponsesAreByteForByteWhatBeastWrites) {
  for (auto status : {http::status::ok, http::status::no_content, http::status::payload_too_large,
                      http::status::unauthorized}) {
    for (unsigned version : {10u, 11u}) {
      http::response<http::string_body> res{status, version};
      res.set(http::field::server, "toolwarden");
      res.set(http::field::content_type, "application/json");
      if (status != http::status::no_content) res.body() = "{\"x\":1}";
      res.keep_alive(version == 11);
      res.prepare_payload();
      ASSERT_TRUE(HasWireHead(res));
      EXPECT_EQ(WireHead(res) + res.body(), BeastBytes(res)) << res.result_int() << " " << version;
    }
  }
}

// The upstream leg builds a request head once and reuses it with each body's length.
TEST(HttpWireTest, AHeadReusedWithAnotherLengthIsWhatBeastWritesForThatBody) {
  auto make = [](std::string body) {
    http::request<http::string_body> req{http::verb::post, "/mcp", 11};
    req.set(http::field::host, "127.0.0.1:8080");
    req.set(http::field::content_type, "application/json");
    req.set("Mcp-Session-Id", "abc");
    req.body() = std::move(body);
    req.keep_alive(true);
    req.prepare_payload();
    return req;
  };
  const std::string head = WireHead(make(" "));
  const auto prefix = HeadBeforeContentLength(head);
  ASSERT_TRUE(prefix.has_value()) << head;
  for (std::string body : {std::string("{}"), std::string(12345, 'x'), std::string()}) {
    auto req = make(body);
    EXPECT_EQ(HeadWithLength(*prefix, body.size()) + body, BeastBytes(req));
  }
  EXPECT_FALSE(HeadBeforeContentLength("GET / HTTP/1.1\r\nHost: h\r\n\r\n").has_value());
  EXPECT_FALSE(
      HeadBeforeContentLength("POST / HTTP/1.1\r\nContent-Length: 1\r\nX: y\r\n\r\n").has_value());
}

// The answer to a single-request POST, built without Beast's fields: the same bytes as the
// response HttpServer's MakeResponse builds, then the session header, for every version,
// keep-alive and Origin.
TEST(HttpWireTest, AJsonAnswerHeadIsWhatBeastWritesForTheSameResponse) {
  const std::string body = R"({"jsonrpc":"2.0","id":7,"result":{}})";
  for (unsigned version : {10u, 11u}) {
    for (bool keep_alive : {true, false}) {
      for (std::string origin : {std::string(), std::string("http://localhost:6274")}) {
        http::response<http::string_body> res{http::status::ok, version};
        res.set(http::field::server, "toolwarden");
        res.set(http::field::content_type, "application/json");
        if (!origin.empty()) {
          res.set(http::field::access_control_allow_origin, origin);
          res.set(http::field::vary, "Origin");
          res.set(http::field::access_control_expose_headers, "Mcp-Session-Id");
        }
        res.keep_alive(keep_alive);
        res.body() = body;
        res.prepare_payload();
        res.set("Mcp-Session-Id", "s-123");
        EXPECT_EQ(JsonAnswerHead(version, keep_alive, origin, "s-123", body.size()) + body,
                  BeastBytes(res))
            << version << " " << keep_alive << " " << origin;
      }
    }
  }
}

TEST(HttpWireTest, AChunkedMessageIsLeftToBeast) {
  http::response<http::string_body> res{http::status::ok, 11};
  res.chunked(true);
  EXPECT_FALSE(HasWireHead(res));
}

}  // namespace
}  // namespace tw::transport
