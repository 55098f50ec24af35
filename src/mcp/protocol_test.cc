#include "mcp/protocol.h"

#include <gtest/gtest.h>

namespace tw::mcp {
namespace {

TEST(ParseToolCallTest, AcceptsNameAndOptionalArguments) {
  auto call = ParseToolCall(json::parse(R"({"name":"echo","arguments":{"a":1}})"));
  ASSERT_TRUE(call.has_value());
  EXPECT_EQ(call->name, "echo");
  EXPECT_EQ(call->arguments.at("a"), json::value(1));
  auto bare = ParseToolCall(json::parse(R"({"name":"echo"})"));
  ASSERT_TRUE(bare.has_value());
  EXPECT_TRUE(bare->arguments.empty());
}

TEST(ParseToolCallTest, RejectsMalformedParams) {
  for (const char* text : {"null", "{}", R"({"name":""})", R"({"name":3})",
                           R"({"name":"x","arguments":[1]})", R"({"name":"x","arguments":"s"})"}) {
    SCOPED_TRACE(text);
    auto call = ParseToolCall(json::parse(text));
    ASSERT_FALSE(call.has_value());
    EXPECT_EQ(call.error().code(), ErrorCode::kInvalidArgument);
  }
}

TEST(DenialResultTest, HasTheDocumentedShape) {
  json::value r = DenialResult({"tools.delete_*", "No deleting", 12});
  EXPECT_EQ(json::serialize(r),
            R"({"content":[{"type":"text","text":"[POLICY DENIED] No deleting"}],"isError":true,)"
            R"("_meta":{"toolwarden/decision":{"decision":"deny","rule":"tools.delete_*",)"
            R"("reason":"No deleting","retry_after_s":12}}})");
}

TEST(FilterToolsListTest, RemovesHiddenAndNamelessToolsKeepsCursor) {
  json::value r = json::parse(
      R"({"tools":[{"name":"a"},{"name":"secret"},{"title":"no name"},{"name":"b"}],"nextCursor":"c2"})");
  FilterToolsList(r, [](std::string_view n) { return n == "secret"; });
  EXPECT_EQ(json::serialize(r), R"({"tools":[{"name":"a"},{"name":"b"}],"nextCursor":"c2"})");
}

TEST(RelayedCapabilitiesTest, DropsWhatTheGatewayDoesNotRelay) {
  json::value caps =
      json::parse(R"({"tools":{"listChanged":true},"experimental":{"x":{}},"tasks":{}})");
  EXPECT_EQ(json::serialize(RelayedCapabilities(caps, Side::kServer)),
            R"({"tools":{"listChanged":true}})");
  json::value client =
      json::parse(R"({"sampling":{},"roots":{"listChanged":true},"experimental":{}})");
  EXPECT_EQ(json::serialize(RelayedCapabilities(client, Side::kClient)),
            R"({"roots":{"listChanged":true},"sampling":{}})");
}

TEST(ProgressTokenTest, ReadsTokenFromMeta) {
  EXPECT_EQ(ProgressToken(json::parse(R"({"_meta":{"progressToken":"t1"}})")), json::value("t1"));
  EXPECT_EQ(ProgressToken(json::parse(R"({"_meta":{}})")), std::nullopt);
  EXPECT_EQ(ProgressToken(json::parse(R"({"_meta":{"progressToken":{}}})")), std::nullopt);
}

}  // namespace
}  // namespace tw::mcp
