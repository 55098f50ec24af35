#include "app/server_target.h"

#include <cstring>
#include <filesystem>
#include <set>

#include <boost/asio.hpp>

#include "mcp/protocol.h"
#include "transport/child_upstream.h"

namespace tw::app {

namespace asio = boost::asio;

// Splits "Name: value" into its parts.
Result<std::pair<std::string, std::string>> ParseHeader(const std::string& h) {
  size_t colon = h.find(':');
  if (colon == std::string::npos || colon == 0) {
    return Fail(Error::InvalidArgument("--header \"" + h + "\" must look like \"Name: value\""));
  }
  std::string name = h.substr(0, colon);
  std::string value = h.substr(colon + 1);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.erase(0, 1);
  if (name.find_first_of(" \t\r\n") != std::string::npos ||
      value.find_first_of("\r\n") != std::string::npos) {
    return Fail(Error::InvalidArgument("--header \"" + name + "\" contains invalid characters"));
  }
  return std::make_pair(name, value);
}

std::string DeriveServerName(const std::vector<std::string>& command, const std::string& url) {
  namespace fs = std::filesystem;
  if (!url.empty()) {
    auto u = transport::ParseUpstreamUrl(url);
    return u ? u->host : url;
  }
  static const std::set<std::string> kLaunchers = {"npx", "node", "uvx", "uv", "python",
                                                   "python3", "bunx", "bun", "deno", "docker",
                                                   "pipx", "env"};
  std::string pick = fs::path(command.front()).filename().string();
  if (kLaunchers.contains(pick)) {
    for (size_t i = 1; i < command.size(); ++i) {
      if (!command[i].starts_with("-") && command[i] != "run") {
        pick = command[i];
        break;
      }
    }
  }
  const bool is_path = pick.find('/') != std::string::npos && !pick.starts_with("@");
  if (is_path) {
    // node path/to/server-x/dist/index.js → server-x: the last meaningful directory or file.
    const fs::path p(pick);
    pick = p.stem().string();
    if (pick == "index" || pick == "main" || pick == "server") {
      for (const auto& part : p.parent_path()) {
        const std::string s = part.string();
        if (s != "dist" && s != "build" && s != "lib" && s != "src" && s != "/" && !s.empty()) {
          pick = s;
        }
      }
    }
  } else {
    // A package spec: @scope/name@version → name.
    if (pick.starts_with("@") && pick.find('/') != std::string::npos) {
      pick = pick.substr(pick.find('/') + 1);
    }
    if (auto at = pick.find('@', 1); at != std::string::npos) pick = pick.substr(0, at);
    for (const char* ext : {".js", ".mjs", ".py", ".ts"}) {
      if (pick.ends_with(ext)) pick = pick.substr(0, pick.size() - std::strlen(ext));
    }
  }
  return pick.empty() ? "server" : pick;
}

namespace {

// A minimal MCP client over a gateway::Upstream: initialize, then tools/list page by page.
class ToolLister {
 public:
  ToolLister(asio::io_context& io, gateway::Upstream& upstream, std::chrono::milliseconds timeout)
      : upstream_(upstream), deadline_(io) {
    deadline_.expires_after(timeout);
    deadline_.async_wait([this](boost::system::error_code ec) {
      if (!ec) Finish("the server did not answer within the scan timeout");
    });
  }

  void Start() {
    upstream_.Start(gateway::Upstream::Events{
        .on_message = [this](jsonrpc::Message m, std::optional<json::value>) { OnMessage(m); },
        .on_request_failed = [this](const json::value&, const Error& e,
                                    bool) { Finish(e.message()); },
        .on_disconnected = [this](const Error& e) { Finish(e.message()); },
        .on_reconnected = [] {},
    });
    upstream_.Send(jsonrpc::MakeRequest(
        1, std::string(mcp::method::kInitialize),
        // Declares what clients commonly support, so that servers which only offer some tools
        // to capable clients show them all; their requests are answered "not supported".
        json::object{{"protocolVersion", mcp::kLatestVersion},
                     {"capabilities", {{"roots", json::object{}},
                                       {"sampling", json::object{}},
                                       {"elicitation", json::object{}}}},
                     {"clientInfo", {{"name", "toolwarden-scan"}, {"version", "1"}}}}));
  }

