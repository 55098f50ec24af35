#include "admin/api.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "common/random.h"
#include "policy/loader.h"

namespace tw::admin {
namespace {

class FakeBackend : public Backend {
 public:
  explicit FakeBackend(const std::string& spec)
      : grants_(*auth::OpenGrantStore(spec)),
        approvals_(*approval::OpenApprovalStore(spec)),
        pins_(*catalog::OpenPinStore(spec)),
        audit_(*audit::OpenAuditLog(spec, "")),
        spec_(spec) {}
  std::vector<ServerInfo> Servers() override {
    ServerInfo s;
    s.name = "everything";
    s.state = "up";
    return {s};
  }
  std::vector<PolicyInfo> Policies() override { return {PolicyInfo{"/p.yaml", "abc", {"everything"}, 1, 0, "version: 1"}}; }
  std::shared_ptr<const policy::Policy> PolicyOf(const std::string& server) override {
    if (server != "everything") return nullptr;
    auto compiled = policy::CompilePolicy(R"({"version":"1","default":"deny","tools":{"echo":{}}})",
                                          "p.json", policy::FileFormat::kJson);
    return compiled.policy;
  }
  Result<std::string> Reload() override {
    ++reloads;
    return std::string("unchanged everything");
  }
  auth::GrantStore& Grants() override { return *grants_; }
  approval::ApprovalStore& Approvals() override { return *approvals_; }
  catalog::PinStore& Pins() override { return *pins_; }
  audit::AuditLog& Audit() override { return *audit_; }
  Result<std::vector<audit::Record>> QueryAudit(const audit::Query& q) override {
    audit_->Flush();
    return audit::QueryAudit(spec_, q);
  }
  int64_t NowMs() override { return now; }

  int64_t now = 1'000'000;
  int reloads = 0;
  std::unique_ptr<auth::GrantStore> grants_;
  std::unique_ptr<approval::ApprovalStore> approvals_;
  std::unique_ptr<catalog::PinStore> pins_;
  std::unique_ptr<audit::AuditLog> audit_;
  std::string spec_;
};

class AdminApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = std::filesystem::temp_directory_path() / ("tw-admin-" + RandomHex(8) + ".db");
    backend_ = std::make_unique<FakeBackend>("sqlite:" + path_.string());
    api_ = std::make_unique<Api>(*backend_);
    token_ = **backend_->Grants().EnsureAdminToken(1);
  }
  void TearDown() override {
    api_.reset();
    backend_.reset();
    for (auto suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path_.string() + suffix);
  }
  Response Call(std::string method, std::string target, std::string body = {},
                std::string auth = "*") {
    if (auth == "*") auth = "Bearer " + token_;
    Response r = api_->Handle({method, target, body, auth, body.empty() && method == "GET" ? "" : "application/json"});
    boost::system::error_code ec;
    last_ = json::parse(r.body, ec);
    return r;
  }
  std::filesystem::path path_;
  std::unique_ptr<FakeBackend> backend_;
  std::unique_ptr<Api> api_;
  std::string token_;
  json::value last_;
};

TEST_F(AdminApiTest, EveryCallNeedsTheAdminTokenNotAGrantToken) {
  EXPECT_EQ(Call("GET", "/api/servers", "", "").status, 401);
  EXPECT_EQ(Call("GET", "/api/servers", "", "Bearer twa_wrong").status, 401);
  auth::Grant bot;
  bot.name = "bot";
  auto grant = backend_->Grants().Create(bot, 1);
  EXPECT_EQ(Call("GET", "/api/servers", "", "Bearer " + *grant).status, 401);
  EXPECT_EQ(Call("GET", "/api/servers").status, 200);
  EXPECT_EQ(last_.at("servers").at(0).at("name"), "everything");
}

