#include "policy/policy.h"

#include <gtest/gtest.h>

#include "policy/loader.h"

namespace tw::policy {
namespace {

// 2023-11-14T22:13:20Z, a Tuesday.
constexpr int64_t kNow = 1'700'000'000'000;

std::shared_ptr<const Policy> Load(std::string_view text, FileFormat format = FileFormat::kJson) {
  CompileResult r = CompilePolicy(text, "test", format);
  EXPECT_TRUE(r.diagnostics.empty()) << FormatDiagnostics("test", r.diagnostics);
  return r.policy;
}

Decision Decide(const Policy& p, const std::string& tool, std::string_view args = "{}") {
  return Evaluate(p, mcp::ToolCall{tool, json::parse(args).as_object()}, Identity{}, kNow);
}

TEST(GlobMatchTest, MatchesStarAndQuestionMark) {
  struct Case {
    const char* glob;
    const char* name;
    bool match;
  };
  const Case cases[] = {
      {"delete_*", "delete_repo", true}, {"delete_*", "delete_", true},
      {"delete_*", "undelete_x", false}, {"*_admin", "repo_admin", true},
      {"a?c", "abc", true},              {"a?c", "ac", false},
      {"*", "", true},                   {"a*b*c", "aXXbYYc", true},
      {"a*b*c", "aXXbYY", false},        {"exact", "exact", true},
      {"**x", "yx", true},               {"*é*", "café", true},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.glob) + " vs " + c.name);
    EXPECT_EQ(GlobMatch(c.glob, c.name), c.match);
  }
}

TEST(EvaluateTest, TheSeedPolicyBehavesAsDocumented) {
  auto p = Load(
      R"({"version":"1","default":"deny","tools":{"retry_session":{"limits":[{"counter":"retry_session_rate","window":"minute","max":10,"scope":"grant"}]}}})");
  Decision d = Decide(*p, "retry_session", R"({"session_id":"s-1"})");
  ASSERT_EQ(d.verdict, Verdict::kAllow);
  ASSERT_EQ(d.charges.size(), 1u);
  const Limit& l = *d.charges[0].limit;
  EXPECT_EQ(l.counter, "retry_session_rate");
  EXPECT_EQ(l.max, 10);
  EXPECT_EQ(l.scope, Scope::kGrant);
  EXPECT_EQ(l.refund, RefundOn::kNever) << "failed calls must still count";
  EXPECT_EQ(d.charges[0].amount, 1);
  EXPECT_EQ(d.charges[0].window_start_ms % 60'000, 0);
  EXPECT_EQ(d.charges[0].window_end_ms - d.charges[0].window_start_ms, 60'000);
  Decision other = Decide(*p, "delete_session");
  EXPECT_EQ(other.verdict, Verdict::kDeny);
  EXPECT_EQ(other.rule, "default");
}

TEST(EvaluateTest, ExactBeatsGlobAndLongerGlobBeatsShorter) {
  auto p = Load(R"({"version":"1","default":"allow","tools":{
      "delete_*":{"action":"deny","reason":"no deleting"},
      "delete_draft_*":{"action":"allow"},
      "delete_draft_final":{"action":"deny","reason":"final drafts stay"}}})");
  EXPECT_EQ(Decide(*p, "delete_repo").rule, "tools.delete_*");
  EXPECT_EQ(Decide(*p, "delete_repo").reason, "no deleting");
  EXPECT_EQ(Decide(*p, "delete_draft_1").verdict, Verdict::kAllow);
  EXPECT_EQ(Decide(*p, "delete_draft_1").rule, "tools.delete_draft_*");
  EXPECT_EQ(Decide(*p, "delete_draft_final").reason, "final drafts stay");
  EXPECT_EQ(Decide(*p, "read").rule, "default");
}

TEST(EvaluateTest, HiddenToolsAreDeniedEvenWhenAllowed) {
  auto p = Load(R"({"version":"1","default":"allow","hide":["secret_*"],"tools":{"secret_x":{}}})");
  EXPECT_TRUE(p->IsHidden("secret_x"));
  Decision d = Decide(*p, "secret_x");
  EXPECT_EQ(d.verdict, Verdict::kDeny);
  EXPECT_EQ(d.rule, "hide");
}

