#include "app/json_text.h"

#include <gtest/gtest.h>

namespace tw::app {
namespace {

constexpr std::string_view kVsCode = R"(// Servers of this workspace
{
  "servers": {
    /* the one we use */
    "a\"b": {"command": "x", "args": ["y"]}, // trailing comment
    "files": {
      "command": "npx",
      "args": ["-y", "fs", "/a/b"],
    },
  },
  "inputs": [],
}
)";

TEST(JsonTextTest, ReadsCommentsAndTrailingCommas) {
  auto v = ParseJsonText(kVsCode);
  ASSERT_TRUE(v) << v.error().message();
  EXPECT_EQ(v->at("servers").at("files").at("command"), "npx");
  EXPECT_FALSE(ParseJsonText("{\"a\": }"));
}

TEST(JsonTextTest, ReplacesOneValueAndKeepsEverythingElse) {
  auto span = FindValue(kVsCode, {"servers", "a\"b"});
  ASSERT_TRUE(span);
  EXPECT_EQ(kVsCode.substr(span->begin, span->end - span->begin),
            R"({"command": "x", "args": ["y"]})");
  auto edited = ReplaceValue(kVsCode, {"servers", "files"},
                             json::object{{"command", "toolwarden"}, {"args", json::array{"run"}}});
  ASSERT_TRUE(edited) << edited.error().message();
  // Every comment survives, and the file reads back as the edit meant.
  for (const char* kept : {"// Servers of this workspace", "/* the one we use */", "// trailing comment"}) {
    EXPECT_NE(edited->find(kept), std::string::npos) << kept << "\n" << *edited;
  }
  EXPECT_NE(edited->find("    \"files\": {\n      \"command\": \"toolwarden\",\n      \"args\": [\n        \"run\"\n      ]\n    },"),
            std::string::npos)
      << *edited;
  auto back = ParseJsonText(*edited);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->at("servers").at("files").at("command"), "toolwarden");
  EXPECT_EQ(back->at("servers").at("a\"b").at("command"), "x");
  EXPECT_FALSE(ReplaceValue(kVsCode, {"servers", "nope"}, json::value(1)));
}

TEST(JsonTextTest, PointersAreDecoded) {
  EXPECT_EQ(PointerKeys("/projects/~1home~1me/mcpServers"),
            (std::vector<std::string>{"projects", "/home/me", "mcpServers"}));
  EXPECT_EQ(PointerKeys("/a~0b"), (std::vector<std::string>{"a~b"}));
}

}  // namespace
}  // namespace tw::app
