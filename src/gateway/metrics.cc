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

// Upper bounds in seconds. Decisions take microseconds (more with a SQLite charge or audit
// write); calls take whatever the server takes.
constexpr double kDecisionBuckets[] = {0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005,
                                       0.001,   0.0025,   0.005,   0.01,   0.025,   0.1};
constexpr double kCallBuckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                   0.5,   1,      2.5,   5,    10,    30,   60};

template <size_t N>
void Observe(std::map<std::string, Metrics::Histogram>& hs, const std::string& server,
             const double (&bounds)[N], double seconds) {
  auto& h = hs[server];
  if (h.counts.empty()) h.counts.assign(N + 1, 0);
  size_t i = 0;
  while (i < N && seconds > bounds[i]) ++i;
  ++h.counts[i];
  h.sum += seconds;
  ++h.count;
}

template <size_t N>
void RenderHistograms(std::ostringstream& os, const char* name, const char* help,
                      const std::map<std::string, Metrics::Histogram>& hs, const double (&bounds)[N]) {
  os << "# HELP " << name << " " << help << "\n# TYPE " << name << " histogram\n";
  for (const auto& [server, h] : hs) {
    uint64_t cumulative = 0;
    for (size_t i = 0; i <= N; ++i) {
      cumulative += h.counts[i];
      os << name << "_bucket{server=\"" << Label(server) << "\",le=\"";
      if (i < N) {
        os << bounds[i];
      } else {
        os << "+Inf";
      }
      os << "\"} " << cumulative << "\n";
    }
    os << name << "_sum{server=\"" << Label(server) << "\"} " << h.sum << "\n"
       << name << "_count{server=\"" << Label(server) << "\"} " << h.count << "\n";
  }
}

}  // namespace

void Metrics::ObserveDecision(const std::string& server, double seconds) {
  std::lock_guard lock(mu_);
  Observe(decision_latency_, server, kDecisionBuckets, seconds);
}

void Metrics::ObserveCall(const std::string& server, double seconds) {
  std::lock_guard lock(mu_);
  Observe(call_latency_, server, kCallBuckets, seconds);
}

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
  RenderHistograms(os, "toolwarden_decision_duration_seconds",
                   "Time to decide a tools/call (policy, pins, counters, audit write).",
                   decision_latency_, kDecisionBuckets);
  RenderHistograms(os, "toolwarden_call_duration_seconds",
                   "Time from the decision to the server's answer, for forwarded calls.",
                   call_latency_, kCallBuckets);
  for (const auto& [name, help, gauge, type] : gauges_) {
    os << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n"
       << name << " " << gauge() << "\n";
  }
  return os.str();
}

}  // namespace tw::gateway
