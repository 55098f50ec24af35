#include "app/scan.h"

#include <filesystem>
#include <fstream>
#include <iostream>

#include <boost/asio.hpp>
#include <spdlog/spdlog.h>

#include "app/commands.h"
#include "catalog/scaffold.h"
#include "app/server_target.h"

namespace tw::app {

int ScanCommand(const ScanOptions& o) {
  if (o.upstream_url.empty() == o.command.empty()) {
    std::cerr << "toolwarden scan: give exactly one server: -- COMMAND [ARGS...] or --upstream URL\n";
    return kExitUsage;
  }
  std::string format = o.format;
  if (format.empty()) format = o.output.ends_with(".json") ? "json" : "yaml";
  const std::string label = o.upstream_url.empty() ? o.command.front() : o.upstream_url;
  auto listed = ListServerTools(ServerTarget{o.command, o.upstream_url, o.headers, o.upstream_ca, {}},
                                std::chrono::milliseconds(static_cast<long>(o.timeout_s * 1000)));
  if (!listed) {
    std::cerr << "toolwarden scan: " << label << ": " << listed.error().message() << "\n";
    return listed.error().code() == ErrorCode::kInvalidArgument ? kExitUsage : kExitUnavailable;
  }
  catalog::ServerInfo server = listed->server;
  if (server.name.empty()) server.name = label;
  const auto scanned = catalog::ScanTools(listed->tools);

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
