// StdioServer: the client side over stdio. Reads newline-delimited JSON-RPC from stdin, writes
// to stdout (nothing else is ever written there), and relays through the one session its
// SessionMaker makes — or, for a 2026-07-28 client (its first message is server/discover or
// names that era in its _meta), through a StatelessChannel over that session, each request
// answered as it completes.
//
// Malformed input is answered (-32700 / -32600, id null when unreadable) and never forwarded;
// a line over the size limit is skipped and answered with -32600. On stdin EOF the session is
// closed (the upstream shut down cleanly) and Run's io_context runs out of work.
//
// Thread: the io_context's. If stdin cannot be polled (a regular file), a reader thread
// blocks on it and posts lines to the io_context.
#pragma once

#include <boost/asio/io_context.hpp>
#include <functional>
#include <memory>

#include <set>
#include <string>

#include "gateway/session.h"

namespace tw::transport {

struct StdioOptions {
  size_t max_message_bytes = 4 << 20;
  int in_fd = 0;
  int out_fd = 1;
  // Called once when stdin reaches EOF (after the session began shutting down).
  std::function<void()> on_eof;
};

class StdioServer {
 public:
  StdioServer(boost::asio::io_context& io, StdioOptions options,
              const gateway::SessionMaker& make_session);
  ~StdioServer();

  // Starts reading stdin and the upstream.
  void Start();
  // Shuts down as if stdin had closed: the upstream is closed cleanly (a child process gets
  // EOF, then SIGTERM, then SIGKILL), after which the io_context runs out of work.
  void Shutdown();

  class Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace tw::transport
