#include "common/number_literal.h"

#include <gtest/gtest.h>

namespace tw {
namespace {

TEST(NumberLiteralTest, ClassifiesLiterals) {
  struct Case {
    const char* literal;
    NumberExactness want;
  };
  const Case cases[] = {
      {"0", NumberExactness::kExact},
      {"-0", NumberExactness::kExact},
      {"-0.0", NumberExactness::kExact},
      {"100", NumberExactness::kExact},
      {"100.0", NumberExactness::kExact},
      {"1e2", NumberExactness::kExact},
      {"0.1", NumberExactness::kExact},
      {"1.5E-3", NumberExactness::kExact},
      {"9223372036854775807", NumberExactness::kExact},
      {"-9223372036854775808", NumberExactness::kExact},
      {"18446744073709551615", NumberExactness::kExact},
      {"100000000000000000000", NumberExactness::kExact},  // 1e20 is a double exactly
      {"1.7976931348623157e308", NumberExactness::kExact},
      {"100.0000000000000001", NumberExactness::kInexact},
      {"18446744073709551617", NumberExactness::kInexact},
      {"-9223372036854775809", NumberExactness::kInexact},
      {"0.30000000000000000001", NumberExactness::kInexact},
      {"1e-400", NumberExactness::kInexact},  // read as 0
      {"1e999", NumberExactness::kNonFinite},
      {"-1e999", NumberExactness::kNonFinite},
      {"1.8e308", NumberExactness::kNonFinite},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.literal);
    EXPECT_EQ(ClassifyNumberLiteral(c.literal), c.want);
  }
}

TEST(NumberLiteralTest, FindsTheWorstLiteralOutsideStrings) {
  EXPECT_FALSE(FindInexactNumber(R"({"a":1,"b":[0.5,-3,1e2],"c":"1e999"})"));
  EXPECT_FALSE(FindInexactNumber(R"({"s":"\"1e999","n":12345678901234567})"));
  auto f = FindInexactNumber(R"({"a":100.0000000000000001,"b":1e999})");
  ASSERT_TRUE(f);
  EXPECT_EQ(f->what, NumberExactness::kNonFinite);
  EXPECT_EQ(f->literal, "1e999");
  f = FindInexactNumber(R"([{"id":1,"amount":100.0000000000000001}])");
  ASSERT_TRUE(f);
  EXPECT_EQ(f->what, NumberExactness::kInexact);
  EXPECT_EQ(f->literal, "100.0000000000000001");
  EXPECT_NE(DescribeNumberFinding(*f).find("100.0000000000000001"), std::string::npos);
}

}  // namespace
}  // namespace tw
