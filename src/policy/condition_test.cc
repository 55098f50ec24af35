#include "policy/condition.h"

#include <gtest/gtest.h>

namespace tw::policy {
namespace {

Condition Make(std::string_view path, Op op, json::value value) {
  auto p = ArgPath::Parse(path);
  EXPECT_TRUE(p.has_value()) << path;
  auto c = MakeCondition(*p, op, std::move(value));
  EXPECT_TRUE(c.has_value()) << (c ? "" : c.error().message());
  return *c;
}

TEST(ArgPathTest, ParsesKeysAndIndexes) {
  auto p = ArgPath::Parse("args.a.b[1].c");
  ASSERT_TRUE(p.has_value());
  json::object args = json::parse(R"({"a":{"b":[{"c":1},{"c":"two"}]}})").as_object();
  ASSERT_NE(p->Resolve(args), nullptr);
  EXPECT_EQ(*p->Resolve(args), json::value("two"));
  EXPECT_EQ(ArgPath::Parse("args.a.b[5].c")->Resolve(args), nullptr);
  EXPECT_EQ(ArgPath::Parse("args.a.x")->Resolve(args), nullptr);
  EXPECT_EQ(ArgPath::Parse("args.a.b.c")->Resolve(args), nullptr) << "b is an array, not an object";
  EXPECT_NE(ArgPath::Parse("args.ünï.😀")->Resolve(json::parse(R"({"ünï":{"😀":1}})").as_object()),
            nullptr);
}

TEST(ArgPathTest, RejectsMalformedPaths) {
  for (const char* bad : {"amount", "state.x", "args.", "args..a", "args.a.", "args.a[", "args.a[x]",
                          "args.a[]", "args.a[1]b", "args.[0]"}) {
    SCOPED_TRACE(bad);
    EXPECT_FALSE(ArgPath::Parse(bad).has_value());
  }
  EXPECT_TRUE(ArgPath::Parse("args.list[0]").has_value());
  EXPECT_TRUE(ArgPath::Parse("args.a[0][1]").has_value());
}

TEST(CompareNumbersTest, IsExactAcrossIntegerAndFloatingKinds) {
  struct Case {
    const char* a;
    const char* b;
    int expected;
  };
  const Case cases[] = {
      {"1", "1.0", 0},
      {"1", "1.5", -1},
      {"2", "1.5", 1},
      {"-1", "-1.5", 1},
      {"9007199254740993", "9007199254740992.0", 1},  // 2^53 + 1 vs 2^53: doubles would say equal
      {"9223372036854775807", "9223372036854775808", -1},    // INT64_MAX vs a uint64
      {"18446744073709551615", "18446744073709551614", 1},   // uint64 vs uint64
      {"-5", "18446744073709551615", -1},                    // negative vs uint64
      {"18446744073709551615", "1.8446744073709552e19", -1}, // UINT64_MAX vs 2^64 (a double)
      {"0", "-0.0", 0},
      {"1e308", "1", 1},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.a) + " vs " + c.b);
    auto r = CompareNumbers(json::parse(c.a), json::parse(c.b));
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(*r, c.expected);
    auto back = CompareNumbers(json::parse(c.b), json::parse(c.a));
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(*back, -c.expected);
  }
  EXPECT_FALSE(CompareNumbers(json::value("1"), json::value(1)).has_value());
}