TEST(EvaluateTest, RequireApprovalAllowsOnlyOnceApprovedAfterItsLimits) {
  auto p = Load(R"({"version":"1","default":"allow","tools":{"pay":{"action":"require_approval",
      "approval_timeout":"10m","limits":[{"counter":"pay","window":"day","max":3}]},"read":{}}})");
  Decision d = Decide(*p, "pay");
  EXPECT_EQ(d.verdict, Verdict::kAllow);
  EXPECT_EQ(d.approval_timeout_ms, 600'000);
  EXPECT_EQ(d.charges.size(), 1u) << "limits are charged before the approval is asked";
  EXPECT_FALSE(Decide(*p, "read").approval_timeout_ms.has_value());
}

// The PRODUCT.md example for create_refund, case by case.
TEST(EvaluateTest, RequireAndDenyIfFollowTheDocumentedOrderAndSemantics) {
  auto p = Load(R"({"version":"1","default":"deny","tools":{"create_refund":{
      "require":[{"path":"args.reason","op":"exists","value":true}],
      "deny_if":[{"path":"args.amount","op":"gt","value":10000}],
      "limits":[{"counter":"refund_total","window":"day","max":100000,"increment_from":"args.amount"}],
      "reason":"Refunds need a reason and stay under $100"}}})");
  struct Case {
    const char* args;
    Verdict verdict;
    const char* rule;
  };
  const Case cases[] = {
      {R"({"amount":500,"reason":"dup"})", Verdict::kAllow, "tools.create_refund"},
      {R"({"amount":10000,"reason":"dup"})", Verdict::kAllow, "tools.create_refund"},
      {R"({"amount":10001,"reason":"dup"})", Verdict::kDeny, "tools.create_refund.deny_if[0]"},
      {R"({"amount":500})", Verdict::kDeny, "tools.create_refund.require[0]"},
      {R"({"amount":500,"reason":null})", Verdict::kDeny, "tools.create_refund.require[0]"},
      // A string amount cannot be compared: deny_if fails closed.
      {R"({"amount":"99999","reason":"x"})", Verdict::kDeny, "tools.create_refund.deny_if[0]"},
      // No amount: deny_if is not triggered, but the spend cap needs the amount.
      {R"({"reason":"x"})", Verdict::kDeny, "tools.create_refund.limits[0]"},
      {R"({"amount":-5,"reason":"x"})", Verdict::kDeny, "tools.create_refund.limits[0]"},
      {R"({"amount":12.5,"reason":"x"})", Verdict::kDeny, "tools.create_refund.limits[0]"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.args);
    Decision d = Decide(*p, "create_refund", c.args);
    EXPECT_EQ(d.verdict, c.verdict) << d.reason;
    EXPECT_EQ(d.rule, c.rule);
  }
  Decision ok = Decide(*p, "create_refund", R"({"amount":750,"reason":"dup"})");
  ASSERT_EQ(ok.charges.size(), 1u);
  EXPECT_EQ(ok.charges[0].amount, 750);
  EXPECT_EQ(Decide(*p, "create_refund", R"({"amount":10001,"reason":"x"})").reason,
            "Refunds need a reason and stay under $100");
}

TEST(EvaluateTest, GeneratedReasonsNameTheCondition) {
  auto p = Load(R"({"version":"1","default":"allow","tools":{"push":{
      "deny_if":[{"path":"args.branch","op":"in","value":["main","release"]}],
      "require":[{"path":"args.message","op":"regex","value":"^[A-Z]"}]}}})");
  EXPECT_EQ(Decide(*p, "push", R"({"branch":"main","message":"Fix"})").reason,
            R"(denied because args.branch in ["main","release"])");
  EXPECT_EQ(Decide(*p, "push", R"({"branch":"dev","message":"fix"})").reason,
            R"(requires args.message regex "^[A-Z]")");
  EXPECT_EQ(Decide(*p, "push", R"({"branch":"dev"})").reason,
            R"(args.message is required (args.message regex "^[A-Z]"))");
}

TEST(EvaluateTest, AllToolsLimitsApplyToEveryCallInAddition) {
  auto p = Load(R"({"version":"1","default":"allow",
      "all_tools":{"limits":[{"counter":"all_calls","window":"minute","max":120}]},
      "tools":{"search":{"limits":[{"counter":"search_rate","window":"15m","max":5,"scope":"session"}]}}})");
  Decision search = Decide(*p, "search");
  ASSERT_EQ(search.charges.size(), 2u);
  EXPECT_EQ(search.charges[0].limit->counter, "search_rate");
  EXPECT_EQ(search.charges[1].limit->counter, "all_calls");
  EXPECT_EQ(search.charges[1].limit->rule, "all_tools.limits[0]");
  EXPECT_EQ(Decide(*p, "anything_else").charges.size(), 1u);
}

