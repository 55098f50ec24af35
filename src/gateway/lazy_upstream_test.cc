#include "gateway/lazy_upstream.h"

#include <gtest/gtest.h>

#include <vector>

#include "mcp/protocol.h"
#include "testing/fake_clock.h"
#include "testing/fake_upstream.h"

namespace tw::gateway {
namespace {

using jsonrpc::Message;
using testing::FakeUpstream;

// Timers run by hand: Fire() runs every due one (delay 0) or, with `idle`, the idle timers too.
struct Timers {
  std::vector<std::pair<int64_t, std::function<void()>>> pending;
  Scheduler scheduler() {
    return [this](int64_t delay, std::function<void()> fn) {
      pending.emplace_back(delay, std::move(fn));
    };
  }
  Post post() {
    return [this](std::function<void()> fn) { pending.emplace_back(0, std::move(fn)); };
  }
  void Fire(bool idle = false) {
    auto now = std::move(pending);
    pending.clear();
    for (auto& [delay, fn] : now) {
      if (delay == 0 || idle) {
        fn();
      } else {
        pending.emplace_back(delay, std::move(fn));
      }
    }
  }
};

const json::value kInitParams =
    json::object{{"protocolVersion", "2025-06-18"},
                 {"capabilities", json::object{{"roots", json::object{}}}},
                 {"clientInfo", json::object{{"name", "agent"}, {"version", "1"}}}};
const json::value kInitResult =
    json::object{{"protocolVersion", "2025-06-18"},
                 {"capabilities", json::object{{"tools", json::object{}}}},
                 {"serverInfo", json::object{{"name", "files"}, {"version", "2"}}}};
const json::value kTools = json::object{{"tools", json::array{json::object{{"name", "read"}}}}};

class LazyUpstreamTest : public ::testing::Test {
 protected:
  // A session's upstream: every real connection it makes is recorded in `made`.
  std::unique_ptr<LazyUpstream> NewSession(int64_t idle_ms = 1000) {
    auto lazy = std::make_unique<LazyUpstream>(
        "files",
        [this] {
          auto fake = std::make_unique<FakeUpstream>();
          made.push_back(fake.get());
          return fake;
        },
        memory, timers.post(), timers.scheduler(), clock, idle_ms);
    lazy->Start(Upstream::Events{
        .on_message = [this](Message m,
                             std::optional<json::value>) { got.push_back(std::move(m)); },
        .on_request_failed = [this](const json::value& id, const Error&,
                                    bool) { failed.push_back(id); },
        .on_disconnected = [](const Error&) {},
        .on_reconnected = [] {},
    });
    return lazy;
  }
  // The first session: the server starts at initialize and answers it and tools/list.
  void Remember() {
    auto first = NewSession();
    first->Send(jsonrpc::MakeRequest(1, "initialize", kInitParams));
    ASSERT_EQ(made.size(), 1u);
    EXPECT_EQ(made[0]->TakeSent().method, "initialize");  // the client's own, not a replay
    made[0]->FromServer(jsonrpc::MakeResponse(1, kInitResult));
    first->Send(jsonrpc::MakeNotification("notifications/initialized", json::object()));
    first->Send(jsonrpc::MakeRequest(2, "tools/list", nullptr));
    made[0]->TakeSent();
    made[0]->TakeSent();
    made[0]->FromServer(jsonrpc::MakeResponse(2, kTools));
    first->Close();
    timers.pending.clear();  // the closed session's (they would do nothing)
    made.clear();
    got.clear();
  }

