// Metrics: counters the gateway keeps for /metrics (Prometheus text exposition format).
// Thread-safe. Each thread that counts (an event loop) counts into a shard of its own — a map
// lookup under a lock no other loop takes, with no allocation once a series exists — and
// Render adds the shards up, holding each one's lock only while it copies it. So loops never
// wait on each other to count, nor on a scrape of /metrics for longer than one copy.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

namespace tw::gateway {

class Metrics {
 public:
  Metrics();
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // One decided tools/call: decision is allow, deny or approval; rule names what decided.
  void CountDecision(const std::string& server, const std::string& tool, const std::string& decision);
  // What a shadow policy would have decided of one call (allow, deny or approval); never
  // enforced. Beside CountDecision's series of the same tool, the difference it would make.
  void CountShadow(const std::string& server, const std::string& tool, const std::string& decision);
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
  // What one thread counted. Keys compare with std::less<> so that a lookup by string_view
  // allocates nothing.
  struct Shard {
    std::mutex mu;  // this shard's thread, and Render while it copies
    std::map<std::tuple<std::string, std::string, std::string>, uint64_t, std::less<>> decisions;
    std::map<std::tuple<std::string, std::string, std::string>, uint64_t, std::less<>> shadow;
    std::map<std::tuple<std::string, std::string>, uint64_t, std::less<>> outcomes;
    std::map<std::string, Histogram, std::less<>> decision_latency;  // by server
    std::map<std::string, Histogram, std::less<>> call_latency;      // by server
  };
  // The calling thread's shard (created on its first count).
  Shard& Local();

  const uint64_t id_;  // never reused: a thread's cached shard is never another Metrics'
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<Shard>> shards_;                    // Guarded by mu_.
  std::unordered_map<std::thread::id, Shard*> by_thread_;         // Guarded by mu_.
  std::vector<std::tuple<std::string, std::string, Gauge, std::string>> gauges_;  // Guarded by mu_.
};

}  // namespace tw::gateway
