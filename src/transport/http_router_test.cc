// The router without sockets: a request in, a decision out.
#include "transport/http_client.h"
#include "transport/http_router.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/beast/http.hpp>

#include "jsonrpc/message.h"

namespace tw::transport {
namespace {

namespace http = boost::beast::http;
using Request = HttpRouter::Request;
using To = HttpRouter::Routed::To;

// A relay that answers every request at once with {"echo": <method>} and keeps the rest.
class EchoRelay : public gateway::McpSession {
 public:
  explicit EchoRelay(gateway::ClientSink& sink, std::vector<jsonrpc::Message>* seen)
      : sink_(sink), seen_(seen) {}
  void Start() override {}
  void HandleClientMessage(jsonrpc::Message msg) override {
    if (msg.IsRequest()) {
      sink_.Deliver(jsonrpc::MakeResponse(msg.id, json::object{{"echo", msg.method}}), msg.id);
    }
    seen_->push_back(std::move(msg));
  }
  void Close() override {}
  const std::string& protocol_version() const override { return version_; }
  size_t pending_requests() const override { return 0; }

 private:
  gateway::ClientSink& sink_;
  std::vector<jsonrpc::Message>* seen_;
  std::string version_ = "2025-06-18";
};

class HttpRouterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    options_.origins = OriginPolicy({"gw.example"}, {"https://console.example"});
    options_.max_sessions_per_grant = 2;
    options_.trusted_proxies = {"10.0.0.0/8"};
    options_.authenticate = [](std::string_view authorization, std::string_view) -> Result<std::string> {
      if (authorization == "Bearer a") return std::string("grant-a");
      if (authorization == "Bearer b") return std::string("grant-b");
      return Fail(Error::InvalidArgument("unknown token"));
    };
    auto r =
        HttpRouter::Create(io_.get_executor(), options_,
                           [this](const SessionRequest& s) -> Result<HttpMcpSession::RelayMaker> {
                             if (!s.route.empty() && s.route != "srv")
                               return Fail(Error::NotFound("no server " + s.route));
                             return HttpMcpSession::RelayMaker([this](gateway::ClientSink& sink) {
                               return std::make_unique<EchoRelay>(sink, &seen_);
                             });
                           });
    ASSERT_TRUE(r) << r.error().message();
    router_ = std::move(*r);
  }

  Request Make(http::verb verb, std::string target, std::string body = {},
               std::vector<std::pair<std::string, std::string>> headers = {}) {
    Request req{verb, target, 11};
    req.set(http::field::host, "gw.example");
    for (auto& [k, v] : headers) req.insert(k, v);
    req.body() = std::move(body);
    req.prepare_payload();
    return req;
  }
  Request Post(std::string body, std::string token = "a", std::string sid = {},
               std::string path = "/mcp") {
    std::vector<std::pair<std::string, std::string>> h = {
        {"Content-Type", "application/json"},
        {"Accept", "application/json, text/event-stream"},
        {"Authorization", "Bearer " + token}};
    if (!sid.empty()) h.emplace_back("Mcp-Session-Id", sid);
    return Make(http::verb::post, path, std::move(body), h);
  }
  HttpRouter::Routed Route(const Request& req, std::string peer = "127.0.0.1") {
    HttpRouter::Fields f = HttpRouter::ReadFields(req);
    f.peer = peer_ = std::move(peer);
    return router_->Route(req, f);
  }
  static int Status(const HttpRouter::Routed& r) {
    return r.response ? static_cast<int>(r.response->result_int()) : 0;
  }
  // Opens a session for `token`; returns its id.
  std::string Initialize(std::string token = "a", std::string path = "/mcp") {
    auto r = Route(
        Post(R"({"jsonrpc":"2.0","id":0,"method":"initialize","params":{}})", token, {}, path));
    EXPECT_EQ(r.to, To::kStream) << (r.response ? r.response->body() : "");
    return r.session ? r.session->id() : "";
  }

  boost::asio::io_context io_;
  HttpServerOptions options_;
  std::unique_ptr<HttpRouter> router_;
  std::vector<jsonrpc::Message> seen_;
  std::string peer_;
};

