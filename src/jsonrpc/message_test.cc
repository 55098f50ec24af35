#include "jsonrpc/message.h"

#include <gtest/gtest.h>

#include <limits>

namespace tw::jsonrpc {
namespace {

TEST(ParseTest, ReadsRequestNotificationAndResponses) {
  auto req = Parse(R"({"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"x"}})");
  ASSERT_FALSE(req.is_batch);
  ASSERT_TRUE(req.items[0].has_value());
  EXPECT_TRUE(req.items[0]->IsRequest());
  EXPECT_EQ(req.items[0]->method, "tools/call");
  EXPECT_EQ(req.items[0]->id, json::value(7));

  auto note = Parse(R"({"jsonrpc":"2.0","method":"notifications/initialized"})");
  ASSERT_TRUE(note.items[0].has_value());
  EXPECT_TRUE(note.items[0]->IsNotification());
  EXPECT_TRUE(note.items[0]->params.is_null());

  auto resp = Parse(R"({"jsonrpc":"2.0","id":"a","result":{}})");
  ASSERT_TRUE(resp.items[0].has_value());
  EXPECT_EQ(resp.items[0]->kind, Kind::kResponse);

  auto err = Parse(R"({"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"x"}})");
  ASSERT_TRUE(err.items[0].has_value());
  EXPECT_EQ(err.items[0]->kind, Kind::kError);
}

TEST(ParseTest, RejectsMalformedInputWithTheSpecCodes) {
  struct Case {
    const char* text;
    int code;
    json::value id;
  };
  const Case cases[] = {
      {"{not json", kParseError, nullptr},
      {"", kParseError, nullptr},
      {"[]", kInvalidRequest, nullptr},
      {"42", kInvalidRequest, nullptr},
      {R"({"id":1,"method":"x"})", kInvalidRequest, 1},
      {R"({"jsonrpc":"1.0","id":1,"method":"x"})", kInvalidRequest, 1},
      {R"({"jsonrpc":"2.0","id":1,"method":5})", kInvalidRequest, 1},
      {R"({"jsonrpc":"2.0","id":null,"method":"x"})", kInvalidRequest, nullptr},
      {R"({"jsonrpc":"2.0","id":1.5,"method":"x"})", kInvalidRequest, nullptr},
      {R"({"jsonrpc":"2.0","id":{},"method":"x"})", kInvalidRequest, nullptr},
      {R"({"jsonrpc":"2.0","id":"q","method":"x","params":[1]})", kInvalidRequest, "q"},
      {R"({"jsonrpc":"2.0","id":2})", kInvalidRequest, 2},
      {R"({"jsonrpc":"2.0","id":2,"result":1,"error":{}})", kInvalidRequest, 2},
      {R"({"jsonrpc":"2.0","id":2,"error":{"code":"x","message":"m"}})", kInvalidRequest, 2},
      {R"({"jsonrpc":"2.0","id":2,"method":"m","result":{}})", kInvalidRequest, 2},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    Incoming in = Parse(c.text);
    ASSERT_EQ(in.items.size(), 1u);
    ASSERT_FALSE(in.items[0].has_value());
    EXPECT_EQ(in.items[0].error().code, c.code);
    EXPECT_EQ(in.items[0].error().id, c.id);
  }
}

TEST(ParseTest, SplitsBatchesAndValidatesEachElement) {
  Incoming in = Parse(
      R"([{"jsonrpc":"2.0","id":1,"method":"a"},{"bad":true},{"jsonrpc":"2.0","method":"n"}])");
  ASSERT_TRUE(in.is_batch);
  ASSERT_EQ(in.items.size(), 3u);
  EXPECT_TRUE(in.items[0].has_value());
  EXPECT_FALSE(in.items[1].has_value());
  EXPECT_TRUE(in.items[2].has_value());
}

TEST(SerializeTest, RoundTripsEveryKind) {
  const Message messages[] = {
      MakeRequest(1, "tools/list", json::object{{"cursor", "c"}}),
      MakeNotification("notifications/progress", json::object{{"progress", 1}}),
      MakeResponse("id-1", json::object{{"tools", json::array{}}}),
      MakeError(3, kInvalidParams, "bad", json::value("details")),
  };
  for (const Message& m : messages) {
    std::string text = Serialize(m);
    SCOPED_TRACE(text);
    Incoming in = Parse(text);
    ASSERT_TRUE(in.items[0].has_value());
    EXPECT_EQ(Serialize(*in.items[0]), text);
  }
}

TEST(SerializeTest, WritesExactlyWhatSerializingTheMessageAsOneValueWrites) {
  const Message messages[] = {
      MakeRequest("a\"b", "tools/\u00e9\n\"call", json::parse(R"({"x":[1,2.5,null,true],"y":{"z":"\u0001"}})")),
      MakeRequest(-7, "ping", nullptr),
      MakeNotification("notifications/cancelled", json::object{{"requestId", 1}, {"reason", "é"}}),
      MakeNotification("notifications/initialized", nullptr),
      MakeResponse(18446744073709551615ull, json::parse(R"({"content":[{"type":"text","text":"\t"}]})")),
      MakeResponse("r", json::value(nullptr)),
      MakeError(nullptr, kParseError, "Parse error: \"x\""),
      // Longer than the buffer Serialize reads through: written in several pieces.
      MakeRequest(2, "tools/call", json::object{{"text", std::string(1500, '\x7f') + "\u00e9\""},
                                                {"list", json::array(300, json::value(-1.5))}}),
  };
  for (const Message& m : messages) {
    EXPECT_EQ(Serialize(m), json::serialize(ToValue(m)));
  }
}

TEST(ParseTest, AMessageKeepsItsArenaAndDetachedCopiesLeaveIt) {
  Incoming in = Parse(R"({"jsonrpc":"2.0","id":"r-1","method":"tools/call","params":{"name":"x","arguments":{"a":[1,2]}}})");
  ASSERT_TRUE(in.items[0].has_value());
  const Message& m = *in.items[0];
  // The parsed trees stay in the message's arena (moved, not copied, into the message)…
  EXPECT_NE(m.params.storage().get(), json::storage_ptr().get());
  const json::value& args = m.params.at("arguments");
  EXPECT_EQ(args.storage().get(), m.params.storage().get());
  // …and what outlives the message is copied out of it.
  const json::value kept = Detached(args);
  EXPECT_EQ(kept.storage().get(), json::storage_ptr().get());
  EXPECT_EQ(kept, args);
}

TEST(SerializeTest, OmitsAbsentParams) {
  EXPECT_EQ(Serialize(MakeRequest(1, "ping", nullptr)),
            R"({"jsonrpc":"2.0","id":1,"method":"ping"})");
}

TEST(IdKeyTest, IsWhatSerializingTheIdWrites) {
  const json::value ids[] = {json::value(0),
                             json::value(-1),
                             json::value(std::numeric_limits<int64_t>::min()),
                             json::value(std::numeric_limits<int64_t>::max()),
                             json::value(std::numeric_limits<uint64_t>::max()),
                             json::value(1.5),
                             json::value(1.0),
                             json::value("1"),
                             json::value("a \"b\" \u00e9"),
                             json::value(nullptr)};
  for (const json::value& id : ids) EXPECT_EQ(IdKey(id), json::serialize(id));
  EXPECT_NE(IdKey(json::value(1)), IdKey(json::value("1")));
}

}  // namespace
}  // namespace tw::jsonrpc
