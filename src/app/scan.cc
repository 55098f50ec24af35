#include "app/scan.h"

#include "config/config.h"

#include <filesystem>
#include <fstream>
#include <iostream>

#include <boost/asio.hpp>
#include <spdlog/spdlog.h>

#include "app/cli_common.h"
#include "app/init_record.h"
#include "app/policy_test.h"
#include "catalog/scaffold.h"
#include "app/server_target.h"
#include "catalog/pin_store.h"
#include "limits/counter_store.h"
#include "policy/loader.h"

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
    // Beside a scaffold, the start of its tests (toolwarden test): never over the user's own.
    if (!o.summary) {
      auto cases = WriteStarterCases(o.output, scanned);
      if (!cases) {
        std::cerr << "toolwarden scan: " << cases.error().message() << "\n";
        return kExitUnavailable;
      }
      if (cases->empty()) {
        std::cerr << "toolwarden scan: " << CasesPathFor(o.output) << " exists; left as it is\n";
      } else {
        std::cerr << "toolwarden scan: starter test cases written to " << *cases << " (toolwarden test "
                  << o.output << " " << *cases << ")\n";
      }
    }
  }
  return kExitOk;
}

namespace {

// The inventory rows of one server: every tool with category, risk, pin state and how `policy`
// treats it.
Result<json::array> InventoryRows(const std::string& server, const ServerTarget& target,
                                  const policy::Policy& policy, catalog::PinStore* pins,
                                  std::chrono::milliseconds timeout) {
  auto listed = ListServerTools(target, timeout);
  if (!listed) return Fail(listed.error());
  json::array rows;
  for (const catalog::ScannedTool& t : catalog::ScanTools(listed->tools)) {
    const std::string name(t.definition.at("name").get_string());
    std::string pin_state = "unknown";
    if (pins) {
      auto pin = pins->Get(server, name);
      if (pin && !*pin) {
        pin_state = "new";
      } else if (pin) {
        const auto now = catalog::PinDefinition(t.definition);
        pin_state = (*pin)->pending_hash || (*pin)->hash != now.hash ? "changed" : "pinned";
      }
    }
    const policy::ToolStance stance =
        policy::StanceOf(policy, name, {catalog::CategoryName(t.classification.category),
                                        catalog::RiskName(t.classification.risk)});
    rows.push_back({{"server", server},
                    {"name", name},
                    {"category", catalog::CategoryName(t.classification.category)},
                    {"risk", catalog::RiskName(t.classification.risk)},
                    {"pin", pin_state},
                    {"decision", policy::StanceName(stance.stance)},
                    {"rule", stance.rule}});
  }
  return rows;
}

}  // namespace

int ToolsCommand(const ToolsOptions& o) {
  const auto timeout = std::chrono::milliseconds(static_cast<long>(o.timeout_s * 1000));
  json::array rows;
  int status = kExitOk;
  if (!o.config.empty()) {
    // Every configured server (or --server S), each under its own policy.
    auto c = config::LoadConfig(o.config);
    if (!c) {
      std::cerr << c.error().message() << "\n";
      return kExitInvalid;
    }
    if (!o.only_server.empty() && !c->servers.contains(o.only_server)) {
      std::cerr << "toolwarden tools: " << o.config << " has no server \"" << o.only_server << "\"\n";
      return kExitUsage;
    }
    std::unique_ptr<catalog::PinStore> pins;
    const std::string spec = !o.state.empty() ? o.state
                             : c->state.empty() ? limits::DefaultStateSpec()
                                                : c->state;
    if (auto p = catalog::OpenPinStore(spec)) pins = std::move(*p);
    for (const auto& [name, sc] : c->servers) {
      if (!o.only_server.empty() && name != o.only_server) continue;
      auto policy = policy::LoadPolicyFile(sc.policy_path);
      if (!policy) {
        std::cerr << policy.error().message() << "\n";
        status = kExitInvalid;
        continue;
      }
      ServerTarget target;
      target.command = sc.command;
      target.url = sc.url;
      for (const auto& [k, v] : sc.headers) target.headers.push_back(k + ": " + v);
      target.env = sc.env;
      auto server_rows = InventoryRows(name, target, **policy, pins.get(), timeout);
      if (!server_rows) {
        std::cerr << "toolwarden tools: " << name << ": " << server_rows.error().message() << "\n";
        status = kExitUnavailable;
        continue;
      }
      for (auto& r : *server_rows) rows.push_back(std::move(r));
    }
  } else {
    if (o.policy_path.empty() || o.upstream_url.empty() == o.command.empty()) {
      std::cerr << "toolwarden tools: give -c CONFIG, or -p POLICY and exactly one server: "
                   "-- COMMAND [ARGS...] or --upstream URL\n";
      return kExitUsage;
    }
    auto policy = policy::LoadPolicyFile(o.policy_path);
    if (!policy) {
      std::cerr << policy.error().message() << "\n";
      return kExitInvalid;
    }
    const std::string server =
        o.server_name.empty() ? DeriveServerName(o.command, o.upstream_url) : o.server_name;
    std::unique_ptr<catalog::PinStore> pins;
    if (auto p = catalog::OpenPinStore(o.state.empty() ? limits::DefaultStateSpec() : o.state)) {
      pins = std::move(*p);
    }
    auto server_rows = InventoryRows(
        server, ServerTarget{o.command, o.upstream_url, o.headers, o.upstream_ca, {}}, **policy,
        pins.get(), timeout);
    if (!server_rows) {
      std::cerr << "toolwarden tools: " << server << ": " << server_rows.error().message() << "\n";
      return server_rows.error().code() == ErrorCode::kInvalidArgument ? kExitUsage : kExitUnavailable;
    }
    rows = std::move(*server_rows);
  }
  if (o.json) {
    std::cout << json::serialize(rows) << "\n";
    return status;
  }
  size_t width = 4;
  for (const auto& r : rows) width = std::max(width, r.at("name").get_string().size());
  auto pad = [](std::string_view s, size_t w) {
    return std::string(s) + std::string(w > s.size() ? w - s.size() : 1, ' ');
  };
  const bool many = !o.config.empty();
  size_t server_width = 6;
  for (const auto& r : rows) server_width = std::max(server_width, r.at("server").get_string().size());
  if (many) std::cout << pad("SERVER", server_width + 2);
  std::cout << pad("TOOL", width + 2) << pad("CATEGORY", 13) << pad("RISK", 10) << pad("PIN", 9)
            << pad("DECISION", 13) << "RULE\n";
  for (const auto& r : rows) {
    auto s = [&](const char* k) { return std::string_view(r.at(k).get_string()); };
    if (many) std::cout << pad(s("server"), server_width + 2);
    std::cout << pad(s("name"), width + 2) << pad(s("category"), 13) << pad(s("risk"), 10)
              << pad(s("pin"), 9) << pad(s("decision"), 13) << s("rule") << "\n";
  }
  return status;
}

}  // namespace tw::app