TEST_F(HttpRouterTest, ChecksEveryRequestBeforeRoutingIt) {
  EXPECT_EQ(Status(Route(Make(http::verb::get, "/healthz"))), 200);
  Request evil = Make(http::verb::get, "/healthz");
  evil.set(http::field::host, "evil.example");
  EXPECT_EQ(Status(Route(evil)), 403);
  Request twice = Make(http::verb::get, "/healthz");
  twice.insert(http::field::host, "gw.example");
  EXPECT_EQ(Status(Route(twice)), 400);
  Request origin = Make(http::verb::get, "/healthz");
  origin.set(http::field::origin, "https://elsewhere.example");
  EXPECT_EQ(Status(Route(origin)), 403);
  EXPECT_EQ(Status(Route(Make(http::verb::get, "/nowhere"))), 404);
  EXPECT_EQ(Status(Route(Make(http::verb::get, "/readyz"))), 200);
  router_->Drain();
  EXPECT_EQ(Status(Route(Make(http::verb::get, "/readyz"))), 503);
  EXPECT_EQ(Status(Route(Post(R"({"jsonrpc":"2.0","id":0,"method":"initialize"})"))), 503);
}

TEST_F(HttpRouterTest, AnMcpRequestNeedsATokenAndGuessingIsBrakedPerAddress) {
  auto none = Route(Post(R"({"jsonrpc":"2.0","id":1,"method":"ping"})", "nope"));
  EXPECT_EQ(Status(none), 401);
  EXPECT_NE(none.response->at(http::field::www_authenticate).find("invalid_token"),
            std::string::npos);
  for (int i = 0; i < 25; ++i) Route(Post("{}", "nope"), "192.0.2.1");
  EXPECT_EQ(Status(Route(Post("{}", "a"), "192.0.2.1")), 429);     // not even checked
  EXPECT_EQ(Status(Route(Post("{}", "nope"), "192.0.2.2")), 401);  // another address
  EXPECT_FALSE(Initialize("a").empty());
}

TEST_F(HttpRouterTest, TheClientBehindATrustedProxyIsTheRightmostUntrustedHop) {
  Request r = Make(http::verb::get, "/healthz", {},
                   {{"X-Forwarded-For", "198.51.100.1, 203.0.113.7, 10.9.9.9"}});
  HttpRouter::Fields f = HttpRouter::ReadFields(r);
  f.peer = "10.1.2.3";
  EXPECT_EQ(router_->ClientAddress(f), "203.0.113.7");
  f.peer = "192.0.2.8";  // not a proxy: its X-Forwarded-For is its own invention
  EXPECT_EQ(router_->ClientAddress(f), "192.0.2.8");
}

TEST_F(HttpRouterTest, InitializeOpensASessionOnlyItsGrantCanUse) {
  const std::string sid = Initialize("a");
  ASSERT_EQ(sid.size(), 32u);
  EXPECT_EQ(router_->session_count(), 1u);
  auto call = Route(Post(R"({"jsonrpc":"2.0","id":1,"method":"tools/list"})", "a", sid));
  ASSERT_EQ(call.to, To::kStream);
  ASSERT_EQ(call.writer->queue.size(), 1u);
  EXPECT_NE(call.writer->queue.front().data.find(R"("echo":"tools/list")"), std::string::npos);
  // Another grant, another endpoint, no id, an unknown id: nobody else's session.
  EXPECT_EQ(Status(Route(Post(R"({"jsonrpc":"2.0","id":2,"method":"ping"})", "b", sid))), 404);
  EXPECT_EQ(
      Status(Route(Post(R"({"jsonrpc":"2.0","id":2,"method":"ping"})", "a", sid, "/mcp/srv"))),
      404);
  EXPECT_EQ(Status(Route(Post(R"({"jsonrpc":"2.0","id":2,"method":"ping"})", "a"))), 400);
  EXPECT_EQ(
      Status(Route(Post(R"({"jsonrpc":"2.0","id":2,"method":"ping"})", "a", std::string(32, 'f')))),
      404);
  // A notification alone is accepted without a stream.
  EXPECT_EQ(
      Status(Route(Post(R"({"jsonrpc":"2.0","method":"notifications/initialized"})", "a", sid))),
      202);
  // DELETE ends it.
  Request del = Make(http::verb::delete_, "/mcp", {},
                     {{"Authorization", "Bearer a"}, {"Mcp-Session-Id", sid}});
  EXPECT_EQ(Status(Route(del)), 200);
  EXPECT_EQ(Status(Route(Post(R"({"jsonrpc":"2.0","id":3,"method":"ping"})", "a", sid))), 404);
  EXPECT_EQ(router_->session_count(), 0u);
}

