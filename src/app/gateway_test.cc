// One composition root: `run`'s flags (RunConfig) and the equivalent config file give an equal
// Config, and gateways built from each make the same decisions, write the same audit records
// and count the same metrics for one scripted session against a real MCP server (the bundled
// demo server, as a child process).
#include "app/gateway.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "app/run.h"
#include "jsonrpc/message.h"
#include "testing/fake_clock.h"

namespace tw::app {
namespace {

namespace fs = std::filesystem;

constexpr const char* kPolicy = R"(version: "1"
default: deny
hide: [read_secrets]
tools:
  echo: {}
  add:
    limits: [{counter: adds, window: minute, max: 2}]
  delete_*:
    action: deny
    reason: Deleting files is not permitted for agents
)";

class Sink : public gateway::ClientSink {
 public:
  void Deliver(const jsonrpc::Message& msg, const std::optional<boost::json::value>&) override {
    received.push_back(jsonrpc::Serialize(msg));
  }
  std::vector<std::string> received;
};

// What one scripted session through a gateway built from `config` leaves behind.
struct Trace {
  std::vector<std::string> answers;  // what the client received, in order
  std::vector<std::string> records;  // the audit trail, oldest first, without ids and times
  std::string metrics;               // /metrics without the timing histograms
};

Trace Script(const config::Config& config) {
  Trace t;
  boost::asio::io_context io(1);
  testing::FakeClock clock;
  auto gw = Gateway::Open(io, config, clock);
  EXPECT_TRUE(gw.has_value()) << gw.error().message();
  if (!gw) return t;
  auto maker = (*gw)->MakeSession({"session-1", "", ""});
  EXPECT_TRUE(maker.has_value()) << maker.error().message();
  if (!maker) return t;
  Sink sink;
  auto session = (*maker)(sink);
  session->Start();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  auto send = [&](std::string_view line, bool answered) {
    jsonrpc::Incoming in = jsonrpc::Parse(line);
    const size_t before = sink.received.size();
    session->HandleClientMessage(std::move(*in.items.at(0)));
    while (answered && sink.received.size() == before && std::chrono::steady_clock::now() < deadline) {
      io.run_one_for(std::chrono::milliseconds(50));
    }
    EXPECT_TRUE(!answered || sink.received.size() > before) << "no answer to " << line;
  };
  send(R"({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18",
       "capabilities":{},"clientInfo":{"name":"gateway_test","version":"1"}}})", true);
  send(R"({"jsonrpc":"2.0","method":"notifications/initialized"})", false);
  send(R"({"jsonrpc":"2.0","id":2,"method":"tools/list"})", true);
  int id = 3;
  for (const char* call : {
           R"("name":"echo","arguments":{"message":"hi"})",  // allowed
           R"("name":"add","arguments":{"a":1,"b":2})",      // allowed, charged
           R"("name":"add","arguments":{"a":3,"b":4})",      // allowed, charged
           R"("name":"add","arguments":{"a":5,"b":6})",      // over the limit
           R"("name":"delete_all_files","arguments":{})",    // a deny rule
           R"("name":"read_secrets","arguments":{})",        // hidden
           R"("name":"Echo","arguments":{"message":"hi"})",  // a look-alike the server never listed
       }) {
    send(R"({"jsonrpc":"2.0","id":)" + std::to_string(id++) + R"(,"method":"tools/call","params":{)" +
             call + "}}",
         true);
  }
  session->Close();
  (*gw)->Audit().Flush();
  t.answers = sink.received;
  audit::Query q;
  q.limit = 1000;
  auto records = (*gw)->QueryAudit(q);
  EXPECT_TRUE(records.has_value());
  for (auto it = records->rbegin(); it != records->rend(); ++it) {
    t.records.push_back(it->grant + " " + it->server + " " + it->tool + " " + it->decision + " " +
                        it->rule + " " + it->reason + " " + it->outcome);
  }
  std::istringstream lines((*gw)->metrics().Render());
  for (std::string line; std::getline(lines, line);) {
    if (line.find("_duration_seconds") != std::string::npos && line.find("_count") == std::string::npos) continue;
    // What the maintenance thread samples when it gets to it (the file's size, the disk's free
    // space) says nothing about the gateway's build, and its timing differs between two runs.
    if (line.starts_with("toolwarden_audit_file_bytes") || line.starts_with("toolwarden_audit_free_bytes")) {
      continue;
    }
    t.metrics += line + "\n";
  }
  session.reset();
  (*gw)->Stop();
  io.run_for(std::chrono::milliseconds(100));
  return t;
}

class GatewayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("tw-gateway-test-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    std::ofstream(dir_ / "policy.yaml") << kPolicy;
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(GatewayTest, RunFlagsAndTheEquivalentConfigFileBuildTheSameGateway) {
  RunOptions flags;
  flags.policy_path = (dir_ / "policy.yaml").string();
  flags.command = {TW_BINARY, "demo-server"};
  flags.state = "sqlite:" + (dir_ / "state.db").string();
  flags.server_name = "demo";
  auto from_flags = RunConfig(flags);
  ASSERT_TRUE(from_flags.has_value()) << from_flags.error().message();

  std::ofstream(dir_ / "toolwarden.yaml") << "access: local\n"
                                          << "listen: stdio\n"
                                          << "max_sessions: 64\n"
                                          << "state: sqlite:" << (dir_ / "state.db").string() << "\n"
                                          << "servers:\n"
                                          << "  demo:\n"
                                          << "    command: " << TW_BINARY << "\n"
                                          << "    args: [demo-server]\n"
                                          << "    policy: policy.yaml\n"
                                          << "    isolation: session\n"
                                          << "    inherit_env: all\n";
  auto from_file = config::LoadConfig((dir_ / "toolwarden.yaml").string());
  ASSERT_TRUE(from_file.has_value()) << from_file.error().message();
  config::Config a = *from_flags, b = *from_file;
  EXPECT_EQ(b.path, (dir_ / "toolwarden.yaml").string());
  b.path.clear();
  EXPECT_TRUE(a == b) << "run's flags and the config file describe different gateways";

  // Each from its own state file, so that neither sees the other's counters.
  a.state = "sqlite:" + (dir_ / "a.db").string();
  b.state = "sqlite:" + (dir_ / "b.db").string();
  const Trace ta = Script(a);
  const Trace tb = Script(b);
  ASSERT_EQ(ta.answers.size(), 9u);
  EXPECT_EQ(ta.answers, tb.answers);
  EXPECT_EQ(ta.records, tb.records);
  EXPECT_EQ(ta.metrics, tb.metrics);

  // And they are the decisions the policy says, each recorded once.
  EXPECT_NE(ta.answers[2].find(R"("text":"hi")"), std::string::npos) << ta.answers[2];
  EXPECT_NE(ta.answers[4].find(R"("text":"7")"), std::string::npos) << ta.answers[4];
  EXPECT_NE(ta.answers[5].find("adds"), std::string::npos) << ta.answers[5];
  EXPECT_NE(ta.answers[6].find("Deleting files is not permitted"), std::string::npos);
  ASSERT_EQ(ta.records.size(), 7u);
  EXPECT_EQ(ta.records[0], "local demo echo allow tools.echo  ok");
  EXPECT_TRUE(ta.records[3].starts_with("local demo add deny tools.add.limits[0] Rate limit"));
  EXPECT_TRUE(ta.records[6].starts_with("local demo Echo deny unknown_tool "));
  for (int i : {3, 4, 5, 6}) EXPECT_NE(ta.records[i].find(" deny "), std::string::npos) << ta.records[i];
  EXPECT_NE(ta.metrics.find("toolwarden_tool_calls_total{server=\"demo\",tool=\"add\",decision=\"allow\"} 2"),
            std::string::npos)
      << ta.metrics;
}

TEST(RunConfigTest, FlagsThatDescribeNoGatewayAreRefusedWithTheirName) {
  RunOptions none;
  none.policy_path = "p.yaml";
  EXPECT_NE(RunConfig(none).error().message().find("give exactly one upstream"), std::string::npos);
  RunOptions both = none;
  both.command = {"server"};
  both.upstream_url = "http://127.0.0.1:1/mcp";
  EXPECT_FALSE(RunConfig(both).has_value());
  RunOptions audit_stdout = none;
  audit_stdout.command = {"server"};
  audit_stdout.audit_log = "-";
  EXPECT_NE(RunConfig(audit_stdout).error().message().find("--audit-log - needs --listen"),
            std::string::npos);
  RunOptions bad_header = none;
  bad_header.upstream_url = "http://127.0.0.1:1/mcp";
  bad_header.headers = {"no colon"};
  EXPECT_FALSE(RunConfig(bad_header).has_value());
  RunOptions bad_url = none;
  bad_url.upstream_url = "ftp://host/mcp";
  EXPECT_FALSE(RunConfig(bad_url).has_value());
  for (const char* workers : {"0", "257", "2x", "", "-1"}) {
    RunOptions bad_workers = none;
    bad_workers.command = {"server"};
    bad_workers.workers = workers;
    auto c = RunConfig(bad_workers);
    ASSERT_FALSE(c.has_value()) << workers;
    EXPECT_NE(c.error().message().find("--workers must be auto or a number from 1 to 256"),
              std::string::npos);
  }
  RunOptions three = none;
  three.command = {"server"};
  three.workers = "3";
  ASSERT_TRUE(RunConfig(three).has_value());
  EXPECT_EQ(RunConfig(three)->workers, 3u);
}

TEST(RunConfigTest, AnHttpUpstreamKeepsItsHeadersAndIsNotAProcessPerSession) {
  RunOptions o;
  o.policy_path = "p.yaml";
  o.upstream_url = "https://mcp.example.com/mcp";
  o.headers = {"Authorization: Bearer x"};
  o.listen = "127.0.0.1:0";
  auto c = RunConfig(o);
  ASSERT_TRUE(c.has_value()) << c.error().message();
  EXPECT_EQ(c->access, config::Access::kLocal);
  EXPECT_FALSE(c->stdio());
  EXPECT_EQ(c->max_sessions, 10000u);
  const config::ServerConfig& s = c->servers.begin()->second;
  EXPECT_EQ(s.name, "mcp.example.com");
  EXPECT_EQ(s.headers, (std::vector<std::pair<std::string, std::string>>{{"Authorization", "Bearer x"}}));
  EXPECT_TRUE(fs::path(s.policy_path).is_absolute());
}

}  // namespace
}  // namespace tw::app