  std::shared_ptr<ServerMemory> memory = std::make_shared<ServerMemory>();
  Timers timers;
  testing::FakeClock clock;
  std::vector<FakeUpstream*> made;  // owned by the LazyUpstream that made them
  std::vector<Message> got;
  std::vector<json::value> failed;
};

TEST_F(LazyUpstreamTest, ASessionThatOnlyListsNeverStartsTheServer) {
  Remember();
  auto session = NewSession();
  session->Send(jsonrpc::MakeRequest(1, "initialize", kInitParams));
  session->Send(jsonrpc::MakeNotification("notifications/initialized", json::object()));
  session->Send(jsonrpc::MakeRequest(2, "tools/list", nullptr));
  session->Send(jsonrpc::MakeRequest(3, "ping", nullptr));
  session->Send(jsonrpc::MakeRequest(4, "logging/setLevel", json::object{{"level", "debug"}}));
  EXPECT_TRUE(got.empty());  // answered on the next turn, never inside Send
  timers.Fire();
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[0].result, kInitResult);
  EXPECT_EQ(got[1].result, kTools);
  EXPECT_EQ(got[2].id, 3);
  EXPECT_TRUE(made.empty());
  EXPECT_FALSE(session->running());
}

TEST_F(LazyUpstreamTest, TheFirstCallStartsTheServerWithThisSessionsHandshakeReplayed) {
  Remember();
  auto session = NewSession();
  session->Send(jsonrpc::MakeRequest(1, "initialize", kInitParams));
  session->Send(jsonrpc::MakeNotification("notifications/initialized", json::object()));
  session->Send(jsonrpc::MakeRequest(2, "logging/setLevel", json::object{{"level", "debug"}}));
  timers.Fire();
  session->Send(jsonrpc::MakeRequest(7, "tools/call", json::object{{"name", "read"}}));
  ASSERT_EQ(made.size(), 1u);
  FakeUpstream& server = *made[0];
  Message replay = server.TakeSent();
  EXPECT_EQ(replay.method, "initialize");
  EXPECT_EQ(replay.params, kInitParams);  // the client's capabilities reach the server
  EXPECT_TRUE(server.sent.empty());       // the call waits for the handshake
  server.FromServer(jsonrpc::MakeResponse(replay.id, kInitResult));
  EXPECT_EQ(server.TakeSent().method, "notifications/initialized");
  Message level = server.TakeSent();
  EXPECT_EQ(level.method, "logging/setLevel");
  Message call = server.TakeSent();
  EXPECT_EQ(call.method, "tools/call");
  EXPECT_EQ(call.id, 7);
  got.clear();
  server.FromServer(
      jsonrpc::MakeResponse(level.id, json::object()));  // the replay's: not the client's
  server.FromServer(jsonrpc::MakeResponse(7, json::object{{"content", json::array{}}}));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].id, 7);
  EXPECT_EQ(session->starts(), 1);
}

TEST_F(LazyUpstreamTest, IdleStopsTheServerAndTheNextCallStartsItAgain) {
  Remember();
  auto session = NewSession();
  session->Send(jsonrpc::MakeRequest(1, "initialize", kInitParams));
  timers.Fire();
  session->Send(jsonrpc::MakeRequest(2, "tools/call", json::object{{"name", "read"}}));
  FakeUpstream* server = made[0];
  server->FromServer(jsonrpc::MakeResponse(server->TakeSent().id, kInitResult));
  server->TakeSent();
  // A server request in flight (sampling): not idle until the client answers.
  server->FromServer(jsonrpc::MakeRequest("s1", "sampling/createMessage", json::object{}));
  server->FromServer(jsonrpc::MakeResponse(2, json::object{}));
  timers.Fire(/*idle=*/true);
  EXPECT_TRUE(session->running());
  session->Send(jsonrpc::MakeResponse("s1", json::object{}));
  clock.Advance(1000);
  timers.Fire(/*idle=*/true);
  EXPECT_FALSE(session->running());
  EXPECT_TRUE(server->closed);
  timers.Fire();  // the closed connection is destroyed on a later turn

  session->Send(jsonrpc::MakeRequest(3, "tools/call", json::object{{"name", "read"}}));
  ASSERT_EQ(made.size(), 2u);
  EXPECT_EQ(made[1]->TakeSent().method, "initialize");
  EXPECT_EQ(session->starts(), 2);
}

TEST_F(LazyUpstreamTest, OneIdleTimerWaitsOutTheQuietTimeHoweverManyCallsPass) {
  Remember();
  auto session = NewSession();
  session->Send(jsonrpc::MakeRequest(1, "initialize", kInitParams));
  timers.Fire();
  session->Send(jsonrpc::MakeRequest(2, "tools/call", json::object{}));
  FakeUpstream* server = made[0];
  server->FromServer(jsonrpc::MakeResponse(server->TakeSent().id, kInitResult));
  server->TakeSent();
  server->FromServer(jsonrpc::MakeResponse(2, json::object{}));  // idle from now: armed
  for (int i = 3; i < 103; ++i) {                                // busy: calls come and go
    session->Send(jsonrpc::MakeRequest(i, "tools/call", json::object{}));
    server->FromServer(jsonrpc::MakeResponse(i, json::object{}));
  }
  timers.Fire();
  EXPECT_EQ(timers.pending.size(), 1u) << "one idle timer, not one per call";
  clock.Advance(600);
  session->Send(jsonrpc::MakeRequest(200, "tools/call", json::object{}));
  server->FromServer(jsonrpc::MakeResponse(200, json::object{}));
  clock.Advance(400);  // the timer fires 1000 ms after it was armed, 400 ms after the last call
  timers.Fire(/*idle=*/true);
  EXPECT_TRUE(session->running());
  ASSERT_EQ(timers.pending.size(), 1u);
  EXPECT_EQ(timers.pending[0].first, 600) << "waits out the rest";
  clock.Advance(600);
  timers.Fire(/*idle=*/true);
  EXPECT_FALSE(session->running());
}