TEST_F(HttpRouterTest, RefusesMalformedPostsWithTheRightStatus) {
  const std::string sid = Initialize("a");
  Request text = Post(R"({"jsonrpc":"2.0","id":1,"method":"ping"})", "a", sid);
  text.set(http::field::content_type, "text/plain");
  EXPECT_EQ(Status(Route(text)), 415);
  Request accept = Post(R"({"jsonrpc":"2.0","id":1,"method":"ping"})", "a", sid);
  accept.set(http::field::accept, "application/json");
  EXPECT_EQ(Status(Route(accept)), 406);
  EXPECT_EQ(Status(Route(Post("{not json", "a", sid))), 400);
  EXPECT_EQ(Status(Route(Post(R"([{"jsonrpc":"2.0","id":0,"method":"initialize"}])", "a"))), 400);
  EXPECT_EQ(Status(Route(Post(R"({"jsonrpc":"2.0","id":0,"method":"initialize"})", "a", sid))),
            400);
  Request version = Post(R"({"jsonrpc":"2.0","id":1,"method":"ping"})", "a", sid);
  version.set("MCP-Protocol-Version", "1999-01-01");
  EXPECT_EQ(Status(Route(version)), 400);
  // A batch reusing an id in flight: the second is refused on the stream, the first runs.
  auto batch =
      Route(Post(R"([{"jsonrpc":"2.0","id":7,"method":"a"},{"jsonrpc":"2.0","id":7,"method":"b"}])",
                 "a", sid));
  ASSERT_EQ(batch.to, To::kStream);
  EXPECT_TRUE(batch.batch);
}

TEST_F(HttpRouterTest, AGrantGetsItsShareOfSessionsAndNoMore) {
  EXPECT_FALSE(Initialize("a").empty());
  EXPECT_FALSE(Initialize("a").empty());
  auto third = Route(Post(R"({"jsonrpc":"2.0","id":0,"method":"initialize"})", "a"));
  EXPECT_EQ(Status(third), 503);
  EXPECT_EQ(third.response->at(http::field::retry_after), "30");
  EXPECT_FALSE(Initialize("b").empty());  // another grant still gets in
  EXPECT_EQ(Status(Route(
                Post(R"({"jsonrpc":"2.0","id":0,"method":"initialize"})", "b", {}, "/mcp/none"))),
            404);
}

TEST_F(HttpRouterTest, ATrustedProxyListThatIsNotAddressesIsRefused) {
  HttpServerOptions bad;
  bad.trusted_proxies = {"lb.internal"};
  auto r = HttpRouter::Create(io_.get_executor(), bad, nullptr);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("trusted_proxies"), std::string::npos);
}

