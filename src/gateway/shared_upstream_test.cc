#include "gateway/shared_upstream.h"

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

class UpstreamHubTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto compiled = policy::CompilePolicy(R"({"version":"1","default":"allow"})", "p.json",
                                          policy::FileFormat::kJson);
    policy_ = compiled.policy;
    guard_ = std::make_unique<ToolCallGuard>([this] { return policy_; }, *store_, clock_);
    auto real = std::make_unique<FakeUpstream>();
    real_ = real.get();
    hub_ = std::make_shared<UpstreamHub>("everything", std::move(real),
                                         [this](int64_t, std::function<void()> fn) {
                                           posted_.push_back(std::move(fn));
                                         });
    a_ = std::make_unique<Session>("a", hub_->NewChannel(), *guard_, sink_a_, "ga");
    b_ = std::make_unique<Session>("b", hub_->NewChannel(), *guard_, sink_b_, "gb");
    a_->Start();
    b_->Start();
  }
  void RunPosted() {
    auto fns = std::move(posted_);
    posted_.clear();
    for (auto& fn : fns) fn();
  }
  static constexpr std::string_view kInit =
      R"({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{"sampling":{}},"clientInfo":{"name":"t","version":"1"}}})";
  void InitializeBoth() {
    a_->HandleClientMessage(Parse(kInit));
    b_->HandleClientMessage(Parse(kInit));
    Message init = real_->TakeSent();
    ASSERT_EQ(init.method, "initialize");
    EXPECT_TRUE(init.params.at("capabilities").as_object().empty());
    EXPECT_TRUE(real_->sent.empty());  // the second session does not initialize it again
    real_->FromServer(Parse(R"({"jsonrpc":"2.0","id":)" + json::serialize(init.id) +
                            R"(,"result":{"protocolVersion":"2025-06-18","capabilities":{"tools":{"listChanged":true}},"serverInfo":{"name":"e","version":"1"}}})"));
    EXPECT_EQ(real_->TakeSent().method, "notifications/initialized");
    EXPECT_EQ(sink_a_.Take().id, json::value(0));
    EXPECT_EQ(sink_b_.Take().id, json::value(0));
    EXPECT_TRUE(hub_->up());
  }

  std::shared_ptr<const policy::Policy> policy_;
  std::unique_ptr<limits::CounterStore> store_ = limits::MakeMemoryStore();
  testing::FakeClock clock_;
  std::unique_ptr<ToolCallGuard> guard_;
  FakeUpstream* real_ = nullptr;
  std::shared_ptr<UpstreamHub> hub_;
  std::vector<std::function<void()>> posted_;
  RecordingSink sink_a_, sink_b_;
  std::unique_ptr<Session> a_, b_;
};

TEST_F(UpstreamHubTest, OneInitializeServesEverySessionLateOnesFromTheCache) {
  InitializeBoth();
  RecordingSink sink_c;
  Session c("c", hub_->NewChannel(), *guard_, sink_c, "gc");
  c.Start();
  c.HandleClientMessage(Parse(kInit));
  EXPECT_TRUE(real_->sent.empty());
  EXPECT_TRUE(sink_c.delivered.empty());  // answered on the next turn, not re-entrantly
  RunPosted();
  EXPECT_EQ(sink_c.Take().result.at("serverInfo").at("name"), "e");
  EXPECT_EQ(hub_->channel_count(), 3u);
}

TEST_F(UpstreamHubTest, SameIdsAndProgressTokensFromTwoSessionsNeverCollide) {
  InitializeBoth();
  const std::string call =
      R"({"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"echo","arguments":{},"_meta":{"progressToken":1}}})";
  a_->HandleClientMessage(Parse(call));
  b_->HandleClientMessage(Parse(call));
  Message from_a = real_->TakeSent(), from_b = real_->TakeSent();
  EXPECT_NE(from_a.id, from_b.id);
  const json::value token_a = from_a.params.at("_meta").at("progressToken");
  const json::value token_b = from_b.params.at("_meta").at("progressToken");
  EXPECT_NE(token_a, token_b);
  // Progress for b's call reaches b only, with b's own token.
  real_->FromServer(Parse(R"({"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":)" +
                          json::serialize(token_b) + R"(,"progress":1}})"));
  EXPECT_TRUE(sink_a_.delivered.empty());
  EXPECT_EQ(sink_b_.Take().params.at("progressToken"), json::value(1));
  // Answers go back to their session with its id.
  real_->FromServer(Parse(R"({"jsonrpc":"2.0","id":)" + json::serialize(from_b.id) + R"(,"result":{"content":[{"type":"text","text":"b"}]}})"));
  real_->FromServer(Parse(R"({"jsonrpc":"2.0","id":)" + json::serialize(from_a.id) + R"(,"result":{"content":[{"type":"text","text":"a"}]}})"));
  Message ra = sink_a_.Take(), rb = sink_b_.Take();
  EXPECT_EQ(ra.id, json::value(5));
  EXPECT_EQ(ra.result.at("content").at(0).at("text"), "a");
  EXPECT_EQ(rb.result.at("content").at(0).at("text"), "b");
}

