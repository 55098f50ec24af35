#include "gateway/aggregate_session.h"

#include <gtest/gtest.h>

#include <deque>

#include "policy/loader.h"
#include "testing/fake_clock.h"
#include "testing/fake_upstream.h"

namespace tw::gateway {
namespace {

using jsonrpc::Message;
using testing::FakeUpstream;
using testing::RecordingSink;

Message Parse(std::string_view text) { return testing::ParseMessage(text); }

std::shared_ptr<const policy::Policy> Compile(std::string_view text) {
  auto compiled = policy::CompilePolicy(text, "p.json", policy::FileFormat::kJson);
  EXPECT_TRUE(compiled.policy) << policy::FormatDiagnostics("p", compiled.diagnostics);
  return compiled.policy;
}

class AggregateSessionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    allow_ = Compile(R"({"version":"1","default":"allow"})");
    deny_drop_ = Compile(R"({"version":"1","default":"allow","tools":{"drop":{"action":"deny","reason":"no drops"}}})");
    alpha_guard_ = std::make_unique<ToolCallGuard>([this] { return allow_; }, *store_, clock_);
    beta_guard_ = std::make_unique<ToolCallGuard>([this] { return deny_drop_; }, *store_, clock_);
    std::vector<AggregateMember> members;
    auto a = std::make_unique<FakeUpstream>();
    auto b = std::make_unique<FakeUpstream>();
    alpha_ = a.get();
    beta_ = b.get();
    members.push_back({"alpha", std::move(a), alpha_guard_.get()});
    members.push_back({"beta", std::move(b), beta_guard_.get()});
    session_ = std::make_unique<AggregateSession>(
        "s1", std::move(members), sink_, "g",
        [this](int64_t, std::function<void()> fn) { timers_.push_back(std::move(fn)); });
    session_->Start();
  }

  void FromClient(std::string_view text) { session_->HandleClientMessage(Parse(text)); }
  // Answers the oldest request `up` received with `result` (JSON text).
  Message Answer(FakeUpstream* up, std::string_view result) {
    Message req = up->TakeSent();
    up->FromServer(Parse(R"({"jsonrpc":"2.0","id":)" + json::serialize(req.id) +
                         R"(,"result":)" + std::string(result) + "}"));
    return req;
  }
  Message TakeDelivered() {
    EXPECT_FALSE(sink_.delivered.empty());
    if (sink_.delivered.empty()) return {};
    Message m = sink_.delivered.front().first;
    sink_.delivered.pop_front();
    return m;
  }
  void Initialize() {
    FromClient(R"({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}})");
    Answer(alpha_, R"({"protocolVersion":"2025-06-18","capabilities":{"tools":{}},"serverInfo":{"name":"a","version":"1"},"instructions":"alpha things"})");
    Answer(beta_, R"({"protocolVersion":"2025-06-18","capabilities":{"tools":{}},"serverInfo":{"name":"b","version":"1"}})");
    Message init = TakeDelivered();
    ASSERT_EQ(init.id, json::value(0));
    FromClient(R"({"jsonrpc":"2.0","method":"notifications/initialized"})");
    EXPECT_EQ(alpha_->TakeSent().method, "notifications/initialized");
    EXPECT_EQ(beta_->TakeSent().method, "notifications/initialized");
  }

  std::shared_ptr<const policy::Policy> allow_, deny_drop_;
  std::unique_ptr<limits::CounterStore> store_ = limits::MakeMemoryStore();
  testing::FakeClock clock_;
  std::unique_ptr<ToolCallGuard> alpha_guard_, beta_guard_;
  RecordingSink sink_;
  FakeUpstream* alpha_ = nullptr;
  FakeUpstream* beta_ = nullptr;
  std::vector<std::function<void()>> timers_;
  std::unique_ptr<AggregateSession> session_;
};

TEST(QualifiedNamesTest, SplitOnTheFirstSeparatorAfterAValidServerName) {
  EXPECT_EQ(QualifiedName("github", "create_issue"), "github__create_issue");
  auto s = SplitQualifiedName("github__create__issue");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->first, "github");
  EXPECT_EQ(s->second, "create__issue");
  EXPECT_FALSE(SplitQualifiedName("plain_tool"));
  EXPECT_FALSE(SplitQualifiedName("__x"));
  EXPECT_FALSE(SplitQualifiedName("a b__x"));
  auto u = SplitQualifiedUri("fs+file:///tmp/a+b");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->first, "fs");
  EXPECT_EQ(u->second, "file:///tmp/a+b");
}

