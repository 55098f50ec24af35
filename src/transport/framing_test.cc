#include "transport/framing.h"

#include <gtest/gtest.h>

#include <vector>

namespace tw::transport {
namespace {

struct Collected {
  std::vector<std::string> lines;
  std::vector<size_t> oversize;
};

Collected Frame(const std::vector<std::string>& chunks, size_t max_line = 16) {
  Collected c;
  LineFramer f(
      max_line, [&](std::string_view l) { c.lines.emplace_back(l); },
      [&](size_t n) { c.oversize.push_back(n); });
  for (const auto& chunk : chunks) f.Append(chunk);
  return c;
}

TEST(LineFramerTest, SplitsLinesAcrossChunksAndStripsCr) {
  Collected c = Frame({"{\"a\"", ":1}\r\n{\"b\":2}\n", "\n  \n{\"c\"", ":3}\n"});
  EXPECT_EQ(c.lines, (std::vector<std::string>{"{\"a\":1}", "{\"b\":2}", "{\"c\":3}"}));
  EXPECT_TRUE(c.oversize.empty());
}

TEST(LineFramerTest, SkipsAnOversizeLineOnceAndRecovers) {
  Collected c = Frame({"0123456789", "0123456789", "0123456789\nok\n"});
  EXPECT_EQ(c.oversize.size(), 1u);
  EXPECT_EQ(c.lines, (std::vector<std::string>{"ok"}));
  Collected d = Frame({std::string(40, 'x') + "\nfine\n"});
  EXPECT_EQ(d.oversize.size(), 1u);
  EXPECT_EQ(d.lines, (std::vector<std::string>{"fine"}));
}

TEST(LineFramerTest, ALineExactlyAtTheLimitIsKept) {
  Collected c = Frame({std::string(16, 'y') + "\n"});
  EXPECT_TRUE(c.oversize.empty());
  ASSERT_EQ(c.lines.size(), 1u);
}

std::vector<SseEvent> ParseSse(const std::vector<std::string>& chunks, bool* ok = nullptr,
                               size_t max = 1 << 20) {
  std::vector<SseEvent> events;
  SseParser p(max, [&](SseEvent e) { events.push_back(std::move(e)); });
  bool all_ok = true;
  for (const auto& chunk : chunks) all_ok = p.Append(chunk) && all_ok;
  if (ok) *ok = all_ok;
  return events;
}

TEST(SseParserTest, ParsesFieldsAcrossChunksAndLineEndings) {
  auto events = ParseSse({"id: 1\r\nevent: mess", "age\r\ndata: {\"x\":\r\ndata: 1}\r\n\r",
                          "\n: comment\n\nretry: 500\nid: 2\ndata:raw\n\n"});
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].id, "1");
  EXPECT_EQ(events[0].event, "message");
  EXPECT_EQ(events[0].data, "{\"x\":\n1}");
  EXPECT_EQ(events[1].data, "raw");
  EXPECT_EQ(events[1].retry_ms, 500);
}

TEST(SseParserTest, PrimingEventWithEmptyDataIsDispatchedButIdOnlyIsNot) {
  std::vector<SseEvent> events;
  SseParser p(1024, [&](SseEvent e) { events.push_back(std::move(e)); });
  ASSERT_TRUE(p.Append("id: p1\nretry: 1000\ndata: \n\nid: p2\n\n"));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].data, "");
  EXPECT_EQ(p.last_event_id(), "p2");
}

TEST(SseParserTest, RejectsAnOversizeEvent) {
  bool ok = true;
  ParseSse({"data: " + std::string(100, 'x')}, &ok, 50);
  EXPECT_FALSE(ok);
}

TEST(SseEncoderTest, RoundTripsThroughTheParser) {
  std::string wire =
      FormatSseEvent("7_3", "line1\nline2", "message") + FormatSsePriming("7_0", 1000);
  auto events = ParseSse({wire});
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].id, "7_3");
  EXPECT_EQ(events[0].data, "line1\nline2");
  EXPECT_EQ(events[1].retry_ms, 1000);
}

TEST(LineFramerTest, TellsTheHeadAndTailOfASkippedLine) {
  std::vector<std::pair<std::string, std::string>> skipped;
  std::vector<std::string> lines;
  LineFramer f(
      64, [&](std::string_view l) { lines.emplace_back(l); }, [](size_t) {},
      [&](std::string_view head, std::string_view tail) { skipped.emplace_back(head, tail); });
  const std::string big = R"({"result":{"tools":[)" + std::string(1000, ' ') + R"(]},"jsonrpc":"2.0","id":42})";
  // Split across reads, the way a pipe delivers it.
  f.Append(big.substr(0, 10));
  f.Append(big.substr(10, 500));
  f.Append(big.substr(510) + "\n{\"ok\":1}\n");
  ASSERT_EQ(skipped.size(), 1u);
  EXPECT_TRUE(big.starts_with(skipped[0].first));
  EXPECT_TRUE(big.ends_with(skipped[0].second));
  EXPECT_EQ(OversizedAnswerId(skipped[0].first, skipped[0].second), json::value(42));
  EXPECT_EQ(lines, std::vector<std::string>{"{\"ok\":1}"});
}

TEST(OversizedAnswerIdTest, FindsTheTopLevelIdOrNothing) {
  EXPECT_EQ(OversizedAnswerId(R"({"jsonrpc":"2.0","id":7,"result":{)", "}}"), json::value(7));
  EXPECT_EQ(OversizedAnswerId(R"({"id":"a-1","result":)", "x}"), json::value("a-1"));
  EXPECT_EQ(OversizedAnswerId(R"({"result":{)", R"(,"jsonrpc":"2.0","id":-3})"), json::value(-3));
  EXPECT_EQ(OversizedAnswerId(R"({"result":{)", R"("id":"q"}  )"), json::value("q"));
  // A nested id is not the answer's; neither is a truncated or escaped one.
  EXPECT_FALSE(OversizedAnswerId(R"({"result":{)", R"("id":5}})"));
  EXPECT_FALSE(OversizedAnswerId(R"({"result":{)", R"("id":5)"));
  EXPECT_FALSE(OversizedAnswerId(R"({"result":{)", R"("id":"a\"b"})"));
  EXPECT_FALSE(OversizedAnswerId(R"({"jsonrpc":"2.0","id":-,)", "x"));
  EXPECT_FALSE(OversizedAnswerId("", ""));
}

}  // namespace
}  // namespace tw::transport
