#include "common/log.h"

#include <boost/json.hpp>
#include <gtest/gtest.h>

namespace tw {
namespace {

TEST(JsonLogTest, OneParsableObjectPerLineWhateverTheMessage) {
  const std::string line =
      FormatJsonLogLine("warn", "quote \" backslash \\ newline \n tab \t bell \x07 end", 1795867498170);
  ASSERT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1);  // a newline in the message stays escaped
  boost::json::value v = boost::json::parse(line);
  EXPECT_EQ(v.at("ts"), "2026-11-28T12:04:58.170Z");
  EXPECT_EQ(v.at("level"), "warning");
  EXPECT_EQ(v.at("msg"), "quote \" backslash \\ newline \n tab \t bell \x07 end");
}

}  // namespace
}  // namespace tw
