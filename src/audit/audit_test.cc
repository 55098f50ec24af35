#include "audit/audit.h"

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "common/random.h"

namespace tw::audit {
namespace {

namespace fs = std::filesystem;

Record Make(std::string tool, std::string decision, int64_t ts, std::string outcome = "pending") {
  Record r;
  r.id = RandomHex(16);
  r.ts_ms = ts;
  r.grant = "local";
  r.session = "s1";
  r.server = "srv";
  r.tool = std::move(tool);
  r.decision = std::move(decision);
  r.rule = "default";
  r.arg_keys = {"amount", "reason"};
  r.args_digest = "abc";
  r.policy_version = "v1";
  r.outcome = std::move(outcome);
  return r;
}

TEST(AuditTest, WritesCompletesAndQueriesRecordsThatSurviveReopening) {
  const fs::path dir = fs::temp_directory_path() / ("tw-audit-" + RandomHex(6));
  fs::create_directories(dir);
  const std::string spec = "sqlite:" + (dir / "state.db").string();
  const std::string lines = (dir / "audit.jsonl").string();
  std::string allowed_id;
  {
    auto log = OpenAuditLog(spec, lines);
    ASSERT_TRUE(log.has_value()) << log.error().message();
    Record allowed = Make("refund", "allow", 1000);
    allowed_id = allowed.id;
    ASSERT_TRUE((*log)->Write(allowed).has_value());
    ASSERT_TRUE((*log)->Write(Make("delete", "deny", 2000, "not_forwarded")).has_value());
    ASSERT_TRUE((*log)->Write(Make("refund", "allow", 3000)).has_value());
    (*log)->Complete(allowed_id, "tool_error", 42);
    (*log)->Flush();
  }
  auto all = QueryAudit(spec, Query{});
  ASSERT_TRUE(all.has_value());
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].ts_ms, 3000) << "newest first";
  EXPECT_EQ((*all)[0].outcome, "pending") << "a call that never ended stays visible as such";
  EXPECT_EQ((*all)[2].outcome, "tool_error");
  EXPECT_EQ((*all)[2].latency_ms, 42);
  EXPECT_EQ((*all)[2].arg_keys, (std::vector<std::string>{"amount", "reason"}));
  Query denied;
  denied.decision = "deny";
  EXPECT_EQ(QueryAudit(spec, denied)->size(), 1u);
  Query since;
  since.since_ms = 1500;
  since.tool = "refund";
  EXPECT_EQ(QueryAudit(spec, since)->size(), 1u);

  // The JSON lines mirror: one line per call once it is complete (the pending one is not).
  std::ifstream in(lines);
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    json::value v = json::parse(line);
    EXPECT_NE(v.at("outcome").get_string(), "pending");
    ++n;
  }
  EXPECT_EQ(n, 2);
  fs::remove_all(dir);
}

TEST(AuditTest, RejectsAnUnwritableJsonLinesFile) {
  auto log = OpenAuditLog("memory", "/proc/nope/audit.jsonl");
  ASSERT_FALSE(log.has_value());
  EXPECT_NE(log.error().message().find("/proc/nope/audit.jsonl"), std::string::npos);
}

}  // namespace
}  // namespace tw::audit
