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
