#include "console/assets.h"

#include <gtest/gtest.h>

namespace tw::console {
namespace {

std::string Header(const StaticReply& r, std::string_view name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  return {};
}

TEST(ConsoleAssetsTest, ServesTheIndexWithAStrictContentSecurityPolicy) {
  StaticReply r = Serve("GET", "/ui/", "");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "text/html; charset=utf-8");
  EXPECT_NE(r.body.find("<script type=\"module\" src=\"app.js\">"), std::string::npos);
  EXPECT_NE(Header(r, "Content-Security-Policy").find("script-src 'self';"), std::string::npos);
  EXPECT_EQ(Header(r, "X-Frame-Options"), "DENY");
  EXPECT_EQ(Header(r, "X-Content-Type-Options"), "nosniff");
}

TEST(ConsoleAssetsTest, NothingLoadsFromAnotherOrigin) {
  for (const EmbeddedFile& f : EmbeddedFiles()) {
    std::string text(f.bytes);
    for (size_t at; (at = text.find("http://www.w3.org/")) != std::string::npos;) text.erase(at, 18);  // XML namespaces
    EXPECT_EQ(text.find("http://"), std::string::npos) << f.path;
    EXPECT_EQ(text.find("https://"), std::string::npos) << f.path;
  }
}

TEST(ConsoleAssetsTest, AnUnchangedAssetIsNotSentTwice) {
  StaticReply first = Serve("GET", "/ui/app.js", "");
  ASSERT_EQ(first.status, 200);
  EXPECT_EQ(first.content_type, "text/javascript; charset=utf-8");
  const std::string etag = Header(first, "ETag");
  ASSERT_FALSE(etag.empty());
  StaticReply again = Serve("GET", "/ui/app.js", etag);
  EXPECT_EQ(again.status, 304);
  EXPECT_TRUE(again.body.empty());
}

TEST(ConsoleAssetsTest, UnknownPathsAndMethodsAreRefused) {
  EXPECT_EQ(Serve("GET", "/ui/../etc/passwd", "").status, 404);
  EXPECT_EQ(Serve("GET", "/ui/nope.js", "").status, 404);
  EXPECT_EQ(Serve("POST", "/ui/", "").status, 405);
  StaticReply r = Serve("GET", "/ui", "");
  EXPECT_EQ(r.status, 301);
  EXPECT_EQ(Header(r, "Location"), "/ui/");
}

}  // namespace
}  // namespace tw::console
