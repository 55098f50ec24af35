// The enforcement oracle: random sequences of what agents send — requests, notifications,
// look-alike names, inexact numbers, duplicate ids, cancels, answers to requests nobody made —
// across concurrent sessions of different grants, through the three shapes the gateway runs:
// one session on its own server (`run`, `isolation: session`), sessions of several grants
// sharing one server process (UpstreamHub), and a grant's aggregate of two servers (`/mcp`).
// The servers are scripted: they execute whatever reaches them, emit log messages and
// resource updates of their own, and ask the client things, on the stream of a request or not.
//
// After every sequence two properties must hold:
//   1. every tools/call a server received has exactly one `allow` audit record, of the grant
//      and session that sent it, with the digest of the arguments the server got;
//   2. every message an agent received belongs to its own session: answers to ids it sent,
//      nothing that carries another session's mark.
//
// TW_ORACLE_SEED=N replays one sequence (its seed is printed on failure); TW_ORACLE_SEQUENCES
// sets how many run (default 2000).
#include <gtest/gtest.h>

#include <cstdlib>
#include <deque>
#include <filesystem>
#include <map>
#include <random>
#include <set>

#include <spdlog/spdlog.h>

#include "audit/audit.h"
#include "common/canonical_json.h"
#include "common/random.h"
#include "gateway/aggregate_session.h"
#include "gateway/session.h"
#include "gateway/shared_upstream.h"
#include "policy/loader.h"
#include "testing/fake_clock.h"

namespace tw::gateway {
namespace {

using jsonrpc::Message;

// A server that runs whatever arrives and records it. Answers are queued and delivered when the
// sequence says so (in any order); it also speaks on its own.
class ScriptedServer : public Upstream {
 public:
  void Start(Events events) override { events_ = std::move(events); }
  void Send(Message msg) override {
    if (msg.IsRequest() && msg.method == "tools/call") calls.push_back(msg);
    if (msg.IsNotification() && msg.method == "tools/call") notified_calls.push_back(msg);
    if (msg.IsRequest()) queue.push_back(std::move(msg));
  }
  void Close() override { closed = true; }

  // Answers the oldest (or a random) queued request; may first emit things of its own.
  void Step(std::mt19937_64& rng) {
    if (closed || !events_.on_message) return;
    if (queue.empty()) {
      // Unprompted: a log line, a resource update, a list change.
      switch (rng() % 3) {
        case 0:
          Emit(jsonrpc::MakeNotification("notifications/message",
                                         json::object{{"level", "error"}, {"data", "unprompted"}}),
               std::nullopt);
          break;
        case 1:
          Emit(jsonrpc::MakeNotification("notifications/resources/updated",
                                         json::object{{"uri", "test://r/" + std::to_string(rng() % 3)}}),
               std::nullopt);
          break;
        default:
          Emit(jsonrpc::MakeNotification("notifications/tools/list_changed", nullptr), std::nullopt);
      }
      return;
    }
    const size_t i = rng() % queue.size();
    Message req = std::move(queue[i]);
    queue.erase(queue.begin() + static_cast<long>(i));
    const bool related = rng() % 2 == 0;  // an HTTP server says which stream; stdio cannot
    const std::optional<json::value> rel = related ? std::optional<json::value>(req.id) : std::nullopt;
    std::string mark;
    if (const json::object* p = req.params.if_object()) {
      if (const json::value* a = p->if_contains("arguments"); a && a->is_object()) {
        if (const json::value* m = a->as_object().if_contains("mark"); m && m->is_string()) {
          mark = std::string(m->get_string());
        }
      }
    }
    if (!mark.empty()) {
      // Speaks about the call while serving it: whoever gets this must be its caller.
      Emit(jsonrpc::MakeNotification("notifications/message",
                                     json::object{{"level", "info"}, {"data", "about " + mark}}),
           rel);
      if (rng() % 4 == 0) {
        Emit(jsonrpc::MakeRequest(json::value("srv-" + std::to_string(next_++)),
                                  "sampling/createMessage",
                                  json::object{{"messages", json::array{}}, {"note", "for " + mark}}),
             rel);
      }
    }
    json::value result;
    if (req.method == "initialize") {
      result = json::object{{"protocolVersion", "2025-06-18"},
                            {"capabilities", json::object{{"tools", json::object{}}}},
                            {"serverInfo", json::object{{"name", "scripted"}, {"version", "1"}}}};
    } else if (req.method == "tools/list") {
      result = json::parse(
          R"({"tools":[{"name":"echo","inputSchema":{"type":"object","properties":{"text":{"type":"string"},"mark":{"type":"string"}},"required":["mark"]}},)"
          R"({"name":"pay","inputSchema":{"type":"object","properties":{"amount":{"type":"number"},"mark":{"type":"string"}}}},)"
          R"({"name":"secret"}]})");
    } else if (req.method == "tools/call") {
      result = json::object{{"content", json::array{json::object{{"type", "text"}, {"text", "done " + mark}}}}};
    } else {
      result = json::object{};
    }
    Emit(jsonrpc::MakeResponse(req.id, std::move(result)), std::nullopt);
  }

