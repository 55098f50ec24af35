#include "gateway/session.h"

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

class SessionTest : public ::testing::Test {
 protected:
  void SetUp() override { MakeSession(R"({"version":"1","default":"allow"})"); }

  void MakeSession(std::string_view policy_text) {
    auto compiled = policy::CompilePolicy(policy_text, "p.json", policy::FileFormat::kJson);
    ASSERT_TRUE(compiled.policy) << policy::FormatDiagnostics("p", compiled.diagnostics);
    policy_ = compiled.policy;
    guard_ = std::make_unique<ToolCallGuard>([this] { return policy_; }, *store_, clock_);
    auto upstream = std::make_unique<FakeUpstream>();
    upstream_ = upstream.get();
    session_ = std::make_unique<Session>("s1", std::move(upstream), *guard_, sink_);
    session_->Start();
  }

  void FromClient(std::string_view text) { session_->HandleClientMessage(Parse(text)); }
  void FromServer(std::string_view text, std::optional<json::value> related = std::nullopt) {
    upstream_->FromServer(Parse(text), std::move(related));
  }
  Message TakeSent() {
    EXPECT_FALSE(upstream_->sent.empty());
    Message m = upstream_->sent.front();
    upstream_->sent.pop_front();
    return m;
  }
  std::pair<Message, std::optional<json::value>> TakeDelivered() {
    EXPECT_FALSE(sink_.delivered.empty());
    auto d = sink_.delivered.front();
    sink_.delivered.pop_front();
    return d;
  }

  std::shared_ptr<const policy::Policy> policy_;
  std::unique_ptr<limits::CounterStore> store_ = limits::MakeMemoryStore();
  testing::FakeClock clock_;
  std::unique_ptr<ToolCallGuard> guard_;
  RecordingSink sink_;
  FakeUpstream* upstream_ = nullptr;
  std::unique_ptr<Session> session_;
};

TEST_F(SessionTest, RemapsRequestIdsAndRestoresThemOnResponses) {
  FromClient(R"({"jsonrpc":"2.0","id":"abc","method":"resources/list"})");
  FromClient(R"({"jsonrpc":"2.0","id":1,"method":"prompts/list"})");
  Message a = TakeSent();
  Message b = TakeSent();
  ASSERT_TRUE(a.id.is_int64());
  EXPECT_NE(a.id, b.id);
  FromServer(R"({"jsonrpc":"2.0","id":)" + json::serialize(b.id) + R"(,"result":{"prompts":[]}})");
  FromServer(R"({"jsonrpc":"2.0","id":)" + json::serialize(a.id) +
             R"(,"result":{"resources":[]}})");
  auto [rb, rel_b] = TakeDelivered();
  EXPECT_EQ(rb.id, json::value(1));
  EXPECT_EQ(rel_b, json::value(1));
  auto [ra, rel_a] = TakeDelivered();
  EXPECT_EQ(ra.id, json::value("abc"));
  EXPECT_EQ(session_->pending_requests(), 0u);
}

TEST_F(SessionTest, RejectsADuplicatePendingIdWithoutForwarding) {
  FromClient(R"({"jsonrpc":"2.0","id":5,"method":"ping"})");
  FromClient(R"({"jsonrpc":"2.0","id":5,"method":"ping"})");
  EXPECT_EQ(upstream_->sent.size(), 1u);
  auto [m, rel] = TakeDelivered();
  EXPECT_EQ(m.kind, jsonrpc::Kind::kError);
  EXPECT_EQ(m.error.at("code"), json::value(jsonrpc::kInvalidRequest));
}

TEST_F(SessionTest, DeniedToolCallIsAnsweredLocallyAndNeverForwarded) {
  MakeSession(R"({"version":"1","default":"deny","tools":{"echo":{}}})");
  FromClient(
      R"({"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"rm","arguments":{}}})");
  EXPECT_TRUE(upstream_->sent.empty());
  auto [m, rel] = TakeDelivered();
  EXPECT_EQ(m.id, json::value(9));
  EXPECT_EQ(m.result.at("isError"), json::value(true));
  EXPECT_EQ(m.result.at("_meta").at("toolwarden/decision").at("rule"), json::value("default"));

  FromClient(R"({"jsonrpc":"2.0","id":10,"method":"tools/call","params":{"name":"echo"}})");
  Message forwarded = TakeSent();
  EXPECT_EQ(forwarded.method, "tools/call");
  EXPECT_EQ(forwarded.params.at("name"), json::value("echo"));
}

TEST_F(SessionTest, MalformedToolCallParamsGetInvalidParams) {
  FromClient(R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"arguments":{}}})");
  FromClient(
      R"({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"x","arguments":7}})");
  FromClient(R"({"jsonrpc":"2.0","id":3,"method":"tools/call"})");
  EXPECT_TRUE(upstream_->sent.empty());
  for (int id = 1; id <= 3; ++id) {
    auto [m, rel] = TakeDelivered();
    EXPECT_EQ(m.id, json::value(id));
    EXPECT_EQ(m.error.at("code"), json::value(jsonrpc::kInvalidParams));
  }
}

