#include "transport/stateless_channel.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>

#include "mcp/modern.h"
#include "testing/fake_upstream.h"

namespace tw::transport {
namespace {

using testing::ParseMessage;
namespace modern = mcp::modern;

// The relay as the channel sees it: what it was sent, and the sink to answer through.
class ScriptedRelay : public gateway::McpSession {
 public:
  explicit ScriptedRelay(gateway::ClientSink& to) : sink(to) {}
  void Start() override { started = true; }
  void HandleClientMessage(jsonrpc::Message msg) override { got.push_back(std::move(msg)); }
  void Close() override { closed = true; }
  const std::string& protocol_version() const override { return version; }
  size_t pending_requests() const override { return 0; }

  jsonrpc::Message Take() {
    EXPECT_FALSE(got.empty());
    if (got.empty()) return {};
    jsonrpc::Message m = std::move(got.front());
    got.pop_front();
    return m;
  }
  gateway::ClientSink& sink;
  std::deque<jsonrpc::Message> got;
  bool started = false, closed = false;
  std::string version = "2025-11-25";
};

struct Fixture {
  Fixture() {
    channel = std::make_shared<StatelessChannel>(
        "stateless:g", [this](gateway::ClientSink& sink) {
          auto r = std::make_unique<ScriptedRelay>(sink);
          relay = r.get();
          return r;
        },
        "g", "");
    channel->Start();
    jsonrpc::Message init = relay->Take();
    EXPECT_EQ(init.method, "initialize");
    // The channel can be asked for what a 2025 server asks; each request says what its client
    // supports.
    EXPECT_TRUE(init.params.at("capabilities").as_object().contains("elicitation"));
    init_id = init.id;
  }
  void Ready() {
    relay->sink.Deliver(
        jsonrpc::MakeResponse(init_id, json::parse(R"({"protocolVersion":"2025-11-25",)"
                                                   R"("capabilities":{"tools":{}},)"
                                                   R"("serverInfo":{"name":"up","version":"1"}})")),
        init_id);
    EXPECT_EQ(relay->Take().method, "notifications/initialized");
  }
  std::shared_ptr<StreamWriter> Writer() { return std::make_shared<StreamWriter>(io.get_executor()); }
  // Submits `text` (a request whose _meta the test gives) on a fresh writer.
  std::shared_ptr<StreamWriter> Submit(std::string_view text) {
    jsonrpc::Message msg = ParseMessage(text);
    modern::RequestMeta meta;
    EXPECT_EQ(modern::CheckRequest(msg, meta), std::nullopt) << text;
    auto w = Writer();
    channel->Submit(std::move(msg), meta, w);
    return w;
  }
  static json::value Answer(const std::shared_ptr<StreamWriter>& w) {
    EXPECT_TRUE(w->done);
    EXPECT_FALSE(w->queue.empty());
    return w->queue.empty() ? json::value() : json::parse(w->queue.back().data);
  }

  boost::asio::io_context io;
  ScriptedRelay* relay = nullptr;
  std::shared_ptr<StatelessChannel> channel;
  json::value init_id;
};

constexpr std::string_view kMeta =
    R"("_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28",)"
    R"("io.modelcontextprotocol/clientCapabilities":{"elicitation":{}}})";

std::string Call(std::string_view id, std::string_view name, std::string_view extra = "") {
  return R"({"jsonrpc":"2.0","id":)" + std::string(id) +
         R"(,"method":"tools/call","params":{"name":")" + std::string(name) +
         R"(","arguments":{"a":1},)" + std::string(extra) + std::string(kMeta) + "}}";
}

TEST(StatelessChannelTest, RequestsWaitForTheHandshakeThenCrossUnderChannelIds) {
  Fixture f;
  auto w1 = f.Submit(Call("1", "t"));
  auto w2 = f.Submit(Call("1", "t"));  // another client of the grant, the same id
  EXPECT_TRUE(f.relay->got.empty());
  f.Ready();
  jsonrpc::Message a = f.relay->Take(), b = f.relay->Take();
  EXPECT_NE(a.id, b.id);
  // The request keeps its _meta (the server's era decides what becomes of it).
  EXPECT_TRUE(a.params.at("_meta").as_object().contains(modern::kMetaClientCapabilities));
  f.relay->sink.Deliver(jsonrpc::MakeResponse(b.id, json::object{{"content", json::array()}}), b.id);
  EXPECT_FALSE(w1->done);
  json::value answer = Fixture::Answer(w2);
  EXPECT_EQ(answer.at("id"), 1);
  EXPECT_EQ(answer.at("result").at("resultType"), "complete");
  EXPECT_EQ(answer.at("result").at("_meta").at(modern::kMetaServerInfo).at("name"), "up");
}

TEST(StatelessChannelTest, ProgressKeepsTheClientsTokenAndLogsNeedALevel) {
  Fixture f;
  f.Ready();
  auto w = f.Submit(R"({"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"t",)"
                    R"("_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28",)"
                    R"("io.modelcontextprotocol/clientCapabilities":{},"progressToken":"p"}}})");
  jsonrpc::Message sent = f.relay->Take();
  const json::value token = sent.params.at("_meta").at("progressToken");
  EXPECT_NE(token, "p");  // the channel's own: tokens of different clients may be equal
  f.relay->sink.Deliver(
      jsonrpc::MakeNotification("notifications/progress",
                                json::object{{"progressToken", token}, {"progress", 1}}),
      sent.id);
  f.relay->sink.Deliver(jsonrpc::MakeNotification("notifications/message",
                                                  json::object{{"level", "error"}, {"data", "x"}}),
                        sent.id);
  ASSERT_EQ(w->queue.size(), 1u);  // the log message is not sent: no logLevel was asked
  EXPECT_EQ(json::parse(w->queue.front().data).at("params").at("progressToken"), "p");
}

