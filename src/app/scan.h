// `toolwarden scan`: connect to a server, list every tool (all pages), classify them, and
// write a policy scaffold (or a summary).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace tw::app {

struct ScanOptions {
  std::vector<std::string> command;  // a stdio server, or
  std::string upstream_url;          // a remote one
  std::vector<std::string> headers;
  std::string upstream_ca;
  std::string output;  // -o FILE; empty: stdout
  std::string format;  // json|yaml; empty: from the file extension, else yaml
  bool summary = false;
  bool json = false;  // with --summary
  double timeout_s = 60;
};

int ScanCommand(const ScanOptions& options);

// `toolwarden tools`: the inventory of every configured server (-c), or of one server — every tool with category, risk, pin state
// and how the policy treats it.
struct ToolsOptions {
  std::string config;       // -c: every configured server, each under its policy
  std::string only_server;  // --server S with -c
  std::string policy_path;
  std::vector<std::string> command;
  std::string upstream_url;
  std::vector<std::string> headers;
  std::string upstream_ca;
  std::string server_name;
  std::string state;
  bool json = false;
  double timeout_s = 60;
};

int ToolsCommand(const ToolsOptions& options);

}  // namespace tw::app
