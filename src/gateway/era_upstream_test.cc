#include "gateway/era_upstream.h"

#include <gtest/gtest.h>

#include "mcp/modern.h"
#include "testing/fake_upstream.h"

namespace tw::gateway {
namespace {

using testing::FakeUpstream;
using testing::ParseMessage;
namespace modern = mcp::modern;

// The relay's side: what the adapter delivers.
struct Relay {
  std::vector<std::pair<jsonrpc::Message, std::optional<json::value>>> got;
  std::vector<json::value> failed;
  Upstream::Events Events() {
    Upstream::Events e;
    e.on_message = [this](jsonrpc::Message m, std::optional<json::value> r) {
      got.emplace_back(std::move(m), std::move(r));
    };
    e.on_request_failed = [this](const json::value& id, const Error&, bool) {
      failed.push_back(id);
    };
    return e;
  }
};

struct Fixture {
  explicit Fixture(EraUpstream::Mode mode) {
    auto f = std::make_unique<FakeUpstream>();
    server = f.get();
    era = std::make_unique<EraUpstream>(std::move(f), mode);
    era->Start(relay.Events());
  }
  void Initialize() {
    era->Send(ParseMessage(
        R"({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18",)"
        R"("capabilities":{"elicitation":{}},"clientInfo":{"name":"agent","version":"1"}}})"));
  }
  FakeUpstream* server;
  Relay relay;
  std::unique_ptr<EraUpstream> era;
};

json::value DiscoverResult() {
  return json::parse(R"({"supportedVersions":["2026-07-28"],)"
                     R"("capabilities":{"tools":{"listChanged":true},"resources":{"subscribe":true}},)"
                     R"("_meta":{"io.modelcontextprotocol/serverInfo":{"name":"modern","version":"2"}},)"
                     R"("instructions":"hi","resultType":"complete"})");
}

TEST(EraUpstreamTest, AModernServerIsRelayedWithoutAHandshake) {
  Fixture f(EraUpstream::Mode::kAuto);
  f.Initialize();
  // The relay's initialize becomes a discovery probe carrying the client's capabilities.
  jsonrpc::Message probe = f.server->TakeSent();
  EXPECT_EQ(probe.method, "server/discover");
  auto meta = modern::ReadRequestMeta(probe.params);
  ASSERT_TRUE(meta);
  EXPECT_EQ(meta->version, "2026-07-28");
  EXPECT_TRUE(meta->client_capabilities.contains("elicitation"));
  // A request the relay sends meanwhile waits for the era.
  f.era->Send(ParseMessage(R"({"jsonrpc":"2.0","method":"notifications/initialized"})"));
  f.era->Send(ParseMessage(R"({"jsonrpc":"2.0","id":2,"method":"tools/list"})"));
  EXPECT_TRUE(f.server->sent.empty());

  f.server->FromServer(jsonrpc::MakeResponse(probe.id, DiscoverResult()), probe.id);
  EXPECT_EQ(f.era->era(), EraUpstream::Era::kModern);
  ASSERT_EQ(f.relay.got.size(), 1u);
  const jsonrpc::Message& init = f.relay.got[0].first;
  EXPECT_EQ(init.id, 1);
  EXPECT_EQ(init.result.at("protocolVersion"), "2025-06-18");  // the client's, which we speak
  EXPECT_EQ(init.result.at("serverInfo").at("name"), "modern");
  EXPECT_EQ(init.result.at("instructions"), "hi");
  EXPECT_FALSE(init.result.at("capabilities").at("resources").as_object().contains("subscribe"));

  // Then: a listen for the list changes the server offers, and the queued request with the
  // era's _meta; the initialized notification is not sent.
  jsonrpc::Message listen = f.server->TakeSent();
  EXPECT_EQ(listen.method, "subscriptions/listen");
  EXPECT_TRUE(listen.params.at("notifications").at("toolsListChanged").as_bool());
  jsonrpc::Message list = f.server->TakeSent();
  EXPECT_EQ(list.method, "tools/list");
  EXPECT_EQ(list.params.at("_meta").at(modern::kMetaProtocolVersion), "2026-07-28");
  EXPECT_EQ(list.params.at("_meta").at(modern::kMetaClientInfo).at("name"), "agent");
  EXPECT_TRUE(f.server->sent.empty());

  // A list change on the listen stream reaches the relay as the server's own notification.
  f.server->FromServer(ParseMessage(
      R"({"jsonrpc":"2.0","method":"notifications/subscriptions/acknowledged","params":{}})"),
      listen.id);
  f.server->FromServer(
      ParseMessage(R"({"jsonrpc":"2.0","method":"notifications/tools/list_changed","params":)"
                   R"({"_meta":{"io.modelcontextprotocol/subscriptionId":"x"}}})"),
      listen.id);
  ASSERT_EQ(f.relay.got.size(), 2u);
  EXPECT_EQ(f.relay.got[1].first.method, "notifications/tools/list_changed");
  EXPECT_FALSE(f.relay.got[1].second.has_value());
  EXPECT_FALSE(f.relay.got[1].first.params.as_object().contains("_meta"));

  // ping and logging/setLevel are the adapter's to answer; the level travels in _meta after.
  f.era->Send(ParseMessage(R"({"jsonrpc":"2.0","id":3,"method":"ping"})"));
  f.era->Send(ParseMessage(
      R"({"jsonrpc":"2.0","id":4,"method":"logging/setLevel","params":{"level":"warning"}})"));
  EXPECT_TRUE(f.server->sent.empty());
  ASSERT_EQ(f.relay.got.size(), 4u);
  f.era->Send(ParseMessage(
      R"({"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"t","_meta":{)"
      R"("io.modelcontextprotocol/clientCapabilities":{"sampling":{}}}}})"));
  jsonrpc::Message call = f.server->TakeSent();
  EXPECT_EQ(call.params.at("_meta").at(modern::kMetaLogLevel), "warning");
  // A stateless client's own capabilities are kept, not replaced by the handshake's.
  EXPECT_TRUE(call.params.at("_meta").at(modern::kMetaClientCapabilities).as_object().contains(
      "sampling"));
  EXPECT_EQ(modern::MirrorHeaderLines(call),
            "MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/call\r\nMcp-Name: t\r\n");
  // A listen the server ends after acknowledging it is opened again.
  f.server->FromServer(jsonrpc::MakeResponse(listen.id, json::object()), listen.id);
  EXPECT_EQ(f.server->TakeSent().method, "subscriptions/listen");
}

// Brings a fixture to the modern era, with nothing left to read.
void MakeModern(Fixture& f) {
  f.Initialize();
  jsonrpc::Message probe = f.server->TakeSent();
  f.server->FromServer(jsonrpc::MakeResponse(probe.id, DiscoverResult()), probe.id);
  f.server->sent.clear();
  f.relay.got.clear();
}

TEST(EraUpstreamTest, ALegacyClientIsAskedTheServersQuestionsAndTheCallIsRetried) {
  Fixture f(EraUpstream::Mode::kAuto);
  MakeModern(f);
  f.era->Send(ParseMessage(
      R"({"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"book","arguments":{"n":1}}})"));
  jsonrpc::Message call = f.server->TakeSent();
  f.server->FromServer(
      jsonrpc::MakeResponse(call.id, json::parse(R"({"resultType":"input_required","requestState":"s1",)"
                                                 R"("inputRequests":{"who":{"method":"elicitation/create",)"
                                                 R"("params":{"message":"Name?"}},"roots":{"method":"roots/list"}}})")),
      call.id);
  // Two questions, asked as server requests of the call; the result does not reach the relay.
  ASSERT_EQ(f.relay.got.size(), 2u);
  for (auto& [msg, related] : f.relay.got) {
    EXPECT_TRUE(msg.IsRequest());
    EXPECT_EQ(related, json::value(7));
  }
  const jsonrpc::Message& who = f.relay.got[0].first.method == "elicitation/create"
                                    ? f.relay.got[0].first
                                    : f.relay.got[1].first;
  const jsonrpc::Message& roots = f.relay.got[0].first.method == "roots/list"
                                      ? f.relay.got[0].first
                                      : f.relay.got[1].first;
  EXPECT_EQ(who.params.at("message"), "Name?");
  f.era->Send(jsonrpc::MakeResponse(who.id, json::object{{"action", "accept"}}));
  EXPECT_TRUE(f.server->sent.empty());  // one answer is missing still
  f.era->Send(jsonrpc::MakeResponse(roots.id, json::object{{"roots", json::array()}}));
  jsonrpc::Message retry = f.server->TakeSent();
  EXPECT_EQ(retry.id, 7);
  EXPECT_EQ(retry.params.at("arguments"), (json::object{{"n", 1}}));
  EXPECT_EQ(retry.params.at("requestState"), "s1");
  EXPECT_EQ(retry.params.at("inputResponses").at("who").at("action"), "accept");
  EXPECT_TRUE(retry.params.at("inputResponses").as_object().contains("roots"));
  // The final answer reaches the relay.
  f.server->FromServer(jsonrpc::MakeResponse(7, json::object{{"content", json::array()}}), 7);
  ASSERT_EQ(f.relay.got.size(), 3u);
  EXPECT_EQ(f.relay.got[2].first.id, 7);
  EXPECT_TRUE(f.relay.got[2].first.IsResponse());
}

