#include "gateway/metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace tw::gateway {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(MetricsTest, HistogramsAreCumulativeWithSumAndCount) {
  Metrics m;
  m.ObserveCall("github", 0.004);   // <= 0.005
  m.ObserveCall("github", 0.2);     // <= 0.25
  m.ObserveCall("github", 120);     // +Inf only
  m.ObserveDecision("github", 0.00002);
  const std::string text = m.Render();
  EXPECT_THAT(text, HasSubstr("# TYPE toolwarden_call_duration_seconds histogram"));
  EXPECT_THAT(text, HasSubstr("toolwarden_call_duration_seconds_bucket{server=\"github\",le=\"0.0025\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("toolwarden_call_duration_seconds_bucket{server=\"github\",le=\"0.005\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("toolwarden_call_duration_seconds_bucket{server=\"github\",le=\"0.25\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("toolwarden_call_duration_seconds_bucket{server=\"github\",le=\"60\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("toolwarden_call_duration_seconds_bucket{server=\"github\",le=\"+Inf\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("toolwarden_call_duration_seconds_count{server=\"github\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("toolwarden_decision_duration_seconds_bucket{server=\"github\",le=\"2.5e-05\"} 1\n"));
}

TEST(MetricsTest, LabelValuesAreEscaped) {
  Metrics m;
  m.CountDecision("s", "we\"ird\\tool\n", "deny");
  EXPECT_THAT(m.Render(), HasSubstr("tool=\"we\\\"ird\\\\tool\\n\""));
}

TEST(MetricsTest, CountsOfEveryThreadAddUpWhileScrapesRun) {
  Metrics m;
  m.AddGauge("toolwarden_test_gauge", "A gauge that counts too, as a gateway's may.", [&m] {
    m.CountOutcome("from-gauge", "ok");  // no lock of Render's is held while gauges run
    return 1.0;
  });
  constexpr int kThreads = 4, kEach = 5000;
  std::atomic<bool> done{false};
  std::thread scraper([&] {
    while (!done) (void)m.Render();
  });
  std::vector<std::thread> loops;
  for (int t = 0; t < kThreads; ++t) {
    loops.emplace_back([&m] {
      for (int i = 0; i < kEach; ++i) {
        m.CountDecision("github", "create_issue", "allow");
        m.CountOutcome("github", "ok");
        m.ObserveCall("github", 0.003);
        m.ObserveDecision("github", 0.00002);
      }
    });
  }
  for (auto& t : loops) t.join();
  done = true;
  scraper.join();
  const std::string text = m.Render();
  const std::string n = std::to_string(kThreads * kEach);
  EXPECT_THAT(text, HasSubstr("toolwarden_tool_calls_total{server=\"github\",tool=\"create_issue\",decision=\"allow\"} " + n + "\n"));
  EXPECT_THAT(text, HasSubstr("toolwarden_call_outcomes_total{server=\"github\",outcome=\"ok\"} " + n + "\n"));
  EXPECT_THAT(text, HasSubstr("toolwarden_call_duration_seconds_count{server=\"github\"} " + n + "\n"));
  EXPECT_THAT(text, HasSubstr("toolwarden_decision_duration_seconds_count{server=\"github\"} " + n + "\n"));
}

TEST(MetricsTest, TwoGatewaysOnOneThreadKeepTheirCountsApart) {
  auto a = std::make_unique<Metrics>();
  auto b = std::make_unique<Metrics>();
  a->CountOutcome("s", "ok");
  b->CountOutcome("s", "tool_error");
  a->CountOutcome("s", "ok");
  EXPECT_THAT(a->Render(), HasSubstr("outcome=\"ok\"} 2\n"));
  EXPECT_THAT(a->Render(), Not(HasSubstr("tool_error")));
  EXPECT_THAT(b->Render(), Not(HasSubstr("outcome=\"ok\"")));
  // One gone and another made (perhaps at the same address): nothing of the first carries over.
  a.reset();
  auto c = std::make_unique<Metrics>();
  c->CountOutcome("s", "cancelled");
  EXPECT_THAT(c->Render(), Not(HasSubstr("outcome=\"ok\"")));
  EXPECT_THAT(c->Render(), HasSubstr("outcome=\"cancelled\"} 1\n"));
}

}  // namespace
}  // namespace tw::gateway
