// What crosses the gateway and what does not: the protocol allow-lists, tool identity, exact
// numbers — each found as a bypass once, each pinned here.
#include <gtest/gtest.h>

#include <filesystem>

#include "audit/audit.h"
#include "common/random.h"
#include "gateway/session.h"
#include "policy/loader.h"
#include "testing/fake_clock.h"
#include "testing/fake_upstream.h"

namespace tw::gateway {
namespace {

using jsonrpc::Message;
using testing::FakeUpstream;
using testing::RecordingSink;

Message Parse(std::string_view text) { return testing::ParseMessage(text); }

constexpr std::string_view kInit =
    R"({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}})";
constexpr std::string_view kTools =
    R"({"tools":[{"name":"echo","inputSchema":{"type":"object","properties":{"message":{"type":"string"},)"
    R"("amount":{"type":"number"}},"required":["message"]}},{"name":"secret_tool"}]})";

class EnforcementTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = std::filesystem::temp_directory_path() / ("tw-enf-" + RandomHex(8) + ".db");
    spec_ = "sqlite:" + path_.string();
    auto log = audit::OpenAuditLog(spec_, "");
    ASSERT_TRUE(log) << log.error().message();
    audit_ = std::move(*log);
    Make(R"({"version":"1","default":"allow","hide":["secret_tool"],
             "tools":{"echo":{"deny_if":[{"path":"args.amount","op":"gt","value":100}]}}})");
  }
  void TearDown() override {
    session_.reset();
    audit_.reset();
    for (auto suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path_.string() + suffix);
  }

  void Make(std::string_view policy_text, UnlistedTools unlisted = UnlistedTools::kDeny) {
    auto compiled = policy::CompilePolicy(policy_text, "p.json", policy::FileFormat::kJson);
    ASSERT_TRUE(compiled.policy) << policy::FormatDiagnostics("p", compiled.diagnostics);
    policy_ = compiled.policy;
    catalog_ = std::make_unique<ToolCatalog>("srv", unlisted, SchemaMode::kEnforce);
    guard_ = std::make_unique<ToolCallGuard>(GuardDeps{.policies = [this] { return policy_; },
                                                       .counters = store_.get(),
                                                       .clock = &clock_,
                                                       .server = "srv",
                                                       .catalog = catalog_.get(),
                                                       .audit = audit_.get()});
    auto upstream = std::make_unique<FakeUpstream>();
    upstream_ = upstream.get();
    session_ = std::make_unique<Session>("s1", std::move(upstream), *guard_, sink_, "g1");
    session_->Start();
  }

  // initialize, then the gateway answers with the server's tool list once asked.
  void Initialize() {
    From(kInit);
    Message init = Sent();
    Server(R"({"jsonrpc":"2.0","id":)" + json::serialize(init.id) +
           R"(,"result":{"protocolVersion":"2025-06-18","capabilities":{"tools":{}},"serverInfo":{"name":"s","version":"1"}}})");
    sink_.Take();
    From(R"({"jsonrpc":"2.0","method":"notifications/initialized"})");
    EXPECT_EQ(Sent().method, "notifications/initialized");
  }
  void ListTools() {
    From(R"({"jsonrpc":"2.0","id":"l","method":"tools/list"})");
    Message list = Sent();
    Server(R"({"jsonrpc":"2.0","id":)" + json::serialize(list.id) + R"(,"result":)" +
           std::string(kTools) + "}");
    sink_.Take();
  }

  void From(std::string_view text) { session_->HandleClientMessage(Parse(text)); }
  void Server(std::string_view text) { upstream_->FromServer(Parse(text)); }
  Message Sent() { return upstream_->TakeSent(); }
  std::vector<audit::Record> Records() {
    audit_->Flush();
    auto r = audit::QueryAudit(spec_, {});
    EXPECT_TRUE(r);
    return r ? *r : std::vector<audit::Record>{};
  }

  std::filesystem::path path_;
  std::string spec_;
  std::unique_ptr<audit::AuditLog> audit_;
  std::shared_ptr<const policy::Policy> policy_;
  std::unique_ptr<limits::CounterStore> store_ = limits::MakeMemoryStore();
  testing::FakeClock clock_;
  std::unique_ptr<ToolCatalog> catalog_;
  std::unique_ptr<ToolCallGuard> guard_;
  RecordingSink sink_;
  FakeUpstream* upstream_ = nullptr;
  std::unique_ptr<Session> session_;
};

