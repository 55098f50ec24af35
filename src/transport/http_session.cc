#include "transport/http_session.h"

#include <algorithm>
#include <charconv>

namespace tw::transport {

std::string FormatEventId(uint64_t stream, uint64_t seq) {
  return std::to_string(stream) + "_" + std::to_string(seq);
}

bool ParseEventId(std::string_view id, uint64_t& stream, uint64_t& seq) {
  size_t underscore = id.find('_');
  if (underscore == std::string_view::npos) return false;
  auto a = std::from_chars(id.data(), id.data() + underscore, stream);
  auto b = std::from_chars(id.data() + underscore + 1, id.data() + id.size(), seq);
  return a.ec == std::errc() && a.ptr == id.data() + underscore && b.ec == std::errc() &&
         b.ptr == id.data() + id.size();
}

HttpMcpSession::HttpMcpSession(std::string id, Transport transport, const RelayMaker& make_relay,
                               size_t max_events, std::string grant, std::string route)
    : id_(std::move(id)),
      transport_(transport),
      max_events_(max_events),
      grant_(std::move(grant)),
      route_(std::move(route)),
      relay_(make_relay(*this)) {
  streams_[0].id = 0;
}

HttpMcpSession::~HttpMcpSession() { Close(); }

bool HttpMcpSession::Busy() const {
  return std::any_of(streams_.begin(), streams_.end(), [](const auto& kv) {
    return kv.second.writer || !kv.second.open_requests.empty();
  });
}

uint64_t HttpMcpSession::OpenStream(std::shared_ptr<StreamWriter> writer) {
  const uint64_t sid = next_stream_++;
  Stream& s = streams_[sid];
  s.id = sid;
  s.writer = std::move(writer);
  // Keep a bounded number of finished streams for resumption.
  while (streams_.size() > 64) {
    auto victim = std::find_if(streams_.begin(), streams_.end(), [](const auto& kv) {
      return kv.first != 0 && kv.second.open_requests.empty() && !kv.second.writer;
    });
    if (victim == streams_.end()) break;
    streams_.erase(victim);
  }
  return sid;
}

bool HttpMcpSession::IsPending(const json::value& client_id) const {
  return request_stream_.contains(jsonrpc::IdKey(client_id));
}

void HttpMcpSession::AddRequest(uint64_t sid, const json::value& client_id) {
  std::string key = jsonrpc::IdKey(client_id);
  streams_[sid].open_requests.insert(key);
  request_stream_[std::move(key)] = sid;
}

void HttpMcpSession::DeliverOn(uint64_t sid, const jsonrpc::Message& msg) {
  Push(streams_[sid], msg, false);
}

void HttpMcpSession::Deliver(const jsonrpc::Message& msg,
                             const std::optional<json::value>& related) {
  if (closed_) return;
  if (legacy()) {
    Push(streams_[0], msg);
    return;
  }
  if (msg.IsResponse()) {
    auto it = request_stream_.find(jsonrpc::IdKey(msg.id));
    if (it != request_stream_.end()) {
      Push(streams_[it->second], msg);
      return;
    }
  }
  Push(PickStream(related), msg);
}

HttpMcpSession::Attach HttpMcpSession::AttachWriter(uint64_t sid, uint64_t after_seq,
                                                    const std::shared_ptr<StreamWriter>& w,
                                                    Mode mode) {
  auto it = streams_.find(sid);
  if (it == streams_.end()) return Attach::kUnknown;
  Stream& s = it->second;
  if (s.writer && !s.writer->detached) {
    if (mode == Mode::kExclusive) return Attach::kBusy;
    s.writer->queue.clear();  // replayed below from the kept events
    s.writer->Finish();
    s.writer.reset();
  }
  for (auto& [seq, item] : s.events) {
    if (seq > after_seq) w->Push(item);
  }
  if (sid != 0 && s.open_requests.empty()) {
    w->Finish();  // everything it will ever carry was replayed
    return Attach::kOk;
  }
  s.writer = w;
  return Attach::kOk;
}

void HttpMcpSession::DetachWriter(uint64_t sid, const std::shared_ptr<StreamWriter>& w) {
  auto it = streams_.find(sid);
  if (it != streams_.end() && it->second.writer == w) it->second.writer.reset();
}

uint64_t HttpMcpSession::LastSeq(uint64_t sid) { return streams_[sid].next_seq - 1; }

void HttpMcpSession::Close() {
  if (closed_) return;
  closed_ = true;
  relay_->Close();
  for (auto& [sid, s] : streams_) {
    if (s.writer) s.writer->Finish();
  }
}

// A message that is not the answer to a request goes on the stream of the request it relates
// to, else the GET stream, else the newest open POST stream, else the GET stream's buffer
// (delivered when a GET stream opens).
HttpMcpSession::Stream& HttpMcpSession::PickStream(const std::optional<json::value>& related) {
  if (related) {
    auto it = request_stream_.find(jsonrpc::IdKey(*related));
    if (it != request_stream_.end()) {
      Stream& s = streams_[it->second];
      if (s.writer) return s;
    }
  }
  Stream& standalone = streams_[0];
  if (standalone.writer) return standalone;
  for (auto it = streams_.rbegin(); it != streams_.rend(); ++it) {
    if (it->first != 0 && it->second.writer && !it->second.open_requests.empty()) {
      return it->second;
    }
  }
  return standalone;
}

void HttpMcpSession::Push(Stream& s, const jsonrpc::Message& msg, bool settles) {
  StreamWriter::Item item;
  const uint64_t seq = s.next_seq++;
  item.seq = seq;
  if (legacy()) {
    item.event_name = "message";  // the 2024-11-05 transport names its events, without ids
  } else {
    item.event_id = FormatEventId(s.id, seq);
  }
  item.data = jsonrpc::Serialize(msg);
  item.is_response = msg.IsResponse();
  bool finished = false;
  if (item.is_response && settles) {
    std::string key = jsonrpc::IdKey(msg.id);
    if (s.open_requests.erase(key)) {
      request_stream_.erase(key);
      finished = s.open_requests.empty() && s.id != 0;
    }
  }
  // The lone answer of a single-request POST, first on its stream and before any SSE: the
  // connection sends it as a JSON body (HttpServer's WriteStream makes the same test).
  const bool json_body = finished && s.writer && s.writer->single && !s.writer->sse &&
                         s.writer->queue.empty() && s.events.empty();
  if (!json_body) {
    s.events.emplace_back(seq, item);
    while (s.events.size() > max_events_) s.events.pop_front();
  }
  if (s.writer) {
    s.writer->Push(std::move(item));
    if (finished) {
      s.writer->Finish();
      s.writer.reset();
    }
  }
  if (json_body) streams_.erase(s.id);  // nothing on it can be resumed; `s` is gone
}

}  // namespace tw::transport