TEST_F(LazyUpstreamTest, WhatTheMemoryCannotAnswerGoesToTheServer) {
  // Nothing remembered: initialize itself starts the server, with no replay.
  auto first = NewSession();
  first->Send(jsonrpc::MakeRequest(1, "initialize", kInitParams));
  ASSERT_EQ(made.size(), 1u);
  made[0]->TakeSent();
  made[0]->FromServer(jsonrpc::MakeResponse(1, kInitResult));
  first->Close();
  made.clear();

  // Another protocol version; a list with a cursor; a list announced as changed.
  auto other = NewSession();
  json::value v2 = kInitParams;
  v2.as_object()["protocolVersion"] = "2025-03-26";
  other->Send(jsonrpc::MakeRequest(1, "initialize", v2));
  EXPECT_EQ(made.size(), 1u);
  other->Close();
  made.clear();

  memory->RememberList("tools/list", kTools);
  auto paged = NewSession();
  paged->Send(jsonrpc::MakeRequest(1, "initialize", kInitParams));
  timers.Fire();
  paged->Send(jsonrpc::MakeRequest(2, "tools/list", json::object{{"cursor", "p2"}}));
  EXPECT_EQ(made.size(), 1u);
  FakeUpstream* server = made[0];
  server->FromServer(jsonrpc::MakeResponse(server->TakeSent().id, kInitResult));
  server->FromServer(jsonrpc::MakeNotification("notifications/tools/list_changed", json::object{}));
  EXPECT_FALSE(memory->List("tools/list"));
}

TEST_F(LazyUpstreamTest, OnlyTheToolListIsRememberedAndOnlyForOneGrant) {
  Remember();
  auto session = NewSession();
  session->Send(jsonrpc::MakeRequest(1, "initialize", kInitParams));
  timers.Fire();
  // Resources may be what one client's roots showed the server: always asked.
  session->Send(jsonrpc::MakeRequest(2, "resources/list", nullptr));
  EXPECT_EQ(made.size(), 1u);

  ServerMemories memories;
  EXPECT_EQ(memories.For("ci"), memories.For("ci"));
  EXPECT_NE(memories.For("ci"), memories.For("laptop"));
  memories.For("ci")->RememberList("tools/list", kTools);
  EXPECT_FALSE(memories.For("laptop")->List("tools/list"));
}

TEST_F(LazyUpstreamTest, AServerThatCannotStartFailsTheQueuedCallsAndStaysDormant) {
  Remember();
  auto session = NewSession();
  session->Send(jsonrpc::MakeRequest(1, "initialize", kInitParams));
  timers.Fire();
  session->Send(jsonrpc::MakeRequest(5, "tools/call", json::object{}));
  FakeUpstream* server = made[0];
  Message replay = server->TakeSent();
  server->events().on_request_failed(replay.id, Error::Unavailable("no such command"), false);
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed[0], 5);
  EXPECT_FALSE(session->running());
}

TEST_F(LazyUpstreamTest, ASubscribedSessionKeepsItsServer) {
  Remember();
  auto session = NewSession();
  session->Send(jsonrpc::MakeRequest(1, "initialize", kInitParams));
  timers.Fire();
  session->Send(jsonrpc::MakeRequest(2, "resources/subscribe", json::object{{"uri", "file:///a"}}));
  FakeUpstream* server = made[0];
  server->FromServer(jsonrpc::MakeResponse(server->TakeSent().id, kInitResult));
  server->FromServer(jsonrpc::MakeResponse(2, json::object{}));
  timers.Fire(/*idle=*/true);
  EXPECT_TRUE(session->running());
}

}  // namespace
}  // namespace tw::gateway