TEST(EraUpstreamTest, AQuestionTheLegacyClientRefusesEndsTheCall) {
  Fixture f(EraUpstream::Mode::kAuto);
  MakeModern(f);
  f.era->Send(ParseMessage(R"({"jsonrpc":"2.0","id":8,"method":"prompts/get","params":{"name":"p"}})"));
  jsonrpc::Message call = f.server->TakeSent();
  f.server->FromServer(
      jsonrpc::MakeResponse(call.id, json::parse(R"({"resultType":"input_required","inputRequests":)"
                                                 R"({"q":{"method":"sampling/createMessage","params":{}}}})")),
      call.id);
  ASSERT_EQ(f.relay.got.size(), 1u);
  f.era->Send(jsonrpc::MakeError(f.relay.got[0].first.id, jsonrpc::kMethodNotFound, "no sampling"));
  ASSERT_EQ(f.relay.got.size(), 2u);
  EXPECT_EQ(f.relay.got[1].first.kind, jsonrpc::Kind::kError);
  EXPECT_EQ(f.relay.got[1].first.id, 8);
  EXPECT_TRUE(f.server->sent.empty());
}

TEST(EraUpstreamTest, AModernClientsInputRequiredCrossesAsItIs) {
  Fixture f(EraUpstream::Mode::kAuto);
  MakeModern(f);
  f.era->Send(ParseMessage(R"({"jsonrpc":"2.0","id":"c1","method":"tools/call","params":{"name":"t",)"
                           R"("_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28",)"
                           R"("io.modelcontextprotocol/clientCapabilities":{"elicitation":{}}}}})"));
  jsonrpc::Message call = f.server->TakeSent();
  f.server->FromServer(
      jsonrpc::MakeResponse(call.id, json::parse(R"({"resultType":"input_required","inputRequests":)"
                                                 R"({"q":{"method":"elicitation/create","params":{}}}})")),
      call.id);
  ASSERT_EQ(f.relay.got.size(), 1u);
  EXPECT_EQ(f.relay.got[0].first.result.at("resultType"), "input_required");
}

