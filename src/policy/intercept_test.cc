// Intercept-format policies: the project's own fixtures (testdata/intercept, always run) and,
// as an extra, Intercept's published files beside the repository (skipped, visibly, without).
#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include <gtest/gtest.h>

#include "policy/loader.h"
#include "policy/policy.h"

namespace tw::policy {
namespace {

namespace fs = std::filesystem;
constexpr int64_t kNow = 1'700'000'000'000;

// Intercept's own policy files: a third-party corpus beside the repository (TW_COMPAT_DIR in
// the environment, else the build's default). Tests that read it are skipped, visibly, without it.
fs::path CompatDir() {
  const char* env = std::getenv("TW_COMPAT_DIR");
  return env ? fs::path(env) / "intercept-policies" : fs::path(TW_COMPAT_DIR);
}

class InterceptCompatTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(CompatDir())) {
      GTEST_SKIP() << "Intercept's policy files not found at " << CompatDir()
                   << " (a third-party corpus beside the repository; set TW_COMPAT_DIR)";
    }
  }
};

Decision Decide(const Policy& p, const std::string& tool, std::string_view args = "{}") {
  return Evaluate(p, mcp::ToolCall{tool, json::parse(args).as_object()}, Identity{}, kNow);
}

// Policies in Intercept's format written for this project, covering the grammar toolwarden reads.
fs::path Fixture(const std::string& name) { return fs::path(TW_TESTDATA_DIR) / "intercept" / name; }

std::shared_ptr<const Policy> LoadFixture(const std::string& name) {
  auto p = LoadPolicyFile(Fixture(name).string());
  EXPECT_TRUE(p.has_value()) << p.error().message();
  return p ? *p : nullptr;
}

TEST(InterceptFormatTest, TheValidFixturesLoadAsIntercept) {
  for (const char* name : {"payouts.yaml", "default_deny.yaml"}) {
    SCOPED_TRACE(name);
    auto p = LoadFixture(name);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(p->format, Format::kIntercept);
  }
}

TEST(InterceptFormatTest, ABadFileIsNamedWithTheLineAndColumn) {
  auto p = LoadPolicyFile(Fixture("invalid_syntax.yaml").string());
  ASSERT_FALSE(p.has_value());
  EXPECT_NE(p.error().message().find("invalid_syntax.yaml:6:7: "), std::string::npos)
      << p.error().message();
}

TEST(InterceptFormatTest, EverySchemaProblemIsReportedAtOnceWithItsPosition) {
  auto p = LoadPolicyFile(Fixture("invalid_schema.yaml").string());
  ASSERT_FALSE(p.has_value());
  const std::string& m = p.error().message();
  for (const char* expected : {
           ":1:10: version must be \"1\", got \"2\"",
           ":5:9: rule must have a name",
           ":14:17: tools.b.rules[0].conditions[0].op: unknown operator \"unknown_op\"",
           ":18:19: path must start with \"args.\" or \"state.\", got \"foo.bar\"",
           ":25:20: tools.b.rules[2].conditions[0]: operator \"in\" requires a list value",
           ":30:20: tools.b.rules[3].conditions[0]: operator \"lt\" requires a numeric value",
           ":35:20: tools.b.rules[4].conditions[0]: invalid regex \"[invalid(\"",
           ":41:11: deny rules must not have conditions",
           ":44:9: evaluate rules must have at least one condition",
           ":49:21: rate_limit count must be a positive integer, got \"five\"",
           ":51:21: rate_limit cannot be combined with conditions or state",
           ":57:21: rate_limit count must be a positive integer, got \"0\"",
           ":59:21: rate_limit window must be \"minute\", \"hour\", or \"day\", got \"week\"",
           ":62:21: rate_limit cannot be used with action \"deny\"",
       }) {
    EXPECT_NE(m.find(expected), std::string::npos) << "missing: " << expected << "\nin:\n" << m;
  }
  EXPECT_EQ(std::count(m.begin(), m.end(), '\n') + 1, 14) << m;
}

