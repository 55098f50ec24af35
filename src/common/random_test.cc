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
