#include "common/address_set.h"

#include <gtest/gtest.h>

namespace tw {
namespace {

TEST(AddressSetTest, MatchesAddressesAndRangesOfBothFamilies) {
  auto set = AddressSet::Parse({"10.0.0.5", "192.168.0.0/16", "fd00::/8", "::1", "0.0.0.0/0"});
  ASSERT_TRUE(set) << set.error().message();
  EXPECT_TRUE(set->Contains("10.0.0.5"));
  EXPECT_TRUE(set->Contains("192.168.255.1"));
  EXPECT_TRUE(set->Contains("fd12:3456::1"));
  EXPECT_TRUE(set->Contains("::1"));
  EXPECT_FALSE(set->Contains("fe80::1"));
  EXPECT_FALSE(set->Contains("::2"));
  auto narrow = AddressSet::Parse({"10.1.0.0/16", "2001:db8::/33"});
  ASSERT_TRUE(narrow);
  EXPECT_TRUE(narrow->Contains("10.1.200.3"));
  EXPECT_FALSE(narrow->Contains("10.2.0.1"));
  EXPECT_TRUE(narrow->Contains("2001:db8:7fff::1"));
  EXPECT_FALSE(narrow->Contains("2001:db8:8000::1"));  // the 33rd bit differs
  // An IPv4-mapped IPv6 peer is its IPv4 address.
  EXPECT_TRUE(narrow->Contains("::ffff:10.1.0.9"));
}

TEST(AddressSetTest, LookAlikesOfAddressesAreNotAddresses) {
  auto set = AddressSet::Parse({"127.0.0.1"});
  ASSERT_TRUE(set);
  for (const char* s : {"127.0.0.1 ", " 127.0.0.1", "127.0.0.01", "127.1", "0x7f.0.0.1",
                        "127.0.0.1:80", "[127.0.0.1]", "", "localhost", "127.0.0.1%eth0"}) {
    EXPECT_FALSE(set->Contains(s)) << "\"" << s << "\"";
  }
  EXPECT_FALSE(AddressSet().Contains("127.0.0.1"));
}

TEST(AddressSetTest, RefusesWhatIsNotAnAddressOrARange) {
  for (const char* s : {"10.0.0.0/33", "10.0.0.1/8", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/8x",
                        "::/129", "proxy.internal", "10.0.0.0/08a", ""}) {
    auto set = AddressSet::Parse({s});
    EXPECT_FALSE(set) << s;
    if (!set) {
      EXPECT_NE(set.error().message().find(std::string("\"") + s + "\""), std::string::npos);
    }
  }
  EXPECT_TRUE(AddressSet::Parse({"10.0.0.0/08"}));  // a leading zero in a length is still 8
}

}  // namespace
}  // namespace tw
