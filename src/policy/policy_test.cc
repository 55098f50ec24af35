#include "policy/policy.h"

#include <gtest/gtest.h>

#include "policy/loader.h"

namespace tw::policy {
namespace {

std::shared_ptr<const Policy> Load(std::string_view text, Format format = Format::kJson) {
  CompileResult r = CompilePolicy(text, "test.json", format);
  EXPECT_TRUE(r.diagnostics.empty()) << FormatDiagnostics("test.json", r.diagnostics);
  return r.policy;
}

Decision Decide(const Policy& p, const std::string& tool) {
  return Evaluate(p, mcp::ToolCall{tool, {}});
}

TEST(GlobMatchTest, MatchesStarAndQuestionMark) {
  struct Case {
    const char* glob;
    const char* name;
    bool match;
  };
  const Case cases[] = {
      {"delete_*", "delete_repo", true},
      {"delete_*", "delete_", true},
      {"delete_*", "undelete_x", false},
      {"*_admin", "repo_admin", true},
      {"a?c", "abc", true},
      {"a?c", "ac", false},
      {"*", "", true},
      {"a*b*c", "aXXbYYc", true},
      {"a*b*c", "aXXbYY", false},
      {"exact", "exact", true},
      {"**x", "yx", true},
      {"*é*", "café", true},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.glob) + " vs " + c.name);
    EXPECT_EQ(GlobMatch(c.glob, c.name), c.match);
  }
}

TEST(EvaluateTest, DefaultDenyDeniesUnlistedTools) {
  auto p = Load(R"({"version":"1","default":"deny","tools":{"echo":{}}})");
  EXPECT_EQ(Decide(*p, "echo").verdict, Verdict::kAllow);
  Decision d = Decide(*p, "other");
  EXPECT_EQ(d.verdict, Verdict::kDeny);
  EXPECT_EQ(d.rule, "default");
  EXPECT_NE(d.reason.find("other"), std::string::npos);
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

TEST(EvaluateTest, RequireApprovalFailsClosedUntilApprovalsExist) {
  auto p =
      Load(R"({"version":"1","default":"allow","tools":{"pay":{"action":"require_approval"}}})");
  Decision d = Decide(*p, "pay");
  EXPECT_EQ(d.verdict, Verdict::kDeny);
  EXPECT_NE(d.reason.find("approval"), std::string::npos);
}

TEST(EvaluateTest, YamlAndJsonMeanTheSame) {
  auto p = Load("version: 1\ndefault: allow\nhide: [x]\ntools:\n  rm:\n    action: deny\n  ok:\n",
                Format::kYaml);
  EXPECT_EQ(Decide(*p, "rm").verdict, Verdict::kDeny);
  EXPECT_EQ(Decide(*p, "ok").verdict, Verdict::kAllow);
  EXPECT_TRUE(p->IsHidden("x"));
}

}  // namespace
}  // namespace tw::policy
