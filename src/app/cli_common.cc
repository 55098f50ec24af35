#include "app/cli_common.h"

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <optional>

#include "config/config.h"
#include "limits/counter_store.h"

namespace tw::app {

Result<std::pair<std::string, uint16_t>> ParseListen(const std::string& listen) {
  size_t colon = listen.rfind(':');
  if (colon == std::string::npos) {
    return Fail(Error::InvalidArgument("--listen \"" + listen + "\" must be HOST:PORT"));
  }
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  int port = -1;
  try {
    size_t used = 0;
    port = std::stoi(listen.substr(colon + 1), &used);
    if (used != listen.size() - colon - 1) port = -1;
  } catch (const std::exception&) {
  }
  if (port < 0 || port > 65535) {
    return Fail(Error::InvalidArgument("--listen \"" + listen + "\": invalid port"));
  }
  return std::make_pair(host, static_cast<uint16_t>(port));
}

std::string FormatTime(int64_t ms) {
  const std::time_t t = static_cast<std::time_t>(ms / 1000);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

Result<config::Config> LoadConfigForState(const std::string& config_path) {
  constexpr std::string_view kUnset = "\x01unset\x01";
  auto c = config::LoadConfig(config_path, [&](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    return v ? std::string(v) : std::string(kUnset);
  });
  if (!c) return c;
  if (c->state.find(kUnset) != std::string::npos) {
    return Fail(Error::InvalidArgument(config_path + ": state refers to an environment variable "
                                                     "that is not set"));
  }
  return c;
}

Result<std::string> ResolveState(const std::string& config_path, const std::string& state) {
  if (!state.empty()) return state;
  if (config_path.empty()) return limits::DefaultStateSpec();
  auto c = LoadConfigForState(config_path);
  if (!c) return Fail(c.error());
  return limits::StateSpecOrDefault(c->state);
}

void PrintTable(std::ostream& out, const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& row : rows) {
    if (width.size() < row.size()) width.resize(row.size(), 0);
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(width[i] - row[i].size() + 2, ' ');
    }
    out << line << "\n";
  }
}

Result<std::string> ResolveAuditStore(const std::string& config_path, const std::string& state) {
  if (!state.empty() || config_path.empty()) {
    return limits::AuditSpecFor(limits::StateSpecOrDefault(state), "");
  }
  auto c = LoadConfigForState(config_path);
  if (!c) return Fail(c.error());
  if (!c->audit_shared.empty()) return c->audit_shared;  // the fleet's trail
  return limits::AuditSpecFor(limits::StateSpecOrDefault(c->state), c->audit_store);
}

}  // namespace tw::app
