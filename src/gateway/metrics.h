// Metrics: counters the gateway keeps for /metrics (Prometheus text exposition format).
// Thread-safe; counting is a short critical section (a map lookup), off the I/O path's
// syscalls.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace tw::gateway {

class Metrics {
 public:
  // One decided tools/call: decision is allow, deny or approval; rule names what decided.
  void CountDecision(const std::string& server, const std::string& tool, const std::string& decision);
  // How a forwarded call ended: ok, tool_error, jsonrpc_error, transport_error, not_sent, …
  void CountOutcome(const std::string& server, const std::string& outcome);

  // Latency histograms: how long deciding took (policy, pins, counters, audit write), and how
  // long a forwarded call took from its decision to its answer (including any approval wait).
  void ObserveDecision(const std::string& server, double seconds);
  void ObserveCall(const std::string& server, double seconds);

  // Gauges read at render time (sessions, pending approvals, reloads).
  using Gauge = std::function<double()>;
  // `type` is the Prometheus type: "gauge", or "counter" for running totals.
  void AddGauge(std::string name, std::string help, Gauge gauge, std::string type = "gauge");

  std::string Render() const;

  struct Histogram {
    std::vector<uint64_t> counts;  // per bucket (not cumulative); the last is +Inf
    double sum = 0;
    uint64_t count = 0;
  };

 private:
  mutable std::mutex mu_;
  std::map<std::tuple<std::string, std::string, std::string>, uint64_t> decisions_;  // Guarded by mu_.
  std::map<std::pair<std::string, std::string>, uint64_t> outcomes_;               // Guarded by mu_.
  std::vector<std::tuple<std::string, std::string, Gauge, std::string>> gauges_;    // Guarded by mu_.
  std::map<std::string, Histogram> decision_latency_;  // by server. Guarded by mu_.
  std::map<std::string, Histogram> call_latency_;      // by server. Guarded by mu_.
};

}  // namespace tw::gateway