  void Emit(Message m, std::optional<json::value> related) {
    // What a transport hands over is parsed from bytes: parse it the same way.
    m = jsonrpc::Parse(jsonrpc::Serialize(m)).items.at(0).value();
    events_.on_message(std::move(m), std::move(related));
  }

  std::vector<Message> calls;           // tools/call requests received
  std::vector<Message> notified_calls;  // tools/call notifications received (never allowed)
  std::deque<Message> queue;
  bool closed = false;

 private:
  Events events_;
  int next_ = 1;
};

// What one agent's session received.
class AgentSink : public ClientSink {
 public:
  void Deliver(const Message& msg, const std::optional<json::value>&) override {
    received.push_back(jsonrpc::Serialize(msg));
    if (msg.IsResponse()) answered_ids.push_back(jsonrpc::IdKey(msg.id));
  }
  std::vector<std::string> received;
  std::vector<std::string> answered_ids;
};

struct Agent {
  std::string grant;
  std::string session_id;
  std::unique_ptr<AgentSink> sink = std::make_unique<AgentSink>();
  std::unique_ptr<McpSession> session;
  std::set<std::string> sent_ids;  // IdKey of every request id it sent
  std::string mark;                // in every call's arguments: "<session>"
  int next_id = 1;
  bool aggregate = false;
};

class OracleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // A real SQLite file; in memory-backed /dev/shm where there is one, since every record of
    // thousands of sequences is a commit.
    const std::filesystem::path dir = std::filesystem::is_directory("/dev/shm")
                                          ? std::filesystem::path("/dev/shm")
                                          : std::filesystem::temp_directory_path();
    path_ = dir / ("tw-oracle-" + RandomHex(8) + ".db");
    spec_ = "sqlite:" + path_.string();
    auto log = audit::OpenAuditLog(spec_, "");
    ASSERT_TRUE(log) << log.error().message();
    audit_ = std::move(*log);
    auto compiled = policy::CompilePolicy(
        R"({"version":"1","default":"allow","hide":["secret"],)"
        R"("tools":{"pay":{"deny_if":[{"path":"args.amount","op":"gt","value":100}]}}})",
        "p.json", policy::FileFormat::kJson);
    ASSERT_TRUE(compiled.policy);
    policy_ = compiled.policy;
  }
  void TearDown() override {
    audit_.reset();
    for (auto suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path_.string() + suffix);
  }

  // One sequence; returns a description of the first violation, or "".
  std::string RunSequence(uint64_t seed);

  std::filesystem::path path_;
  std::string spec_;
  std::unique_ptr<audit::AuditLog> audit_;
  std::shared_ptr<const policy::Policy> policy_;
};

std::string RandomName(std::mt19937_64& rng) {
  static const char* kNames[] = {"echo", "pay", "secret", "Echo", "echo ", "ech\u200Bo", "pay\t",
                                 "nosuch", "PAY", "echo\u00AD"};
  return kNames[rng() % std::size(kNames)];
}