TEST_F(SessionTest, HidesToolsOnEveryPageOfToolsList) {
  MakeSession(R"({"version":"1","default":"allow","hide":["secret_*"]})");
  for (int page = 0; page < 2; ++page) {
    FromClient(R"({"jsonrpc":"2.0","id":1,"method":"tools/list"})");
    Message sent = TakeSent();
    FromServer(R"({"jsonrpc":"2.0","id":)" + json::serialize(sent.id) +
               R"(,"result":{"tools":[{"name":"secret_a"},{"name":"ok"}],"nextCursor":"n"}})");
    auto [m, rel] = TakeDelivered();
    EXPECT_EQ(json::serialize(m.result), R"({"tools":[{"name":"ok"}],"nextCursor":"n"})");
  }
}

TEST_F(SessionTest, FiltersCapabilitiesAtInitialize) {
  FromClient(
      R"({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18",
      "capabilities":{"sampling":{},"experimental":{"x":{}}},"clientInfo":{"name":"c","version":"1"}}})");
  Message init = TakeSent();
  EXPECT_EQ(json::serialize(init.params.at("capabilities")), R"({"sampling":{}})");
  FromServer(
      R"({"jsonrpc":"2.0","id":)" + json::serialize(init.id) +
      R"(,"result":{"protocolVersion":"2025-06-18","capabilities":{"tools":{},"experimental":{}},
             "serverInfo":{"name":"s","version":"2"}}})");
  auto [m, rel] = TakeDelivered();
  EXPECT_EQ(json::serialize(m.result.at("capabilities")), R"({"tools":{}})");
  EXPECT_EQ(m.result.at("serverInfo").at("name"), json::value("s"));
  EXPECT_EQ(session_->protocol_version(), "2025-06-18");
}

TEST_F(SessionTest, RefusesAnUnsupportedUpstreamProtocolVersion) {
  FromClient(
      R"({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18"}})");
  Message init = TakeSent();
  FromServer(R"({"jsonrpc":"2.0","id":)" + json::serialize(init.id) +
             R"(,"result":{"protocolVersion":"1999-01-01","capabilities":{}}})");
  auto [m, rel] = TakeDelivered();
  EXPECT_EQ(m.kind, jsonrpc::Kind::kError);
  EXPECT_NE(json::serialize(m.error).find("1999-01-01"), std::string::npos);
}

TEST_F(SessionTest, RemapsCancellationToTheUpstreamId) {
  FromClient(R"({"jsonrpc":"2.0","id":"c1","method":"tools/call","params":{"name":"slow"}})");
  Message call = TakeSent();
  FromClient(
      R"({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"c1","reason":"user"}})");
  Message cancel = TakeSent();
  EXPECT_EQ(cancel.params.at("requestId"), call.id);
  // A cancel for something never forwarded is not sent upstream.
  FromClient(
      R"({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"zzz"}})");
  EXPECT_TRUE(upstream_->sent.empty());
}

TEST_F(SessionTest, RelaysServerRequestsWithRemappedIdsAndRoutesTheAnswerBack) {
  FromClient(R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"sample"}})");
  Message call = TakeSent();
  FromServer(
      R"({"jsonrpc":"2.0","id":0,"method":"sampling/createMessage","params":{"messages":[]}})",
      call.id);
  auto [req, rel] = TakeDelivered();
  EXPECT_EQ(req.method, "sampling/createMessage");
  EXPECT_EQ(rel, json::value(1));  // belongs to the client's tools/call
  FromClient(R"({"jsonrpc":"2.0","id":)" + json::serialize(req.id) +
             R"(,"result":{"role":"assistant","content":{"type":"text","text":"hi"}}})");
  Message answer = TakeSent();
  EXPECT_EQ(answer.id, json::value(0));  // the server's own id restored
  EXPECT_EQ(answer.kind, jsonrpc::Kind::kResponse);
}

TEST_F(SessionTest, RoutesProgressByTokenToItsRequest) {
  FromClient(
      R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","_meta":{"progressToken":"p1"}}})");
  FromClient(
      R"({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"b","_meta":{"progressToken":"p2"}}})");
  FromServer(
      R"({"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"p2","progress":1}})");
  auto [m, rel] = TakeDelivered();
  EXPECT_EQ(rel, json::value(2));
}

TEST_F(SessionTest, UpstreamDisconnectFailsEveryRequestInFlight) {
  FromClient(R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a"}})");
  FromClient(R"({"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":"x"}})");
  upstream_->events().on_disconnected(Error::Unavailable("child exited with status 1"));
  ASSERT_EQ(sink_.delivered.size(), 2u);
  for (auto& [m, rel] : sink_.delivered) {
    EXPECT_EQ(m.kind, jsonrpc::Kind::kError);
    EXPECT_EQ(m.error.at("code"), json::value(jsonrpc::kConnectionClosed));
    EXPECT_NE(json::serialize(m.error).find("child exited"), std::string::npos);
  }
  EXPECT_EQ(session_->pending_requests(), 0u);
}

