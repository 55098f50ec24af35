#include "policy/loader.h"

#include <gtest/gtest.h>

namespace tw::policy {
namespace {

std::string Errors(std::string_view text, Format format) {
  CompileResult r = CompilePolicy(text, "p", format);
  EXPECT_EQ(r.policy == nullptr, !r.diagnostics.empty());
  return FormatDiagnostics("p", r.diagnostics);
}

TEST(LoaderTest, ReportsEveryProblemWithItsPosition) {
  struct Case {
    const char* text;
    Format format;
    const char* expected;
  };
  const Case cases[] = {
      {"{\"version\":\"1\",\n \"default\":\"deny\",\n \"tols\":{}}", Format::kJson,
       "p:3:2: unknown key \"tols\""},
      {"{\"version\":\"1\",\"default\":\"maybe\"}", Format::kJson,
       "p:1:26: default must be \"allow\" or \"deny\", not \"maybe\""},
      {"{\"version\":\"2\",\"default\":\"deny\"}", Format::kJson, "p:1:12: version must be \"1\""},
      {"{\"version\":\"1\"}", Format::kJson, "p:1:1: missing required key \"default\""},
      {"{\"version\":\"1\",\n\"default\":\"deny\",}", Format::kJson, "p:2:18: invalid JSON"},
      {"version: 1\ndefault: deny\ntools:\n  x:\n    action: alow\n", Format::kYaml,
       "p:5:13: tools.x.action must be allow, deny or require_approval, not \"alow\""},
      {"version: 1\ndefault: deny\ntools:\n  x:\n    limits: []\n", Format::kYaml,
       "p:5:5: tools.x.limits is not supported by this build yet"},
      {"version: 1\ndefault: deny\ntools:\n  x: {}\n  x: {}\n", Format::kYaml,
       "p:5:3: tools: duplicate key \"x\""},
      {"version: 1\ndefault: deny\nhide: [\"\"]\n", Format::kYaml, "p:3:8: hide: empty tool name"},
      {"version: 1\ndefault: deny\ntools: [a]\n", Format::kYaml, "p:3:8: tools must be a mapping"},
      {"version: 1\ndefault: [deny\n", Format::kYaml, "p:"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    std::string errors = Errors(c.text, c.format);
    EXPECT_NE(errors.find(c.expected), std::string::npos) << errors;
  }
}

TEST(LoaderTest, CollectsAllErrorsNotOnlyTheFirst) {
  std::string errors = Errors("version: 3\ndefault: no\nextra: 1\n", Format::kYaml);
  EXPECT_NE(errors.find("p:1:"), std::string::npos) << errors;
  EXPECT_NE(errors.find("p:2:"), std::string::npos) << errors;
  EXPECT_NE(errors.find("p:3:"), std::string::npos) << errors;
}

TEST(LoaderTest, LoadPolicyFileNamesAMissingFile) {
  auto r = LoadPolicyFile("/nonexistent/policy.json");
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find("/nonexistent/policy.json"), std::string::npos);
}

}  // namespace
}  // namespace tw::policy