TEST_F(AggregateSessionTest, InitializeIsAnsweredByTheGatewayOnceEveryServerIsUp) {
  FromClient(R"({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}})");
  EXPECT_EQ(alpha_->sent.front().method, "initialize");
  EXPECT_EQ(beta_->sent.front().method, "initialize");
  Answer(alpha_, R"({"protocolVersion":"2025-06-18","capabilities":{},"serverInfo":{"name":"a","version":"1"},"instructions":"alpha things"})");
  EXPECT_TRUE(sink_.delivered.empty());  // still waiting for beta
  Answer(beta_, R"({"protocolVersion":"2025-06-18","capabilities":{},"serverInfo":{"name":"b","version":"1"}})");
  Message init = TakeDelivered();
  EXPECT_EQ(init.id, json::value(0));
  EXPECT_EQ(init.result.at("protocolVersion"), "2025-06-18");
  EXPECT_EQ(init.result.at("serverInfo").at("name"), "toolwarden");
  EXPECT_TRUE(init.result.at("capabilities").as_object().contains("tools"));
  EXPECT_NE(init.result.at("instructions").as_string().find("alpha__*"), json::string::npos);
  EXPECT_EQ(session_->protocol_version(), "2025-06-18");
}

TEST_F(AggregateSessionTest, ASlowServerDoesNotHoldInitializeAndIsAnnouncedWhenItArrives) {
  FromClient(R"({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{}}})");
  Answer(alpha_, R"({"protocolVersion":"2025-06-18","capabilities":{},"serverInfo":{"name":"a","version":"1"}})");
  ASSERT_EQ(timers_.size(), 1u);
  timers_[0]();  // init_wait_ms passed
  EXPECT_EQ(TakeDelivered().id, json::value(0));
  FromClient(R"({"jsonrpc":"2.0","method":"notifications/initialized"})");
  EXPECT_EQ(alpha_->TakeSent().method, "notifications/initialized");
  // tools/list now asks alpha only.
  FromClient(R"({"jsonrpc":"2.0","id":1,"method":"tools/list"})");
  EXPECT_EQ(alpha_->sent.back().method, "tools/list");
  ASSERT_EQ(beta_->sent.size(), 1u);  // only its initialize
  Answer(alpha_, R"({"tools":[{"name":"echo","inputSchema":{"type":"object"}}]})");
  EXPECT_EQ(TakeDelivered().result.at("tools").as_array().size(), 1u);
  // beta comes up: it gets initialized, and the client hears that the lists changed.
  Answer(beta_, R"({"protocolVersion":"2025-06-18","capabilities":{},"serverInfo":{"name":"b","version":"1"}})");
  EXPECT_EQ(beta_->TakeSent().method, "notifications/initialized");
  EXPECT_EQ(TakeDelivered().method, "notifications/tools/list_changed");
}

TEST_F(AggregateSessionTest, ListsMergeWithQualifiedNamesAndPaginateWithOurCursor) {
  Initialize();
  FromClient(R"({"jsonrpc":"2.0","id":"L","method":"tools/list"})");
  Answer(alpha_, R"({"tools":[{"name":"echo","inputSchema":{"type":"object"}}],"nextCursor":"a-page-2"})");
  Answer(beta_, R"({"tools":[{"name":"drop","inputSchema":{"type":"object"}}]})");
  Message page1 = TakeDelivered();
  ASSERT_EQ(page1.id, json::value("L"));
  const json::array& tools = page1.result.at("tools").as_array();
  ASSERT_EQ(tools.size(), 2u);
  EXPECT_EQ(tools[0].at("name"), "alpha__echo");
  EXPECT_EQ(tools[1].at("name"), "beta__drop");
  const json::value cursor = page1.result.at("nextCursor");
  FromClient(R"({"jsonrpc":"2.0","id":"L2","method":"tools/list","params":{"cursor":)" +
             json::serialize(cursor) + "}}");
  EXPECT_TRUE(beta_->sent.empty());
  Message asked = Answer(alpha_, R"({"tools":[{"name":"echo2","inputSchema":{"type":"object"}}]})");
  EXPECT_EQ(asked.params.at("cursor"), "a-page-2");
  Message page2 = TakeDelivered();
  EXPECT_EQ(page2.result.at("tools").as_array().size(), 1u);
  EXPECT_FALSE(page2.result.as_object().contains("nextCursor"));
  FromClient(R"({"jsonrpc":"2.0","id":"L3","method":"tools/list","params":{"cursor":"zz"}})");
  EXPECT_EQ(TakeDelivered().error.at("code"), jsonrpc::kInvalidParams);
}

TEST_F(AggregateSessionTest, CallsGoToTheirServerUnderThatServersPolicy) {
  Initialize();
  FromClient(R"({"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"alpha__echo","arguments":{"m":"hi"}}})");
  Message sent = alpha_->TakeSent();
  EXPECT_EQ(sent.params.at("name"), "echo");
  alpha_->FromServer(Parse(R"({"jsonrpc":"2.0","id":)" + json::serialize(sent.id) +
                           R"(,"result":{"content":[{"type":"resource_link","uri":"file:///a","name":"a"}]}})"));
  Message answer = TakeDelivered();
  EXPECT_EQ(answer.id, json::value(7));
  EXPECT_EQ(answer.result.at("content").at(0).at("uri"), "alpha+file:///a");
  // beta's policy denies drop: answered by the gateway, nothing forwarded.
  FromClient(R"({"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"beta__drop","arguments":{}}})");
  EXPECT_TRUE(beta_->sent.empty());
  Message denied = TakeDelivered();
  EXPECT_TRUE(denied.result.at("isError").as_bool());
  EXPECT_NE(json::serialize(denied.result).find("no drops"), std::string::npos);
  // The same tool name without a server, or with an unknown one, is an unknown tool.
  FromClient(R"({"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"drop","arguments":{}}})");
  EXPECT_EQ(TakeDelivered().error.at("code"), jsonrpc::kInvalidParams);
  FromClient(R"({"jsonrpc":"2.0","id":10,"method":"tools/call","params":{"name":"gamma__drop","arguments":{}}})");
  EXPECT_EQ(TakeDelivered().error.at("code"), jsonrpc::kInvalidParams);
}