// OAuth (docs/oauth.md): a 401 names the resource metadata, which the router serves itself;
// the authorization server's paths go to the home loop's handler; a token without the route's
// scope is a 403 that names the scope, and counts nothing against the client.
TEST(HttpRouterOAuthTest, NamesTheMetadataAndSaysWhichScopeARouteNeeds) {
  boost::asio::io_context io;
  HttpServerOptions options;
  options.origins = OriginPolicy({"gw.example"}, {});
  options.auth_failures_per_minute = 4;
  options.authenticate = [](std::string_view authorization, std::string_view route) -> Result<std::string> {
    if (authorization == "Bearer narrow") {
      if (route == "srv") return std::string("idp:n#srv");
      return Fail(Error::PermissionDenied("the token's scopes do not include mcp:" + std::string(route)));
    }
    return Fail(Error::InvalidArgument("unknown \"token\""));
  };
  options.admin = [](const HttpServerOptions::AdminCall&) { return HttpServerOptions::AdminReply{}; };
  HttpServerOptions::OAuth oauth;
  oauth.resource_metadata = [](const std::string& base) { return "{\"resource\":\"" + base + "/mcp\"}"; };
  oauth.owns = [](std::string_view path) { return path == "/oauth/token"; };
  options.oauth = oauth;
  auto router = HttpRouter::Create(io.get_executor(), options, [](const SessionRequest&) -> Result<HttpMcpSession::RelayMaker> {
    return Fail(Error::NotFound("none"));
  });
  ASSERT_TRUE(router);
  auto route = [&](http::verb verb, const std::string& target, const std::string& token = {}) {
    Request req{verb, target, 11};
    req.set(http::field::host, "gw.example");
    req.set(http::field::content_type, "application/json");
    req.set(http::field::accept, "application/json, text/event-stream");
    if (!token.empty()) req.set(http::field::authorization, "Bearer " + token);
    req.body() = R"({"jsonrpc":"2.0","id":1,"method":"ping"})";
    req.prepare_payload();
    HttpRouter::Fields f = HttpRouter::ReadFields(req);
    f.peer = "127.0.0.1";
    return (*router)->Route(req, f);
  };
  auto prm = route(http::verb::get, "/.well-known/oauth-protected-resource/mcp");
  ASSERT_TRUE(prm.response);
  EXPECT_EQ(prm.response->result_int(), 200u);
  EXPECT_EQ(prm.response->body(), R"({"resource":"http://gw.example/mcp"})");
  EXPECT_EQ(route(http::verb::get, "/.well-known/oauth-protected-resource").response->result_int(), 200u);
  EXPECT_EQ(route(http::verb::get, "/.well-known/oauth-protected-resourcex").response->result_int(), 404u);
  EXPECT_EQ(route(http::verb::post, "/.well-known/oauth-protected-resource").response->result_int(), 405u);
  EXPECT_EQ(route(http::verb::post, "/oauth/token").to, HttpRouter::Routed::To::kAdmin);

  auto missing = route(http::verb::post, "/mcp");
  ASSERT_EQ(missing.response->result_int(), 401u) << missing.response->body();
  EXPECT_EQ(missing.response->at(http::field::www_authenticate),
            R"(Bearer realm="toolwarden", resource_metadata="http://gw.example/.well-known/oauth-protected-resource/mcp")");
  auto bad = route(http::verb::post, "/mcp", "forged");
  // The description is quoted safely: a '"' in it cannot end the parameter.
  EXPECT_EQ(bad.response->at(http::field::www_authenticate),
            R"(Bearer realm="toolwarden", resource_metadata="http://gw.example/.well-known/oauth-protected-resource/mcp", error="invalid_token", error_description="unknown \"token\"")");
  for (int i = 0; i < 5; ++i) {
    auto scope = route(http::verb::post, "/mcp/other", "narrow");
    ASSERT_EQ(scope.response->result_int(), 403u) << scope.response->body();
    EXPECT_NE(std::string(scope.response->at(http::field::www_authenticate)).find(R"(error="insufficient_scope")"),
              std::string::npos);
    EXPECT_NE(std::string(scope.response->at(http::field::www_authenticate)).find(R"(scope="mcp:other")"),
              std::string::npos);
  }
  // Five 403s did not brake the address (four failures would have).
  EXPECT_EQ(route(http::verb::post, "/mcp", "forged").response->result_int(), 401u);
  auto aggregate = route(http::verb::post, "/mcp", "narrow");
  EXPECT_NE(std::string(aggregate.response->at(http::field::www_authenticate)).find(R"(scope="mcp")"),
            std::string::npos);
}

TEST(GuardedFetchTest, OnlyPublicAddressesArePublic) {
  for (const char* a : {"127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
                        "0.0.0.0", "224.0.0.1", "::1", "::", "fe80::1", "fd00::1", "::ffff:127.0.0.1",
                        "::ffff:10.0.0.1", "not an address"}) {
    EXPECT_FALSE(IsPublicAddress(a)) << a;
  }
  for (const char* a : {"93.184.216.34", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8"}) {
    EXPECT_TRUE(IsPublicAddress(a)) << a;
  }
}

}  // namespace
}  // namespace tw::transport
