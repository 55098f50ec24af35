// Byte-stream framing, free of I/O so it can be tested and fuzzed directly:
//   - LineFramer: newline-delimited JSON-RPC (MCP stdio transport);
//   - SseEncoder helpers and SseParser: Server-Sent Events (Streamable HTTP, legacy SSE).
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "jsonrpc/message.h"

namespace tw::transport {

// Splits a byte stream into lines. A line longer than `max_line` bytes is not buffered: it is
// reported once through `on_oversize` and skipped up to its newline. Empty lines are ignored;
// a trailing '\r' is removed.
//
// `on_skipped`, when given, is called at the newline that ends a skipped line with its first
// and last bytes (up to kEdge each): enough to tell which request an oversized answer was for
// (OversizedAnswerId), so that the request fails instead of waiting forever.
class LineFramer {
 public:
  using LineFn = std::function<void(std::string_view line)>;
  using OversizeFn = std::function<void(size_t bytes_so_far)>;
  using SkippedFn = std::function<void(std::string_view head, std::string_view tail)>;
  static constexpr size_t kEdge = 256;

  LineFramer(size_t max_line, LineFn on_line, OversizeFn on_oversize, SkippedFn on_skipped = {})
      : max_line_(max_line),
        on_line_(std::move(on_line)),
        on_oversize_(std::move(on_oversize)),
        on_skipped_(std::move(on_skipped)) {}

  void Append(std::string_view data);

 private:
  void KeepTail(std::string_view chunk);

  size_t max_line_;
  LineFn on_line_;
  OversizeFn on_oversize_;
  SkippedFn on_skipped_;
  std::string buffer_;
  bool discarding_ = false;
  std::string head_, tail_;  // of the line being skipped (with on_skipped)
};

// The id of a JSON-RPC answer known only by the first and last bytes of its line: from a head
// that starts `{"jsonrpc":"2.0","id":ID,` or `{"id":ID,`, or a tail that ends `"id":ID}` (the
// last member of the top-level object). nullopt when neither says.
std::optional<json::value> OversizedAnswerId(std::string_view head, std::string_view tail);

// One SSE event as received.
struct SseEvent {
  std::string id;     // empty when the event had no id field
  std::string event;  // empty means "message"
  std::string data;   // data lines joined with '\n'
  std::optional<long> retry_ms;
};

// Formats one event. `data` may contain newlines (each line becomes a data: field).
std::string FormatSseEvent(std::string_view id, std::string_view data, std::string_view event = {});
// A priming event: an id and an empty data field, with a reconnection delay (SEP-1699).
std::string FormatSsePriming(std::string_view id, long retry_ms);
// A comment line that keeps idle connections and proxies from timing out.
inline constexpr std::string_view kSseKeepAlive = ": keep-alive\n\n";

// Incremental SSE parser (WHATWG EventSource rules: \n, \r\n or \r line ends; comments; events
// dispatched at a blank line; events with no data are not dispatched). An event larger than
// `max_event` bytes makes Append return false and the stream must be dropped.
class SseParser {
 public:
  using EventFn = std::function<void(SseEvent event)>;
  SseParser(size_t max_event, EventFn on_event)
      : max_event_(max_event), on_event_(std::move(on_event)) {}

  [[nodiscard]] bool Append(std::string_view data);
  // The id of the last event seen, for Last-Event-ID on reconnect.
  const std::string& last_event_id() const { return last_event_id_; }

 private:
  void Line(std::string_view line);

  size_t max_event_;
  EventFn on_event_;
  std::string line_;
  bool skip_lf_ = false;
  SseEvent current_;
  bool has_data_ = false;
  size_t event_bytes_ = 0;
  std::string last_event_id_;
};

}  // namespace tw::transport