TEST_F(AggregateSessionTest, AServerThatGoesDownDisappearsWithoutTakingTheOthers) {
  Initialize();
  alpha_->events().on_disconnected(Error::Unavailable("child exited"));
  EXPECT_EQ(TakeDelivered().method, "notifications/tools/list_changed");
  sink_.delivered.clear();
  FromClient(R"({"jsonrpc":"2.0","id":1,"method":"tools/list"})");
  EXPECT_TRUE(alpha_->sent.empty());
  Answer(beta_, R"({"tools":[{"name":"x","inputSchema":{"type":"object"}}]})");
  EXPECT_EQ(TakeDelivered().result.at("tools").at(0).at("name"), "beta__x");
  FromClient(R"({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"alpha__echo","arguments":{}}})");
  Message err = TakeDelivered();
  EXPECT_NE(err.error.at("message").as_string().find("\"alpha\" is unavailable: child exited"),
            json::string::npos);
  // It restarts and is initialized again: back in the lists.
  alpha_->events().on_reconnected();
  Answer(alpha_, R"({"protocolVersion":"2025-06-18","capabilities":{},"serverInfo":{"name":"a","version":"1"}})");
  EXPECT_EQ(alpha_->TakeSent().method, "notifications/initialized");
  EXPECT_EQ(TakeDelivered().method, "notifications/tools/list_changed");
}

TEST_F(AggregateSessionTest, ResourcesAndServerRequestsKeepTheirServer) {
  Initialize();
  FromClient(R"({"jsonrpc":"2.0","id":3,"method":"resources/read","params":{"uri":"beta+file:///notes"}})");
  Message read = beta_->TakeSent();
  EXPECT_EQ(read.params.at("uri"), "file:///notes");
  beta_->FromServer(Parse(R"({"jsonrpc":"2.0","id":)" + json::serialize(read.id) +
                          R"(,"result":{"contents":[{"uri":"file:///notes","text":"x"}]}})"));
  EXPECT_EQ(TakeDelivered().result.at("contents").at(0).at("uri"), "beta+file:///notes");
  // Both servers ask the client something with the same id: the client sees two ids.
  alpha_->FromServer(Parse(R"({"jsonrpc":"2.0","id":1,"method":"roots/list"})"));
  beta_->FromServer(Parse(R"({"jsonrpc":"2.0","id":1,"method":"roots/list"})"));
  Message qa = TakeDelivered(), qb = TakeDelivered();
  EXPECT_NE(qa.id, qb.id);
  FromClient(R"({"jsonrpc":"2.0","id":)" + json::serialize(qb.id) + R"(,"result":{"roots":[]}})");
  EXPECT_TRUE(alpha_->sent.empty());
  EXPECT_EQ(beta_->TakeSent().id, json::value(1));
  // A resource update names its server.
  beta_->FromServer(Parse(R"({"jsonrpc":"2.0","method":"notifications/resources/updated","params":{"uri":"file:///notes"}})"));
  EXPECT_EQ(TakeDelivered().params.at("uri"), "beta+file:///notes");
  FromClient(R"({"jsonrpc":"2.0","id":4,"method":"sampling/whatever"})");
  EXPECT_EQ(TakeDelivered().error.at("code"), jsonrpc::kMethodNotFound);
}

}  // namespace
}  // namespace tw::gateway

namespace tw::gateway {
namespace {

TEST_F(AggregateSessionTest, ACancellationReachesTheServerOfTheCall) {
  Initialize();
  FromClient(R"({"jsonrpc":"2.0","id":"slow","method":"tools/call","params":{"name":"beta__wait","arguments":{}}})");
  Message sent = beta_->TakeSent();
  FromClient(R"({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"slow","reason":"user"}})");
  EXPECT_TRUE(alpha_->sent.empty());
  Message cancel = beta_->TakeSent();
  EXPECT_EQ(cancel.method, "notifications/cancelled");
  EXPECT_EQ(cancel.params.at("requestId"), sent.id);  // the leg's own id for it
  // A cancellation for something unknown goes nowhere.
  FromClient(R"({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"nope"}})");
  EXPECT_TRUE(alpha_->sent.empty());
  EXPECT_TRUE(beta_->sent.empty());
}

}  // namespace
}  // namespace tw::gateway
