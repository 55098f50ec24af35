#include "mcp/modern.h"

#include <gtest/gtest.h>

namespace tw::mcp::modern {
namespace {

json::value Meta(json::object extra = {}) {
  json::object meta{{kMetaProtocolVersion, "2026-07-28"}, {kMetaClientCapabilities, json::object()}};
  for (auto& kv : extra) meta[kv.key()] = kv.value();
  return json::object{{"_meta", meta}};
}

TEST(ModernMetaTest, ReadsVersionCapabilitiesAndLogLevel) {
  auto meta = ReadRequestMeta(Meta({{kMetaLogLevel, "info"}}));
  ASSERT_TRUE(meta) << meta.error().message();
  EXPECT_EQ(meta->version, "2026-07-28");
  EXPECT_TRUE(meta->client_capabilities.empty());
  EXPECT_EQ(meta->log_level, "info");
}

TEST(ModernMetaTest, RefusesWhatIsMissingOrMistyped) {
  EXPECT_FALSE(ReadRequestMeta(json::object()));
  EXPECT_FALSE(ReadRequestMeta(json::value(nullptr)));
  EXPECT_FALSE(ReadRequestMeta(json::object{{"_meta", "x"}}));
  EXPECT_FALSE(ReadRequestMeta(json::object{
      {"_meta", json::object{{kMetaClientCapabilities, json::object()}}}}));
  EXPECT_FALSE(ReadRequestMeta(json::object{
      {"_meta", json::object{{kMetaProtocolVersion, "2026-07-28"}}}}));
  EXPECT_FALSE(ReadRequestMeta(json::object{
      {"_meta", json::object{{kMetaProtocolVersion, 20260728},
                             {kMetaClientCapabilities, json::object()}}}}));
  EXPECT_FALSE(ReadRequestMeta(Meta({{kMetaLogLevel, 3}})));
  // clientInfo is a SHOULD: its absence is no error.
  EXPECT_TRUE(ReadRequestMeta(Meta()));
}

TEST(ModernMethodsTest, RemovedAndUnknownMethodsAreNotAllowed) {
  for (std::string_view m : {"server/discover", "tools/call", "tools/list", "subscriptions/listen",
                             "resources/read", "prompts/get", "completion/complete"}) {
    EXPECT_TRUE(RequestAllowed(m)) << m;
  }
  for (std::string_view m : {"initialize", "ping", "logging/setLevel", "resources/subscribe",
                             "resources/unsubscribe", "tasks/get", "unknown/method", ""}) {
    EXPECT_FALSE(RequestAllowed(m)) << m;
  }
}

TEST(HeaderValueTest, DecodesTheBase64SentinelAndRefusesUnsafeValues) {
  EXPECT_EQ(DecodeHeaderValue("get_weather"), "get_weather");
  EXPECT_EQ(DecodeHeaderValue("=?base64?SGVsbG8sIOS4lueVjA==?="), "Hello, 世界");
  EXPECT_EQ(DecodeHeaderValue("=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?="), "=?base64?literal?=");
  EXPECT_FALSE(DecodeHeaderValue("=?base64?not base64!?="));
  EXPECT_FALSE(DecodeHeaderValue("=?base64?abc?="));  // not a multiple of 4
  EXPECT_FALSE(DecodeHeaderValue("caf\xc3\xa9"));     // non-ASCII must be encoded
  EXPECT_FALSE(DecodeHeaderValue("a\nb"));
}

jsonrpc::Message Call(std::string name) {
  json::value params = Meta();
  params.as_object()["name"] = name;
  return jsonrpc::MakeRequest(1, "tools/call", params);
}

TEST(HeaderMismatchTest, HeadersMustMirrorTheBody) {
  const jsonrpc::Message call = Call("delete_file");
  MirroredHeaders h{"2026-07-28", "tools/call", "delete_file", true, true};
  EXPECT_EQ(HeaderMismatch(h, call, "2026-07-28"), std::nullopt);

  MirroredHeaders other_name = h;
  other_name.name = "read_file";  // a log or balancer that trusts the header sees a harmless call
  EXPECT_NE(HeaderMismatch(other_name, call, "2026-07-28"), std::nullopt);
  MirroredHeaders no_name = h;
  no_name.has_name = false;
  no_name.name = {};
  EXPECT_NE(HeaderMismatch(no_name, call, "2026-07-28"), std::nullopt);
  MirroredHeaders other_method = h;
  other_method.method = "tools/list";
  EXPECT_NE(HeaderMismatch(other_method, call, "2026-07-28"), std::nullopt);
  MirroredHeaders no_method = h;
  no_method.has_method = false;
  EXPECT_NE(HeaderMismatch(no_method, call, "2026-07-28"), std::nullopt);
  MirroredHeaders no_version = h;
  no_version.protocol_version = {};
  EXPECT_NE(HeaderMismatch(no_version, call, "2026-07-28"), std::nullopt);
  EXPECT_NE(HeaderMismatch(h, call, "v999.0.0"), std::nullopt);
  MirroredHeaders encoded = h;
  encoded.name = "=?base64?ZGVsZXRlX2ZpbGU=?=";  // "delete_file"
  EXPECT_EQ(HeaderMismatch(encoded, call, "2026-07-28"), std::nullopt);
  MirroredHeaders padded = h;
  padded.name = "delete_file ";  // a name with a trailing space is another name
  EXPECT_NE(HeaderMismatch(padded, call, "2026-07-28"), std::nullopt);
  // A method that names nothing must not carry Mcp-Name.
  const jsonrpc::Message list = jsonrpc::MakeRequest(2, "tools/list", Meta());
  MirroredHeaders list_headers{"2026-07-28", "tools/list", "", true, false};
  EXPECT_EQ(HeaderMismatch(list_headers, list, "2026-07-28"), std::nullopt);
  list_headers.has_name = true;
  list_headers.name = "x";
  EXPECT_NE(HeaderMismatch(list_headers, list, "2026-07-28"), std::nullopt);
}

TEST(UnsupportedVersionTest, NamesTheSupportedAndRequestedVersions) {
  const jsonrpc::Message e = UnsupportedVersionError(7, "v999.0.0");
  EXPECT_EQ(e.error.at("code").as_int64(), kUnsupportedProtocolVersion);
  const json::object& data = e.error.at("data").as_object();
  EXPECT_EQ(data.at("requested"), "v999.0.0");
  EXPECT_EQ(data.at("supported").as_array().front(), "2026-07-28");
}

TEST(StripRequestMetaTest, RemovesOnlyReservedKeys) {
  json::value params = Meta({{"progressToken", 5}});
  StripRequestMeta(params);
  EXPECT_EQ(params, (json::object{{"_meta", json::object{{"progressToken", 5}}}}));
  json::value only = Meta();
  StripRequestMeta(only);
  EXPECT_EQ(only, json::object());
}

TEST(DecorateResultTest, AddsResultTypeServerInfoAndCacheHints) {
  json::value list = json::object{{"tools", json::array()}, {"ttlMs", 5000}, {"cacheScope", "public"}};
  DecorateResult(list, "tools/list", json::object{{"name", "s"}, {"version", "1"}});
  EXPECT_EQ(list.at("resultType"), "complete");
  EXPECT_EQ(list.at("ttlMs"), 5000);          // the upstream's shorter hint wins
  EXPECT_EQ(list.at("cacheScope"), "private");  // a grant's view is never public
  EXPECT_EQ(list.at("_meta").at(kMetaServerInfo).at("name"), "s");

  json::value call = json::object{{"content", json::array()}};
  DecorateResult(call, "tools/call", nullptr);
  EXPECT_EQ(call.at("resultType"), "complete");
  EXPECT_FALSE(call.as_object().contains("ttlMs"));
  EXPECT_FALSE(call.as_object().contains("_meta"));

  json::value pending = json::object{{"resultType", "input_required"}};
  DecorateResult(pending, "tools/call", nullptr);
  EXPECT_EQ(pending.at("resultType"), "input_required");

  json::value negative = json::object{{"ttlMs", -1}};
  DecorateResult(negative, "prompts/list", nullptr);
  EXPECT_EQ(negative.at("ttlMs"), 60000);
}

TEST(DiscoverResultTest, ComesFromTheInitializeResult) {
  json::value init = json::object{
      {"protocolVersion", "2025-11-25"},
      {"capabilities", json::object{{"tools", json::object{{"listChanged", true}}},
                                    {"resources", json::object{{"subscribe", true}}}}},
      {"serverInfo", json::object{{"name", "up"}, {"version", "2"}}},
      {"instructions", "be careful"}};
  json::value d = DiscoverResult(init);
  EXPECT_EQ(d.at("supportedVersions").as_array().front(), "2026-07-28");
  EXPECT_TRUE(d.at("capabilities").at("tools").at("listChanged").as_bool());
  EXPECT_FALSE(d.at("capabilities").at("resources").as_object().contains("subscribe"));
  EXPECT_EQ(d.at("instructions"), "be careful");
  EXPECT_EQ(d.at("_meta").at(kMetaServerInfo).at("name"), "up");
  EXPECT_EQ(d.at("resultType"), "complete");
}

TEST(ListenFilterTest, ReadsFlagsAndRefusesOtherTypes) {
  auto f = ReadListenFilter(json::object{
      {"notifications", json::object{{"promptsListChanged", true}}}});
  ASSERT_TRUE(f);
  EXPECT_TRUE(Wants(*f, "notifications/prompts/list_changed"));
  EXPECT_FALSE(Wants(*f, "notifications/tools/list_changed"));
  EXPECT_FALSE(Wants(*f, "notifications/message"));
  EXPECT_FALSE(ReadListenFilter(json::object{
      {"notifications", json::object{{"toolsListChanged", "yes"}}}}));
  EXPECT_FALSE(ReadListenFilter(json::object{{"notifications", 1}}));
}

}  // namespace
}  // namespace tw::mcp::modern