TEST(EraUpstreamTest, ToolParametersMarkedForHeadersAreMirroredAndInvalidToolsLeftOut) {
  Fixture f(EraUpstream::Mode::kAuto);
  MakeModern(f);
  f.era->Send(ParseMessage(R"({"jsonrpc":"2.0","id":1,"method":"tools/list"})"));
  jsonrpc::Message list = f.server->TakeSent();
  f.server->FromServer(
      jsonrpc::MakeResponse(list.id, json::parse(
          R"({"tools":[{"name":"q","inputSchema":{"type":"object","properties":)"
          R"({"region":{"type":"string","x-mcp-header":"Region"}}}},)"
          R"({"name":"bad","inputSchema":{"properties":{"n":{"type":"number","x-mcp-header":"N"}}}}]})")),
      list.id);
  ASSERT_EQ(f.relay.got.size(), 1u);
  const json::array& tools = f.relay.got[0].first.result.at("tools").as_array();
  ASSERT_EQ(tools.size(), 1u);
  EXPECT_EQ(tools[0].at("name"), "q");
  f.era->Send(ParseMessage(
      R"({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"q","arguments":{"region":"eu"}}})"));
  EXPECT_EQ(f.server->TakeSent().http_headers, "Mcp-Param-Region: eu\r\n");
}