TEST(StatelessChannelTest, AServersQuestionIsAnInputRequiredRoundBoundToTheCall) {
  Fixture f;
  f.Ready();
  auto w = f.Submit(Call("1", "book"));
  jsonrpc::Message call = f.relay->Take();
  f.relay->sink.Deliver(
      jsonrpc::MakeRequest(99, "elicitation/create", json::object{{"message", "Seat?"}}), call.id);
  json::value round = Fixture::Answer(w).at("result");
  EXPECT_EQ(round.at("resultType"), "input_required");
  const std::string state(round.at("requestState").as_string());
  const std::string key(round.at("inputRequests").as_object().begin()->key());
  EXPECT_TRUE(f.relay->got.empty());  // the server's question stays open

  auto other = f.Submit(Call("2", "pay", R"("requestState":")" + state + R"(",)"));
  EXPECT_EQ(Fixture::Answer(other).at("error").at("code"), jsonrpc::kInvalidParams);
  auto retry = f.Submit(Call("3", "book", R"("requestState":")" + state +
                                              R"(","inputResponses":{")" + key +
                                              R"(":{"action":"accept"}},)"));
  jsonrpc::Message answer = f.relay->Take();
  EXPECT_EQ(answer.id, 99);  // the server's question answered
  EXPECT_EQ(answer.result.at("action"), "accept");
  f.relay->sink.Deliver(jsonrpc::MakeResponse(call.id, json::object{{"content", json::array()}}),
                        call.id);
  EXPECT_EQ(Fixture::Answer(retry).at("id"), 3);
  // Used once.
  auto again = f.Submit(Call("4", "book", R"("requestState":")" + state + R"(",)"));
  EXPECT_EQ(Fixture::Answer(again).at("error").at("code"), jsonrpc::kInvalidParams);
}

TEST(StatelessChannelTest, QuestionsTheClientCannotAnswerAreRefusedToTheServer) {
  Fixture f;
  f.Ready();
  auto w = f.Submit(Call("1", "t"));  // declares elicitation, not sampling
  jsonrpc::Message call = f.relay->Take();
  f.relay->sink.Deliver(jsonrpc::MakeRequest(7, "sampling/createMessage", json::object()), call.id);
  jsonrpc::Message refused = f.relay->Take();
  EXPECT_EQ(refused.id, 7);
  EXPECT_EQ(refused.kind, jsonrpc::Kind::kError);
  EXPECT_FALSE(w->done);
  // Nor one that cannot be tied to a request.
  f.relay->sink.Deliver(jsonrpc::MakeRequest(8, "elicitation/create", json::object()), std::nullopt);
  EXPECT_EQ(f.relay->Take().kind, jsonrpc::Kind::kError);
}

TEST(StatelessChannelTest, AHeldCallIsAnsweredLaterToItsRetry) {
  Fixture f;
  f.Ready();
  auto w = f.Submit(Call("1", "pay"));
  jsonrpc::Message call = f.relay->Take();
  f.channel->Held(call.id, "ap1");
  json::value round = Fixture::Answer(w).at("result");
  EXPECT_EQ(round.at("resultType"), "input_required");
  EXPECT_TRUE(round.at("inputRequests").as_object().contains("toolwarden-approval"));
  const std::string state(round.at("requestState").as_string());
  // Approved while nobody waits: the answer is kept for the retry.
  f.relay->sink.Deliver(jsonrpc::MakeResponse(call.id, json::object{{"content", json::array()}}),
                        call.id);
  auto retry = f.Submit(Call("2", "pay", R"("requestState":")" + state + R"(",)"));
  EXPECT_EQ(Fixture::Answer(retry).at("id"), 2);
  // Closing with a held call does not touch its absent stream.
  auto held = f.Submit(Call("3", "pay"));
  f.channel->Held(f.relay->Take().id, "ap2");
  f.channel->Close();
  EXPECT_TRUE(f.relay->closed);
}

TEST(StatelessChannelTest, ClosingTheStreamCancelsTheRequest) {
  Fixture f;
  f.Ready();
  auto w = f.Submit(Call("1", "slow"));
  jsonrpc::Message call = f.relay->Take();
  f.channel->Cancelled(w);
  jsonrpc::Message cancel = f.relay->Take();
  EXPECT_EQ(cancel.method, "notifications/cancelled");
  EXPECT_EQ(cancel.params.at("requestId"), call.id);
  EXPECT_TRUE(f.channel->idle());
}

TEST(StatelessChannelTest, ListenersGetTheChangesTheyAskedForTagged) {
  Fixture f;
  f.Ready();
  auto w = f.Writer();
  f.channel->Listen(json::value("s1"), modern::ListenFilter{.tools = true}, w);
  ASSERT_EQ(w->queue.size(), 1u);
  EXPECT_EQ(json::parse(w->queue.front().data).at("method"), json::value(modern::kAcknowledged));
  f.relay->sink.Deliver(jsonrpc::MakeNotification("notifications/prompts/list_changed", nullptr),
                        std::nullopt);
  f.relay->sink.Deliver(jsonrpc::MakeNotification("notifications/tools/list_changed", nullptr),
                        std::nullopt);
  ASSERT_EQ(w->queue.size(), 2u);
  json::value change = json::parse(w->queue.back().data);
  EXPECT_EQ(change.at("method"), "notifications/tools/list_changed");
  EXPECT_EQ(change.at("params").at("_meta").at(modern::kMetaSubscriptionId), "s1");
}

}  // namespace
}  // namespace tw::transport
