#include "gateway/metrics.h"

#include <sstream>
#include <tuple>

namespace tw::gateway {

namespace {

// A label value with \, " and newline escaped.
std::string Label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}

}  // namespace

void Metrics::CountDecision(const std::string& server, const std::string& tool,
                            const std::string& decision) {
  std::lock_guard lock(mu_);
  ++decisions_[{server, tool, decision}];
}

void Metrics::CountOutcome(const std::string& server, const std::string& outcome) {
  std::lock_guard lock(mu_);
  ++outcomes_[{server, outcome}];
}

void Metrics::AddGauge(std::string name, std::string help, Gauge gauge, std::string type) {
  std::lock_guard lock(mu_);
  gauges_.emplace_back(std::move(name), std::move(help), std::move(gauge), std::move(type));
}

std::string Metrics::Render() const {
  std::lock_guard lock(mu_);
  std::ostringstream os;
  os << "# HELP toolwarden_tool_calls_total Decided tools/call requests.\n"
     << "# TYPE toolwarden_tool_calls_total counter\n";
  for (const auto& [key, n] : decisions_) {
    const auto& [server, tool, decision] = key;
    os << "toolwarden_tool_calls_total{server=\"" << Label(server) << "\",tool=\"" << Label(tool)
       << "\",decision=\"" << Label(decision) << "\"} " << n << "\n";
  }
  os << "# HELP toolwarden_call_outcomes_total How forwarded calls ended.\n"
     << "# TYPE toolwarden_call_outcomes_total counter\n";
  for (const auto& [key, n] : outcomes_) {
    os << "toolwarden_call_outcomes_total{server=\"" << Label(key.first) << "\",outcome=\""
       << Label(key.second) << "\"} " << n << "\n";
  }
  for (const auto& [name, help, gauge, type] : gauges_) {
    os << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n"
       << name << " " << gauge() << "\n";
  }
  return os.str();
}

}  // namespace tw::gateway