TEST_F(UpstreamHubTest, NotificationsReachEverySessionAndClosedSessionsCancelTheirCalls) {
  InitializeBoth();
  real_->FromServer(Parse(R"({"jsonrpc":"2.0","method":"notifications/tools/list_changed"})"));
  EXPECT_EQ(sink_a_.Take().method, "notifications/tools/list_changed");
  EXPECT_EQ(sink_b_.Take().method, "notifications/tools/list_changed");
  a_->HandleClientMessage(Parse(R"({"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"slow","arguments":{}}})"));
  Message slow = real_->TakeSent();
  a_->Close();
  Message cancel = real_->TakeSent();
  EXPECT_EQ(cancel.method, "notifications/cancelled");
  EXPECT_EQ(cancel.params.at("requestId"), slow.id);
  EXPECT_EQ(hub_->channel_count(), 1u);
  // A late answer for the closed session goes nowhere.
  real_->FromServer(Parse(R"({"jsonrpc":"2.0","id":)" + json::serialize(slow.id) + R"(,"result":{"content":[]}})"));
  EXPECT_TRUE(sink_a_.delivered.empty());
  EXPECT_TRUE(sink_b_.delivered.empty());
}

TEST_F(UpstreamHubTest, ADisconnectReachesEverySessionAndTheFirstReinitializes) {
  InitializeBoth();
  b_->HandleClientMessage(Parse(R"({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"x","arguments":{}}})"));
  real_->TakeSent();
  real_->events().on_disconnected(Error::Unavailable("child exited"));
  EXPECT_FALSE(hub_->up());
  EXPECT_EQ(sink_b_.Take().error.at("code"), jsonrpc::kConnectionClosed);
  real_->events().on_reconnected();
  Message reinit = real_->TakeSent();
  EXPECT_EQ(reinit.method, "initialize");
  EXPECT_TRUE(real_->sent.empty());  // once, for both
  real_->FromServer(Parse(R"({"jsonrpc":"2.0","id":)" + json::serialize(reinit.id) +
                          R"(,"result":{"protocolVersion":"2025-06-18","capabilities":{},"serverInfo":{"name":"e","version":"2"}}})"));
  EXPECT_TRUE(hub_->up());
  // Each session replays initialized after its own re-initialize; the hub passes none of them.
  EXPECT_EQ(real_->TakeSent().method, "notifications/initialized");
  EXPECT_TRUE(real_->sent.empty());
}

TEST_F(UpstreamHubTest, ServerRequestsReachOnlyTheSessionWhoseStreamCarriedThem) {
  InitializeBoth();
  real_->FromServer(Parse(R"({"jsonrpc":"2.0","id":"s1","method":"sampling/createMessage","params":{}})"));
  Message refused = real_->TakeSent();
  EXPECT_EQ(refused.id, json::value("s1"));
  EXPECT_EQ(refused.error.at("code"), jsonrpc::kMethodNotFound);
  a_->HandleClientMessage(Parse(R"({"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"x","arguments":{}}})"));
  Message call = real_->TakeSent();
  // One session waiting is no proof the request is its: without a relation it is refused.
  real_->FromServer(Parse(R"({"jsonrpc":"2.0","id":"s2","method":"elicitation/create","params":{}})"));
  EXPECT_EQ(real_->TakeSent().error.at("code"), jsonrpc::kMethodNotFound);
  EXPECT_TRUE(sink_a_.delivered.empty());
  // On the stream of a's call (an HTTP upstream says so) it reaches a, and a alone.
  real_->FromServer(Parse(R"({"jsonrpc":"2.0","id":"s3","method":"elicitation/create","params":{"_meta":{"progressToken":"pt"}}})"),
                    call.id);
  Message asked = sink_a_.Take();
  EXPECT_EQ(asked.method, "elicitation/create");
  EXPECT_TRUE(sink_b_.delivered.empty());
  // b cannot report progress on a's behalf; a can, for the token it was given.
  b_->HandleClientMessage(Parse(R"({"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"pt","progress":1}})"));
  EXPECT_TRUE(real_->sent.empty());
  a_->HandleClientMessage(Parse(R"({"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"other","progress":1}})"));
  EXPECT_TRUE(real_->sent.empty());
  a_->HandleClientMessage(Parse(R"({"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"pt","progress":1}})"));
  EXPECT_EQ(real_->TakeSent().method, "notifications/progress");
  a_->HandleClientMessage(Parse(R"({"jsonrpc":"2.0","id":)" + json::serialize(asked.id) + R"(,"result":{"action":"decline"}})"));
  EXPECT_EQ(real_->TakeSent().id, json::value("s3"));
}