TEST(WindowTest, WindowsAreFixedAndAlignedToUtc) {
  struct Case {
    const char* text;
    int64_t now;
    int64_t start;
    int64_t length;
  };
  // 2023-11-14T22:13:20Z is a Tuesday; that week began Monday 2023-11-13T00:00:00Z.
  const Case cases[] = {
      {"second", kNow + 999, kNow, 1000},
      {"minute", kNow, kNow - 20'000, 60'000},
      {"minute", kNow - 20'000, kNow - 20'000, 60'000},  // exactly at a boundary: a new window
      {"minute", kNow - 20'001, kNow - 80'000, 60'000},
      {"hour", kNow, kNow - (13 * 60 + 20) * 1000, 3'600'000},
      {"day", kNow, 1'699'920'000'000, 86'400'000},
      {"week", kNow, 1'699'833'600'000, 604'800'000},
      {"15m", kNow, 1'699'999'200'000, 900'000},
      {"30s", kNow + 29'999, 1'700'000'010'000, 30'000},
      {"7d", 0, 0, 604'800'000},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.text) + " at " + std::to_string(c.now));
    auto w = ParseWindow(c.text);
    ASSERT_TRUE(w.has_value());
    EXPECT_EQ(w->Start(c.now), c.start);
    EXPECT_EQ(w->End(c.now) - w->Start(c.now), c.length);
    EXPECT_LE(w->Start(c.now), c.now);
    EXPECT_GT(w->End(c.now), c.now);
  }
  for (const char* bad : {"fortnight", "0s", "-5m", "5", "1.5h", "10ms", ""}) {
    SCOPED_TRACE(bad);
    EXPECT_FALSE(ParseWindow(bad).has_value());
  }
}

TEST(LimitDenialTest, NamesTheLimitAndWhenItResets) {
  Limit l;
  l.rule = "tools.retry_session.limits[0]";
  l.counter = "retry_session_rate";
  l.window = *ParseWindow("minute");
  l.max = 10;
  PlannedCharge c{&l, 1, l.window.Start(kNow), l.window.End(kNow)};
  Decision d = LimitDenial(c, 10, kNow);
  EXPECT_EQ(d.verdict, Verdict::kDeny);
  EXPECT_EQ(d.rule, "tools.retry_session.limits[0]");
  EXPECT_EQ(d.retry_after_s, 40);
  EXPECT_EQ(d.reason,
            "Rate limit \"retry_session_rate\" reached: at most 10 calls per minute per grant. "
            "Resets in 40 s.");
  l.window = *ParseWindow("day");
  l.increment_from = *ArgPath::Parse("args.amount");
  c = PlannedCharge{&l, 500, l.window.Start(kNow), l.window.End(kNow)};
  EXPECT_EQ(LimitDenial(c, 9800, kNow).reason,
            "Limit \"retry_session_rate\" reached: at most 10 of args.amount per day per grant "
            "(used 9800, this call 500). Resets in 1 h 46 min.");
}

}  // namespace
}  // namespace tw::policy

namespace tw::policy {
namespace {

TEST(EvaluateTest, GroupedRegexesDecideExactlyLikeSeparateOnes) {
  auto p = Load(R"({"version":"1","default":"allow","tools":{"push":{
      "require":[{"path":"args.b","op":"regex","value":"^(feat|fix)/"},
                 {"path":"args.b","op":"not_regex","value":"WIP"},
                 {"path":"args.m","op":"regex","value":"^[A-Z]"}],
      "deny_if":[{"path":"args.b","op":"regex","value":"(?i)hotfix"},
                 {"path":"args.b","op":"not_regex","value":"[a-z]"}]}}})");
  ASSERT_EQ(p->Match("push")->regex_groups.size(), 1u) << "args.b's four regexes form one group";
  struct Case {
    const char* args;
    const char* rule;  // empty: allowed
  };
  const Case cases[] = {
      {R"({"b":"feat/login","m":"Add"})", ""},
      {R"({"b":"main","m":"Add"})", "tools.push.require[0]"},
      {R"({"b":"feat/WIP","m":"Add"})", "tools.push.require[1]"},
      {R"({"b":"feat/x","m":"add"})", "tools.push.require[2]"},
      {R"({"b":"fix/HOTFIX-1","m":"Add"})", "tools.push.deny_if[0]"},
      {R"({"m":"Add"})", "tools.push.require[0]"},                 // absent
      {R"({"b":7,"m":"Add"})", "tools.push.require[0]"},           // mismatch
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.args);
    Decision d = Decide(*p, "push", c.args);
    if (*c.rule == '\0') {
      EXPECT_EQ(d.verdict, Verdict::kAllow) << d.rule << ": " << d.reason;
    } else {
      EXPECT_EQ(d.verdict, Verdict::kDeny);
      EXPECT_EQ(d.rule, c.rule) << d.reason;
    }
  }
}

}  // namespace
}  // namespace tw::policy

