// Fuzz target: an HTTP request as a client sends it, through Beast's parser with the gateway's
// limits (16 KiB of header, 64 KiB of body here), the Host/Origin checks and, for a body, the
// JSON-RPC parser — everything the listener does before a request reaches a session.
#include <boost/beast/http.hpp>

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "jsonrpc/message.h"
#include "transport/origin.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace http = boost::beast::http;
  static const tw::transport::OriginPolicy origins({"gateway.example:8421"},
                                                   {"https://console.example"});
  http::request_parser<http::string_body> parser;
  parser.header_limit(16 << 10);
  parser.body_limit(64 << 10);
  parser.eager(true);
  boost::beast::error_code ec;
  size_t offset = 0;
  while (offset < size && !parser.is_done()) {
    const size_t used = parser.put(boost::asio::buffer(data + offset, size - offset), ec);
    if (ec == http::error::need_more) break;
    if (ec || used == 0) return 0;
    offset += used;
  }
  if (!parser.is_done()) return 0;
  const auto& req = parser.get();
  (void)origins.HostAllowed(req[http::field::host]);
  (void)origins.OriginAllowed(req[http::field::origin]);
  (void)origins.CorsAllowed(req[http::field::origin]);
  (void)tw::jsonrpc::Parse(req.body());
  return 0;
}