TEST(InterceptFormatTest, ConditionsCountersAndRateLimitsKeepIntercepsMeaning) {
  auto loaded = LoadFixture("payouts.yaml");
  ASSERT_NE(loaded, nullptr);
  const Policy& p = *loaded;
  EXPECT_EQ(p.default_action, DefaultAction::kAllow);

  const char* good = R"({"amount_cents":5000,"currency":"usd","payee":"acct_0a1b2c3d"})";
  Decision ok = Decide(p, "send_payout", good);
  ASSERT_EQ(ok.verdict, Verdict::kAllow) << ok.reason;
  ASSERT_EQ(ok.charges.size(), 2u);  // the daily budget, then the "*" pace
  const Limit& budget = *ok.charges[0].limit;
  EXPECT_EQ(budget.counter, "send_payout.daily_total");
  EXPECT_EQ(budget.max, 100000) << "lte admits the value itself";
  EXPECT_EQ(ok.charges[0].amount, 5000) << "increment_from charges the argument";
  EXPECT_EQ(budget.scope, Scope::kGlobal);
  EXPECT_EQ(budget.refund, RefundOn::kJsonRpcError);
  EXPECT_EQ(budget.reason, "The daily payout budget of $1,000.00 is spent");
  const Limit& pace = *ok.charges[1].limit;
  EXPECT_EQ(pace.counter, "_global.calls_per_minute");
  EXPECT_EQ(pace.max, 29) << "lt 30 admits up to 29";

  Decision big = Decide(p, "send_payout",
                        R"({"amount_cents":25001,"currency":"usd","payee":"acct_0a1b2c3d"})");
  EXPECT_EQ(big.verdict, Verdict::kDeny);
  EXPECT_EQ(big.reason, "A payout above $250.00 needs a human");
  EXPECT_EQ(big.rule, "tools.send_payout.rules[0] (payout ceiling)");
  EXPECT_EQ(Decide(p, "send_payout", R"({"amount_cents":1,"currency":"eur","payee":"acct_0a1b2c3d"})")
                .reason,
            "Payouts go out in USD or CAD only");
  EXPECT_EQ(Decide(p, "send_payout", R"({"amount_cents":1,"currency":"usd","payee":"acct_0A1B2C3D"})")
                .reason,
            "The payee must be an account id");
  // A condition on a missing argument fails closed.
  EXPECT_EQ(Decide(p, "send_payout", R"({"currency":"usd","payee":"acct_0a1b2c3d"})").verdict,
            Verdict::kDeny);

  EXPECT_EQ(Decide(p, "refund_payment", R"({"amount_cents":10})").reason,
            "A refund needs a positive amount and a reason");
  Decision refund = Decide(p, "refund_payment", R"({"amount_cents":10,"reason":"duplicate"})");
  ASSERT_EQ(refund.verdict, Verdict::kAllow) << refund.reason;
  ASSERT_EQ(refund.charges.size(), 2u);
  EXPECT_EQ(refund.charges[0].limit->counter, "refund_payment.hourly_count");
  EXPECT_EQ(refund.charges[0].limit->max, 3);
  EXPECT_EQ(refund.charges[0].amount, 1);

  Decision dispute = Decide(p, "open_dispute");
  ASSERT_EQ(dispute.charges.size(), 2u);
  EXPECT_EQ(dispute.charges[0].limit->counter, "open_dispute._rate_minute");
  EXPECT_EQ(dispute.charges[0].limit->max, 2);
  EXPECT_EQ(dispute.charges[0].limit->reason, "Two disputes a minute at most");

  EXPECT_EQ(Decide(p, "close_account").reason, "Closing an account is for a human");
  EXPECT_EQ(Decide(p, "list_payouts").charges.size(), 1u) << "rules: [] still meets the \"*\" rules";
  EXPECT_EQ(Decide(p, "anything_else").charges.size(), 1u) << "default allow, \"*\" rules apply";
  EXPECT_TRUE(p.IsHidden("export_*"));
  EXPECT_FALSE(p.IsHidden("export_ledger")) << "hide is exact unless it is \"*\"";
}

TEST(InterceptFormatTest, DefaultDenyRejectsUnlistedToolsBeforeTheStarRules) {
  auto loaded = LoadFixture("default_deny.yaml");
  ASSERT_NE(loaded, nullptr);
  const Policy& p = *loaded;
  EXPECT_EQ(Decide(p, "delete_note").rule, "default");
  Decision search = Decide(p, "search_notes");
  ASSERT_EQ(search.verdict, Verdict::kAllow);
  ASSERT_EQ(search.charges.size(), 1u);
  EXPECT_EQ(search.charges[0].limit->counter, "_global._rate_minute");
  EXPECT_EQ(search.charges[0].limit->max, 20);
  EXPECT_EQ(Decide(p, "read_note", R"({"path":"notes/a.md"})").verdict, Verdict::kAllow);
  EXPECT_EQ(Decide(p, "read_note", R"({"path":"/etc/passwd"})").reason,
            "Only files under notes/ may be read");
}

TEST_F(InterceptCompatTest, EveryPublishedPolicyValidates) {
  int files = 0;
  for (const auto& entry : fs::directory_iterator(CompatDir())) {
    const std::string name = entry.path().filename().string();
    if (entry.path().extension() != ".yaml" || name.starts_with("testdata-invalid")) continue;
    SCOPED_TRACE(name);
    auto p = LoadPolicyFile(entry.path().string());
    ASSERT_TRUE(p.has_value()) << p.error().message();
    EXPECT_EQ((*p)->format, Format::kIntercept);
    ++files;
  }
  EXPECT_GE(files, 40);
}

