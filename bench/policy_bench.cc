// Decision and counter micro-benchmarks (Google Benchmark). `make bench` runs them; the figures
// and the command are in docs/benchmarks.md.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <filesystem>

#include <sqlite3.h>

#include <string>

#include <spdlog/spdlog.h>

#include "audit/audit.h"
#include "auth/grant_store.h"
#include "common/random.h"
#include "common/clock.h"
#include "gateway/tool_call_guard.h"
#include "limits/counter_store.h"
#include "oauth/issuer.h"
#include "oauth/test_keys.h"
#include "policy/loader.h"
#include "policy/policy.h"
#include "testing/redis_server.h"

namespace tw {
namespace {

constexpr std::string_view kSeed =
    R"({"version":"1","default":"deny","tools":{"retry_session":{"limits":[{"counter":"retry_session_rate","window":"minute","max":10,"scope":"grant"}]}}})";

std::shared_ptr<const policy::Policy> Compile(const std::string& text) {
  auto r = policy::CompilePolicy(text, "bench", policy::FileFormat::kJson);
  if (!r.policy) {
    fprintf(stderr, "%s\n", policy::FormatDiagnostics("bench", r.diagnostics).c_str());
    std::abort();
  }
  return r.policy;
}

// A state file of a benchmark's own, and what SQLite and the grant store keep beside it.
std::string StateFile(const char* what) {
  return "/tmp/tw-bench-" + std::string(what) + "-" + std::to_string(getpid()) + ".db";
}
void RemoveStateFile(const std::string& path) {
  for (const char* s : {"", "-wal", "-shm", "-grants-epoch"}) std::remove((path + s).c_str());
}

mcp::ToolCall Call(std::string name, std::string_view args) {
  return mcp::ToolCall{std::move(name), json::parse(args).as_object()};
}

// (a) The seed policy: one exact tool with a rate limit; the decision plans its charge.
void BM_DecideSeed(benchmark::State& state) {
  auto p = Compile(std::string(kSeed));
  auto call = Call("retry_session", R"({"session_id":"123","from_task":"load"})");
  const policy::Identity id{"local", "s", {}};
  int64_t now = 1'700'000'000'000;
  for (auto _ : state) {
    auto d = policy::Evaluate(*p, call, id, ++now);
    benchmark::DoNotOptimize(d);
  }
}
BENCHMARK(BM_DecideSeed);

// (b) One tool with 50 rules: 25 regex require conditions and 25 deny_if conditions (regex,
// numeric, in), all evaluated because the call passes them all.
std::string FiftyRulePolicy() {
  std::string require, deny_if;
  for (int i = 0; i < 25; ++i) {
    if (i) require += ",", deny_if += ",";
    require += R"({"path":"args.branch","op":"regex","value":"^(feat|fix|chore)/[a-z0-9-]{1,)" +
               std::to_string(40 + i) + R"(}$"})";
    switch (i % 3) {
      case 0:
        deny_if += R"({"path":"args.message","op":"regex","value":"(?i)(drop\\s+table|rm\\s+-rf|secret)_)" +
                   std::to_string(i) + R"("})";
        break;
      case 1:
        deny_if += R"({"path":"args.size","op":"gt","value":)" + std::to_string(100000 + i) + "}";
        break;
      default:
        deny_if += R"({"path":"args.repo","op":"in","value":["prod-)" + std::to_string(i) +
                   R"(","billing","payroll"]})";
    }
  }
  return R"({"version":"1","default":"deny","tools":{"push_branch":{"require":[)" + require +
         R"(],"deny_if":[)" + deny_if + "]}}}";
}

void BM_DecideFiftyRegexRules(benchmark::State& state) {
  auto p = Compile(FiftyRulePolicy());
  auto call = Call("push_branch",
                   R"({"branch":"feat/faster-gateway","message":"Make the gateway faster","size":4096,"repo":"toolwarden"})");
  const policy::Identity id{"local", "s", {}};
  {
    auto d = policy::Evaluate(*p, call, id, 0);
    if (d.verdict != policy::Verdict::kAllow) std::abort();  // must evaluate all 50
  }
  for (auto _ : state) {
    auto d = policy::Evaluate(*p, call, id, 0);
    benchmark::DoNotOptimize(d);
  }
}
BENCHMARK(BM_DecideFiftyRegexRules);