namespace tw::policy {
namespace {

constexpr std::string_view kShadowParts = R"(
version: "1"
default: allow
tools:
  drop_table: {action: deny, mode: shadow, reason: "Dropping tables needs a ticket"}
  query:
    deny_if:
      - {path: args.sql, op: regex, value: "(?i)delete", mode: shadow}
      - {path: args.sql, op: regex, value: "(?i)truncate"}
    limits:
      - {counter: q, window: minute, max: 2, mode: shadow}
)";

TEST(ShadowTest, ShadowPartsDecideOnlyInTheWouldBePolicy) {
  auto p = Load(kShadowParts, FileFormat::kYaml);
  ASSERT_TRUE(p && p->shadow);
  EXPECT_FALSE(p->shadow_only);
  // Enforcing: the shadow entry, condition and limit are not there.
  EXPECT_EQ(Decide(*p, "drop_table").verdict, Verdict::kAllow);
  EXPECT_EQ(Decide(*p, "query", R"({"sql":"DELETE FROM t"})").verdict, Verdict::kAllow);
  EXPECT_EQ(Decide(*p, "query", R"({"sql":"truncate t"})").rule, "tools.query.deny_if[1]");
  EXPECT_TRUE(Decide(*p, "query", R"({"sql":"select 1"})").charges.empty());
  // Would-be: they decide, under the same rule names.
  const Policy& s = *p->shadow;
  Decision drop = Decide(s, "drop_table");
  EXPECT_EQ(drop.verdict, Verdict::kDeny);
  EXPECT_EQ(drop.reason, "Dropping tables needs a ticket");
  EXPECT_EQ(Decide(s, "query", R"({"sql":"DELETE FROM t"})").rule, "tools.query.deny_if[0]");
  EXPECT_EQ(Decide(s, "query", R"({"sql":"select 1"})").charges.size(), 1u);
  EXPECT_EQ(s.version, p->version);
}

TEST(ShadowTest, AWholeFileInShadowModeDecidesNothingAndBadModesArePlaced) {
  auto whole = Load("version: \"1\"\ndefault: deny\nmode: shadow\n", FileFormat::kYaml);
  ASSERT_TRUE(whole);
  EXPECT_TRUE(whole->shadow_only);
  EXPECT_FALSE(Load(kShadowParts, FileFormat::kYaml)->shadow->shadow);
  CompileResult bad = CompilePolicy("version: \"1\"\ndefault: allow\ntools:\n  a: {mode: shadw}\n",
                                    "p.yaml", FileFormat::kYaml);
  ASSERT_EQ(bad.diagnostics.size(), 1u);
  EXPECT_EQ(bad.diagnostics[0].line, 4);
  EXPECT_NE(bad.diagnostics[0].message.find("tools.a.mode must be enforce or shadow, not \"shadw\""),
            std::string::npos);
  EXPECT_NE(bad.diagnostics[0].message.find("did you mean \"shadow\""), std::string::npos);
  // Without shadow parts there is no would-be policy to evaluate.
  EXPECT_FALSE(Load(R"({"version":"1","default":"allow"})")->shadow);
}

constexpr std::string_view kClasses = R"(
version: "1"
default: allow
tools:
  delete_draft: {}
  "purge_*": {action: deny, reason: "never"}
classes:
  Destructive: {action: require_approval, approval_timeout: 10m}
  Financial: {limits: [{counter: money, window: day, max: 3}]}
  Critical: {action: deny}
)";

