// HttpMcpSession: one MCP session on the HTTP listener — the gateway::Session relay plus the
// streams its messages travel on. Knows nothing of sockets; the HttpServer attaches a
// StreamWriter per open HTTP response and pumps what the session pushes into it.
//
// Streams: 0 is the GET stream (server-initiated messages; for the legacy transport, every
// message); every POST that carries requests gets a new stream that ends once each of its
// requests is answered. Every message on a stream gets the SSE id "<stream>_<seq>" and is
// kept (the last `max_events` per stream) so a client can resume with Last-Event-ID — except
// the answer of a single-request POST that comes before anything else: it goes out as a plain
// JSON body, which carries no event id and cannot be resumed, so neither it nor its stream is
// kept (no copy of the body, no finished stream holding it).
//
// Thread: the io_context's. Ownership: owned by the HttpServer (shared with the connection
// coroutines serving it); owns its relay and, through it, the upstream connection.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include "gateway/session.h"

namespace tw::transport {

// What one open HTTP response waits on: events (or one JSON answer) pushed by the session.
// `wake` is cancelled whenever something changes, to resume the waiting coroutine.
struct StreamWriter {
  explicit StreamWriter(boost::asio::any_io_executor ex)
      : wake(ex, std::chrono::steady_clock::time_point::max()) {}
  struct Item {
    uint64_t seq = 0;        // position in its stream (0: not a stored event)
    std::string event_id;    // the SSE id field; empty for none
    std::string event_name;  // the SSE event field; empty for "message"
    std::string data;
    bool is_response = false;
    // The HTTP status of a response sent as the whole body of a 2026-07-28 request (an
    // unknown method is a 404, a request error a 400: StatelessChannel).
    int http_status = 200;
  };
  std::deque<Item> queue;
  bool done = false;      // no more items will come: flush and end the response
  bool detached = false;  // the connection went away
  // A POST of one message (not a batch): its answer may go out as a plain JSON body.
  bool single = false;
  // The response is an SSE stream (its headers are written): every event is resumable.
  bool sse = false;
  boost::asio::steady_timer wake;

  void Push(Item item) {
    queue.push_back(std::move(item));
    wake.cancel();
  }
  void Finish() {
    done = true;
    wake.cancel();
  }
};

// Event ids, spelled here only: "<stream>_<seq>".
std::string FormatEventId(uint64_t stream, uint64_t seq);
bool ParseEventId(std::string_view id, uint64_t& stream, uint64_t& seq);

class HttpMcpSession : public gateway::ClientSink {
 public:
  enum class Transport { kStreamableHttp, kLegacySse };

  // Makes the relay that serves the session, given the sink it must answer through.
  using RelayMaker = gateway::SessionMaker;

  // `grant` is the caller that opened the session (every later request must be the same
  // caller); `route` is the server it was opened on ("" for the aggregate /mcp).
  HttpMcpSession(std::string id, Transport transport, const RelayMaker& make_relay,
                 size_t max_events, std::string grant = {}, std::string route = {});
  ~HttpMcpSession() override;

  const std::string& id() const { return id_; }
  bool legacy() const { return transport_ == Transport::kLegacySse; }
  gateway::McpSession& relay() { return *relay_; }
  const std::string& grant() const { return grant_; }
  const std::string& route() const { return route_; }
  std::chrono::steady_clock::time_point last_active() const { return last_active_; }
  void Touch() { last_active_ = std::chrono::steady_clock::now(); }

  // True while a connection is attached or a request awaits its answer.
  bool Busy() const;

  // Opens the stream for the requests of one POST, served by `writer`. Returns its id.
  uint64_t OpenStream(std::shared_ptr<StreamWriter> writer);
  // True if a request with this client id is awaiting its answer.
  bool IsPending(const json::value& client_id) const;
  // Records that the request `client_id` is answered on stream `sid`.
  void AddRequest(uint64_t sid, const json::value& client_id);
  // Puts a locally produced message (an error about the input) on stream `sid`. It answers no
  // open request, even one with the same id: a refused duplicate must not take the answer of
  // the request whose id it reused.
  void DeliverOn(uint64_t sid, const jsonrpc::Message& msg);

  // ClientSink: routes a message from the relay to its stream.
  void Deliver(const jsonrpc::Message& msg, const std::optional<json::value>& related) override;

  // Attaches a connection to stream `sid` (a GET), replaying the kept events after
  // `after_seq`. kTakeOver (a resuming client) ends a connection already attached;
  // kExclusive refuses with kBusy.
  enum class Attach { kOk, kBusy, kUnknown };
  enum class Mode { kExclusive, kTakeOver };
  Attach AttachWriter(uint64_t sid, uint64_t after_seq, const std::shared_ptr<StreamWriter>& w,
                      Mode mode = Mode::kExclusive);
  // The connection serving `sid` is gone or finished.
  void DetachWriter(uint64_t sid, const std::shared_ptr<StreamWriter>& w);
  // The last sequence number stream `sid` has used.
  uint64_t LastSeq(uint64_t sid);

  // Closes the relay (and the upstream) and ends every attached connection.
  void Close();

 private:
  struct Stream {
    uint64_t id = 0;
    std::unordered_set<std::string> open_requests;  // client id keys not yet answered
    std::shared_ptr<StreamWriter> writer;
    uint64_t next_seq = 1;
    std::deque<std::pair<uint64_t, StreamWriter::Item>> events;  // kept for resumption
  };

  Stream& PickStream(const std::optional<json::value>& related);
  // `settles`: a response answers the open request of its id on that stream.
  void Push(Stream& s, const jsonrpc::Message& msg, bool settles = true);

  std::string id_;
  Transport transport_;
  size_t max_events_;
  std::map<uint64_t, Stream> streams_;
  std::unordered_map<std::string, uint64_t> request_stream_;  // client id key → stream
  uint64_t next_stream_ = 1;
  std::chrono::steady_clock::time_point last_active_ = std::chrono::steady_clock::now();
  bool closed_ = false;
  std::string grant_;
  std::string route_;
  // Declared last: it is destroyed first, and its upstream may still deliver while it closes.
  std::unique_ptr<gateway::McpSession> relay_;
};

}  // namespace tw::transport