// (c) Policies with N tools (exact names, each with a limit) plus a few globs: the decision
// must not grow with N.
void BM_DecideManyTools(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  // Names of one length whatever N, so that only the number of tools varies.
  auto name = [](int i) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "tool_%05d", i);
    return std::string(buf);
  };
  std::string tools = R"("delete_*":{"action":"deny"},"admin_*":{"action":"deny"})";
  for (int i = 0; i < n; ++i) {
    tools += ",\"" + name(i) + R"(":{"limits":[{"counter":")" + name(i) +
             R"(","window":"minute","max":100}]})";
  }
  auto p = Compile(R"({"version":"1","default":"deny","tools":{)" + tools + "}}");
  auto call = Call(name(n / 2), R"({"q":"x"})");
  const policy::Identity id{"local", "s", {}};
  for (auto _ : state) {
    auto d = policy::Evaluate(*p, call, id, 0);
    benchmark::DoNotOptimize(d);
  }
}
BENCHMARK(BM_DecideManyTools)->Arg(10)->Arg(1000)->Arg(10000);

// Counter charge, in memory: one atomic check-and-increment of one counter.
void BM_ChargeMemory(benchmark::State& state) {
  auto store = limits::MakeMemoryStore();
  const std::vector<limits::Charge> charge{
      {limits::CounterKey("", "retry_session_rate", "grant", "local", 1'700'000'000'000), 1,
       INT64_MAX, INT64_MAX}};
  for (auto _ : state) {
    auto r = store->TryCharge(charge, 1'700'000'000'000);
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(BM_ChargeMemory);

// Counter charge in SQLite (WAL, synchronous=NORMAL), for comparison: a transaction per call.
void BM_ChargeSqlite(benchmark::State& state) {
  const std::string path = StateFile("charge");
  auto store = std::move(*limits::OpenSqliteStore(path));
  const std::vector<limits::Charge> charge{{"k", 1, INT64_MAX, INT64_MAX}};
  for (auto _ : state) {
    auto r = store->TryCharge(charge, 1'700'000'000'000);
    benchmark::DoNotOptimize(r);
  }
  store.reset();
  RemoveStateFile(path);
}
BENCHMARK(BM_ChargeSqlite);

// Counter charge in Redis (a redis-server started here, loopback TCP): one EVALSHA round trip,
// what a gateway of a fleet pays per call against shared limits.
// A Redis counter store on a redis-server started for the benchmark, and a charge that always
// fits; `store` is null (the benchmark skipped) when redis-server is not installed.
struct RedisCharge {
  explicit RedisCharge(benchmark::State& state) {
    if (!server.started()) {
      state.SkipWithError("redis-server is not installed");
      return;
    }
    store = std::move(*limits::OpenRedisStore(server.url()));
  }
  tw::testing::RedisServer server;
  std::unique_ptr<limits::CounterStore> store;
  static constexpr int64_t kTop = (int64_t{1} << 53) - 1;
  const std::vector<limits::Charge> charge{{"k", 1, kTop, kTop}};
};

void BM_ChargeRedis(benchmark::State& state) {
  RedisCharge redis(state);
  if (!redis.store) return;
  auto& store = redis.store;
  const auto& charge = redis.charge;
  for (auto _ : state) {
    auto r = store->TryCharge(charge, 1'700'000'000'000);
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(BM_ChargeRedis);

// The same charge's latency as a caller sees it (loopback): p50 and p99 in microseconds, from
// every iteration's own clock (the target: p50 <= 100 us).
void BM_ChargeRedisLatency(benchmark::State& state) {
  RedisCharge redis(state);
  if (!redis.store) return;
  auto& store = redis.store;
  const auto& charge = redis.charge;
  std::vector<double> us;
  us.reserve(1 << 20);
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    auto r = store->TryCharge(charge, 1'700'000'000'000);
    benchmark::DoNotOptimize(r);
    us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(us.begin(), us.end());
  state.counters["p50_us"] = us[us.size() / 2];
  state.counters["p99_us"] = us[us.size() * 99 / 100];
}
BENCHMARK(BM_ChargeRedisLatency);

// What one call's record costs on disk (docs/benchmarks.md, "Audit retention"): 100,000
// records shaped as `serve` writes them for the realistic policy, file size after a truncating
// checkpoint, divided by the count. Reported as bytes_per_record (time: irrelevant).
void BM_AuditBytesPerRecord(benchmark::State& state) {
  for (auto _ : state) {
    const std::string path = StateFile("audit-size");
    {
      auto log = std::move(*audit::OpenAuditLog("sqlite:" + path, "", audit::RetentionOptions{.min_free_bytes = 0}));
      for (int i = 0; i < 100'000; ++i) {
        audit::Record r;
        r.id = audit::NewRecordId();
        r.ts_ms = 1'765'000'000'000 + i;
        r.grant = "ci-runner";
        r.session = RandomHex(16);
        r.server = "github";
        r.tool = "create_issue";
        r.decision = "allow";
        r.rule = "tools.create_issue";
        r.arg_keys = {"owner", "repo", "title", "body"};
        r.args_digest = RandomHex(32);
        r.policy_version = "3f9a0c1b2d4e5f60";
        r.outcome = "ok";
        r.latency_ms = 42;
        r.tool_class = "Write/Medium";
        if (state.range(0) == 1) {
          // audit.arguments: redacted (the default) of a typical create_issue call.
          r.args = json::object{{"owner", "acme"}, {"repo", "payments-api"},
                                {"title", "Flaky test in CI #" + std::to_string(i)},
                                {"body", "The integration suite fails about once in twenty runs on "
                                         "the refund path; logs attached to the run."}};
        }
        log->Submit(std::move(r), {}, {});
      }
      log->Flush();
    }
    sqlite3* db = nullptr;
    sqlite3_open(path.c_str(), &db);
    sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_TRUNCATE, nullptr, nullptr);
    sqlite3_close(db);
    state.counters["bytes_per_record"] =
        static_cast<double>(std::filesystem::file_size(path)) / 100'000.0;
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);
  }
}
// Arg 0: keys and digest only (audit.arguments: none); 1: with the argument values.
BENCHMARK(BM_AuditBytesPerRecord)->Arg(0)->Arg(1)->Iterations(1)->Unit(benchmark::kMillisecond);

// The whole guard for the seed policy with the memory store: evaluate, build the key, charge.
void BM_GuardSeedMemory(benchmark::State& state) {
  spdlog::set_level(spdlog::level::off);  // the guard logs each decision
  auto p = Compile(std::string(kSeed));
  auto store = limits::MakeMemoryStore();
  SystemClock clock;
  // A limit far above what the loop reaches, so every iteration is an admitted call.
  auto big = Compile(
      R"({"version":"1","default":"deny","tools":{"retry_session":{"limits":[{"counter":"retry_session_rate","window":"minute","max":1000000000000,"scope":"grant"}]}}})");
  gateway::ToolCallGuard guard([&] { return big; }, *store, clock);
  auto call = Call("retry_session", R"({"session_id":"123"})");
  const policy::Identity id{"local", "s", {}};
  for (auto _ : state) {
    auto out = guard.Check(call, id);
    benchmark::DoNotOptimize(out);
  }
}
BENCHMARK(BM_GuardSeedMemory);

// Authenticating one request of `serve`: a grant token looked up in a SQLite state file with
// 100 grants (what every MCP request of `serve` pays before it is routed).
void BM_AuthenticateSqlite(benchmark::State& state) {
  const std::string path = StateFile("auth");
  auto store = std::move(*auth::OpenGrantStore("sqlite:" + path));
  std::string token;
  for (int i = 0; i < 100; ++i) {
    auth::Grant g;
    g.name = "agent-" + std::to_string(i);
    g.servers = {"github", "stripe"};
    token = *store->Create(g, 1'700'000'000'000);
  }
  for (auto _ : state) {
    auto r = store->Authenticate(token, 1'700'000'000'000);
    benchmark::DoNotOptimize(r);
  }
  store.reset();
  RemoveStateFile(path);
}
BENCHMARK(BM_AuthenticateSqlite);

// An identity provider's JWT access token (auth.oidc): its signature checked against the
// provider's key (Arg 0: RS256 2048-bit, 1: ES256), and the same token again as a request
// after the first pays it — remembered by its SHA-256 until it expires (Arg 2).
void BM_AuthenticateJwt(benchmark::State& state) {
  const char* alg = state.range(0) == 1 ? "ES256" : "RS256";
  oauth::TestKey key = oauth::TestKey::Make(alg, "k1");
  auto set = oauth::KeySet::Parse(json::serialize(json::object{{"keys", json::array{key.Jwk()}}}));
  const int64_t now_s = 1'700'000'000;
  const std::string token = key.Sign(json::object{{"iss", "https://idp.example.com"}, {"aud", "https://gw.example.com/mcp"},
                                                  {"sub", "alice@example.com"}, {"groups", json::array{"sre", "platform"}},
                                                  {"scope", "mcp"}, {"exp", now_s + 3600}, {"iat", now_s}});
  oauth::IssuerOptions o;
  o.issuer = "https://idp.example.com";
  o.audiences = {"https://gw.example.com/mcp"};
  auto keys = oauth::KeySet::Parse(json::serialize(json::object{{"keys", json::array{key.Jwk()}}}));
  oauth::TrustedIssuer issuer(o, std::move(*set));
  for (auto _ : state) {
    if (state.range(0) == 2) {
      auto p = issuer.Authenticate(token, now_s * 1000);
      benchmark::DoNotOptimize(p);
    } else {
      oauth::Verified v = oauth::Verify(token, *keys, {o.issuer, o.audiences, now_s, 60});
      benchmark::DoNotOptimize(v);
    }
  }
  state.SetLabel(state.range(0) == 2 ? "remembered" : alg);
}
BENCHMARK(BM_AuthenticateJwt)->Arg(0)->Arg(1)->Arg(2);

}  // namespace
}  // namespace tw

BENCHMARK_MAIN();
