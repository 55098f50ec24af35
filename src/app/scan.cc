#include "app/scan.h"

#include <filesystem>
#include <fstream>
#include <iostream>

#include <boost/asio.hpp>
#include <spdlog/spdlog.h>

#include "app/commands.h"
#include "catalog/scaffold.h"
#include "mcp/protocol.h"
#include "transport/child_upstream.h"
#include "transport/http_upstream.h"

namespace tw::app {

namespace asio = boost::asio;

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

int ScanCommand(const ScanOptions& o) {
  if (o.upstream_url.empty() == o.command.empty()) {
    std::cerr << "toolwarden scan: give exactly one server: -- COMMAND [ARGS...] or --upstream URL\n";
    return kExitUsage;
  }
  std::string format = o.format;
  if (format.empty()) format = o.output.ends_with(".json") ? "json" : "yaml";
  asio::io_context io(1);
  std::unique_ptr<gateway::Upstream> upstream;
  std::string label;
  if (!o.upstream_url.empty()) {
    auto url = transport::ParseUpstreamUrl(o.upstream_url);
    if (!url) {
      std::cerr << "toolwarden scan: " << url.error().message() << "\n";
      return kExitUsage;
    }
    transport::HttpUpstreamOptions h;
    h.url = *url;
    h.ca_file = o.upstream_ca;
    for (const auto& header : o.headers) {
      const size_t colon = header.find(':');
      if (colon == std::string::npos || colon == 0) {
        std::cerr << "toolwarden scan: --header \"" << header << "\" must look like \"Name: value\"\n";
        return kExitUsage;
      }
      std::string value = header.substr(colon + 1);
      value.erase(0, value.find_first_not_of(" \t"));
      h.headers.emplace_back(header.substr(0, colon), value);
    }
    upstream = std::make_unique<transport::HttpUpstream>(io, h);
    label = o.upstream_url;
  } else {
    if (auto exe = transport::FindExecutable(o.command.front()); !exe) {
      std::cerr << "toolwarden scan: " << exe.error().message() << "\n";
      return kExitUnavailable;
    }
    upstream = std::make_unique<transport::ChildUpstream>(io, transport::ChildOptions{o.command});
    label = o.command.front();
  }
  ToolLister lister(io, *upstream,
                    std::chrono::milliseconds(static_cast<long>(o.timeout_s * 1000)));
  lister.Start();
  io.run();
  if (!lister.ok()) {
    std::cerr << "toolwarden scan: " << label << ": " << lister.error() << "\n";
    return kExitUnavailable;
  }
  catalog::ServerInfo server = lister.server();
  if (server.name.empty()) server.name = label;
  const auto scanned = catalog::ScanTools(lister.tools());

  std::string out;
  if (o.summary) {
    out = o.json ? json::serialize(catalog::SummaryJson(scanned)) + "\n"
                 : catalog::SummaryTable(scanned);
  } else {
    out = catalog::WriteScaffold(scanned, server,
                                 format == "json" ? catalog::ScaffoldFormat::kJson
                                                  : catalog::ScaffoldFormat::kYaml);
  }
  if (o.output.empty()) {
    std::cout << out;
  } else {
    // Write beside the target and rename: a reader never sees half a policy.
    const std::string tmp = o.output + ".tmp";
    {
      std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
      f << out;
      if (!f) {
        std::cerr << "toolwarden scan: cannot write " << tmp << "\n";
        return kExitUnavailable;
      }
    }
    std::error_code ec;
    std::filesystem::rename(tmp, o.output, ec);
    if (ec) {
      std::cerr << "toolwarden scan: cannot write " << o.output << ": " << ec.message() << "\n";
      return kExitUnavailable;
    }
    std::cerr << "toolwarden scan: " << scanned.size() << " tools of " << server.name
              << " written to " << o.output << "\n";
  }
  return kExitOk;
}

}  // namespace tw::app
