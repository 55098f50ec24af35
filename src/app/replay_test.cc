#include "app/replay.h"

#include <filesystem>

#include <gtest/gtest.h>

#include "audit/audit.h"
#include "common/random.h"
#include "policy/loader.h"

namespace tw::app {
namespace {

constexpr int64_t kT0 = 1'700'000'000'000;  // 20 s into a minute

std::shared_ptr<const policy::Policy> Compile(std::string_view text) {
  auto r = policy::CompilePolicy(text, "next.yaml", policy::FileFormat::kYaml);
  EXPECT_TRUE(r.policy) << policy::FormatDiagnostics("next.yaml", r.diagnostics);
  return r.policy;
}

class ReplayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = std::filesystem::temp_directory_path() / ("tw-replay-" + RandomHex(8) + ".db");
    spec_ = "sqlite:" + path_.string();
    log_ = std::move(*audit::OpenAuditLog(spec_, ""));
  }
  void TearDown() override {
    log_.reset();
    for (auto suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path_.string() + suffix);
  }
  // A recorded call, as the guard writes one.
  void Recorded(int64_t ts, std::string tool, std::string decision, std::string rule,
                std::optional<std::string_view> args = "{}", std::string grant = "g1",
                std::string cls = "Read/Low", std::string outcome = "ok",
                std::string server = "db") {
    audit::Record r;
    r.id = audit::NewRecordId();
    r.ts_ms = ts;
    r.grant = std::move(grant);
    r.session = "s1";
    r.server = std::move(server);
    r.tool = std::move(tool);
    r.decision = std::move(decision);
    r.rule = std::move(rule);
    if (args) {
      json::object a = json::parse(*args).as_object();
      for (const auto& kv : a) r.arg_keys.emplace_back(kv.key());
      r.args = json::value(std::move(a));
    } else {
      r.arg_keys = {"sql"};
    }
    r.policy_version = "old";
    r.outcome = std::move(outcome);
    r.tool_class = std::move(cls);
    ASSERT_TRUE(log_->Write(r));
  }
  ReplayReport Run(std::string_view policy, ReplayOptions o = {}) {
    log_->Flush();
    candidate_ = Compile(policy);
    o.audit_spec = spec_;
    auto r = Replay(*candidate_, o);
    EXPECT_TRUE(r) << r.error().message();
    return r ? *r : ReplayReport{};
  }

  std::filesystem::path path_;
  std::string spec_;
  std::unique_ptr<audit::AuditLog> log_;
  std::shared_ptr<const policy::Policy> candidate_;
};

TEST_F(ReplayTest, SaysWhatANewPolicyWouldHaveDeniedAndAllowed) {
  Recorded(kT0, "query", "allow", "tools.query", R"({"sql":"select 1"})");
  Recorded(kT0 + 1, "query", "allow", "tools.query", R"({"sql":"DELETE FROM users"})");
  Recorded(kT0 + 2, "drop_table", "deny", "default", R"({"name":"t"})", "g2", "Destructive/High");
  Recorded(kT0 + 3, "wipe", "allow", "default", "{}", "g1", "Destructive/Critical");
  ReplayReport r = Run(R"(
version: "1"
default: allow
tools:
  query:
    deny_if: [{path: args.sql, op: regex, value: "(?i)delete"}]
  drop_table: {}
classes:
  Destructive: {action: require_approval}
)");
  EXPECT_EQ(r.records, 4);
  EXPECT_EQ(r.unchanged, 1);
  EXPECT_EQ(r.changed["newly_denied"], 1);
  EXPECT_EQ(r.changed["newly_allowed"], 1);
  EXPECT_EQ(r.changed["newly_held"], 1);
  ASSERT_EQ(r.changes.size(), 3u);
  auto find = [&](std::string_view tool) {
    return *std::find_if(r.changes.begin(), r.changes.end(), [&](const ReplayChange& c) { return c.tool == tool; });
  };
  ReplayChange denied = find("query");
  EXPECT_EQ(denied.change, "newly_denied");
  EXPECT_EQ(denied.rule, "tools.query.deny_if[0]");
  EXPECT_EQ(denied.was_rule, "tools.query");
  ASSERT_EQ(denied.examples.size(), 1u);
  EXPECT_EQ(denied.examples[0].ts_ms, kT0 + 1);
  EXPECT_EQ(find("drop_table").change, "newly_allowed");
  EXPECT_EQ(find("drop_table").examples[0].grant, "g2");
  ReplayChange held = find("wipe");
  EXPECT_EQ(held.change, "newly_held");
  EXPECT_EQ(held.rule, "classes.Destructive");
  json::object j = ReplayJson(r);
  EXPECT_EQ(j.at("changed").at("newly_denied"), 1);
  EXPECT_EQ(j.at("records"), 4);
  EXPECT_EQ(j.at("server"), "db");
}

