// HttpUpstream: a remote MCP server over Streamable HTTP, with a fallback to the legacy
// HTTP+SSE transport (2024-11-05) when the server refuses POSTs to its URL.
//
// Every message is POSTed (plain TCP or TLS, verified against the system trust store); the
// answer may be JSON or an SSE stream, whose events are related to the request they answer.
// A stream that breaks before its answer is resumed with GET + Last-Event-ID when the server
// gave event ids. After initialize, a GET stream carries server-initiated messages. The
// server's Mcp-Session-Id is kept; when the server forgets it (404), the gateway is told to
// re-initialize (Events::on_disconnected + on_reconnected). Configured headers are sent on
// every request; nothing from the agent's own HTTP request is ever forwarded.
//
// Timeouts: `connect_timeout` for resolve + connect + TLS handshake; `request_timeout` for
// silence while waiting for an answer (any event on the stream restarts it).
//
// Thread: one io_context.
#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "gateway/upstream.h"

namespace boost::asio::ssl {
class context;
}  // namespace boost::asio::ssl

namespace tw::transport {

struct UpstreamUrl {
  bool tls = false;
  std::string host;
  std::string port;
  std::string target;  // path and query
  std::string ToString() const;
};

// The process's TLS client context for `ca_file` (system CA store plus that file, "" for none),
// made on first use: loading the system store takes tens of milliseconds.
std::shared_ptr<boost::asio::ssl::context> TlsClientContext(const std::string& ca_file);

// Accepts http:// and https:// URLs with a host.
Result<UpstreamUrl> ParseUpstreamUrl(const std::string& url);

struct HttpUpstreamOptions {
  UpstreamUrl url;
  std::vector<std::pair<std::string, std::string>> headers;
  std::chrono::milliseconds connect_timeout{10000};
  std::chrono::milliseconds request_timeout{300000};
  size_t max_message_bytes = 4 << 20;
  // Extra PEM file of CA certificates trusted for https:// (besides the system store).
  std::string ca_file;
};

class HttpUpstream : public gateway::Upstream {
 public:
  HttpUpstream(boost::asio::io_context& io, HttpUpstreamOptions options);
  ~HttpUpstream() override;

  void Start(Events events) override;
  void Send(jsonrpc::Message msg) override;
  void Close() override;

  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace tw::transport