std::string OracleTest::RunSequence(uint64_t seed) {
  std::mt19937_64 rng(seed);
  testing::FakeClock clock;
  auto store = limits::MakeMemoryStore();
  // One catalog and guard per server, as `serve` builds them.
  struct Server {
    std::string name;
    std::unique_ptr<ToolCatalog> catalog;
    std::unique_ptr<ToolCallGuard> guard;
    std::vector<ScriptedServer*> processes;
    std::shared_ptr<UpstreamHub> hub;
  };
  std::vector<Server> servers;
  for (const char* name : {"alpha", "beta"}) {
    Server s;
    s.name = name;
    s.catalog = std::make_unique<ToolCatalog>(name);
    s.guard = std::make_unique<ToolCallGuard>(GuardDeps{.policies = [this] { return policy_; },
                                                        .counters = store.get(),
                                                        .clock = &clock,
                                                        .server = name,
                                                        .catalog = s.catalog.get(),
                                                        .audit = audit_.get(),
                                                        .arguments = *catalog::ArgumentRedactor::Make(catalog::ArgumentsKept::kFull, {})});
    servers.push_back(std::move(s));
  }
  std::vector<std::function<void()>> posted;
  auto post = [&posted](int64_t, std::function<void()> fn) { posted.push_back(std::move(fn)); };
  const bool shared = rng() % 2 == 0;  // shared processes (hub) or one per session
  std::vector<std::unique_ptr<ScriptedServer>> owned;
  auto connect = [&](Server& s) -> std::unique_ptr<Upstream> {
    if (shared) {
      if (!s.hub) {
        auto proc = std::make_unique<ScriptedServer>();
        s.processes.push_back(proc.get());
        s.hub = std::make_shared<UpstreamHub>(s.name, std::move(proc), post);
      }
      return s.hub->NewChannel();
    }
    auto proc = std::make_unique<ScriptedServer>();
    s.processes.push_back(proc.get());
    return proc;
  };

  std::vector<Agent> agents(2 + rng() % 3);
  for (size_t i = 0; i < agents.size(); ++i) {
    Agent& a = agents[i];
    a.grant = "grant-" + std::to_string(i % 2);
    a.session_id = "s" + std::to_string(seed) + "-" + std::to_string(i);
    a.mark = "mark-" + a.session_id;
    a.aggregate = rng() % 3 == 0;
    if (a.aggregate) {
      std::vector<AggregateMember> legs;
      for (Server& s : servers) legs.push_back({s.name, connect(s), s.guard.get()});
      a.session = std::make_unique<AggregateSession>(a.session_id, std::move(legs), *a.sink, a.grant,
                                                     post);
    } else {
      Server& s = servers[rng() % servers.size()];
      a.session = std::make_unique<Session>(a.session_id, connect(s), *s.guard, *a.sink, a.grant);
    }
    a.session->Start();
  }
  auto send = [](Agent& a, const std::string& text) {
    auto in = jsonrpc::Parse(text);
    for (auto& item : in.items) {
      if (!item) continue;
      if (item->IsRequest()) a.sent_ids.insert(jsonrpc::IdKey(item->id));
      a.session->HandleClientMessage(std::move(*item));
    }
  };
  auto tool = [&](Agent& a) {
    const std::string name = RandomName(rng);
    return a.aggregate ? std::string(rng() % 2 ? "alpha" : "beta") + "__" + name : name;
  };
  for (Agent& a : agents) {
    send(a, R"({"jsonrpc":"2.0","id":"init","method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"o","version":"1"}}})");
  }
  const int steps = 20 + static_cast<int>(rng() % 40);
  for (int step = 0; step < steps; ++step) {
    Agent& a = agents[rng() % agents.size()];
    const std::string id = std::to_string(rng() % 4 == 0 ? a.next_id : ++a.next_id);  // duplicates
    const std::string mark = json::serialize(json::string(a.mark));
    std::string amount = std::to_string(rng() % 200);
    if (rng() % 8 == 0) amount = "100.0000000000000001";
    if (rng() % 16 == 0) amount = "1e999";
    switch (rng() % 12) {
      case 0:
      case 1:
      case 2:
        send(a, R"({"jsonrpc":"2.0","id":)" + id + R"(,"method":"tools/call","params":{"name":)" +
                    json::serialize(json::string(tool(a))) + R"(,"arguments":{"text":"t","n":)" +
                    std::to_string(step) + R"(,"amount":)" + amount + R"(,"mark":)" + mark + "}}}");
        break;
      case 3:  // a call without an id
        send(a, R"({"jsonrpc":"2.0","method":"tools/call","params":{"name":)" +
                    json::serialize(json::string(tool(a))) + R"(,"arguments":{"mark":)" + mark + "}}}");
        break;
      case 4:
        send(a, R"({"jsonrpc":"2.0","id":)" + id + R"(,"method":"tools/list"})");
        break;
      case 5:
        send(a, R"({"jsonrpc":"2.0","id":)" + id + R"(,"method":"resources/subscribe","params":{"uri":"test://r/)" +
                    std::to_string(rng() % 3) + R"("}})");
        break;
      case 6:
        send(a, R"({"jsonrpc":"2.0","id":)" + id + R"(,"method":"logging/setLevel","params":{"level":"debug"}})");
        break;
      case 7:  // methods nobody defined, requests as notifications
        send(a, rng() % 2 ? R"({"jsonrpc":"2.0","id":)" + id + R"(,"method":"tools/execute","params":{}})"
                          : std::string(R"({"jsonrpc":"2.0","method":"resources/read","params":{"uri":"x"}})"));
        break;
      case 8:
        send(a, R"({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":)" +
                    std::to_string(rng() % (a.next_id + 1)) + "}}");
        break;
      case 9:  // progress and answers for what another session was asked
        send(a, R"({"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":)" +
                    std::to_string(rng() % 5) + R"(,"progress":1}})");
        send(a, R"({"jsonrpc":"2.0","id":)" + std::to_string(rng() % 5) + R"(,"result":{}})");
        break;
      default: {
        // The servers work: answer something, or speak up.
        for (Server& s : servers) {
          for (ScriptedServer* p : s.processes) p->Step(rng);
        }
        break;
      }
    }
    auto fns = std::move(posted);
    posted.clear();
    for (auto& fn : fns) fn();
  }
  // Drain: let every server answer what it holds.
  for (int round = 0; round < 50; ++round) {
    for (Server& s : servers) {
      for (ScriptedServer* p : s.processes) {
        if (!p->queue.empty()) p->Step(rng);
      }
    }
    auto fns = std::move(posted);
    posted.clear();
    for (auto& fn : fns) fn();
  }

  // Property 1: what the servers ran was decided, for whom it was sent.
  audit_->Flush();
  std::map<std::string, std::string> session_grant;
  for (const Agent& a : agents) session_grant[a.session_id] = a.grant;
  for (Server& s : servers) {
    // This sequence's records are the newest (a sequence decides at most a few dozen calls).
    audit::Query q;
    q.server = s.name;
    q.decision = "allow";
    q.limit = 1000;
    auto records = audit::QueryAudit(spec_, q);
    if (!records) return "audit query failed";
    for (ScriptedServer* p : s.processes) {
      if (!p->notified_calls.empty()) return "server " + s.name + " received a tools/call notification";
      for (const Message& call : p->calls) {
        const json::object& params = call.params.as_object();
        const json::object args = params.at("arguments").as_object();
        const std::string mark(args.at("mark").as_string());
        const std::string session = mark.substr(5);
        // Every call's arguments are unique (a step number), so its record is too — unless the
        // agent sent the same call again with a reused id, which is recorded once per decision.
        int matches = 0;
        const std::string digest = Sha256Hex(CanonicalJson(args));
        for (const audit::Record& r : *records) {
          if (r.args_digest != digest) continue;
          ++matches;
          if (r.session != session || r.grant != session_grant[session]) {
            return "a call of " + session + " was recorded for " + r.grant + "/" + r.session;
          }
          if (r.tool != std::string(params.at("name").as_string())) {
            return "server " + s.name + " ran " + json::serialize(params.at("name")) +
                   " but the record says " + r.tool;
          }
        }
        if (matches == 0) {
          return "server " + s.name + " ran an undecided call: " + jsonrpc::Serialize(call);
        }
      }
    }
  }
  // Property 2: each agent received only its own.
  for (const Agent& a : agents) {
    for (const std::string& text : a.sink->received) {
      for (const Agent& other : agents) {
        if (&other != &a && text.find(other.mark) != std::string::npos) {
          return a.session_id + " (" + a.grant + ") received another session's message: " + text;
        }
      }
      if (text.find("unprompted") != std::string::npos && shared) {
        return a.session_id + " received a shared server's unattributable log line: " + text;
      }
    }
    for (const std::string& id : a.sink->answered_ids) {
      if (id != "null" && !a.sent_ids.contains(id)) {
        return a.session_id + " received an answer to id " + id + ", which it never sent";
      }
    }
  }
  for (Agent& a : agents) a.session->Close();
  return "";
}

TEST_F(OracleTest, NothingUndecidedCrossesAndNothingOfOneAgentReachesAnother) {
  uint64_t first = std::random_device{}();
  int count = 2000;
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  count = 300;  // the sanitizer builds run the same sequences, fewer of them, several times slower
#endif
  if (const char* s = std::getenv("TW_ORACLE_SEED")) {
    first = std::strtoull(s, nullptr, 10);
    count = 1;
  }
  if (const char* n = std::getenv("TW_ORACLE_SEQUENCES")) count = std::atoi(n);
  // Thousands of refusals are logged by design: keep the test's output to what it found.
  const auto level = spdlog::get_level();
  spdlog::set_level(spdlog::level::critical);
  std::cout << "oracle: " << count << " sequences from seed " << first
            << " (TW_ORACLE_SEED=<seed> replays one)\n";
  for (int i = 0; i < count; ++i) {
    const uint64_t seed = first + static_cast<uint64_t>(i);
    const std::string violation = RunSequence(seed);
    if (!violation.empty()) {
      spdlog::set_level(level);
      FAIL() << violation << "\nreplay: TW_ORACLE_SEED=" << seed;
    }
  }
  spdlog::set_level(level);
}

}  // namespace
}  // namespace tw::gateway
