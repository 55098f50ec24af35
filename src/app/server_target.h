// Talking to one MCP server from the command line: how it is named, its tools listed.
// Shared by `run`, `scan`, `tools` and `init`.
#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "catalog/scaffold.h"
#include "common/result.h"
#include "transport/http_upstream.h"

namespace tw::app {

// A server as the command line names it: a command (stdio) or a URL.
struct ServerTarget {
  std::vector<std::string> command;
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  std::string ca_file;
  std::vector<std::pair<std::string, std::string>> env;  // extra environment for a command
};

// Splits "Name: value" into its parts.
Result<std::pair<std::string, std::string>> ParseHeader(const std::string& h);

// A stable name for the upstream, for pins: the package or script a command runs
// (`npx -y @modelcontextprotocol/server-github` → server-github), or the URL's host.
std::string DeriveServerName(const std::vector<std::string>& command, const std::string& url);

struct ListedTools {
  json::array tools;  // every page
  catalog::ServerInfo server;
};

// Connects, initializes, lists every tool (all pages) and disconnects. Errors are
// InvalidArgument (a bad URL or header), NotFound (no such command) or Unavailable.
Result<ListedTools> ListServerTools(const ServerTarget& target, std::chrono::milliseconds timeout);

}  // namespace tw::app
