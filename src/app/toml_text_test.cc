#include "app/toml_text.h"

#include <gtest/gtest.h>

namespace tw::app {
namespace {

// Codex's shape, as `codex mcp add` writes it and as people edit it.
constexpr std::string_view kCodex = R"(# Codex
model = "o3"  # the model

[mcp_servers.docs]
# the docs server
command = "npx"   # via npx
args = ["-y", "mcp-server",
  "--flag"]
env = { "API_KEY" = "value" }

[mcp_servers.bare]
command = "bare-server"

[mcp_servers.bare.env]
TOKEN = "t"

[profiles."ü x"]
model = "gpt"
)";

TEST(TomlTextTest, ReadsTablesArraysAndSubtablesAsJson) {
  auto v = ParseTomlText(kCodex);
  ASSERT_TRUE(v) << v.error().message();
  EXPECT_EQ(v->at("mcp_servers").at("docs").at("args"),
            (json::array{"-y", "mcp-server", "--flag"}));
  EXPECT_EQ(v->at("mcp_servers").at("bare").at("env").at("TOKEN"), "t");
  EXPECT_EQ(v->at("profiles").at("ü x").at("model"), "gpt");
  auto bad = ParseTomlText("a = [\n");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("line "), std::string::npos) << bad.error().message();
}

TEST(TomlTextTest, ReplacesValuesInPlaceKeepingCommentsAndLayout) {
  auto v = ParseTomlText(kCodex);
  ASSERT_TRUE(v);
  json::object docs = v->at("mcp_servers").at("docs").as_object();
  docs["command"] = "/usr/bin/toolwarden";
  docs["args"] =
      json::array{"run", "-p", "/p q/\"docs\".yaml", "--", "npx", "-y", "mcp-server", "--flag"};
  auto edited = SetTomlTable(kCodex, {"mcp_servers", "docs"}, docs);
  ASSERT_TRUE(edited) << edited.error().message();
  for (const char* kept :
       {"# Codex", "model = \"o3\"  # the model", "# the docs server", "   # via npx",
        "env = { \"API_KEY\" = \"value\" }", "[profiles.\"ü x\"]"}) {
    EXPECT_NE(edited->find(kept), std::string::npos) << kept << "\n" << *edited;
  }
  auto back = ParseTomlText(*edited);
  ASSERT_TRUE(back) << back.error().message() << "\n" << *edited;
  EXPECT_EQ(back->at("mcp_servers").at("docs"), docs);
  EXPECT_EQ(back->at("mcp_servers").at("bare"), v->at("mcp_servers").at("bare"));
}

TEST(TomlTextTest, AddsAKeyOnTheTablesOwnLinesNotInItsSubtableAndRemovesItAgain) {
  auto v = ParseTomlText(kCodex);
  ASSERT_TRUE(v);
  const json::object original = v->at("mcp_servers").at("bare").as_object();
  json::object bare = original;
  bare["command"] = "/usr/bin/toolwarden";
  bare["args"] = json::array{"run", "--", "bare-server"};
  auto added = SetTomlTable(kCodex, {"mcp_servers", "bare"}, bare);
  ASSERT_TRUE(added) << added.error().message();
  EXPECT_NE(
      added->find("command = \"/usr/bin/toolwarden\"\nargs = [\"run\", \"--\", \"bare-server\"]\n\n"
                  "[mcp_servers.bare.env]"),
      std::string::npos)
      << *added;
  auto back = ParseTomlText(*added);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->at("mcp_servers").at("bare"), bare);

  auto removed = SetTomlTable(*added, {"mcp_servers", "bare"}, original);
  ASSERT_TRUE(removed) << removed.error().message();
  EXPECT_EQ(*removed, kCodex);
}

TEST(TomlTextTest, RefusesWhatItCannotWriteFaithfully) {
  constexpr std::string_view kInline = "[mcp_servers]\ndocs = { command = \"npx\" }\n";
  json::object with_args{{"command", "tw"}, {"args", json::array{"run"}}};
  EXPECT_FALSE(SetTomlTable(kInline, {"mcp_servers", "docs"}, with_args));
  auto replaced = SetTomlTable(kInline, {"mcp_servers", "docs"}, json::object{{"command", "tw"}});
  ASSERT_TRUE(replaced) << replaced.error().message();
  EXPECT_EQ(*replaced, "[mcp_servers]\ndocs = { command = \"tw\" }\n");
  EXPECT_FALSE(SetTomlTable(kCodex, {"mcp_servers", "nosuch"}, with_args));
  EXPECT_FALSE(SetTomlTable(kCodex, {"mcp_servers", "docs"}, json::object{{"command", 5}}));
}

}  // namespace
}  // namespace tw::app
