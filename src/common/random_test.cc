#include "common/random.h"

#include <gtest/gtest.h>

#include <set>

namespace tw {
namespace {

TEST(RandomHexTest, HasTwoHexDigitsPerByteAndDoesNotRepeat) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    std::string id = RandomHex(16);
    ASSERT_EQ(id.size(), 32u);
    ASSERT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos);
    ASSERT_TRUE(seen.insert(id).second) << "duplicate id " << id;
  }
}

}  // namespace
}  // namespace tw

namespace tw {
namespace {

TEST(RandomBase62Test, UsesOnlyTheAlphabetAndDoesNotRepeat) {
  const std::string a = RandomBase62(43), b = RandomBase62(43);
  EXPECT_EQ(a.size(), 43u);
  EXPECT_NE(a, b);
  EXPECT_EQ(a.find_first_not_of("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"),
            std::string::npos);
  // Every character appears over a long draw (a biased or truncated alphabet would not).
  const std::string long_draw = RandomBase62(20000);
  for (char ch : std::string("09AZaz")) EXPECT_NE(long_draw.find(ch), std::string::npos) << ch;
}

}  // namespace
}  // namespace tw