TEST(ConditionTest, EveryOperatorOnItsEdges) {
  const json::object args = json::parse(R"({
      "amount": 10000, "price": 99.5, "big": 18446744073709551615, "name": "café ☕",
      "tags": ["a", "b", 3], "flag": false, "none": null, "nested": {"list": [1, 2]},
      "branch": "feat/login", "count": "5"})").as_object();
  struct Case {
    const char* path;
    Op op;
    const char* value;
    Outcome expected;
  };
  const Case cases[] = {
      {"args.amount", Op::kEq, "10000", Outcome::kTrue},
      {"args.amount", Op::kEq, "10000.0", Outcome::kTrue},
      {"args.amount", Op::kEq, "\"10000\"", Outcome::kFalse},  // a string is not a number
      {"args.amount", Op::kNeq, "1", Outcome::kTrue},
      {"args.amount", Op::kLte, "10000", Outcome::kTrue},  // boundary
      {"args.amount", Op::kLt, "10000", Outcome::kFalse},
      {"args.amount", Op::kGt, "9999.99", Outcome::kTrue},
      {"args.amount", Op::kGte, "10000.01", Outcome::kFalse},
      {"args.price", Op::kLt, "100", Outcome::kTrue},
      {"args.big", Op::kGt, "18446744073709551614", Outcome::kTrue},
      {"args.big", Op::kGt, "9223372036854775807", Outcome::kTrue},
      {"args.count", Op::kLt, "10", Outcome::kMismatch},  // "5" is a string: never compared as 5
      {"args.name", Op::kGt, "1", Outcome::kMismatch},
      {"args.flag", Op::kLt, "1", Outcome::kMismatch},
      {"args.name", Op::kEq, "\"café ☕\"", Outcome::kTrue},
      {"args.name", Op::kStartsWith, "\"caf\"", Outcome::kTrue},
      {"args.name", Op::kEndsWith, "\"☕\"", Outcome::kTrue},
      {"args.name", Op::kContains, "\"é\"", Outcome::kTrue},
      {"args.name", Op::kRegex, "\"^caf.\\\\s\"", Outcome::kTrue},
      {"args.branch", Op::kRegex, "\"^feat/\"", Outcome::kTrue},
      {"args.branch", Op::kNotRegex, "\"^feat/\"", Outcome::kFalse},
      {"args.amount", Op::kRegex, "\"1\"", Outcome::kMismatch},
      {"args.amount", Op::kStartsWith, "\"1\"", Outcome::kMismatch},
      {"args.tags", Op::kContains, "\"b\"", Outcome::kTrue},
      {"args.tags", Op::kContains, "3.0", Outcome::kTrue},
      {"args.tags", Op::kContains, "\"z\"", Outcome::kFalse},
      {"args.amount", Op::kContains, "1", Outcome::kMismatch},
      {"args.branch", Op::kIn, "[\"main\", \"feat/login\"]", Outcome::kTrue},
      {"args.branch", Op::kNotIn, "[\"main\"]", Outcome::kTrue},
      {"args.amount", Op::kIn, "[1, 10000.0]", Outcome::kTrue},
      {"args.nested.list[1]", Op::kEq, "2", Outcome::kTrue},
      {"args.nested", Op::kEq, "{\"list\": [1, 2.0]}", Outcome::kTrue},
      {"args.missing", Op::kEq, "1", Outcome::kAbsent},
      {"args.none", Op::kEq, "1", Outcome::kAbsent},
      {"args.missing", Op::kExists, "true", Outcome::kFalse},
      {"args.missing", Op::kExists, "false", Outcome::kTrue},
      {"args.none", Op::kExists, "true", Outcome::kFalse},
      {"args.flag", Op::kExists, "true", Outcome::kTrue},
      {"args.amount", Op::kExists, "true", Outcome::kTrue},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.path) + " " + std::string(OpName(c.op)) + " " + c.value);
    EXPECT_EQ(Make(c.path, c.op, json::parse(c.value)).Evaluate(args), c.expected);
  }
}

TEST(ConditionTest, OperandsAreCheckedAtLoad) {
  auto path = *ArgPath::Parse("args.x");
  struct Case {
    Op op;
    const char* value;
    const char* error;
  };
  const Case cases[] = {
      {Op::kIn, "\"a\"", "operator \"in\" requires a list value"},
      {Op::kNotIn, "1", "operator \"not_in\" requires a list value"},
      {Op::kLt, "\"5\"", "operator \"lt\" requires a numeric value"},
      {Op::kExists, "1", "operator \"exists\" requires a boolean value"},
      {Op::kRegex, "\"[invalid(\"", "invalid regex \"[invalid(\": missing ]"},
      {Op::kRegex, "1", "operator \"regex\" requires a string value"},
      {Op::kStartsWith, "[1]", "requires a string value"},
      {Op::kContains, "{}", "operator \"contains\" requires"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.value);
    auto r = MakeCondition(path, c.op, json::parse(c.value));
    ASSERT_FALSE(r.has_value());
    EXPECT_NE(r.error().message().find(c.error), std::string::npos) << r.error().message();
  }
  EXPECT_EQ(ParseOp("lte"), Op::kLte);
  EXPECT_EQ(ParseOp("lte "), std::nullopt);
}

TEST(ConditionTest, RegexIsLinearTimeOnHostileInput) {
  // (a+)+$ is catastrophic for backtracking engines; RE2 answers at once.
  Condition c = Make("args.s", Op::kRegex, json::value("^(a+)+$"));
  json::object args;
  args["s"] = std::string(100000, 'a') + "!";
  EXPECT_EQ(c.Evaluate(args), Outcome::kFalse);
}

}  // namespace
}  // namespace tw::policy
