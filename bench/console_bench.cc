// What the web console's audit view costs on a large trail (Google Benchmark): one page of 50
// records (newest, and deep in the trail), a filtered page, the count the pager shows, and the
// chart's histogram, over an audit store of 100,000 records spread over a day. `make bench`
// runs it; the figures and the command are in docs/benchmarks.md.
// GCC 12 at -O3 reports impossible overlaps in std::string copies inlined here (-Wrestrict).
#pragma GCC diagnostic ignored "-Wrestrict"
#include <benchmark/benchmark.h>

#include <filesystem>

#include "audit/audit.h"
#include "common/random.h"

namespace tw {
namespace {

constexpr int kRecords = 100'000;
constexpr int64_t kStart = 1'800'000'000'000;
constexpr int64_t kDay = 86'400'000;

// a + b without operator+ (GCC 12 warns falsely on it with -O3 -Werror=restrict).
std::string Cat(std::string_view a, std::string_view b) {
  std::string s;
  s.reserve(a.size() + b.size());
  s.append(a).append(b);
  return s;
}

// Builds the store once per process.
const std::string& Store() {
  static const std::string spec = [] {
    const auto path = std::filesystem::temp_directory_path() / Cat(Cat("tw-console-bench-", RandomHex(6)), ".db");
    const std::string s = Cat("sqlite:", path.string());
    auto log = audit::OpenAuditLog(s, "");
    if (!log) std::abort();
    for (int i = 0; i < kRecords; ++i) {
      audit::Record r;
      r.id = audit::NewRecordId();
      r.ts_ms = kStart + static_cast<int64_t>(i) * kDay / kRecords;
      r.grant = Cat("agent-", std::to_string(i % 20));
      r.session = "s";
      r.server = i % 3 ? "github" : "stripe";
      r.tool = Cat("tool_", std::to_string(i % 200));
      r.decision = i % 10 == 0 ? "deny" : i % 97 == 0 ? "approval" : "allow";
      r.rule = Cat("tools.", r.tool);
      r.outcome = "ok";
      (*log)->Submit(std::move(r), nullptr, [](bool ok) {
        if (!ok) std::abort();
      });
    }
    (*log)->Flush();
    std::atexit([] {
      for (auto suffix : {"", "-wal", "-shm"}) std::filesystem::remove(Cat(Store().substr(7), suffix));
    });
    return s;
  }();
  return spec;
}

void BM_AuditNewestPage(benchmark::State& state) {
  audit::Query q;
  q.limit = 50;
  for (auto _ : state) benchmark::DoNotOptimize(audit::QueryAudit(Store(), q));
}
BENCHMARK(BM_AuditNewestPage)->Unit(benchmark::kMicrosecond);

void BM_AuditDeepPage(benchmark::State& state) {
  audit::Query q;
  q.limit = 50;
  q.offset = kRecords - 50;
  for (auto _ : state) benchmark::DoNotOptimize(audit::QueryAudit(Store(), q));
}
BENCHMARK(BM_AuditDeepPage)->Unit(benchmark::kMicrosecond);

void BM_AuditFilteredPage(benchmark::State& state) {
  audit::Query q;
  q.limit = 50;
  q.grant = "agent-7";
  q.decision = "deny";
  for (auto _ : state) benchmark::DoNotOptimize(audit::QueryAudit(Store(), q));
}
BENCHMARK(BM_AuditFilteredPage)->Unit(benchmark::kMicrosecond);

void BM_AuditCount(benchmark::State& state) {
  audit::Query q;
  for (auto _ : state) benchmark::DoNotOptimize(audit::CountAudit(Store(), q));
}
BENCHMARK(BM_AuditCount)->Unit(benchmark::kMicrosecond);

void BM_AuditLastHourCount(benchmark::State& state) {
  audit::Query q;
  q.since_ms = kStart + kDay - 3'600'000;
  for (auto _ : state) benchmark::DoNotOptimize(audit::CountAudit(Store(), q));
}
BENCHMARK(BM_AuditLastHourCount)->Unit(benchmark::kMicrosecond);

void BM_AuditHistogramDay(benchmark::State& state) {
  audit::Query q;
  q.since_ms = kStart;
  for (auto _ : state) benchmark::DoNotOptimize(audit::AuditHistogram(Store(), q, 15 * 60'000));
}
BENCHMARK(BM_AuditHistogramDay)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace tw

BENCHMARK_MAIN();
