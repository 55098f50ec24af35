// ChildUpstream: an MCP server run as a child process, spoken to over its stdin/stdout
// (newline-delimited JSON-RPC). Its stderr goes to our log, line by line.
//
// Lifecycle: started by Start(); if the process dies, every request in flight fails
// (Events::on_disconnected) and the process is started again after a backoff (100 ms doubling
// to 30 s; reset after 30 s of uptime), followed by Events::on_reconnected. Close() shuts it
// down cleanly: close stdin, wait, SIGTERM, wait, SIGKILL. The shutdown finishes on the
// io_context even after the ChildUpstream is destroyed.
//
// Thread: one io_context. Ownership: the process state is shared with in-flight coroutines.
#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "gateway/upstream.h"

namespace tw::transport {

struct ChildOptions {
  std::vector<std::string> argv;  // argv[0] is looked up on PATH
  // Set in the child's environment, over what it inherits from ours.
  std::vector<std::pair<std::string, std::string>> env;
  // What it inherits: our whole environment (`run`: the client set it for this one server), or
  // only the variables `inherit` names (`serve`: one server never sees another's credentials
  // or the gateway's own secrets). A name ending in '*' matches a prefix.
  enum class Inherit { kAll, kListed };
  Inherit inherit = Inherit::kAll;
  std::vector<std::string> inherit_names;
  size_t max_message_bytes = 4 << 20;
  std::chrono::milliseconds shutdown_grace{2000};  // per step: after closing stdin, after SIGTERM
};

// Resolves argv[0] on PATH; fails with a message naming the command when it cannot be run.
Result<std::string> FindExecutable(const std::string& name);

class ChildUpstream : public gateway::Upstream {
 public:
  ChildUpstream(boost::asio::io_context& io, ChildOptions options);
  ~ChildUpstream() override;

  void Start(Events events) override;
  void Send(jsonrpc::Message msg) override;
  void Close() override;

  struct State;  // shared with coroutines; defined in the .cc

 private:
  std::shared_ptr<State> state_;
};

}  // namespace tw::transport