TEST_F(EnforcementTest, AToolsCallNotificationIsDroppedAndAudited) {
  Initialize();
  ListTools();
  From(R"({"jsonrpc":"2.0","method":"tools/call","params":{"name":"echo","arguments":{"message":"x"}}})");
  EXPECT_TRUE(upstream_->sent.empty());
  EXPECT_TRUE(sink_.delivered.empty());  // a notification gets no answer
  auto records = Records();
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].decision, "dropped");
  EXPECT_EQ(records[0].tool, "echo");
  EXPECT_EQ(records[0].rule, "protocol");
  EXPECT_EQ(records[0].grant, "g1");
  EXPECT_EQ(records[0].outcome, "not_forwarded");
}

TEST_F(EnforcementTest, UnknownMethodsAreRefusedAndUnknownNotificationsDropped) {
  Initialize();
  for (const char* text :
       {R"({"jsonrpc":"2.0","id":1,"method":"tools/execute","params":{}})",
        R"({"jsonrpc":"2.0","id":2,"method":"sampling/createMessage","params":{}})",
        R"({"jsonrpc":"2.0","id":3,"method":"tasks/result","params":{"taskId":"t"}})",
        R"({"jsonrpc":"2.0","id":4,"method":"Tools/Call","params":{"name":"echo"}})",
        R"({"jsonrpc":"2.0","id":5,"method":"tools/call ","params":{"name":"echo"}})",
        R"({"jsonrpc":"2.0","id":6,"method":"elicitation/create","params":{}})"}) {
    SCOPED_TRACE(text);
    From(text);
    Message answer = sink_.Take();
    EXPECT_EQ(answer.error.at("code"), jsonrpc::kMethodNotFound);
  }
  for (const char* text : {R"({"jsonrpc":"2.0","method":"resources/read","params":{"uri":"x"}})",
                           R"({"jsonrpc":"2.0","method":"notifications/whatever"})",
                           R"({"jsonrpc":"2.0","method":"notifications/message","params":{}})"}) {
    SCOPED_TRACE(text);
    From(text);
  }
  EXPECT_TRUE(upstream_->sent.empty());
  EXPECT_EQ(Records().size(), 3u);
  // What MCP defines still crosses.
  From(R"({"jsonrpc":"2.0","id":9,"method":"resources/list"})");
  EXPECT_EQ(Sent().method, "resources/list");
  From(R"({"jsonrpc":"2.0","method":"notifications/roots/list_changed"})");
  EXPECT_EQ(Sent().method, "notifications/roots/list_changed");
}

TEST_F(EnforcementTest, ExtensionMethodsCrossOnlyWhenConfigured) {
  Initialize();
  session_->SetExtensionMethods({"x-vendor/ping", "notifications/x-vendor/hello", "tools/call"});
  From(R"({"jsonrpc":"2.0","id":1,"method":"x-vendor/ping"})");
  EXPECT_EQ(Sent().method, "x-vendor/ping");
  From(R"({"jsonrpc":"2.0","method":"notifications/x-vendor/hello"})");
  EXPECT_EQ(Sent().method, "notifications/x-vendor/hello");
  // No configuration makes a tools/call notification cross.
  From(R"({"jsonrpc":"2.0","method":"tools/call","params":{"name":"echo"}})");
  EXPECT_TRUE(upstream_->sent.empty());
}

TEST_F(EnforcementTest, NamesTheServerNeverListedAreDeniedBeforeThePolicy) {
  Initialize();
  ListTools();
  for (const char* name : {"Echo", "echo ", "echo\\t", "ech\\u200Bo", "secret_tool ",
                           "SECRET_TOOL", "secret\\u00ADtool", "nosuch"}) {
    SCOPED_TRACE(name);
    From(std::string(R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":")") +
         name + R"(","arguments":{"message":"x"}}})");
    Message denied = sink_.Take();
    ASSERT_TRUE(denied.result.is_object());
    EXPECT_TRUE(denied.result.at("isError").as_bool());
    const std::string rule(
        denied.result.at("_meta").at("toolwarden/decision").at("rule").as_string());
    EXPECT_TRUE(rule == "unknown_tool" || rule == "tool_name") << rule;
  }
  EXPECT_TRUE(upstream_->sent.empty());
  // The listed name passes; the hidden tool stays denied by the policy.
  From(R"({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"message":"x"}}})");
  EXPECT_EQ(Sent().method, "tools/call");
  From(R"({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"secret_tool","arguments":{}}})");
  EXPECT_EQ(sink_.Take().result.at("_meta").at("toolwarden/decision").at("rule"), "hide");
}

TEST_F(EnforcementTest, TheGatewayFetchesTheToolListBeforeTheFirstCall) {
  Initialize();
  From(R"({"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"message":"x"}}})");
  Message list = Sent();
  EXPECT_EQ(list.method, "tools/list");  // the gateway's own request
  EXPECT_TRUE(upstream_->sent.empty());
  EXPECT_EQ(session_->pending_requests(), 2u);
  Server(R"({"jsonrpc":"2.0","id":)" + json::serialize(list.id) + R"(,"result":)" +
         std::string(kTools) + "}");
  Message call = Sent();
  EXPECT_EQ(call.method, "tools/call");
  EXPECT_TRUE(sink_.delivered.empty());  // the list went nowhere but the catalog
}

