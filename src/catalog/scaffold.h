// Policy scaffolds and summaries from a server's tool list. Pure: tools in, text out.
//
// Each tool is classified (classify.h) and gets the rule its category calls for:
//   Read                 allow
//   Write                rate limit (30 a minute per grant)
//   Execute              tighter rate limit (10 a minute per grant)
//   Financial            require approval, plus a daily spend cap when the tool has an
//                        amount argument; reading money data gets a Write-level rate limit
//   Destructive          require approval
// with `default: deny`, so tools the server adds later are denied until someone decides.
// The scaffold is valid native policy and loads unchanged; what the classifier saw is in
// comments (YAML) or `_about` strings (JSON).
#pragma once

#include <string>
#include <vector>

#include "catalog/classify.h"

namespace tw::catalog {

struct ScannedTool {
  json::object definition;  // as in tools/list
  Classification classification;
  std::string recommendation;  // one line for humans: "rate limit 30/minute"
};

// Classifies every tool of a tools/list (all pages, concatenated).
std::vector<ScannedTool> ScanTools(const json::array& tools);

enum class ScaffoldFormat { kYaml, kJson };

struct ServerInfo {
  std::string name;  // serverInfo.name, or the command
  std::string version;
};

std::string WriteScaffold(const std::vector<ScannedTool>& tools, const ServerInfo& server,
                          ScaffoldFormat format);

// A fixed-width table: tool, category, risk, recommendation.
std::string SummaryTable(const std::vector<ScannedTool>& tools);
// [{name, category, risk, signals, recommendation}, …]
json::array SummaryJson(const std::vector<ScannedTool>& tools);

}  // namespace tw::catalog
