// fast_server: a minimal MCP server for benchmarks, so that the gateway — not the upstream — is
// what is measured. Its one tool, `echo`, answers at once.
//
//   fast_server stdio [--tools N]     newline-delimited JSON-RPC on stdin/stdout
//   fast_server http [--sse] [--tools N]
//                                     Streamable HTTP on 127.0.0.1, port from the OS (printed as
//                                     "LISTENING <port>"); answers as JSON, or with --sse as a
//                                     one-event SSE stream
// --tools N lists N tools (echo, then tool_1 … tool_N-1, all answering like echo), in one page.
//
// It speaks just enough MCP for a real client: initialize (any supported version echoed),
// notifications, ping, tools/list, tools/call echo. Not a server to deploy.
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstdio>
#include <iostream>
#include <string>

#include "jsonrpc/message.h"
#include "mcp/protocol.h"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
namespace json = boost::json;

namespace {

int g_tools = 1;

// The answer to one message, or nullopt for notifications.
std::optional<std::string> Answer(std::string_view line) {
  auto in = tw::jsonrpc::Parse(line);
  if (in.is_batch || !in.items[0]) {
    return tw::jsonrpc::Serialize(tw::jsonrpc::MakeError(nullptr, tw::jsonrpc::kInvalidRequest, "bad"));
  }
  const tw::jsonrpc::Message& m = *in.items[0];
  if (!m.IsRequest()) return std::nullopt;
  json::value result;
  if (m.method == "initialize") {
    const json::value* v = m.params.is_object() ? m.params.as_object().if_contains("protocolVersion") : nullptr;
    result = json::object{{"protocolVersion", v && v->is_string() ? *v : json::value("2025-06-18")},
                          {"capabilities", json::object{{"tools", json::object{}}}},
                          {"serverInfo", json::object{{"name", "fast_server"}, {"version", "1"}}}};
  } else if (m.method == "ping") {
    result = json::object{};
  } else if (m.method == "tools/list") {
    json::object schema{{"type", "object"},
                        {"properties", json::object{{"message", json::object{{"type", "string"}}}}}};
    json::array tools;
    for (int i = 0; i < g_tools; ++i) {
      tools.push_back(json::object{{"name", i == 0 ? std::string("echo") : "tool_" + std::to_string(i)},
                                   {"description", "Echoes the message back"},
                                   {"inputSchema", schema}});
    }
    result = json::object{{"tools", std::move(tools)}};
  } else if (m.method == "tools/call") {
    const json::object* p = m.params.if_object();
    const json::value* args = p ? p->if_contains("arguments") : nullptr;
    const json::value* msg = args && args->is_object() ? args->as_object().if_contains("message") : nullptr;
    result = json::object{{"content", json::array{json::object{
                                          {"type", "text"}, {"text", msg && msg->is_string() ? *msg : json::value("")}}}}};
  } else {
    return tw::jsonrpc::Serialize(tw::jsonrpc::MakeError(m.id, tw::jsonrpc::kMethodNotFound, "Method not found"));
  }
  return tw::jsonrpc::Serialize(tw::jsonrpc::MakeResponse(m.id, std::move(result)));
}

int Stdio() {
  std::ios::sync_with_stdio(false);
  std::string line;
  while (std::getline(std::cin, line)) {
    if (line.empty()) continue;
    if (auto out = Answer(line)) {
      std::fwrite(out->data(), 1, out->size(), stdout);
      std::fputc('\n', stdout);
      std::fflush(stdout);
    }
  }
  return 0;
}

asio::awaitable<void> Serve(tcp::socket socket, bool sse) {
  beast::tcp_stream stream(std::move(socket));
  stream.socket().set_option(tcp::no_delay(true));
  beast::flat_buffer buffer;
  for (;;) {
    http::request<http::string_body> req;
    auto [ec, n] = co_await http::async_read(stream, buffer, req, asio::as_tuple(asio::use_awaitable));
    if (ec) break;
    http::response<http::string_body> res{http::status::ok, req.version()};
    res.keep_alive(req.keep_alive());
    if (req.method() == http::verb::post) {
      std::optional<std::string> out = Answer(req.body());
      if (req.body().find("\"initialize\"") != std::string::npos) res.set("Mcp-Session-Id", "fast");
      if (!out) {
        res.result(http::status::accepted);
      } else if (sse) {
        res.set(http::field::content_type, "text/event-stream");
        res.body() = "event: message\ndata: " + *out + "\n\n";
      } else {
        res.set(http::field::content_type, "application/json");
        res.body() = std::move(*out);
      }
    } else if (req.method() == http::verb::get) {
      res.result(http::status::method_not_allowed);  // no server-initiated stream
    }
    res.prepare_payload();
    auto [wec, wn] = co_await http::async_write(stream, res, asio::as_tuple(asio::use_awaitable));
    if (wec || !req.keep_alive()) break;
  }
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
}

int Http(bool sse) {
  asio::io_context io(1);
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  std::printf("LISTENING %u\n", acceptor.local_endpoint().port());
  std::fflush(stdout);
  asio::co_spawn(io, [&]() -> asio::awaitable<void> {
    for (;;) {
      tcp::socket s = co_await acceptor.async_accept(asio::use_awaitable);
      asio::co_spawn(io, Serve(std::move(s), sse), asio::detached);
    }
  }, asio::detached);
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](auto, int) { io.stop(); });
  io.run();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  bool sse = false;
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--sse") sse = true;
    if (a == "--tools" && i + 1 < argc) g_tools = std::max(1, std::atoi(argv[++i]));
  }
  if (mode == "stdio") return Stdio();
  if (mode == "http") return Http(sse);
  std::fprintf(stderr, "usage: fast_server stdio | http [--sse]\n");
  return 2;
}
