#include "policy/loader.h"

#include <filesystem>

#include <gtest/gtest.h>

namespace tw::policy {
namespace {

std::string Errors(std::string_view text, FileFormat format) {
  CompileResult r = CompilePolicy(text, "p", format);
  EXPECT_EQ(r.policy == nullptr, !r.diagnostics.empty());
  return FormatDiagnostics("p", r.diagnostics);
}

TEST(LoaderTest, ReportsEveryProblemWithItsPosition) {
  struct Case {
    const char* text;
    FileFormat format;
    const char* expected;
  };
  const Case cases[] = {
      {"{\"version\":\"1\",\n \"default\":\"deny\",\n \"tols\":{}}", FileFormat::kJson,
       "p:3:2: unknown key \"tols\""},
      {"{\"version\":\"1\",\"default\":\"maybe\"}", FileFormat::kJson,
       "p:1:26: default must be \"allow\" or \"deny\", not \"maybe\""},
      {"{\"version\":\"2\",\"default\":\"deny\"}", FileFormat::kJson, "p:1:12: version must be \"1\""},
      {"{\"version\":\"1\"}", FileFormat::kJson, "p:1:1: missing required key \"default\""},
      {"{\"version\":\"1\",\n\"default\":\"deny\",}", FileFormat::kJson, "p:2:18: invalid JSON"},
      {"version: 1\ndefault: deny\ntools:\n  x:\n    action: alow\n", FileFormat::kYaml,
       "p:5:13: tools.x.action must be allow, deny or require_approval, not \"alow\""},
      {"version: 1\ndefault: deny\ntools:\n  x: {}\n  x: {}\n", FileFormat::kYaml,
       "p:5:3: tools: duplicate key \"x\""},
      {"version: 1\ndefault: deny\nhide: [\"\"]\n", FileFormat::kYaml, "p:3:8: hide: empty tool name"},
      {"version: 1\ndefault: deny\ntools: [a]\n", FileFormat::kYaml,
       "p:3:8: tools must be a mapping"},
      {"version: 1\ndefault: [deny\n", FileFormat::kYaml, "p:"},
      {"version: 1\ndefault: deny\ntools:\n  x:\n    deny_if:\n      - {path: args.a, op: lte , value: 1}\n"
       "      - {path: args.a, op: between, value: 1}\n",
       FileFormat::kYaml, "p:7:28: tools.x.deny_if[1].op: unknown operator \"between\""},
      {"version: 1\ndefault: deny\ntools:\n  x:\n    require:\n      - {path: amount, op: lt, value: 1}\n",
       FileFormat::kYaml, "tools.x.require[0].path: path must start with \"args.\""},
      {"version: 1\ndefault: deny\ntools:\n  x:\n    require:\n      - {path: args.e, op: regex, value: \"[a\"}\n",
       FileFormat::kYaml, "p:6:42: tools.x.require[0]: invalid regex \"[a\": missing ]"},
      {"version: 1\ndefault: deny\ntools:\n  x:\n    limits:\n      - {counter: c, window: minute, max: 1}\n"
       "  y:\n    limits:\n      - {counter: c, window: hour, max: 2}\n",
       FileFormat::kYaml, "p:9:19: duplicate counter \"c\" (also used by tools.x.limits[0])"},
      {"version: 1\ndefault: deny\ntools:\n  x:\n    limits:\n      - {counter: c, window: fortnight, max: 1}\n",
       FileFormat::kYaml, "p:6:30: tools.x.limits[0].window: window must be second"},
      {"version: 1\ndefault: deny\ntools:\n  x:\n    limits:\n      - {counter: c, window: day, max: 0}\n",
       FileFormat::kYaml, "p:6:40: tools.x.limits[0].max must be a whole number greater than 0"},
      {"version: 1\ndefault: deny\ntools:\n  x:\n    limits:\n      - {counter: c, window: day, max: 5, increment_from: amount}\n",
       FileFormat::kYaml, "tools.x.limits[0].increment_from must start with \"args.\", got \"amount\""},
      {"version: 1\ndefault: deny\ntools:\n  x:\n    limits:\n      - {counter: \"\", window: day, max: 5}\n",
       FileFormat::kYaml, "tools.x.limits[0].counter must not be empty"},
      {"version: 1\ndefault: deny\ntools:\n  x:\n    limits:\n      - {counter: c, window: day, max: 5, scope: team}\n",
       FileFormat::kYaml, "tools.x.limits[0].scope must be grant, session, principal or global"},
      {"version: 1\ndefault: deny\ntools:\n  x:\n    limits:\n      - {counter: c, window: day}\n",
       FileFormat::kYaml, "tools.x.limits[0]: missing \"max\""},
      {"version: 1\ndefault: deny\ntools:\n  x:\n    approval_timeout: soon\n", FileFormat::kYaml,
       "tools.x.approval_timeout: \"soon\" is not a duration"},
      {"version: 1\ndefault: deny\nall_tools:\n  limit: []\n", FileFormat::kYaml,
       "p:4:3: all_tools: unknown key \"limit\""},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    std::string errors = Errors(c.text, c.format);
    EXPECT_NE(errors.find(c.expected), std::string::npos) << errors;
  }
}

TEST(LoaderTest, SuggestsTheKeyOperatorOrScopeThatWasMeant) {
  const char* text =
      "version: 1\ndefualt: deny\ntools:\n  a: {limts: []}\n  b:\n"
      "    deny_if: [{path: args.x, op: lteq, value: 1}]\n"
      "    limits: [{counter: c, window: minute, max: 1, scope: sesion}]\n"
      "    action: alow\n";
  const std::string errors = Errors(text, FileFormat::kYaml);
  for (const char* hint : {"p:2:1: unknown key \"defualt\" (did you mean \"default\"?)",
                           "tools.a: unknown key \"limts\" (did you mean \"limits\"?)",
                           "unknown operator \"lteq\" (did you mean \"lte\"?)",
                           "not \"sesion\" (did you mean \"session\"?)",
                           "not \"alow\" (did you mean \"allow\"?)"}) {
    EXPECT_NE(errors.find(hint), std::string::npos) << hint << "\n" << errors;
  }
  // Nothing close: no guess.
  EXPECT_EQ(Errors("version: 1\ndefault: deny\nzebra: 1\n", FileFormat::kYaml).find("did you mean"),
            std::string::npos);
}

TEST(LoaderTest, OneRulesKeyDoesNotMakeANativeFileIntercepts) {
  // A native policy in which one entry says `rules` is neither format: said so, with both places.
  const std::string mixed = Errors(
      "version: 1\ndefault: deny\ntools:\n  a: {rules: []}\n  b:\n"
      "    limits: [{counter: c, window: minute, max: 1}]\n",
      FileFormat::kYaml);
  EXPECT_NE(mixed.find("p:4:7: tools.a.rules is Intercept's format, and tools.b.limits toolwarden's"),
            std::string::npos)
      << mixed;
  EXPECT_NE(mixed.find("format: toolwarden"), std::string::npos) << mixed;
  // The marker decides: a native file that names rules is told the key is unknown …
  const std::string marked = Errors(
      "version: 1\nformat: toolwarden\ndefault: deny\ntools:\n  a: {rules: []}\n", FileFormat::kYaml);
  EXPECT_NE(marked.find("tools.a: unknown key \"rules\""), std::string::npos) << marked;
  // … and an Intercept file may say what it is.
  CompileResult intercept = CompilePolicy(
      "version: \"1\"\nformat: intercept\ntools:\n  a:\n    rules: []\n", "p", FileFormat::kYaml);
  ASSERT_TRUE(intercept.policy) << FormatDiagnostics("p", intercept.diagnostics);
  EXPECT_EQ(intercept.policy->format, Format::kIntercept);
  EXPECT_NE(Errors("version: 1\nformat: intercpt\ndefault: deny\n", FileFormat::kYaml)
                .find("format must be \"toolwarden\" or \"intercept\", not \"intercpt\" (did you mean "
                      "\"intercept\"?)"),
            std::string::npos);
  // Whole-file Intercept policies (every entry `rules`) and empty entries stay as they were.
  CompileResult whole = CompilePolicy("version: \"1\"\ntools:\n  a:\n    rules: []\n  b: {}\n", "p",
                                      FileFormat::kYaml);
  ASSERT_TRUE(whole.policy) << FormatDiagnostics("p", whole.diagnostics);
  EXPECT_EQ(whole.policy->format, Format::kIntercept);
}

TEST(LoaderTest, YamlSyntaxErrorsSayWhatIsUsuallyWrong) {
  const std::string unclosed = Errors("version: 1\ndefault: deny\ntools:\n  a: {action: deny\n  b: [x\n",
                                      FileFormat::kYaml);
  EXPECT_NE(unclosed.find("YAML syntax: a \"{\" is never closed"), std::string::npos) << unclosed;
  const std::string tab = Errors("version: 1\ndefault: deny\ntools:\n\ta: {}\n", FileFormat::kYaml);
  EXPECT_NE(tab.find("p:4:"), std::string::npos) << tab;
  EXPECT_NE(tab.find("a tab indents this line"), std::string::npos) << tab;
  const std::string indent =
      Errors("version: 1\ndefault: deny\ntools:\n  a:\n  action: deny\n   reason: x\n", FileFormat::kYaml);
  EXPECT_NE(indent.find("does not line up"), std::string::npos) << indent;
}

TEST(LoaderTest, CollectsAllErrorsNotOnlyTheFirst) {
  std::string errors = Errors("version: 3\ndefault: no\nextra: 1\n", FileFormat::kYaml);
  EXPECT_NE(errors.find("p:1:"), std::string::npos) << errors;
  EXPECT_NE(errors.find("p:2:"), std::string::npos) << errors;
  EXPECT_NE(errors.find("p:3:"), std::string::npos) << errors;
}

TEST(LoaderTest, TypesYamlScalarsByTheCoreSchema) {
  // `yes` is a string in YAML 1.2; "10" quoted is a string; 10 is a number.
  auto r = CompilePolicy(
      "version: \"1\"\ndefault: allow\ntools:\n  t:\n    deny_if:\n"
      "      - {path: args.a, op: eq, value: yes}\n      - {path: args.b, op: eq, value: \"10\"}\n",
      "p", FileFormat::kYaml);
  ASSERT_TRUE(r.policy) << FormatDiagnostics("p", r.diagnostics);
  const auto& checks = r.policy->Match("t")->checks;
  EXPECT_EQ(checks[0].condition->value, json::value("yes"));
  EXPECT_EQ(checks[1].condition->value, json::value("10"));
}

TEST(LoaderTest, LoadPolicyFileNamesAMissingFile) {
  auto r = LoadPolicyFile("/nonexistent/policy.json");
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find("/nonexistent/policy.json"), std::string::npos);
}

}  // namespace
}  // namespace tw::policy