TEST(EraUpstreamTest, ALegacyServerGetsTheHandshakeAndNoModernMeta) {
  Fixture f(EraUpstream::Mode::kAuto);
  f.Initialize();
  jsonrpc::Message probe = f.server->TakeSent();
  f.era->Send(ParseMessage(R"({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"t",)"
                           R"("_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28",)"
                           R"("progressToken":7}}})"));
  // What a legacy server answers to a request before initialize.
  f.server->FromServer(jsonrpc::MakeError(probe.id, jsonrpc::kMethodNotFound, "Method not found"),
                       probe.id);
  EXPECT_EQ(f.era->era(), EraUpstream::Era::kLegacy);
  EXPECT_TRUE(f.relay.got.empty());  // the probe's answer is not the relay's
  jsonrpc::Message init = f.server->TakeSent();
  EXPECT_EQ(init.method, "initialize");
  EXPECT_EQ(init.id, 1);
  jsonrpc::Message call = f.server->TakeSent();
  EXPECT_EQ(call.params.at("_meta"), (json::object{{"progressToken", 7}}));
  EXPECT_EQ(modern::MirrorHeaderLines(call), "");
}

TEST(EraUpstreamTest, AProbeThatFailsMeansLegacyInAutoAndAnErrorInModern) {
  Fixture a(EraUpstream::Mode::kAuto);
  a.Initialize();
  jsonrpc::Message probe = a.server->TakeSent();
  a.server->events().on_request_failed(probe.id, Error::Unavailable("HTTP 400"), true);
  EXPECT_EQ(a.era->era(), EraUpstream::Era::kLegacy);
  EXPECT_EQ(a.server->TakeSent().method, "initialize");
  EXPECT_TRUE(a.relay.failed.empty());

  Fixture m(EraUpstream::Mode::kModern);
  m.Initialize();
  probe = m.server->TakeSent();
  m.server->events().on_request_failed(probe.id, Error::Unavailable("HTTP 400"), true);
  ASSERT_EQ(m.relay.got.size(), 1u);
  EXPECT_EQ(m.relay.got[0].first.kind, jsonrpc::Kind::kError);
  EXPECT_EQ(m.relay.got[0].first.id, 1);
  EXPECT_TRUE(m.server->sent.empty());  // no handshake is attempted
}

TEST(EraUpstreamTest, LegacyModeNeverProbes) {
  Fixture f(EraUpstream::Mode::kLegacy);
  f.Initialize();
  EXPECT_EQ(f.server->TakeSent().method, "initialize");
}

TEST(EraUpstreamTest, AServerThatRestartsIsProbedAgain) {
  Fixture f(EraUpstream::Mode::kAuto);
  f.Initialize();
  jsonrpc::Message probe = f.server->TakeSent();
  f.server->FromServer(jsonrpc::MakeResponse(probe.id, DiscoverResult()), probe.id);
  f.server->sent.clear();
  f.server->events().on_disconnected(Error::Unavailable("exited"));
  f.Initialize();
  EXPECT_EQ(f.server->TakeSent().method, "server/discover");
}

}  // namespace
}  // namespace tw::gateway