TEST_F(InterceptCompatTest, TheInvalidFixturesFailWithIntercepsMessages) {
  auto syntax = LoadPolicyFile((CompatDir() / "testdata-invalid_policy.yaml").string());
  ASSERT_FALSE(syntax.has_value());
  EXPECT_NE(syntax.error().message().find("testdata-invalid_policy.yaml:"), std::string::npos);

  auto schema = LoadPolicyFile((CompatDir() / "testdata-invalid_schema.yaml").string());
  ASSERT_FALSE(schema.has_value());
  const std::string& m = schema.error().message();
  for (const char* expected : {
           ":1:10: version must be \"1\", got \"2\"",
           "rule must have a name",
           "unknown operator \"unknown_op\"",
           "path must start with \"args.\" or \"state.\", got \"foo.bar\"",
           "operator \"in\" requires a list value",
           "operator \"lt\" requires a numeric value",
           "invalid regex \"[invalid(\"",
           "deny rules must not have conditions",
           "evaluate rules must have at least one condition",
           "rate_limit count must be a positive integer, got \"five\"",
           "rate_limit cannot be combined with conditions or state",
           "rate_limit count must be a positive integer, got \"0\"",
           "rate_limit window must be \"minute\", \"hour\", or \"day\", got \"week\"",
           "rate_limit cannot be used with action \"deny\"",
       }) {
    EXPECT_NE(m.find(expected), std::string::npos) << "missing: " << expected << "\nin:\n" << m;
  }
  // Every problem is on its own line with a position.
  size_t lines = std::count(m.begin(), m.end(), '\n') + 1;
  EXPECT_GE(lines, 15u) << m;
}

TEST_F(InterceptCompatTest, StripeExampleKeepsInterceptsSemantics) {
  auto loaded = LoadPolicyFile((CompatDir() / "testdata-valid_policy.yaml").string());
  ASSERT_TRUE(loaded.has_value()) << loaded.error().message();
  const Policy& p = **loaded;
  EXPECT_EQ(p.default_action, DefaultAction::kAllow);

  Decision big = Decide(p, "create_charge", R"({"amount":60000,"currency":"usd"})");
  EXPECT_EQ(big.verdict, Verdict::kDeny);
  EXPECT_EQ(big.reason, "Single charge cannot exceed $500.00");
  EXPECT_EQ(big.rule, "tools.create_charge.rules[0] (max single charge)");
  EXPECT_EQ(Decide(p, "create_charge", R"({"amount":100,"currency":"gbp"})").reason,
            "Only USD and EUR charges are permitted");

  Decision ok = Decide(p, "create_charge", R"({"amount":5000,"currency":"eur"})");
  ASSERT_EQ(ok.verdict, Verdict::kAllow);
  ASSERT_EQ(ok.charges.size(), 2u);  // the daily spend cap, then the "*" global rate limit
  const Limit& spend = *ok.charges[0].limit;
  EXPECT_EQ(spend.counter, "create_charge.daily_spend");
  EXPECT_EQ(spend.max, 999999) << "lt 1000000 admits up to 999999";
  EXPECT_EQ(ok.charges[0].amount, 5000);
  EXPECT_EQ(spend.scope, Scope::kGlobal);
  EXPECT_EQ(spend.refund, RefundOn::kJsonRpcError);
  EXPECT_EQ(spend.reason, "Daily spending cap of $10,000.00 reached");
  const Limit& global = *ok.charges[1].limit;
  EXPECT_EQ(global.counter, "_global.calls_per_minute");
  EXPECT_EQ(global.max, 59);

  Decision issue = Decide(p, "create_issue");
  ASSERT_EQ(issue.charges.size(), 2u);
  EXPECT_EQ(issue.charges[0].limit->counter, "create_issue._rate_hour");
  EXPECT_EQ(issue.charges[0].limit->max, 5);
  EXPECT_EQ(Decide(p, "delete_customer").reason,
            "Customer deletion is not permitted via AI agents");
  // Unlisted tools are allowed (default allow) but still meet the "*" rules.
  EXPECT_EQ(Decide(p, "list_customers").charges.size(), 1u);
}

TEST_F(InterceptCompatTest, DefaultDenyRejectsUnlistedToolsBeforeWildcardRules) {
  auto loaded = LoadPolicyFile((CompatDir() / "testdata-default_deny_policy.yaml").string());
  ASSERT_TRUE(loaded.has_value()) << loaded.error().message();
  const Policy& p = **loaded;
  EXPECT_EQ(Decide(p, "unlisted").rule, "default");
  Decision read = Decide(p, "read_file");  // rules: [] is allowed, "*" still applies
  EXPECT_EQ(read.verdict, Verdict::kAllow);
  ASSERT_EQ(read.charges.size(), 1u);
  EXPECT_EQ(read.charges[0].limit->counter, "_global._rate_minute");
  EXPECT_EQ(read.charges[0].limit->max, 60);
}

TEST(InterceptTest, HideIsExactUnlessStar) {
  auto r = CompilePolicy("version: \"1\"\nhide: [\"delete_*\"]\ntools:\n  a:\n    rules: []\n", "p",
                         FileFormat::kYaml);
  ASSERT_TRUE(r.policy) << FormatDiagnostics("p", r.diagnostics);
  EXPECT_TRUE(r.policy->IsHidden("delete_*"));
  EXPECT_FALSE(r.policy->IsHidden("delete_repo"));
  EXPECT_EQ(Decide(*r.policy, "delete_*").reason, "Tool \"delete_*\" is hidden by policy");
}

}  // namespace
}  // namespace tw::policy
