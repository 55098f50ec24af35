// The HTTP server on several event loops, over real sockets: connections are spread over the
// loops, and a request reaches the loop of the session it names, whichever connection it
// came on.
#include "transport/http_server.h"

#include <gtest/gtest.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <future>
#include <mutex>
#include <set>
#include <thread>

#include "jsonrpc/message.h"
#include "testing/http_client.h"
#include "transport/event_loops.h"

namespace tw::transport {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Conn = testing::McpHttpConnection;

// Where things ran: each relay notes the loop it was made on and the loop of every message.
struct Seen {
  std::mutex mu;
  std::vector<std::pair<asio::io_context*, asio::io_context*>> messages;  // (made on, ran on)
  std::vector<asio::io_context*> admin;
};

class LoopRelay : public gateway::McpSession {
 public:
  LoopRelay(gateway::ClientSink& sink, Seen& seen)
      : sink_(sink), seen_(seen), made_on_(EventLoops::Current()) {}
  void Start() override {}
  void HandleClientMessage(jsonrpc::Message msg) override {
    {
      std::lock_guard lock(seen_.mu);
      seen_.messages.emplace_back(made_on_, EventLoops::Current());
    }
    if (msg.IsRequest()) {
      sink_.Deliver(jsonrpc::MakeResponse(msg.id, json::object{{"echo", msg.method}}), msg.id);
    }
  }
  void Close() override {}
  const std::string& protocol_version() const override { return version_; }
  size_t pending_requests() const override { return 0; }

 private:
  gateway::ClientSink& sink_;
  Seen& seen_;
  asio::io_context* made_on_;
  std::string version_ = "2025-06-18";
};

class HttpServerLoopsTest : public ::testing::Test {
 protected:
  void Start(size_t max_sessions = 100) {
    HttpServerOptions o;
    o.origins = OriginPolicy::AllowAll();
    o.max_sessions = max_sessions;
    o.admin = [this](const HttpServerOptions::AdminCall&) {
      std::lock_guard lock(seen_.mu);
      seen_.admin.push_back(EventLoops::Current());
      return HttpServerOptions::AdminReply{200, "{}", "application/json", {}, nullptr};
    };
    server_ = std::make_unique<HttpServer>(loops_, std::move(o), [this](const SessionRequest&) {
      return Result<HttpMcpSession::RelayMaker>(
          HttpMcpSession::RelayMaker([this](gateway::ClientSink& sink) {
            return std::make_unique<LoopRelay>(sink, seen_);
          }));
    });
    auto port = server_->Listen("127.0.0.1", 0);
    ASSERT_TRUE(port) << port.error().message();
    port_ = *port;
    runner_ = std::thread([this] { loops_.Run(); });
  }

  void TearDown() override {
    if (!server_) return;
    asio::post(loops_.home(), [this] { server_->Stop(); });
    runner_.join();
    server_.reset();
  }

  // A keep-alive connection; the server accepts them onto its loops in turn (0, 1, 0, …).
  std::unique_ptr<Conn> Connect() { return std::make_unique<Conn>(client_io_, port_); }

  std::string Initialize(Conn& s) {
    auto res = s.Post(R"({"jsonrpc":"2.0","id":1,"method":"initialize","params":{}})");
    EXPECT_EQ(res.result_int(), 200) << res.body();
    return std::string(res["Mcp-Session-Id"]);
  }

