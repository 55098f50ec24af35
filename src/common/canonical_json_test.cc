#include "common/canonical_json.h"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

namespace tw {
namespace {

namespace json = boost::json;

TEST(CanonicalJsonTest, IgnoresWhitespaceKeyOrderAndNumberSpelling) {
  const json::value a = json::parse(R"({"b": 1.0, "a": {"y": [1, 2], "x": "é"}, "c": 1.5e2})");
  const json::value b = json::parse(R"({"a":{"x":"é","y":[1,2]},"c":150,"b":1})");
  EXPECT_EQ(CanonicalJson(a), CanonicalJson(b));
  EXPECT_EQ(CanonicalJson(a), R"({"a":{"x":"é","y":[1,2]},"b":1,"c":150})");
  EXPECT_EQ(CanonicalJson(json::parse("0.1")), "0.1");
  EXPECT_EQ(CanonicalJson(json::parse("-0.0")), "0");
}

TEST(CanonicalJsonTest, ArrayOrderIsKeptUnlessSetsAreAsked) {
  const json::value a = json::parse(R"({"required": ["b", "a"]})");
  const json::value b = json::parse(R"({"required": ["a", "b"]})");
  EXPECT_NE(CanonicalJson(a), CanonicalJson(b));
  EXPECT_EQ(CanonicalJson(a, ArrayOrder::kSorted), CanonicalJson(b, ArrayOrder::kSorted));
}

TEST(Sha256Test, MatchesKnownDigests) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

// The context is reused per thread: a digest must not depend on what the thread hashed before,
// and threads must not share one.
TEST(Sha256Test, ReusedContextsGiveIndependentDigests) {
  const std::string long_input(100000, 'a');
  const std::string long_digest = Sha256Hex(long_input);
  EXPECT_EQ(long_digest, "6d1cf22d7cc09b085dfc25ee1a1f3ae0265804c607bc2074ad253bcc82fd81ee");
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i) {
        if (Sha256Hex(i % 2 ? long_input : "abc") !=
            (i % 2 ? long_digest
                   : "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")) {
          ++wrong;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
}

}  // namespace
}  // namespace tw
