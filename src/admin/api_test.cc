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
    s.policy = policy_path;
    return {s};
  }
  std::vector<PolicyInfo> Policies() override { return {PolicyInfo{"/p.yaml", "abc", {"everything"}, 1, 0, "version: 1"}}; }
  std::shared_ptr<const policy::Policy> PolicyOf(const std::string& server) override {
    if (server != "everything") return nullptr;
    // What WritePolicyFile wrote is in force, as in the gateway.
    auto compiled = policy::CompilePolicy(policy_text, policy_path, policy::FileFormat::kJson);
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
  Result<int64_t> CountAudit(const audit::Query& q) override {
    audit_->Flush();
    return audit::CountAudit(spec_, q);
  }
  Result<std::vector<audit::Bucket>> AuditHistogram(const audit::Query& q, int64_t bucket_ms) override {
    audit_->Flush();
    return audit::AuditHistogram(spec_, q, bucket_ms);
  }
  int64_t NowMs() override { return now; }
  EventHub& Events() override { return events; }
  Result<int64_t> CounterUsed(const policy::Limit& limit, const std::string& scope_id, int64_t) override {
    auto it = used.find(limit.counter + "/" + scope_id);
    return it == used.end() ? int64_t{0} : it->second;
  }
  Result<std::string> ReadPolicyFile(const std::string& path) override {
    if (path != policy_path) return Fail(Error::NotFound(path));
    return policy_text;
  }
  Result<bool> WritePolicyFile(const std::string& path, const std::string& text) override {
    if (path != policy_path) return Fail(Error::NotFound(path));
    policy_text = text;
    return true;
  }

  Result<json::object> Replay(const policy::Policy& candidate, const ReplayRequest& request) override {
    replayed = request;
    replayed_version = candidate.version;
    replayed_shadow_only = candidate.shadow_only;
    return json::object{{"records", 0}, {"server", request.server}};
  }
  Result<bool> SetShadowDraft(const std::string& server,
                              std::shared_ptr<const policy::Policy> draft) override {
    if (server != "everything") return Fail(Error::NotFound(server));
    shadow_draft = std::move(draft);
    return true;
  }

  Result<json::object> PendingConsent(const std::string& id) override {
    if (id != "c1" || answered) return Fail(Error::NotFound("this sign-in is over"));
    return json::object{{"client", "Claude Code"}, {"servers", json::array{"everything"}}};
  }
  Result<std::string> AnswerConsent(const std::string& id, const ConsentAnswer& a) override {
    if (id != "c1" || answered) return Fail(Error::NotFound("this sign-in is over"));
    if (!a.servers.empty() && a.servers.front() != "everything") {
      return Fail(Error::InvalidArgument("no server named \"" + a.servers.front() + "\""));
    }
    answered = a;
    return std::string(a.approve ? "http://127.0.0.1:9/cb?code=x" : "http://127.0.0.1:9/cb?error=access_denied");
  }

  std::string SsoName() override { return sso ? "https://login.example.com" : ""; }
  Result<std::string> SsoStart(const std::string& base, const std::string& return_to,
                               const std::string& browser) override {
    if (!sso) return Backend::SsoStart(base, return_to, browser);
    sso_return = return_to;
    sso_browser = browser;
    return std::string("https://login.example.com/auth?state=s1");
  }
  Result<SsoUser> SsoFinish(const std::string&, const std::string& code, const std::string& state,
                            const std::string& browser) override {
    if (state != "s1") return Fail(Error::InvalidArgument("this sign-in is over"));
    if (browser != sso_browser) return Fail(Error::InvalidArgument("this sign-in was started in another browser"));
    if (code != "good") return Fail(Error::PermissionDenied("dev is not in the admins group"));
    return SsoUser{"root", sso_return};
  }

  bool sso = false;
  std::string sso_return;
  std::string sso_browser;
  std::optional<ConsentAnswer> answered;
  std::optional<ReplayRequest> replayed;
  std::string replayed_version;
  bool replayed_shadow_only = false;
  std::shared_ptr<const policy::Policy> shadow_draft;
  EventHub events;
  std::map<std::string, int64_t> used;  // "counter/scope id" → value
  std::string policy_path = "/etc/tw/everything.json";
  std::string policy_text = R"({"version":"1","default":"deny","tools":{"echo":{}}})";

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
    for (auto suffix : {"", "-wal", "-shm", "-grants-epoch"}) std::filesystem::remove(path_.string() + suffix);
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

TEST_F(AdminApiTest, AKnownPathWithAnotherMethodIs405AndAnUnknownOneIs404) {
  EXPECT_EQ(Call("PUT", "/api/grants", "{}").status, 405);
  EXPECT_EQ(Call("POST", "/api/approvals", "{}").status, 405);
  EXPECT_EQ(Call("DELETE", "/api/servers/everything/policy", "{}").status, 405);
  EXPECT_EQ(Call("GET", "/api/approvals/ap1/approve").status, 405) << "resolving is a POST";
  EXPECT_EQ(Call("GET", "/api/grants/a/b").status, 404);
  EXPECT_EQ(Call("POST", "/api/servers/everything/tools/a/b/accept", "{}").status, 404);
  EXPECT_EQ(Call("GET", "/api/servers/nope/policy").status, 404);
  EXPECT_EQ(Call("POST", "/api/servers/nope/accept", "{}").status, 404);
  EXPECT_EQ(Call("GET", "/api/approvals").status, 200);
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

std::string HeaderOf(const Response& r, const std::string& name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  return {};
}

// Logs in like the console does; returns the cookie header value and the CSRF token.
std::pair<std::string, std::string> LogIn(Api& api, const std::string& token) {
  Response r = api.Handle({"POST", "/api/login", R"({"token":")" + token + R"("})", "", "application/json"});
  EXPECT_EQ(r.status, 200) << r.body;
  const std::string set_cookie = HeaderOf(r, "Set-Cookie");
  const std::string pair = set_cookie.substr(0, set_cookie.find(';'));
  return {pair, std::string(json::parse(r.body).at("csrf").as_string())};
}

TEST_F(AdminApiTest, ConsoleLoginSetsAHostOnlyHttpOnlyStrictCookie) {
  Response bad = api_->Handle({"POST", "/api/login", R"({"token":"twa_nope"})", "", "application/json"});
  EXPECT_EQ(bad.status, 401);
  EXPECT_TRUE(HeaderOf(bad, "Set-Cookie").empty());
  // A cross-site form can only send text/plain or form encodings: refused.
  Response form = api_->Handle({"POST", "/api/login", "token=" + token_, "", "application/x-www-form-urlencoded"});
  EXPECT_EQ(form.status, 415);
  Response ok = api_->Handle({"POST", "/api/login", R"({"token":")" + token_ + R"("})", "", "application/json"});
  ASSERT_EQ(ok.status, 200);
  const std::string cookie = HeaderOf(ok, "Set-Cookie");
  EXPECT_TRUE(cookie.starts_with("__Host-tw_console=")) << cookie;
  for (const char* attr : {"; Path=/", "; Secure", "; HttpOnly", "; SameSite=Strict", "; Max-Age="}) {
    EXPECT_NE(cookie.find(attr), std::string::npos) << attr;
  }
  EXPECT_EQ(cookie.find("Domain"), std::string::npos);
  EXPECT_EQ(cookie.find(token_), std::string::npos);  // the token itself never becomes the cookie
  EXPECT_EQ(ok.body.find(token_), std::string::npos);
}

TEST_F(AdminApiTest, ACookieReadsButChangesOnlyWithItsCsrfToken) {
  auto [cookie, csrf] = LogIn(*api_, token_);
  Response read = api_->Handle({"GET", "/api/grants", "", "", "", cookie, ""});
  EXPECT_EQ(read.status, 200);
  Response session = api_->Handle({"GET", "/api/session", "", "", "", cookie, ""});
  EXPECT_EQ(json::parse(session.body).at("csrf").as_string(), csrf);
  const std::string body = R"({"name":"ci"})";
  EXPECT_EQ(api_->Handle({"POST", "/api/grants", body, "", "application/json", cookie, ""}).status, 403);
  EXPECT_EQ(api_->Handle({"POST", "/api/grants", body, "", "application/json", cookie, csrf + "0"}).status, 403);
  EXPECT_EQ(api_->Handle({"POST", "/api/grants", body, "", "application/json", cookie, std::string(csrf.size(), '0')}).status, 403);
  EXPECT_EQ(api_->Handle({"DELETE", "/api/grants/ci", "", "", "application/json", cookie, ""}).status, 403);
  EXPECT_FALSE(*backend_->Grants().Get("ci"));  // nothing was created
  EXPECT_EQ(api_->Handle({"POST", "/api/grants", body, "", "application/json", cookie, csrf}).status, 201);
  // The bearer token needs no CSRF token: no browser sends it by itself.
  EXPECT_EQ(Call("DELETE", "/api/grants/ci").status, 200);
}

TEST_F(AdminApiTest, LogoutAndForgedCookiesEndInA401) {
  auto [cookie, csrf] = LogIn(*api_, token_);
  EXPECT_EQ(api_->Handle({"GET", "/api/servers", "", "", "", "__Host-tw_console=" + std::string(64, 'a'), ""}).status, 401);
  Response out = api_->Handle({"POST", "/api/logout", "", "", "application/json", cookie, csrf});
  EXPECT_EQ(out.status, 200);
  EXPECT_NE(HeaderOf(out, "Set-Cookie").find("Max-Age=0"), std::string::npos);
  Response after = api_->Handle({"GET", "/api/servers", "", "", "", cookie, ""});
  EXPECT_EQ(after.status, 401);
  EXPECT_NE(HeaderOf(after, "Set-Cookie").find("Max-Age=0"), std::string::npos);
}

TEST_F(AdminApiTest, ConsoleSessionsEndWhenIdle) {
  auto [cookie, csrf] = LogIn(*api_, token_);
  backend_->now += 9 * 3600'000LL;  // longer than the 8 h idle limit
  EXPECT_EQ(api_->Handle({"GET", "/api/servers", "", "", "", cookie, ""}).status, 401);
}

TEST_F(AdminApiTest, GuessingTheTokenIsSlowedDown) {
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(api_->Handle({"POST", "/api/login", R"({"token":"twa_x"})", "", "application/json"}).status, 401);
  }
  EXPECT_EQ(api_->Handle({"POST", "/api/login", R"({"token":"twa_x"})", "", "application/json"}).status, 429);
  backend_->now += 60'000;
  LogIn(*api_, token_);
}

TEST_F(AdminApiTest, APolicyIsSavedOnlyWhenValidAndNotChangedMeanwhile) {
  Call("GET", "/api/servers/everything/policy");
  const std::string base(last_.at("version").as_string());
  EXPECT_EQ(last_.at("format"), "json");
  EXPECT_EQ(last_.at("document").at("tools").at("echo").as_object().size(), 0u);
  const std::string next = R"({"version":"1","default":"deny","tools":{"echo":{"action":"deny","reason":"no"}}})";
  // Invalid: 422 with positions, nothing written.
  Response bad = Call("PUT", "/api/servers/everything/policy",
                      json::serialize(json::object{{"text", R"({"version":"1","default":"maybe"})"}, {"base_version", base}}));
  EXPECT_EQ(bad.status, 422);
  EXPECT_EQ(last_.at("error").at("code"), "invalid_policy");
  EXPECT_GT(last_.at("error").at("diagnostics").at(0).at("line").as_int64(), 0);
  // Stale: someone changed the file since it was loaded.
  EXPECT_EQ(Call("PUT", "/api/servers/everything/policy",
                 json::serialize(json::object{{"text", next}, {"base_version", "0123456789abcdef"}})).status, 409);
  EXPECT_EQ(Call("PUT", "/api/servers/everything/policy", json::serialize(json::object{{"text", next}})).status, 400);
  EXPECT_NE(backend_->policy_text, next);
  Response ok = Call("PUT", "/api/servers/everything/policy",
                     json::serialize(json::object{{"text", next}, {"base_version", base}}));
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(backend_->policy_text, next);
  EXPECT_TRUE(last_.at("reloaded").as_bool());
  Call("GET", "/api/audit?server=(admin)");
  EXPECT_EQ(last_.at("records").at(0).at("tool"), "policies.save");
}

TEST_F(AdminApiTest, ValidateReportsEveryProblemWithItsLine) {
  Call("POST", "/api/policies/validate", json::serialize(json::object{
                                             {"text", "version: \"1\"\ndefault: deny\ntools:\n  x: {action: nope}\n"}}));
  EXPECT_FALSE(last_.at("ok").as_bool());
  EXPECT_EQ(last_.at("diagnostics").at(0).at("line"), 4);
  Call("POST", "/api/policies/validate", json::serialize(json::object{{"text", "version: \"1\"\ndefault: allow\n"}}));
  EXPECT_TRUE(last_.at("ok").as_bool());
}

TEST_F(AdminApiTest, ExplainUsesTheDraftOrThePolicyInForceAndShowsCounters) {
  Call("POST", "/api/explain", R"({"server":"everything","tool":"echo","arguments":{"message":"hi"}})");
  EXPECT_EQ(last_.at("decision"), "allow");
  Call("POST", "/api/explain", R"({"server":"everything","tool":"add"})");
  EXPECT_EQ(last_.at("decision"), "deny");
  EXPECT_EQ(last_.at("rule"), "default");
  const std::string draft =
      R"({"version":"1","default":"deny","tools":{"add":{"limits":[{"counter":"adds","window":"minute","max":2}]},"rm":{"action":"require_approval","approval_timeout":"2m"}}})";
  Call("POST", "/api/explain", json::serialize(json::object{{"server", "everything"}, {"tool", "add"}, {"grant", "bot"}, {"text", draft}}));
  EXPECT_EQ(last_.at("decision"), "allow");
  EXPECT_EQ(last_.at("limits").at(0).at("used"), 0);
  backend_->used["adds/bot"] = 2;
  Call("POST", "/api/explain", json::serialize(json::object{{"server", "everything"}, {"tool", "add"}, {"grant", "bot"}, {"text", draft}}));
  EXPECT_EQ(last_.at("decision"), "deny");
  Call("POST", "/api/explain", json::serialize(json::object{{"server", "everything"}, {"tool", "rm"}, {"text", draft}}));
  EXPECT_EQ(last_.at("decision"), "approval");
  EXPECT_EQ(last_.at("approval_timeout_ms"), 120000);
  EXPECT_EQ(Call("POST", "/api/explain", R"({"server":"nope","tool":"x"})").status, 404);
  EXPECT_EQ(Call("POST", "/api/explain", R"({"server":"everything","tool":"x","arguments":[1]})").status, 400);
}

TEST_F(AdminApiTest, AuditPagesCountsExportsAndCharts) {
  for (int i = 0; i < 25; ++i) {
    audit::Record r;
    r.id = audit::NewRecordId();
    r.ts_ms = backend_->now - 1000 * i;
    r.grant = "bot";
    r.server = "everything";
    r.tool = i == 3 ? "=cmd|' /C calc'!A0" : "echo";
    r.decision = i % 5 == 0 ? "deny" : "allow";
    r.rule = "default";
    r.reason = "said \"no\", twice";
    ASSERT_TRUE(backend_->Audit().Write(r));
  }
  Call("GET", "/api/audit?server=everything&limit=10&offset=20");
  EXPECT_EQ(last_.at("total"), 25);
  EXPECT_EQ(last_.at("records").as_array().size(), 5u);
  Call("GET", "/api/audit?server=everything&decision=deny");
  EXPECT_EQ(last_.at("total"), 5);
  Call("GET", "/api/audit?server=everything&from=" + std::to_string(backend_->now - 4500) +
                  "&to=" + std::to_string(backend_->now - 1500));
  EXPECT_EQ(last_.at("total"), 3);  // -2 s, -3 s, -4 s
  EXPECT_EQ(Call("GET", "/api/audit?offset=-1").status, 400);
  Response csv = Call("GET", "/api/audit?server=everything&format=csv");
  ASSERT_EQ(csv.status, 200);
  EXPECT_EQ(csv.content_type, "text/csv; charset=utf-8");
  EXPECT_NE(HeaderOf(csv, "Content-Disposition").find("attachment"), std::string::npos);
  EXPECT_TRUE(csv.body.starts_with("id,time,grant,"));
  EXPECT_NE(csv.body.find("\"said \"\"no\"\", twice\""), std::string::npos);
  EXPECT_NE(csv.body.find(",'=cmd|' /C calc'!A0,"), std::string::npos);  // no formula
  Response jsonl = Call("GET", "/api/audit?server=everything&format=jsonl");
  EXPECT_EQ(std::count(jsonl.body.begin(), jsonl.body.end(), '\n'), 25);
  Call("GET", "/api/audit/histogram?server=everything&bucket=10s&from=" + std::to_string(backend_->now - 60'000));
  int64_t allow = 0, deny = 0;
  for (const auto& b : last_.at("buckets").as_array()) {
    allow += b.at("allow").as_int64();
    deny += b.at("deny").as_int64();
  }
  EXPECT_EQ(allow, 20);
  EXPECT_EQ(deny, 5);
  EXPECT_EQ(Call("GET", "/api/audit/histogram?bucket=1s&since=7d").status, 400);
}

TEST_F(AdminApiTest, CountersShowWhatIsLeftPerGrant) {
  backend_->policy_text =
      R"({"version":"1","default":"allow","tools":{"add":{"limits":[{"counter":"adds","window":"minute","max":5}]}},)"
      R"("all_tools":{"limits":[{"counter":"all","window":"hour","max":100,"scope":"global"}]}})";
  auth::Grant bot;
  bot.name = "bot";
  ASSERT_TRUE(backend_->Grants().Create(bot, backend_->now));
  backend_->used["adds/bot"] = 3;
  backend_->used["all/*"] = 40;
  Call("GET", "/api/counters");
  const auto& rows = last_.at("counters").as_array();
  ASSERT_EQ(rows.size(), 2u) << json::serialize(last_);
  for (const auto& row : rows) {
    if (row.at("counter") == "adds") {
      EXPECT_EQ(row.at("grant"), "bot");
      EXPECT_EQ(row.at("remaining"), 2);
    } else {
      EXPECT_EQ(row.at("grant"), "*");
      EXPECT_EQ(row.at("remaining"), 60);
    }
  }
}

TEST_F(AdminApiTest, EventsAreAStreamForAdminsOnly) {
  EXPECT_EQ(Call("GET", "/api/events", "", "").status, 401);
  Response r = Call("GET", "/api/events");
  ASSERT_EQ(r.status, 200);
  ASSERT_TRUE(r.events);
  backend_->events.Publish("decision", "{}");
  EXPECT_EQ(r.events->Take().size(), 1u);
}

TEST_F(AdminApiTest, ExplainSaysTheSelectorAndTheShadowDecision) {
  const std::string draft =
      R"({"version":"1","default":"allow","tools":{"rm":{"action":"deny","mode":"shadow"}},)"
      R"("classes":{"Destructive":{"action":"require_approval"}}})";
  Call("POST", "/api/explain",
       json::serialize(json::object{{"server", "everything"}, {"tool", "wipe"}, {"class", "Destructive/High"}, {"text", draft}}));
  EXPECT_EQ(last_.at("decision"), "approval");
  EXPECT_EQ(last_.at("rule"), "classes.Destructive");
  EXPECT_EQ(last_.at("selector"), "class");
  Call("POST", "/api/explain", json::serialize(json::object{{"server", "everything"}, {"tool", "rm"}, {"text", draft}}));
  EXPECT_EQ(last_.at("decision"), "allow");
  EXPECT_EQ(last_.at("shadow").at("decision"), "deny");
  EXPECT_EQ(last_.at("shadow").at("rule"), "tools.rm");
}

TEST_F(AdminApiTest, ReplayDecidesTheDraftOverAtMostTheConsolesShareOfRecords) {
  const std::string draft = R"({"version":"1","default":"deny","mode":"shadow","tools":{"echo":{}}})";
  auto body = [&](json::object o) { return json::serialize(o); };
  EXPECT_EQ(Call("POST", "/api/replay", body({{"server", "everything"}, {"text", draft}, {"since", "1h"}})).status, 200);
  ASSERT_TRUE(backend_->replayed);
  EXPECT_EQ(backend_->replayed->server, "everything");
  EXPECT_EQ(backend_->replayed->since_ms, backend_->now - 3'600'000);
  EXPECT_EQ(backend_->replayed->max_records, 250'000);
  EXPECT_EQ(backend_->replayed_version, policy::PolicyVersion(draft));
  EXPECT_EQ(Call("POST", "/api/replay", body({{"server", "nope"}, {"text", draft}})).status, 404);
  EXPECT_EQ(Call("POST", "/api/replay", body({{"server", "everything"}})).status, 400);
  EXPECT_EQ(Call("POST", "/api/replay", body({{"server", "everything"}, {"text", draft}, {"since", "last week"}})).status, 400);
  EXPECT_EQ(Call("POST", "/api/replay", body({{"server", "everything"}, {"text", R"({"version":"1","default":"maybe"})"}})).status, 422);
  EXPECT_EQ(last_.at("error").at("code"), "invalid_policy");
  EXPECT_EQ(last_.at("error").at("diagnostics").at(0).at("line"), 1);
}

TEST_F(AdminApiTest, ADraftIsTriedLiveUntilWithdrawnAndBothAreAudited) {
  const std::string draft = R"({"version":"1","default":"deny","tools":{"echo":{}}})";
  Call("PUT", "/api/servers/everything/shadow", json::serialize(json::object{{"text", draft}}));
  ASSERT_TRUE(backend_->shadow_draft);
  EXPECT_EQ(last_.at("shadow_draft").as_string(), policy::PolicyVersion(draft));
  EXPECT_EQ(Call("PUT", "/api/servers/everything/shadow", R"({"text":"version: [1"})").status, 422);
  EXPECT_TRUE(backend_->shadow_draft) << "an invalid draft changes nothing";
  EXPECT_EQ(Call("PUT", "/api/servers/nope/shadow", json::serialize(json::object{{"text", draft}})).status, 404);
  EXPECT_EQ(Call("DELETE", "/api/servers/everything/shadow").status, 200);
  EXPECT_FALSE(backend_->shadow_draft);
  backend_->Audit().Flush();
  auto records = audit::QueryAudit(backend_->spec_, {});
  ASSERT_TRUE(records);
  std::set<std::string> actions;
  for (const auto& r : *records) actions.insert(r.tool);
  EXPECT_TRUE(actions.contains("policies.shadow"));
  EXPECT_TRUE(actions.contains("policies.shadow_stop"));
}

TEST_F(AdminApiTest, AConsentIsAnsweredOnceByASignedInPerson) {
  EXPECT_EQ(Call("GET", "/api/oauth/consents/c1", "", "").status, 401);
  EXPECT_EQ(Call("POST", "/api/oauth/consents/c1", R"({"approve":true})", "Bearer tw_notadmin").status, 401);
  ASSERT_EQ(Call("GET", "/api/oauth/consents/c1").status, 200);
  EXPECT_EQ(last_.at("client").as_string(), "Claude Code");
  EXPECT_EQ(Call("POST", "/api/oauth/consents/c1", R"({"approve":"yes"})").status, 400);
  EXPECT_EQ(Call("POST", "/api/oauth/consents/c1", R"({"approve":true,"servers":"everything"})").status, 400);
  EXPECT_EQ(Call("POST", "/api/oauth/consents/c1", R"({"approve":true,"expires":"soon"})").status, 400);
  EXPECT_EQ(Call("POST", "/api/oauth/consents/c1", R"({"approve":true,"servers":["nope"]})").status, 400);
  ASSERT_EQ(Call("POST", "/api/oauth/consents/c1", R"({"approve":true,"servers":["everything"],"expires":"7d"})").status, 200);
  EXPECT_EQ(last_.at("redirect").as_string(), "http://127.0.0.1:9/cb?code=x");
  ASSERT_TRUE(backend_->answered);
  EXPECT_EQ(backend_->answered->principal, "admin");
  EXPECT_EQ(backend_->answered->expires_ms, backend_->now + 7 * 86400'000LL);
  EXPECT_EQ(Call("POST", "/api/oauth/consents/c1", R"({"approve":true})").status, 404);
  EXPECT_EQ(Call("GET", "/api/oauth/consents/c1").status, 404);
}

TEST_F(AdminApiTest, TheConsoleSignsInThroughTheIdentityProviderWhenOneIsSet) {
  ASSERT_EQ(Call("GET", "/api/login", "", "").status, 200);
  EXPECT_TRUE(last_.at("sso").is_null());
  EXPECT_EQ(Call("GET", "/api/login/sso", "", "").status, 404);
  backend_->sso = true;
  ASSERT_EQ(Call("GET", "/api/login", "", "").status, 200);
  EXPECT_EQ(last_.at("sso").as_string(), "https://login.example.com");
  // Only a console page to come back to, never another site.
  Response start = Call("GET", "/api/login/sso?return=https%3A%2F%2Fevil.example.com", "", "");
  EXPECT_EQ(start.status, 302);
  EXPECT_EQ(backend_->sso_return, "");
  start = Call("GET", "/api/login/sso?return=%23%2Fconsent%2Fc1", "", "");
  EXPECT_EQ(backend_->sso_return, "#/consent/c1");
  auto header = [](const Response& r, const std::string& name) {
    for (const auto& [k, v] : r.headers) {
      if (k == name) return v;
    }
    return std::string();
  };
  // The sign-in is bound to the browser that started it, by a cookie.
  const std::string binding = header(start, "Set-Cookie");
  ASSERT_TRUE(binding.starts_with("__Host-tw_sso=")) << binding;
  EXPECT_NE(binding.find("HttpOnly"), std::string::npos);
  const std::string cookie_of_starter = binding.substr(0, binding.find(';'));
  auto callback = [&](const std::string& query, const std::string& cookie) {
    return api_->Handle({"GET", "/api/login/sso/callback?" + query, "", "", "", cookie, "", "", ""});
  };
  Response elsewhere = callback("code=good&state=s1", "__Host-tw_sso=" + std::string(64, '0'));
  EXPECT_EQ(header(elsewhere, "Location"), "/ui/?sso_error=this%20sign-in%20was%20started%20in%20another%20browser");
  Response refused = callback("code=bad&state=s1", cookie_of_starter);
  EXPECT_EQ(refused.status, 302);
  EXPECT_EQ(header(refused, "Location"), "/ui/?sso_error=dev%20is%20not%20in%20the%20admins%20group");
  EXPECT_EQ(header(refused, "Set-Cookie"), "");
  Response ok = callback("code=good&state=s1", cookie_of_starter);
  EXPECT_EQ(ok.status, 302);
  EXPECT_EQ(header(ok, "Location"), "/ui/#/consent/c1");
  const std::string cookie = header(ok, "Set-Cookie");
  ASSERT_NE(cookie.find("__Host-tw_console="), std::string::npos);
  EXPECT_EQ(Call("GET", "/api/login/sso/callback?error=access_denied", "", "").status, 302);
  EXPECT_EQ(Call("POST", "/api/login/sso", "{}", "").status, 405);
}

}  // namespace
}  // namespace tw::admin
