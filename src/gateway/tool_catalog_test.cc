#include "gateway/tool_catalog.h"

#include <gtest/gtest.h>

namespace tw::gateway {
namespace {

json::value List(const char* tools, const char* next = nullptr) {
  json::object r{{"tools", json::parse(tools)}};
  if (next) r["nextCursor"] = next;
  return r;
}

mcp::ToolCall Call(std::string name, const char* args = "{}") {
  return {std::move(name), json::parse(args).as_object()};
}

constexpr const char* kTools =
    R"([{"name":"read_file","inputSchema":{"type":"object","properties":{"path":{"type":"string"}},)"
    R"("required":["path"],"additionalProperties":false}},{"name":"delete_db"}])";

TEST(ToolCatalogTest, OnlyNamesTheServerListedPassByteForByte) {
  ToolCatalog c("fs");
  EXPECT_FALSE(c.HasList());
  auto before = c.Check(Call("read_file", R"({"path":"a"})"));
  ASSERT_TRUE(before);
  EXPECT_EQ(before->rule, "unknown_tool");
  EXPECT_NE(before->reason.find("could not be read"), std::string::npos);

  c.Observe(List(kTools), true);
  ASSERT_TRUE(c.HasList());
  EXPECT_FALSE(c.Check(Call("read_file", R"({"path":"a"})")));
  EXPECT_FALSE(c.Check(Call("delete_db")));  // listed; the policy decides
  for (const char* lookalike : {"Read_File", "READ_FILE", "read_file ", " read_file", "read-file",
                                "read_fil", "read_file\t", "delete_db\n", "nosuch"}) {
    SCOPED_TRACE(lookalike);
    auto d = c.Check(Call(lookalike, R"({"path":"a"})"));
    ASSERT_TRUE(d);
    EXPECT_EQ(d->verdict, policy::Verdict::kDeny);
    EXPECT_EQ(d->rule, "unknown_tool");
  }
}

TEST(ToolCatalogTest, ArgumentsMustMatchTheSchemaNamingThePath) {
  ToolCatalog c("fs");
  c.Observe(List(kTools), true);
  auto missing = c.Check(Call("read_file", "{}"));
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->rule, "schema");
  EXPECT_NE(missing->reason.find("arguments: lacks the required property \"path\""),
            std::string::npos);
  auto wrong = c.Check(Call("read_file", R"({"path":7})"));
  ASSERT_TRUE(wrong);
  EXPECT_NE(wrong->reason.find("arguments.path: must be string"), std::string::npos);
  auto extra = c.Check(Call("read_file", R"({"path":"a","recursive":true})"));
  ASSERT_TRUE(extra);

  ToolCatalog warn("fs", UnlistedTools::kDeny, SchemaMode::kWarn);
  warn.Observe(List(kTools), true);
  EXPECT_FALSE(warn.Check(Call("read_file", "{}")));
  ToolCatalog off("fs", UnlistedTools::kDeny, SchemaMode::kOff);
  off.Observe(List(kTools), true);
  EXPECT_FALSE(off.Check(Call("read_file", "{}")));
  EXPECT_TRUE(off.Check(Call("Read_file", R"({"path":"a"})")));
}

TEST(ToolCatalogTest, AListingReplacesTheLastOneWhenItsLastPageArrives) {
  ToolCatalog c("s");
  c.Observe(List(R"([{"name":"a"}])", "p2"), true);
  EXPECT_FALSE(c.HasList());  // not complete yet
  c.Observe(List(R"([{"name":"b"}])"), false);
  ASSERT_TRUE(c.HasList());
  EXPECT_FALSE(c.Check(Call("a")));
  EXPECT_FALSE(c.Check(Call("b")));
  // The server removed "a": the next complete listing says so.
  c.Observe(List(R"([{"name":"b"}])"), true);
  EXPECT_TRUE(c.Check(Call("a")));
  EXPECT_FALSE(c.Check(Call("b")));
  // A page of a listing the catalog did not see begin adds to what is known.
  c.Observe(List(R"([{"name":"c"}])"), false);
  EXPECT_FALSE(c.Check(Call("c")));
  EXPECT_FALSE(c.Check(Call("b")));
}

TEST(ToolCatalogTest, UnlistedToolsCanBeLetThroughPerServer) {
  ToolCatalog c("s", UnlistedTools::kAllow, SchemaMode::kOff);
  EXPECT_FALSE(c.NeedsList());
  EXPECT_FALSE(c.Check(Call("anything")));
}

}  // namespace
}  // namespace tw::gateway