TEST_F(ReplayTest, CountersAreReplayedInTimeOrderAndRefundedAsTheOutcomeSays) {
  for (int i = 0; i < 5; ++i) Recorded(kT0 + i * 1000, "search", "allow", "tools.search");
  // The second call failed with a JSON-RPC error: a refunding limit gives it back.
  Recorded(kT0 + 5000, "fetch", "allow", "tools.fetch", "{}", "g1", "Read/Low", "ok");
  Recorded(kT0 + 6000, "fetch", "allow", "tools.fetch", "{}", "g1", "Read/Low", "jsonrpc_error");
  Recorded(kT0 + 7000, "fetch", "allow", "tools.fetch", "{}", "g1", "Read/Low", "ok");
  // A new minute: the window is empty again.
  Recorded(kT0 + 60'000, "search", "allow", "tools.search");
  ReplayReport r = Run(R"(
version: "1"
default: allow
tools:
  search: {limits: [{counter: s, window: minute, max: 3}]}
  fetch: {limits: [{counter: f, window: minute, max: 2, refund_on_error: true}]}
)");
  EXPECT_EQ(r.changed["newly_denied"], 2) << "search's 4th and 5th call; fetch fits after its refund";
  ASSERT_EQ(r.changes.size(), 1u);
  EXPECT_EQ(r.changes[0].tool, "search");
  EXPECT_EQ(r.changes[0].rule, "tools.search.limits[0]");
  EXPECT_EQ(r.changes[0].first_ms, kT0 + 3000) << "when the limit would first have fired";
  EXPECT_NE(r.changes[0].examples[0].reason.find("Rate limit \"s\" reached"), std::string::npos);
  EXPECT_EQ(r.unchanged, 7);
}

TEST_F(ReplayTest, SaysWhatItCannotDecideInsteadOfGuessing) {
  Recorded(kT0, "query", "allow", "tools.query", std::nullopt);                     // no values kept
  Recorded(kT0 + 1, "login", "allow", "tools.login", R"({"password":"[redacted]"})");
  Recorded(kT0 + 2, "qu3ry", "deny", "unknown_tool", "{}");                         // before any policy
  Recorded(kT0 + 3, "query", "deny", "state", R"({"sql":"x"})");                    // the store failed
  Recorded(kT0 + 4, "list", "allow", "tools.list", std::nullopt);  // reads no argument: decidable
  Recorded(kT0 + 5, "purge", "allow", "default", "{}", "g1", "");  // no class recorded
  Recorded(kT0 + 6, "deploy", "deny", "pin", "{}");                // pins still decide
  ReplayReport r = Run(R"(
version: "1"
default: allow
tools:
  query: {deny_if: [{path: args.sql, op: contains, value: "drop"}]}
  login: {require: [{path: args.password, op: exists}]}
  list: {}
  deploy: {}
classes:
  Destructive: {action: deny}
)");
  EXPECT_EQ(r.records, 7);
  EXPECT_EQ(r.undecidable, 3);
  EXPECT_EQ(r.outside_policy, 2);
  EXPECT_EQ(r.unchanged, 2);
  EXPECT_NE(r.undecidable_tools["query"].second.find("kept no argument values"), std::string::npos);
  EXPECT_NE(r.undecidable_tools["login"].second.find("args.password, which the audit keeps redacted"),
            std::string::npos);
  EXPECT_NE(r.undecidable_tools["purge"].second.find("no class"), std::string::npos);
  EXPECT_TRUE(r.changes.empty());
}

TEST_F(ReplayTest, ServersAndWindowsSelectTheRecords) {
  Recorded(kT0, "a", "allow", "default", "{}", "g1", "Read/Low", "ok", "db");
  Recorded(kT0 + 10, "a", "allow", "default", "{}", "g1", "Read/Low", "ok", "files");
  log_->Flush();
  candidate_ = Compile("version: \"1\"\ndefault: deny\n");
  auto mixed = Replay(*candidate_, {.audit_spec = spec_});
  ASSERT_FALSE(mixed);
  EXPECT_NE(mixed.error().message().find("name the one whose policy this is with --server"), std::string::npos);
  ReplayReport files = Run("version: \"1\"\ndefault: deny\n", {.server = "files"});
  EXPECT_EQ(files.records, 1);
  EXPECT_EQ(files.changed["newly_denied"], 1);
  ReplayReport later = Run("version: \"1\"\ndefault: deny\n", {.server = "db", .since_ms = kT0 + 1});
  EXPECT_EQ(later.records, 0);
}

}  // namespace
}  // namespace tw::app