namespace tw::mcp::modern {
namespace {

TEST(HeaderParamsTest, ReadsAnnotationsReachedThroughPropertiesAlone) {
  auto params = ReadHeaderParams(json::parse(
      R"({"type":"object","properties":{"region":{"type":"string","x-mcp-header":"Region"},)"
      R"("opts":{"type":"object","properties":{"dry":{"type":"boolean","x-mcp-header":"Dry-Run"}}},)"
      R"("query":{"type":"string"}}})"));
  ASSERT_TRUE(params) << params.error().message();
  ASSERT_EQ(params->size(), 2u);
  EXPECT_EQ(ParamHeaderLines(*params, json::parse(R"({"region":"eu","opts":{"dry":true},"query":"q"})")),
            "Mcp-Param-Region: eu\r\nMcp-Param-Dry-Run: true\r\n");
  // Absent or null: no header. Unsafe text: the Base64 sentinel.
  EXPECT_EQ(ParamHeaderLines(*params, json::parse(R"({"region":null})")), "");
  EXPECT_EQ(ParamHeaderLines(*params, json::parse(R"({"region":" x"})")),
            "Mcp-Param-Region: =?base64?IHg=?=\r\n");
  EXPECT_TRUE(ReadHeaderParams(json::object())->empty());
}

TEST(HeaderParamsTest, RefusesWhatAClientMustReject) {
  for (const char* schema : {
           R"({"properties":{"n":{"type":"number","x-mcp-header":"N"}}})",     // a number
           R"({"properties":{"a":{"type":"string","x-mcp-header":""}}})",       // empty
           R"({"properties":{"a":{"type":"string","x-mcp-header":"A B"}}})",    // not a token
           R"({"properties":{"a":{"type":"string","x-mcp-header":"X"},"b":{"type":"string","x-mcp-header":"x"}}})",
           R"({"properties":{"l":{"type":"array","items":{"type":"string","x-mcp-header":"I"}}}})",
           R"({"anyOf":[{"properties":{"a":{"type":"string","x-mcp-header":"A"}}}]})",
           R"({"$defs":{"d":{"type":"string","x-mcp-header":"D"}}})",
           R"({"type":"object","x-mcp-header":"Root"})"}) {
    EXPECT_FALSE(ReadHeaderParams(json::parse(schema))) << schema;
  }
}

}  // namespace
}  // namespace tw::mcp::modern