  bool ok() const { return done_ && error_.empty(); }
  const std::string& error() const { return error_; }
  const json::array& tools() const { return tools_; }
  const catalog::ServerInfo& server() const { return server_; }

 private:
  void OnMessage(const jsonrpc::Message& m) {
    if (done_) return;
    if (m.IsRequest()) {  // roots/list and the like: a scanner has nothing to offer
      upstream_.Send(jsonrpc::MakeError(m.id, jsonrpc::kMethodNotFound, "not supported by scan"));
      return;
    }
    if (!m.IsResponse()) return;
    if (m.kind == jsonrpc::Kind::kError) {
      Finish("the server answered " + json::serialize(m.error));
      return;
    }
    if (m.id == json::value(1)) {
      if (const json::value* info = m.result.is_object() ? m.result.get_object().if_contains("serverInfo") : nullptr;
          info && info->is_object()) {
        auto str = [&](const char* k) {
          const json::value* v = info->get_object().if_contains(k);
          return v && v->is_string() ? std::string(v->get_string()) : std::string();
        };
        server_ = {str("name"), str("version")};
      }
      upstream_.Send(jsonrpc::MakeNotification(std::string(mcp::method::kInitialized), nullptr));
      RequestPage(nullptr);
      return;
    }
    const json::object* r = m.result.if_object();
    const json::value* list = r ? r->if_contains("tools") : nullptr;
    if (!list || !list->is_array()) {
      Finish("tools/list answered without a tools array");
      return;
    }
    for (const auto& t : list->get_array()) tools_.push_back(t);
    const json::value* cursor = r->if_contains("nextCursor");
    if (cursor && cursor->is_string() && !cursor->get_string().empty()) {
      if (++pages_ > 1000) {
        Finish("more than 1000 pages of tools: giving up");
        return;
      }
      RequestPage(*cursor);
      return;
    }
    Finish("");
  }

  void RequestPage(json::value cursor) {
    json::object params;
    if (!cursor.is_null()) params["cursor"] = cursor;
    upstream_.Send(jsonrpc::MakeRequest(next_id_++, std::string(mcp::method::kToolsList),
                                        std::move(params)));
  }

  void Finish(std::string error) {
    if (done_) return;
    done_ = true;
    error_ = std::move(error);
    deadline_.cancel();
    upstream_.Close();
  }

  gateway::Upstream& upstream_;
  asio::steady_timer deadline_;
  json::array tools_;
  catalog::ServerInfo server_;
  int64_t next_id_ = 2;
  int pages_ = 0;
  bool done_ = false;
  std::string error_;
};

}  // namespace

Result<ListedTools> ListServerTools(const ServerTarget& target, std::chrono::milliseconds timeout) {
  asio::io_context io(1);
  std::unique_ptr<gateway::Upstream> upstream;
  if (!target.url.empty()) {
    auto url = transport::ParseUpstreamUrl(target.url);
    if (!url) return Fail(url.error());
    transport::HttpUpstreamOptions h;
    h.url = *url;
    h.ca_file = target.ca_file;
    for (const auto& header : target.headers) {
      auto parsed = ParseHeader(header);
      if (!parsed) return Fail(parsed.error());
      h.headers.push_back(*parsed);
    }
    upstream = std::make_unique<transport::HttpUpstream>(io, h);
  } else {
    if (target.command.empty()) return Fail(Error::InvalidArgument("no server command"));
    if (auto exe = transport::FindExecutable(target.command.front()); !exe) return Fail(exe.error());
    transport::ChildOptions child;
    child.argv = target.command;
    child.env = target.env;
    upstream = std::make_unique<transport::ChildUpstream>(io, std::move(child));
  }
  ToolLister lister(io, *upstream, timeout);
  lister.Start();
  io.run();
  if (!lister.ok()) return Fail(Error::Unavailable(lister.error()));
  return ListedTools{lister.tools(), lister.server()};
}

}  // namespace tw::app
