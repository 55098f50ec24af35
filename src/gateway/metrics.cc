#include "gateway/metrics.h"

#include <atomic>
#include <sstream>
#include <string_view>
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

using Histograms = std::map<std::string, Metrics::Histogram, std::less<>>;

template <size_t N>
void Observe(Histograms& hs, const std::string& server, const double (&bounds)[N], double seconds) {
  auto it = hs.find(server);
  if (it == hs.end()) it = hs.emplace(server, Metrics::Histogram{}).first;
  auto& h = it->second;
  if (h.counts.empty()) h.counts.assign(N + 1, 0);
  size_t i = 0;
  while (i < N && seconds > bounds[i]) ++i;
  ++h.counts[i];
  h.sum += seconds;
  ++h.count;
}

template <size_t N>
void RenderHistograms(std::ostringstream& os, const char* name, const char* help,
                      const Histograms& hs, const double (&bounds)[N]) {
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

void Add(Histograms& into, const Histograms& from) {
  for (const auto& [server, h] : from) {
    auto& sum = into[server];
    if (sum.counts.empty()) sum.counts.assign(h.counts.size(), 0);
    for (size_t i = 0; i < h.counts.size(); ++i) sum.counts[i] += h.counts[i];
    sum.sum += h.sum;
    sum.count += h.count;
  }
}

std::atomic<uint64_t> g_next_id{1};

}  // namespace

Metrics::Metrics() : id_(g_next_id.fetch_add(1, std::memory_order_relaxed)) {}
Metrics::~Metrics() = default;

Metrics::Shard& Metrics::Local() {
  // One cached shard per thread: the common case is one Metrics per process.
  thread_local uint64_t cached_id = 0;
  thread_local Shard* cached = nullptr;
  if (cached_id == id_) return *cached;
  std::lock_guard lock(mu_);
  Shard*& shard = by_thread_[std::this_thread::get_id()];
  if (!shard) shard = shards_.emplace_back(std::make_unique<Shard>()).get();
  cached_id = id_;
  cached = shard;
  return *shard;
}

void Metrics::ObserveDecision(const std::string& server, double seconds) {
  Shard& s = Local();
  std::lock_guard lock(s.mu);
  Observe(s.decision_latency, server, kDecisionBuckets, seconds);
}

void Metrics::ObserveCall(const std::string& server, double seconds) {
  Shard& s = Local();
  std::lock_guard lock(s.mu);
  Observe(s.call_latency, server, kCallBuckets, seconds);
}

namespace {
using Series3 = std::map<std::tuple<std::string, std::string, std::string>, uint64_t, std::less<>>;
void Count3(Series3& series, const std::string& a, const std::string& b, const std::string& c) {
  const auto key = std::make_tuple(std::string_view(a), std::string_view(b), std::string_view(c));
  auto it = series.find(key);
  if (it == series.end()) it = series.emplace(std::make_tuple(a, b, c), 0).first;
  ++it->second;
}
}  // namespace

void Metrics::CountDecision(const std::string& server, const std::string& tool,
                            const std::string& decision) {
  Shard& s = Local();
  std::lock_guard lock(s.mu);
  Count3(s.decisions, server, tool, decision);
}

void Metrics::CountShadow(const std::string& server, const std::string& tool,
                          const std::string& decision) {
  Shard& s = Local();
  std::lock_guard lock(s.mu);
  Count3(s.shadow, server, tool, decision);
}

void Metrics::CountOutcome(const std::string& server, const std::string& outcome) {
  Shard& s = Local();
  std::lock_guard lock(s.mu);
  auto it = s.outcomes.find(std::make_tuple(std::string_view(server), std::string_view(outcome)));
  if (it == s.outcomes.end()) it = s.outcomes.emplace(std::make_tuple(server, outcome), 0).first;
  ++it->second;
}

void Metrics::AddGauge(std::string name, std::string help, Gauge gauge, std::string type) {
  std::lock_guard lock(mu_);
  gauges_.emplace_back(std::move(name), std::move(help), std::move(gauge), std::move(type));
}

std::string Metrics::Render() const {
  // The shards added up, each locked only while it is read; the gauges called with no lock
  // held (they read the gateway, which may be counting meanwhile).
  std::map<std::tuple<std::string, std::string, std::string>, uint64_t> decisions, shadow;
  std::map<std::tuple<std::string, std::string>, uint64_t> outcomes;
  Histograms decision_latency, call_latency;
  std::vector<std::tuple<std::string, std::string, Gauge, std::string>> gauges;
  {
    std::lock_guard lock(mu_);
    for (const auto& shard : shards_) {
      std::lock_guard shard_lock(shard->mu);
      for (const auto& [key, n] : shard->decisions) decisions[key] += n;
      for (const auto& [key, n] : shard->shadow) shadow[key] += n;
      for (const auto& [key, n] : shard->outcomes) outcomes[key] += n;
      Add(decision_latency, shard->decision_latency);
      Add(call_latency, shard->call_latency);
    }
    gauges = gauges_;
  }
  std::ostringstream os;
  os << "# HELP toolwarden_tool_calls_total Decided tools/call requests.\n"
     << "# TYPE toolwarden_tool_calls_total counter\n";
  for (const auto& [key, n] : decisions) {
    const auto& [server, tool, decision] = key;
    os << "toolwarden_tool_calls_total{server=\"" << Label(server) << "\",tool=\"" << Label(tool)
       << "\",decision=\"" << Label(decision) << "\"} " << n << "\n";
  }
  if (!shadow.empty()) {
    os << "# HELP toolwarden_shadow_decisions_total What shadow policies would have decided "
          "(never enforced).\n"
       << "# TYPE toolwarden_shadow_decisions_total counter\n";
    for (const auto& [key, n] : shadow) {
      const auto& [server, tool, decision] = key;
      os << "toolwarden_shadow_decisions_total{server=\"" << Label(server) << "\",tool=\""
         << Label(tool) << "\",decision=\"" << Label(decision) << "\"} " << n << "\n";
    }
  }
  os << "# HELP toolwarden_call_outcomes_total How forwarded calls ended.\n"
     << "# TYPE toolwarden_call_outcomes_total counter\n";
  for (const auto& [key, n] : outcomes) {
    os << "toolwarden_call_outcomes_total{server=\"" << Label(std::get<0>(key)) << "\",outcome=\""
       << Label(std::get<1>(key)) << "\"} " << n << "\n";
  }
  RenderHistograms(os, "toolwarden_decision_duration_seconds",
                   "Time to decide a tools/call (policy, pins, counters, audit write).",
                   decision_latency, kDecisionBuckets);
  RenderHistograms(os, "toolwarden_call_duration_seconds",
                   "Time from the decision to the server's answer, for forwarded calls.",
                   call_latency, kCallBuckets);
  for (const auto& [name, help, gauge, type] : gauges) {
    os << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n"
       << name << " " << gauge() << "\n";
  }
  return os.str();
}

}  // namespace tw::gateway
