#include "transport/stdio_server.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <deque>
#include <unordered_map>
#include <thread>

#include "mcp/modern.h"
#include "mcp/protocol.h"
#include "transport/framing.h"
#include "transport/outbox.h"
#include "transport/stateless_channel.h"

namespace tw::transport {

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;

class StdioServer::Impl : public gateway::ClientSink, public std::enable_shared_from_this<Impl> {
 public:
  Impl(asio::io_context& io, StdioOptions options, const gateway::SessionMaker& make_session)
      : io_(io),
        options_(options),
        in_(io),
        out_(io),
        make_session_(make_session),
        framer_(
            options.max_message_bytes, [this](std::string_view line) { OnLine(line); },
            [this](size_t bytes) {
              spdlog::warn("stdio: message of {}+ bytes exceeds the {} byte limit", bytes,
                           options_.max_message_bytes);
              Write(jsonrpc::Serialize(
                  jsonrpc::MakeError(nullptr, jsonrpc::kInvalidRequest,
                                     "Invalid Request: message exceeds " +
                                         std::to_string(options_.max_message_bytes) + " bytes")));
            }) {}

  ~Impl() override {
    if (reader_.joinable()) reader_.detach();  // blocked in read(); the process is exiting
  }

  void Start() {
    boost::system::error_code ec;
    out_.assign(::dup(options_.out_fd), ec);
    if (ec) out_blocking_ = true;  // a regular file: plain blocking writes are fine
    in_.assign(::dup(options_.in_fd), ec);
    if (!ec) {
      asio::co_spawn(io_, ReadLoop(shared_from_this()), asio::detached);
      return;
    }
    // stdin is a regular file (epoll refuses those): read it on a thread.
    auto work = asio::make_work_guard(io_);
    reader_ = std::thread([self = shared_from_this(), work = std::move(work)]() mutable {
      char buf[65536];
      for (;;) {
        ssize_t n = ::read(self->options_.in_fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        asio::post(self->io_, [self, data = std::string(buf, static_cast<size_t>(n))] {
          self->framer_.Append(data);
        });
      }
      asio::post(self->io_, [self] { self->OnEof(); });
    });
  }

  void Shutdown() { OnEof(); }

  void Deliver(const jsonrpc::Message& msg, const std::optional<boost::json::value>&) override {
    Write(jsonrpc::Serialize(msg));
  }

 private:
  static awaitable<void> ReadLoop(std::shared_ptr<Impl> self) {
    std::vector<char> buf(64 * 1024);
    for (;;) {
      auto [ec, n] =
          co_await self->in_.async_read_some(asio::buffer(buf), asio::as_tuple(use_awaitable));
      if (ec) break;
      self->framer_.Append(std::string_view(buf.data(), n));
    }
    self->OnEof();
  }

  void OnLine(std::string_view line) {
    jsonrpc::Incoming in = jsonrpc::Parse(line);
    if (in.is_batch) {
      spdlog::debug("stdio: batch of {} messages; answering each separately", in.items.size());
    }
    for (auto& item : in.items) {
      if (!item) {
        spdlog::warn("stdio: rejected client message: {}", item.error().message);
        Write(jsonrpc::Serialize(jsonrpc::MakeError(item.error())));
        continue;
      }
      if (!session_ && !channel_) Choose(*item);
      if (channel_) {
        HandleStateless(std::move(*item));
      } else {
        session_->HandleClientMessage(std::move(*item));
      }
    }
  }

  // The era of the client, from its first message: a 2026-07-28 client starts with
  // server/discover (its stdio probe) or any request naming that era in its _meta; anything
  // else — an initialize above all — is a 2025-era client, served by one session as before.
  void Choose(const jsonrpc::Message& first) {
    bool modern_client = first.IsRequest() && first.method == mcp::modern::kDiscover;
    if (const json::object* p = first.params.if_object()) {
      if (const json::value* meta = p->if_contains("_meta"); meta && meta->is_object()) {
        if (meta->as_object().contains(mcp::modern::kMetaProtocolVersion)) modern_client = true;
      }
    }
    if (first.IsRequest() && first.method == mcp::method::kInitialize) modern_client = false;
    if (modern_client) {
      spdlog::info("stdio: the client speaks {}: serving it without a session",
                   mcp::modern::kVersion);
      channel_ = std::make_shared<StatelessChannel>("stateless:local", make_session_, "local", "");
      channel_->Start();
      return;
    }
    session_ = make_session_(*this);
    session_->Start();
  }

  // One message of a 2026-07-28 client on stdio: a request is checked and served by the
  // channel, its answer and notifications written as they come; notifications/cancelled ends
  // the request it names; nothing else is relayed.
  void HandleStateless(jsonrpc::Message msg) {
    if (msg.kind == jsonrpc::Kind::kNotification) {
      if (msg.method != mcp::method::kCancelled) return;
      const json::object* p = msg.params.if_object();
      const json::value* id = p ? p->if_contains("requestId") : nullptr;
      if (!id) return;
      auto it = streams_.find(jsonrpc::IdKey(*id));
      if (it == streams_.end()) return;
      std::shared_ptr<StreamWriter> writer = it->second;
      streams_.erase(it);
      writer->detached = true;
      channel_->Cancelled(writer);
      writer->Finish();
      return;
    }
    if (!msg.IsRequest()) return;  // a client of that era answers no server request
    mcp::modern::RequestMeta meta;
    if (auto problem = mcp::modern::CheckRequest(msg, meta)) {
      Write(jsonrpc::Serialize(*problem));
      return;
    }
    const std::string key = jsonrpc::IdKey(msg.id);
    if (streams_.contains(key)) {
      Write(jsonrpc::Serialize(jsonrpc::MakeError(
          msg.id, jsonrpc::kInvalidRequest,
          "Invalid Request: id " + jsonrpc::IdToString(msg.id) + " is already in use")));
      return;
    }
    auto writer = std::make_shared<StreamWriter>(io_.get_executor());
    streams_.emplace(key, writer);
    asio::co_spawn(io_, Pump(shared_from_this(), key, writer), asio::detached);
    if (msg.method == mcp::modern::kDiscover) {
      channel_->Discover(msg.id, writer);
    } else if (meta.listen) {
      channel_->Listen(msg.id, *meta.listen, writer);
    } else {
      channel_->Submit(std::move(msg), meta, writer);
    }
  }

  // Writes what one request's writer receives, as lines, until it is finished.
  static awaitable<void> Pump(std::shared_ptr<Impl> self, std::string key,
                              std::shared_ptr<StreamWriter> writer) {
    for (;;) {
      while (!writer->queue.empty()) {
        if (!writer->detached) self->Write(std::move(writer->queue.front().data));
        writer->queue.pop_front();
      }
      if (writer->done || self->eof_) break;
      writer->wake.expires_at(std::chrono::steady_clock::time_point::max());
      co_await writer->wake.async_wait(asio::as_tuple(use_awaitable));
    }
    if (auto it = self->streams_.find(key); it != self->streams_.end() && it->second == writer) {
      self->streams_.erase(it);
    }
  }

  void OnEof() {
    if (eof_) return;
    eof_ = true;
    spdlog::info("stdio: client closed stdin; shutting down");
    if (session_) session_->Close();
    if (channel_) channel_->Close();
    for (auto& [key, w] : streams_) w->Finish();
    boost::system::error_code ignored;
    in_.close(ignored);
    if (!writing_) out_.close(ignored);
    if (options_.on_eof) options_.on_eof();
  }

  void Write(std::string line) {
    line.push_back('\n');
    if (out_blocking_) {
      std::string_view rest = line;
      while (!rest.empty()) {
        ssize_t n = ::write(options_.out_fd, rest.data(), rest.size());
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
        rest.remove_prefix(static_cast<size_t>(n));
      }
      return;
    }
    outbox_.push_back(std::move(line));
    if (!writing_) asio::co_spawn(io_, WriteLoop(shared_from_this()), asio::detached);
  }

  static awaitable<void> WriteLoop(std::shared_ptr<Impl> self) {
    self->writing_ = true;
    if (auto ec = co_await WriteOutbox(self->out_, self->outbox_)) {
      spdlog::warn("stdio: cannot write to stdout: {}", ec.message());
    }
    self->writing_ = false;
    if (self->eof_) {
      boost::system::error_code ignored;
      self->out_.close(ignored);
    }
  }

  asio::io_context& io_;
  StdioOptions options_;
  asio::posix::stream_descriptor in_;
  asio::posix::stream_descriptor out_;
  gateway::SessionMaker make_session_;
  // One of the two, made when the first message says which era the client speaks.
  std::unique_ptr<gateway::McpSession> session_;
  std::shared_ptr<StatelessChannel> channel_;
  std::unordered_map<std::string, std::shared_ptr<StreamWriter>> streams_;  // by request id key
  LineFramer framer_;
  std::deque<std::string> outbox_;
  bool writing_ = false;
  bool out_blocking_ = false;
  bool eof_ = false;
  std::thread reader_;
};

StdioServer::StdioServer(asio::io_context& io, StdioOptions options,
                         const gateway::SessionMaker& make_session)
    : impl_(std::make_shared<Impl>(io, options, make_session)) {}

StdioServer::~StdioServer() = default;

void StdioServer::Start() { impl_->Start(); }

void StdioServer::Shutdown() { impl_->Shutdown(); }

}  // namespace tw::transport
