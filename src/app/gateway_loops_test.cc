// A gateway on several event loops, over real sockets and a real MCP server (the bundled demo
// server as a child process): sessions on every loop, requests crossing between loops'
// connections, a shared server reached from every loop, limits exact over all of them, every
// call audited once. Run under ThreadSanitizer (make test-tsan) it checks that the loops share
// nothing unguarded.
#include <gtest/gtest.h>

#include <boost/asio.hpp>
#include <filesystem>
#include <fstream>
#include <thread>

#include "app/gateway.h"
#include "common/clock.h"
#include "config/config.h"
#include "testing/http_client.h"
#include "transport/event_loops.h"
#include "transport/http_server.h"

namespace tw::app {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using Conn = testing::McpHttpConnection;

constexpr const char* kPolicy = R"(version: "1"
default: deny
tools:
  echo: {}
  add:
    limits: [{counter: adds, window: minute, max: 5}]
)";

class GatewayLoopsTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("tw-gateway-loops-" + std::to_string(::getpid()) + "-" + GetParam());
    fs::create_directories(dir_);
    std::ofstream(dir_ / "policy.yaml") << kPolicy;
    std::ofstream(dir_ / "toolwarden.yaml") << "access: local\n"
                                            << "listen: 127.0.0.1:0\n"
                                            << "workers: 3\n"
                                            << "state: sqlite:" << (dir_ / "state.db").string() << "\n"
                                            << "servers:\n"
                                            << "  demo:\n"
                                            << "    command: " << TW_BINARY << "\n"
                                            << "    args: [demo-server]\n"
                                            << "    policy: policy.yaml\n"
                                            << "    isolation: " << GetParam() << "\n";
    auto config = config::LoadConfig((dir_ / "toolwarden.yaml").string());
    ASSERT_TRUE(config.has_value()) << config.error().message();
    config_ = *config;
    auto gw = Gateway::Open(loops_.home(), config_, clock_);
    ASSERT_TRUE(gw.has_value()) << gw.error().message();
    gw_ = std::move(*gw);
    transport::HttpServerOptions o;
    o.origins = transport::OriginPolicy::AllowAll();
    server_ = std::make_unique<transport::HttpServer>(
        loops_, o, [this](const transport::SessionRequest& r) { return gw_->MakeSession(r); });
    auto port = server_->Listen("127.0.0.1", 0);
    ASSERT_TRUE(port.has_value()) << port.error().message();
    port_ = *port;
    runner_ = std::thread([this] { loops_.Run(); });
  }

  void TearDown() override {
    if (runner_.joinable()) {
      asio::post(loops_.home(), [this] {
        server_->Stop();
        gw_->Stop();
      });
      runner_.join();
    }
    server_.reset();
    if (gw_) gw_->Audit().Flush();
    gw_.reset();
    fs::remove_all(dir_);
  }

  std::unique_ptr<Conn> Connect() { return std::make_unique<Conn>(client_io_, port_); }

  fs::path dir_;
  config::Config config_;
  SystemClock clock_;
  transport::EventLoops loops_{3};
  std::unique_ptr<Gateway> gw_;
  std::unique_ptr<transport::HttpServer> server_;
  std::thread runner_;
  uint16_t port_ = 0;
  asio::io_context client_io_;
};

TEST_P(GatewayLoopsTest, SessionsOnEveryLoopShareExactLimitsAndEveryCallIsRecordedOnce) {
  constexpr int kSessions = 3;  // one per loop: connections are accepted onto the loops in turn
  std::vector<std::unique_ptr<Conn>> conns;
  std::vector<std::string> sids;
  for (int i = 0; i < kSessions; ++i) {
    conns.push_back(Connect());
    auto res = conns.back()->Post(
                    R"({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":)"
                    R"("2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}})",
                    "");
    ASSERT_EQ(res.result_int(), 200) << res.body();
    sids.emplace_back(res["Mcp-Session-Id"]);
    EXPECT_EQ(transport::HttpRouter::LoopOfSession(sids.back(), 3), static_cast<size_t>(i));
    EXPECT_EQ(conns.back()->Post(R"({"jsonrpc":"2.0","method":"notifications/initialized"})",
                                 sids.back())
                  .result_int(),
              202);
  }
  // Each session's calls go out on every connection in turn: most cross to another loop.
  int allowed_adds = 0, limited_adds = 0, echoes = 0, id = 10;
  for (int round = 0; round < 4; ++round) {
    for (int s = 0; s < kSessions; ++s) {
      Conn& conn = *conns[(s + round) % kSessions];
      auto echo = conn.Post(
                       R"({"jsonrpc":"2.0","id":)" + std::to_string(id++) +
                           R"(,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hi"}}})",
                       sids[s]);
      ASSERT_EQ(echo.result_int(), 200) << echo.body();
      if (echo.body().find(R"("text":"hi")") != std::string::npos) ++echoes;
      auto add = conn.Post(
                      R"({"jsonrpc":"2.0","id":)" + std::to_string(id++) +
                          R"(,"method":"tools/call","params":{"name":"add","arguments":{"a":2,"b":3}}})",
                      sids[s]);
      ASSERT_EQ(add.result_int(), 200) << add.body();
      if (add.body().find(R"("text":"5")") != std::string::npos) ++allowed_adds;
      if (add.body().find("Rate limit") != std::string::npos) ++limited_adds;
    }
  }
  EXPECT_EQ(echoes, 4 * kSessions);
  EXPECT_EQ(allowed_adds, 5) << "the limit is exact across loops";
  EXPECT_EQ(limited_adds, 4 * kSessions - 5);

  gw_->Audit().Flush();
  audit::Query q;
  q.limit = 1000;
  auto records = gw_->QueryAudit(q);
  ASSERT_TRUE(records.has_value());
  int allow = 0, deny = 0;
  for (const auto& r : *records) (r.decision == "allow" ? allow : deny)++;
  EXPECT_EQ(allow, 4 * kSessions + 5);
  EXPECT_EQ(deny, 4 * kSessions - 5);
}

INSTANTIATE_TEST_SUITE_P(Isolation, GatewayLoopsTest, ::testing::Values("shared", "session"));

}  // namespace
}  // namespace tw::app
