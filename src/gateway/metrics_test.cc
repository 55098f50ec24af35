#include "gateway/metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace tw::gateway {
namespace {

using ::testing::HasSubstr;

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

}  // namespace
}  // namespace tw::gateway
