#include "catalog/redact.h"

#include <gtest/gtest.h>

namespace tw::catalog {
namespace {

namespace json = boost::json;

json::object Args(std::string_view text) { return json::parse(text).as_object(); }

TEST(RedactTest, SensitiveNamesByTheirWords) {
  for (const char* name : {"password", "db_password", "clientSecret", "api_key", "apiKey",
                           "Authorization", "access_token", "privateKey", "private_key", "cookie",
                           "p\u0430ssword", "ＡＰＩ_ＫＥＹ"}) {
    EXPECT_TRUE(IsSensitiveName(name)) << name;
  }
  for (const char* name : {"max_tokens", "keyword", "query", "path", "monkey", "author", "key"}) {
    EXPECT_FALSE(IsSensitiveName(name)) << name;
  }
}

TEST(RedactTest, RedactedKeepsKeysAndEveryOtherValue) {
  auto r = ArgumentRedactor::Make(ArgumentsKept::kRedacted, {"args.body", "args.*.note"});
  ASSERT_TRUE(r) << r.error().message();
  auto kept = r->Keep(Args(R"({"query":"select 1","password":"hunter2","body":{"x":1},
      "opts":{"apiKey":"k","note":"n","depth":2},"list":[{"token":"t","n":1}]})"));
  ASSERT_TRUE(kept);
  EXPECT_EQ(*kept, json::parse(R"({"query":"select 1","password":"[redacted]","body":"[redacted]",
      "opts":{"apiKey":"[redacted]","note":"[redacted]","depth":2},
      "list":[{"token":"[redacted]","n":1}]})"));
}

TEST(RedactTest, SaysWhenArgumentsAreKeptWhole) {
  auto r = ArgumentRedactor::Make(ArgumentsKept::kRedacted, {"args.body"});
  EXPECT_TRUE(r->KeepsWhole(Args(R"({"query":"x","opts":{"depth":2},"list":[{"n":1}]})")));
  EXPECT_FALSE(r->KeepsWhole(Args(R"({"body":"b"})")));
  EXPECT_FALSE(r->KeepsWhole(Args(R"({"list":[{"n":1},{"token":"t"}]})")));
  EXPECT_FALSE(r->KeepsWhole(Args(R"({"opts":{"clientSecret":"s"}})")));
  EXPECT_TRUE(ArgumentRedactor::Make(ArgumentsKept::kFull, {})->KeepsWhole(Args(R"({"password":"p"})")));
  EXPECT_FALSE(ArgumentRedactor::Make(ArgumentsKept::kNone, {})->KeepsWhole(Args("{}")));
}

TEST(RedactTest, NoneKeepsNothingAndFullEverything) {
  auto none = ArgumentRedactor::Make(ArgumentsKept::kNone, {});
  EXPECT_FALSE(none->Keep(Args(R"({"a":1})")));
  auto full = ArgumentRedactor::Make(ArgumentsKept::kFull, {"args.a"});
  EXPECT_EQ(*full->Keep(Args(R"({"a":1,"password":"p"})")), json::parse(R"({"a":1,"password":"p"})"));
}

TEST(RedactTest, PathsMustBeArgumentPaths) {
  for (const char* bad : {"password", "args", "args..x", "body.x", "args.x."}) {
    auto r = ArgumentRedactor::Make(ArgumentsKept::kRedacted, {bad});
    ASSERT_FALSE(r) << bad;
    EXPECT_NE(r.error().message().find("not an argument path"), std::string::npos);
  }
  EXPECT_EQ(ParseArgumentsKept("redacted"), ArgumentsKept::kRedacted);
  EXPECT_FALSE(ParseArgumentsKept("some"));
}

}  // namespace
}  // namespace tw::catalog
