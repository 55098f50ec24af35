// Fuzz target: the HTTP router in-process, without sockets. The input is a sequence of HTTP
// requests as clients send them, parsed by Beast with the gateway's limits and routed one after
// another through one router (so a session opened by one can be used by the next: the session
// id "@" stands for the last one opened, which the fuzzer could not guess). Tokens "a" and "b"
// are two grants; anything else is refused. Besides crashes, it checks that a message reaches
// a session's relay only when the request came with that session's grant.
#include <boost/asio/io_context.hpp>
#include <boost/beast/http.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "transport/http_router.h"

namespace {

namespace http = boost::beast::http;
using tw::transport::HttpRouter;

std::string g_grant;  // the grant of the request being routed ("" when refused)

class CheckingRelay : public tw::gateway::McpSession {
 public:
  CheckingRelay(tw::gateway::ClientSink& sink, std::string grant)
      : sink_(sink), grant_(std::move(grant)) {}
  void Start() override {}
  void HandleClientMessage(tw::jsonrpc::Message msg) override {
    if (g_grant != grant_) std::abort();  // another grant's message reached this session
    if (msg.IsRequest()) {
      sink_.Deliver(tw::jsonrpc::MakeResponse(msg.id, tw::json::object{}), msg.id);
    }
  }
  void Close() override {}
  const std::string& protocol_version() const override { return version_; }
  size_t pending_requests() const override { return 0; }

 private:
  tw::gateway::ClientSink& sink_;
  std::string grant_;
  std::string version_ = "2025-11-25";
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  boost::asio::io_context io;
  tw::transport::HttpServerOptions options;
  options.origins = tw::transport::OriginPolicy({"gw.example"}, {"https://console.example"});
  options.max_sessions = 4;
  options.max_sessions_per_grant = 2;
  options.trusted_proxies = {"10.0.0.0/8", "::1"};
  options.authenticate = [](std::string_view authorization, std::string_view) -> tw::Result<std::string> {
    if (authorization == "Bearer a") return std::string("a");
    if (authorization == "Bearer b") return std::string("b");
    return tw::Fail(tw::Error::InvalidArgument("unknown token"));
  };
  auto router = HttpRouter::Create(io.get_executor(), options,
                                   [](const tw::transport::SessionRequest& s)
                                       -> tw::Result<tw::transport::HttpMcpSession::RelayMaker> {
                                     if (s.route == "none")
                                       return tw::Fail(tw::Error::NotFound("no server"));
                                     if (s.route == "forbidden")
                                       return tw::Fail(tw::Error::InvalidArgument("not for you"));
                                     return tw::transport::HttpMcpSession::RelayMaker(
                                         [grant = s.grant](tw::gateway::ClientSink& sink) {
                                           return std::make_unique<CheckingRelay>(sink, grant);
                                         });
                                   });
  if (!router) std::abort();
  std::string last_session;
  size_t offset = 0;
  for (int n = 0; n < 16 && offset < size; ++n) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(16 << 10);
    parser.body_limit(64 << 10);
    parser.eager(true);
    boost::beast::error_code ec;
    while (offset < size && !parser.is_done()) {
      const size_t used = parser.put(boost::asio::buffer(data + offset, size - offset), ec);
      if (ec || used == 0) return 0;
      offset += used;
    }
    if (!parser.is_done()) return 0;
    HttpRouter::Request req = parser.release();
    if (req["Mcp-Session-Id"] == "@") req.set("Mcp-Session-Id", last_session);
    HttpRouter::Fields fields = HttpRouter::ReadFields(req);
    fields.peer = n % 2 ? "10.1.2.3" : "127.0.0.1";
    const std::string_view auth = fields.authorization;
    g_grant = auth == "Bearer a" ? "a" : auth == "Bearer b" ? "b" : "";
    HttpRouter::Routed r = (*router)->Route(req, fields);
    if (r.to == HttpRouter::Routed::To::kRespond && !r.response) std::abort();
    if (r.session) last_session = r.session->id();
    (void)(*router)->ClientAddress(fields);
  }
  (*router)->Stop();
  return 0;
}