TEST_F(EnforcementTest, CallsWaitingForTheListAreBounded) {
  Initialize();
  for (int i = 0; i < 1030; ++i) {
    From(R"({"jsonrpc":"2.0","id":)" + std::to_string(i) +
         R"(,"method":"tools/call","params":{"name":"echo","arguments":{"message":"x"}}})");
  }
  EXPECT_EQ(Sent().method, "tools/list");  // asked once
  EXPECT_TRUE(upstream_->sent.empty());
  ASSERT_EQ(sink_.delivered.size(), 6u);  // the 1025th to 1030th are refused at once
  EXPECT_EQ(sink_.Take().error.at("code"), jsonrpc::kConnectionClosed);
  EXPECT_EQ(session_->pending_requests(), 1025u);  // 1024 calls and the list
}

TEST_F(EnforcementTest, CallsAreDeniedWhenTheListCannotBeRead) {
  Initialize();
  From(R"({"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"message":"x"}}})");
  Message list = Sent();
  Server(R"({"jsonrpc":"2.0","id":)" + json::serialize(list.id) +
         R"(,"error":{"code":-32601,"message":"no tools"}})");
  Message denied = sink_.Take();
  EXPECT_EQ(denied.result.at("_meta").at("toolwarden/decision").at("rule"), "unknown_tool");
  EXPECT_TRUE(upstream_->sent.empty());
}

TEST_F(EnforcementTest, ArgumentsAreCheckedAgainstTheToolsSchema) {
  Initialize();
  ListTools();
  From(R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"message":5}}})");
  Message denied = sink_.Take();
  EXPECT_EQ(denied.result.at("_meta").at("toolwarden/decision").at("rule"), "schema");
  const std::string text(denied.result.at("content").at(0).at("text").as_string());
  EXPECT_NE(text.find("arguments.message: must be string"), std::string::npos) << text;
  EXPECT_TRUE(upstream_->sent.empty());
  auto records = Records();
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].decision, "deny");
  EXPECT_EQ(records[0].rule, "schema");
}

TEST_F(EnforcementTest, NumbersAreExactOrRefused) {
  Initialize();
  ListTools();
  // Read as 100 by a 64-bit float, it would pass `gt 100`: refused instead.
  From(R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"message":"x","amount":100.0000000000000001}}})");
  Message refused = sink_.Take();
  EXPECT_EQ(refused.error.at("code"), jsonrpc::kInvalidParams);
  EXPECT_NE(std::string(refused.error.at("message").as_string()).find("100.0000000000000001"),
            std::string::npos);
  // Infinity is not JSON: refused in every message, never forwarded.
  From(R"({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"message":"x","amount":1e999}}})");
  EXPECT_EQ(sink_.Take().error.at("code"), jsonrpc::kInvalidParams);
  From(R"({"jsonrpc":"2.0","id":3,"method":"resources/read","params":{"uri":"x","n":-1e999}})");
  EXPECT_EQ(sink_.Take().error.at("code"), jsonrpc::kInvalidParams);
  EXPECT_TRUE(upstream_->sent.empty());
  // An exact number is decided on its value: 100.5 > 100 is denied, 100 is not.
  From(R"({"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"echo","arguments":{"message":"x","amount":100.5}}})");
  EXPECT_TRUE(sink_.Take().result.at("isError").as_bool());
  From(R"({"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"echo","arguments":{"message":"x","amount":1e2}}})");
  Message forwarded = Sent();
  EXPECT_EQ(jsonrpc::Serialize(forwarded).find("Infinity"), std::string::npos);
}

TEST_F(EnforcementTest, ServerMessagesOutsideTheAllowListDoNotReachTheClient) {
  Initialize();
  Server(R"({"jsonrpc":"2.0","id":"s1","method":"tools/call","params":{"name":"x"}})");
  EXPECT_EQ(Sent().error.at("code"), jsonrpc::kMethodNotFound);
  Server(R"({"jsonrpc":"2.0","method":"notifications/initialized"})");
  Server(R"({"jsonrpc":"2.0","method":"notifications/x"})");
  EXPECT_TRUE(sink_.delivered.empty());
  Server(R"({"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":1e999}})");
  EXPECT_TRUE(sink_.delivered.empty());
  Server(R"({"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"ok"}})");
  EXPECT_EQ(sink_.Take().method, "notifications/message");
}

}  // namespace
}  // namespace tw::gateway