TEST(ClassesTest, ExactBeatsGlobBeatsCategoryBeatsRiskBeatsDefault) {
  auto p = Load(kClasses, FileFormat::kYaml);
  ASSERT_TRUE(p);
  auto decide = [&](const std::string& tool, ToolClass cls) {
    return Evaluate(*p, mcp::ToolCall{tool, {}}, Identity{}, kNow, cls);
  };
  const ToolClass destructive{"Destructive", "Critical"};
  EXPECT_EQ(decide("delete_draft", destructive).rule, "tools.delete_draft") << "exact name first";
  EXPECT_EQ(decide("purge_all", destructive).rule, "tools.purge_*") << "then globs";
  Decision held = decide("drop_db", destructive);
  EXPECT_EQ(held.rule, "classes.Destructive") << "then the category, before the risk";
  EXPECT_EQ(held.approval_timeout_ms, 10 * 60'000);
  EXPECT_EQ(decide("wire", {"Financial", "High"}).charges.size(), 1u);
  EXPECT_EQ(decide("exec", {"Execute", "Critical"}).rule, "classes.Critical") << "then the risk";
  Decision read = decide("list", {"Read", "Low"});
  EXPECT_EQ(read.rule, "default");
  EXPECT_EQ(read.verdict, Verdict::kAllow);
  EXPECT_EQ(decide("drop_db", {}).rule, "default") << "an unclassified tool: no class applies";
  EXPECT_EQ(StanceOf(*p, "drop_db", destructive).stance, Stance::kApproval);
  EXPECT_EQ(p->AllLimits().size(), 1u);
}

TEST(ClassesTest, OnlyTheClassifiersNamesAreClasses) {
  CompileResult bad = CompilePolicy("version: \"1\"\ndefault: allow\nclasses:\n  Destructve: {action: deny}\n",
                                    "p.yaml", FileFormat::kYaml);
  ASSERT_EQ(bad.diagnostics.size(), 1u);
  EXPECT_EQ(bad.diagnostics[0].line, 4);
  EXPECT_NE(bad.diagnostics[0].message.find("is not a category"), std::string::npos);
  EXPECT_NE(bad.diagnostics[0].message.find("did you mean \"Destructive\""), std::string::npos);
}

TEST(EvaluateTest, PrincipalsAndGroupsSayWhoMayCallATool) {
  auto p = Load(R"(
version: "1"
default: allow
tools:
  delete_repo: {groups: [admins], principals: [alice@example.com]}
  create_issue: {}
all_tools: {groups: [staff, admins]}
classes:
  Financial: {principals: [finance-bot]}
)",
                FileFormat::kYaml);
  const std::vector<std::string> staff{"staff"}, admins{"admins", "staff"}, none;
  auto decide = [&](const std::string& tool, std::string_view who, const std::vector<std::string>& groups,
                    const ToolClass& cls = {}) {
    Identity id;
    id.principal = who;
    id.groups = groups;
    return Evaluate(*p, mcp::ToolCall{tool, {}}, id, kNow, cls);
  };
  EXPECT_EQ(decide("create_issue", "bob", staff).verdict, Verdict::kAllow);
  Decision d = decide("delete_repo", "bob", staff);
  EXPECT_EQ(d.verdict, Verdict::kDeny);
  EXPECT_EQ(d.rule, "tools.delete_repo");
  EXPECT_EQ(d.reason, "Tool \"delete_repo\" may be called only by alice@example.com, or members of admins (you are bob)");
  EXPECT_EQ(decide("delete_repo", "carol", admins).verdict, Verdict::kAllow);
  // alice is named, but all_tools still wants one of its groups.
  d = decide("delete_repo", "alice@example.com", none);
  EXPECT_EQ(d.verdict, Verdict::kDeny);
  EXPECT_EQ(d.rule, "all_tools");
  EXPECT_EQ(decide("delete_repo", "alice@example.com", staff).verdict, Verdict::kAllow);
  // A grant that names nobody is nobody: refused wherever someone is required.
  d = decide("create_issue", "", none);
  EXPECT_EQ(d.verdict, Verdict::kDeny);
  EXPECT_NE(d.reason.find("this caller names no principal"), std::string::npos);
  // A class selector names who may call what it selects.
  EXPECT_EQ(decide("pay", "bob", staff, {"Financial", "High"}).verdict, Verdict::kDeny);
  EXPECT_EQ(decide("pay", "finance-bot", staff, {"Financial", "High"}).verdict, Verdict::kAllow);
}

TEST(EvaluateTest, PrincipalScopedLimitsAreNamedSo) {
  auto p = Load(R"({"version":"1","default":"deny","tools":{"pay":{"limits":[
      {"counter":"spend","window":"day","max":3,"scope":"principal"}]}}})");
  ASSERT_EQ(p->AllLimits().size(), 1u);
  EXPECT_EQ(p->AllLimits()[0]->scope, Scope::kPrincipal);
  EXPECT_EQ(ScopeName(Scope::kPrincipal), "principal");
}

}  // namespace
}  // namespace tw::policy