TEST_F(SessionTest, ReplaysInitializeAfterReconnectAndSwallowsTheAnswer) {
  FromClient(
      R"({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{}}})");
  Message init = TakeSent();
  FromServer(R"({"jsonrpc":"2.0","id":)" + json::serialize(init.id) +
             R"(,"result":{"protocolVersion":"2025-06-18","capabilities":{}}})");
  TakeDelivered();
  upstream_->events().on_disconnected(Error::Unavailable("crash"));
  upstream_->events().on_reconnected();
  Message again = TakeSent();
  EXPECT_EQ(again.method, "initialize");
  EXPECT_EQ(again.params, init.params);
  FromServer(R"({"jsonrpc":"2.0","id":)" + json::serialize(again.id) +
             R"(,"result":{"protocolVersion":"2025-06-18","capabilities":{}}})");
  EXPECT_TRUE(sink_.delivered.empty());
  EXPECT_EQ(TakeSent().method, "notifications/initialized");
}

TEST_F(SessionTest, RequestFailureBecomesAnErrorForThatRequestOnly) {
  FromClient(R"({"jsonrpc":"2.0","id":"x","method":"ping"})");
  Message ping = TakeSent();
  upstream_->events().on_request_failed(ping.id, Error::Timeout("no answer in 30s"), true);
  auto [m, rel] = TakeDelivered();
  EXPECT_EQ(m.id, json::value("x"));
  EXPECT_NE(json::serialize(m.error).find("no answer in 30s"), std::string::npos);
}

}  // namespace
}  // namespace tw::gateway

#include <filesystem>

#include "audit/audit.h"
#include "common/random.h"
#include "testing/manual_loop.h"

namespace tw::gateway {
namespace {

// Group commit: a decided call is neither forwarded nor answered until its audit record is
// durable; the records are written by the audit log's writer thread.
TEST(GroupCommitTest, CallsWaitForTheirRecord) {
  const auto path = std::filesystem::temp_directory_path() / ("tw-gc-" + RandomHex(8) + ".db");
  const std::string spec = "sqlite:" + path.string();
  {
    auto log = audit::OpenAuditLog(spec, "");
    ASSERT_TRUE(log) << log.error().message();
    auto compiled = policy::CompilePolicy(
        R"({"version":"1","default":"allow","tools":{"drop":{"action":"deny","reason":"no"}}})",
        "p.json", policy::FileFormat::kJson);
    std::shared_ptr<const policy::Policy> policy = compiled.policy;
    auto store = limits::MakeMemoryStore();
    testing::FakeClock clock;
    testing::ManualLoop loop;
    ToolCallGuard guard(GuardDeps{.policies = [&] { return policy; },
                                  .counters = store.get(),
                                  .clock = &clock,
                                  .server = "srv",
                                  .audit = log->get(),
                                  .group_commit = loop.Poster()});
    auto upstream = std::make_unique<FakeUpstream>();
    FakeUpstream* up = upstream.get();
    RecordingSink sink;
    Session session("s1", std::move(upstream), guard, sink, "g");
    session.Start();
    session.HandleClientMessage(Parse(R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"m":1}}})"));
    session.HandleClientMessage(Parse(R"({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"m":2}}})"));
    session.HandleClientMessage(Parse(R"({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"drop","arguments":{}}})"));
    // A duplicate id while the first is being recorded is refused at once.
    session.HandleClientMessage(Parse(R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{}}})"));
    EXPECT_EQ(sink.Take().error.at("code"), jsonrpc::kInvalidRequest);
    EXPECT_TRUE(up->sent.empty());          // nothing forwarded before the record is durable
    EXPECT_TRUE(sink.delivered.empty());    // nor the denial answered
    EXPECT_EQ(session.pending_requests(), 3u);
    // The writer commits meanwhile; the calls go on only when the loop runs the completions.
    ASSERT_EQ(loop.Run(4), 4u);  // the three calls and the refused duplicate
    auto after = audit::QueryAudit(spec, {});
    ASSERT_TRUE(after);
    EXPECT_EQ(after->size(), 4u);
    ASSERT_EQ(up->sent.size(), 2u);
    EXPECT_EQ(up->sent[0].params.at("arguments").at("m"), 1);
    EXPECT_EQ(up->sent[1].params.at("arguments").at("m"), 2);
    Message denied = sink.Take();
    EXPECT_EQ(denied.id, json::value(3));
    EXPECT_TRUE(denied.result.at("isError").as_bool());
    // The client goes away before the two forwarded calls are answered: their records say so.
    session.Close();
    (*log)->Flush();
    auto closed = audit::QueryAudit(spec, {});
    ASSERT_TRUE(closed);
    int lost = 0, still_pending = 0;
    for (const audit::Record& r : *closed) {
      lost += r.outcome == "transport_error";
      still_pending += r.outcome == "pending";
    }
    EXPECT_EQ(lost, 2);
    EXPECT_EQ(still_pending, 0);
  }
  for (auto suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path.string() + suffix);
}

}  // namespace
}  // namespace tw::gateway