TEST_F(AdminApiTest, GrantsAreCreatedListedAndRevokedAndEachChangeIsAudited) {
  Response created = Call("POST", "/api/grants", R"({"name":"ci","servers":["everything"],"expires":"30d"})");
  ASSERT_EQ(created.status, 201) << created.body;
  const std::string token(last_.at("token").as_string());
  EXPECT_TRUE(token.starts_with("tw_"));
  EXPECT_EQ(last_.at("expires_ms"), backend_->now + 30LL * 86400 * 1000);
  EXPECT_TRUE(backend_->Grants().Authenticate(token, backend_->now)->grant);
  EXPECT_EQ(Call("POST", "/api/grants", R"({"name":"ci"})").status, 409);
  EXPECT_EQ(Call("POST", "/api/grants", R"({"name":"x","servers":["nope"]})").status, 400);
  EXPECT_EQ(Call("POST", "/api/grants", R"({"name":"bad name"})").status, 400);
  Call("GET", "/api/grants");
  ASSERT_EQ(last_.at("grants").as_array().size(), 1u);
  EXPECT_FALSE(last_.at("grants").at(0).as_object().contains("token"));  // never listed
  EXPECT_EQ(Call("DELETE", "/api/grants/ci").status, 200);
  EXPECT_EQ(last_.at("state"), "revoked");
  EXPECT_EQ(Call("DELETE", "/api/grants/ci").status, 404);
  Call("GET", "/api/audit?server=(admin)");
  ASSERT_EQ(last_.at("records").as_array().size(), 2u);
  EXPECT_EQ(last_.at("records").at(0).at("tool"), "grants.revoke");
  EXPECT_EQ(last_.at("records").at(1).at("tool"), "grants.create");
  EXPECT_EQ(json::serialize(last_).find(token), std::string::npos);
}

TEST_F(AdminApiTest, StateChangesNeedJsonContentType) {
  Response r = api_->Handle({"POST", "/api/reload", "", "Bearer " + token_, "text/plain"});
  EXPECT_EQ(r.status, 415);
  EXPECT_EQ(backend_->reloads, 0);
  EXPECT_EQ(Call("POST", "/api/reload").status, 200);
  EXPECT_EQ(backend_->reloads, 1);
  EXPECT_EQ(Call("GET", "/api/reload").status, 405);
  EXPECT_EQ(Call("GET", "/api/nothing").status, 404);
}

TEST_F(AdminApiTest, ApprovalsAreResolvedOnceByIdAndUnknownIdsAre404) {
  approval::Approval a;
  a.id = "ap1";
  a.created_ms = backend_->now;
  a.expires_ms = backend_->now + 60000;
  a.grant = "bot";
  a.server = "everything";
  a.tool = "echo";
  a.args = R"({"message":"hi"})";
  ASSERT_TRUE(backend_->Approvals().Create(a));
  Call("GET", "/api/approvals");
  ASSERT_EQ(last_.at("approvals").as_array().size(), 1u);
  EXPECT_EQ(last_.at("approvals").at(0).at("arguments").at("message"), "hi");
  EXPECT_EQ(Call("POST", "/api/approvals/nope/approve", "{}").status, 404);
  Response ok = Call("POST", "/api/approvals/ap1/approve", R"({"reason":"looks fine","by":"ana"})");
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(last_.at("state"), "approved");
  EXPECT_EQ(last_.at("resolved_by"), "admin-api:ana");
  EXPECT_EQ(Call("POST", "/api/approvals/ap1/deny", "{}").status, 409);  // single use
  Call("GET", "/api/approvals");
  EXPECT_TRUE(last_.at("approvals").as_array().empty());
  Call("GET", "/api/approvals?state=all");
  EXPECT_EQ(last_.at("approvals").as_array().size(), 1u);
}

TEST_F(AdminApiTest, PoliciesAndToolsAreListed) {
  Call("GET", "/api/policies");
  EXPECT_EQ(last_.at("policies").at(0).at("version"), "abc");
  ASSERT_TRUE(backend_->Pins().Observe("everything", "echo", "h1",
                                       R"({"name":"echo","description":"Echoes back the input"})", 5));
  Call("GET", "/api/servers/everything/tools");
  ASSERT_EQ(last_.at("tools").as_array().size(), 1u);
  EXPECT_EQ(last_.at("tools").at(0).at("name"), "echo");
  EXPECT_TRUE(last_.at("tools").at(0).as_object().contains("risk"));
  EXPECT_EQ(last_.at("tools").at(0).at("decision"), "allow");
  EXPECT_EQ(Call("GET", "/api/servers/nope/tools").status, 404);
}

}  // namespace
}  // namespace tw::admin