TEST_F(UpstreamHubTest, LogMessagesReachOnlyTheirSessionAtTheLevelItAskedFor) {
  InitializeBoth();
  // A stdio server cannot say whom a log message concerns: nobody gets it.
  real_->FromServer(Parse(R"({"jsonrpc":"2.0","method":"notifications/message","params":{"level":"error","data":"secret of a"}})"));
  EXPECT_TRUE(sink_a_.delivered.empty());
  EXPECT_TRUE(sink_b_.delivered.empty());
  // a sets its level: answered by the hub, never sent to the shared server.
  a_->HandleClientMessage(Parse(R"({"jsonrpc":"2.0","id":5,"method":"logging/setLevel","params":{"level":"error"}})"));
  EXPECT_TRUE(real_->sent.empty());
  RunPosted();
  EXPECT_EQ(sink_a_.Take().id, json::value(5));
  b_->HandleClientMessage(Parse(R"({"jsonrpc":"2.0","id":6,"method":"logging/setLevel","params":{"level":"loud"}})"));
  RunPosted();
  EXPECT_EQ(sink_b_.Take().error.at("code"), jsonrpc::kInvalidParams);
  a_->HandleClientMessage(Parse(R"({"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"x","arguments":{}}})"));
  Message call = real_->TakeSent();
  real_->FromServer(Parse(R"({"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"chatter"}})"),
                    call.id);
  EXPECT_TRUE(sink_a_.delivered.empty());  // below a's level
  real_->FromServer(Parse(R"({"jsonrpc":"2.0","method":"notifications/message","params":{"level":"error","data":"for a"}})"),
                    call.id);
  EXPECT_EQ(sink_a_.Take().params.at("data"), json::value("for a"));
  EXPECT_TRUE(sink_b_.delivered.empty());
}

TEST_F(UpstreamHubTest, ResourceUpdatesReachOnlySubscribersListChangesReachAll) {
  InitializeBoth();
  a_->HandleClientMessage(Parse(R"({"jsonrpc":"2.0","id":1,"method":"resources/subscribe","params":{"uri":"test://r/1"}})"));
  Message sub = real_->TakeSent();
  EXPECT_EQ(sub.method, "resources/subscribe");
  real_->FromServer(Parse(R"({"jsonrpc":"2.0","id":)" + json::serialize(sub.id) + R"(,"result":{}})"));
  EXPECT_EQ(sink_a_.Take().id, json::value(1));
  real_->FromServer(Parse(R"({"jsonrpc":"2.0","method":"notifications/resources/updated","params":{"uri":"test://r/1"}})"));
  EXPECT_EQ(sink_a_.Take().method, "notifications/resources/updated");
  EXPECT_TRUE(sink_b_.delivered.empty());
  real_->FromServer(Parse(R"({"jsonrpc":"2.0","method":"notifications/resources/updated","params":{"uri":"test://r/2"}})"));
  EXPECT_TRUE(sink_a_.delivered.empty());
  // b subscribes too: the server is already subscribed; b's unsubscribe leaves a's standing.
  b_->HandleClientMessage(Parse(R"({"jsonrpc":"2.0","id":2,"method":"resources/subscribe","params":{"uri":"test://r/1"}})"));
  b_->HandleClientMessage(Parse(R"({"jsonrpc":"2.0","id":3,"method":"resources/unsubscribe","params":{"uri":"test://r/1"}})"));
  EXPECT_TRUE(real_->sent.empty());
  RunPosted();
  EXPECT_EQ(sink_b_.Take().id, json::value(2));
  EXPECT_EQ(sink_b_.Take().id, json::value(3));
  real_->FromServer(Parse(R"({"jsonrpc":"2.0","method":"notifications/resources/updated","params":{"uri":"test://r/1"}})"));
  EXPECT_EQ(sink_a_.Take().method, "notifications/resources/updated");
  EXPECT_TRUE(sink_b_.delivered.empty());
  // a's session closes: the hub unsubscribes the server itself.
  a_->Close();
  Message unsub = real_->TakeSent();
  EXPECT_EQ(unsub.method, "resources/unsubscribe");
  EXPECT_EQ(unsub.params.at("uri"), json::value("test://r/1"));
  real_->FromServer(Parse(R"({"jsonrpc":"2.0","method":"notifications/tools/list_changed"})"));
  EXPECT_EQ(sink_b_.Take().method, "notifications/tools/list_changed");
}

}  // namespace
}  // namespace tw::gateway
