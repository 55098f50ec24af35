#include "transport/stdio_server.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <deque>
#include <thread>

#include "transport/framing.h"
#include "transport/outbox.h"

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
        session_(make_session(*this)),
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
    session_->Start();
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
      session_->HandleClientMessage(std::move(*item));
    }
  }

  void OnEof() {
    if (eof_) return;
    eof_ = true;
    spdlog::info("stdio: client closed stdin; shutting down");
    session_->Close();
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
  std::unique_ptr<gateway::McpSession> session_;
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