  EventLoops loops_{2};
  Seen seen_;
  std::unique_ptr<HttpServer> server_;
  std::thread runner_;
  uint16_t port_ = 0;
  asio::io_context client_io_;
};

TEST_F(HttpServerLoopsTest, ARequestOnAnotherLoopsConnectionIsServedOnTheSessionsLoop) {
  Start();
  auto first = Connect();   // loop 0
  auto second = Connect();  // loop 1
  const std::string sid = Initialize(*first);
  ASSERT_EQ(HttpRouter::LoopOfSession(sid, 2), 0u) << "the session lives where it was opened";

  for (int i = 0; i < 3; ++i) {
    auto res = second->Post(R"({"jsonrpc":"2.0","id":2,"method":"tools/list"})", sid);
    ASSERT_EQ(res.result_int(), 200) << res.body();
    EXPECT_NE(res.body().find(R"("echo":"tools/list")"), std::string::npos) << res.body();
  }
  // And the first connection still works.
  auto res = first->Post(R"({"jsonrpc":"2.0","id":3,"method":"ping"})", sid);
  EXPECT_EQ(res.result_int(), 200);

  std::lock_guard lock(seen_.mu);
  ASSERT_EQ(seen_.messages.size(), 5u);
  for (const auto& [made_on, ran_on] : seen_.messages) {
    EXPECT_EQ(made_on, &loops_.at(0));
    EXPECT_EQ(ran_on, made_on) << "every message of a session runs on its loop";
  }
}

TEST_F(HttpServerLoopsTest, SessionsOpenOnEveryLoopAndTheLimitCountsThemAll) {
  Start(/*max_sessions=*/2);
  auto a = Connect();  // loop 0
  auto b = Connect();  // loop 1
  auto c = Connect();  // loop 0
  const std::string sa = Initialize(*a);
  const std::string sb = Initialize(*b);
  EXPECT_EQ(HttpRouter::LoopOfSession(sa, 2), 0u);
  EXPECT_EQ(HttpRouter::LoopOfSession(sb, 2), 1u);
  auto full = c->Post(R"({"jsonrpc":"2.0","id":1,"method":"initialize","params":{}})");
  EXPECT_EQ(full.result_int(), 503) << "two loops, one limit: " << full.body();
  // Each session answers on either connection.
  EXPECT_EQ(a->Post(R"({"jsonrpc":"2.0","id":2,"method":"ping"})", sb).result_int(), 200);
  EXPECT_EQ(b->Post(R"({"jsonrpc":"2.0","id":2,"method":"ping"})", sa).result_int(), 200);
}

TEST_F(HttpServerLoopsTest, AnUnknownOrForgedSessionIdIsNotFoundOnWhicheverLoop) {
  Start();
  auto a = Connect();
  auto b = Connect();
  const std::string sid = Initialize(*a);
  std::string forged = sid;
  forged[31] = forged[31] == '0' ? '1' : '0';  // same loop, another id
  EXPECT_EQ(b->Post(R"({"jsonrpc":"2.0","id":2,"method":"ping"})", forged).result_int(), 404);
  EXPECT_EQ(b->Post(R"({"jsonrpc":"2.0","id":2,"method":"ping"})", "zz").result_int(), 404);
  EXPECT_EQ(a->Post(R"({"jsonrpc":"2.0","id":2,"method":"ping"})", "not-hex-at-all-but-32-chars-long").result_int(),
            404);
  // The connections survive the refusals.
  EXPECT_EQ(b->Post(R"({"jsonrpc":"2.0","id":3,"method":"ping"})", sid).result_int(), 200);
}

TEST_F(HttpServerLoopsTest, TheAdminApiRunsOnTheHomeLoop) {
  Start();
  auto a = Connect();  // loop 0
  auto b = Connect();  // loop 1
  for (auto* s : {a.get(), b.get(), b.get()}) {
    http::request<http::string_body> req{http::verb::get, "/api/servers", 11};
    req.set(http::field::host, "127.0.0.1");
    EXPECT_EQ(s->Exchange(req).result_int(), 200);
  }
  std::lock_guard lock(seen_.mu);
  ASSERT_EQ(seen_.admin.size(), 3u);
  for (auto* loop : seen_.admin) EXPECT_EQ(loop, &loops_.home());
}

TEST_F(HttpServerLoopsTest, DrainCountsTheRequestsOfEveryLoop) {
  Start();
  auto a = Connect();
  Initialize(*a);
  std::promise<size_t> counted;
  asio::post(loops_.home(), [this, &counted] {
    server_->CountInFlight([&counted](size_t n) { counted.set_value(n); });
  });
  auto f = counted.get_future();
  ASSERT_EQ(f.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_EQ(f.get(), 0u);
  EXPECT_EQ(server_->session_count(), 1u);
}

TEST(SessionIdTest, AnIdNamesItsLoopAndKeepsItsRandomness) {
  for (size_t loops : {1u, 2u, 3u, 7u, 16u, 255u, 256u}) {
    std::set<std::string> ids;
    for (size_t loop = 0; loop < loops; loop += std::max<size_t>(1, loops / 5)) {
      for (int i = 0; i < 20; ++i) {
        std::string id = HttpRouter::NewSessionId(loop, loops);
        ASSERT_EQ(id.size(), 32u);
        EXPECT_EQ(HttpRouter::LoopOfSession(id, loops), loops == 1 ? 0 : loop) << id;
        ids.insert(id);
      }
    }
    EXPECT_GT(ids.size(), 1u);
  }
  EXPECT_FALSE(HttpRouter::LoopOfSession("abc", 4).has_value());
  EXPECT_FALSE(HttpRouter::LoopOfSession(std::string(32, 'z'), 4).has_value());
}

TEST(SessionIdTest, AReplicaPrefixRoutesButNamesNoOtherSession) {
  const std::string id = HttpRouter::NewSessionId(2, 3, "r2.");
  ASSERT_TRUE(id.starts_with("r2."));
  ASSERT_EQ(id.size(), 35u);
  EXPECT_EQ(HttpRouter::LoopOfSession(id, 3), 2u);
  // A client that forges prefixes only reaches the loop its last 32 digits name; the session
  // table is keyed by the whole id, so "r1.<same digits>" or "x.r2.<…>" is another (unknown) id.
  const std::string digits = id.substr(3);
  EXPECT_EQ(HttpRouter::LoopOfSession("r1." + digits, 3), 2u);
  EXPECT_EQ(HttpRouter::LoopOfSession("x.r2." + digits, 3), 2u);
  EXPECT_FALSE(HttpRouter::LoopOfSession("r2." + digits.substr(1), 3).has_value());
  EXPECT_FALSE(HttpRouter::LoopOfSession("r2.", 3).has_value());
}

}  // namespace
}  // namespace tw::transport
