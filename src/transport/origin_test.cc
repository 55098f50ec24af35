#include "transport/origin.h"

#include <gtest/gtest.h>

namespace tw::transport {
namespace {

TEST(OriginPolicyTest, AcceptsLoopbackHostsAndOrigins) {
  OriginPolicy p({}, {});
  for (const char* host : {"localhost:8421", "127.0.0.1:1", "[::1]:80", "LOCALHOST", "127.0.0.1"}) {
    SCOPED_TRACE(host);
    EXPECT_TRUE(p.HostAllowed(host));
  }
  for (const char* origin : {"", "http://localhost:3000", "https://127.0.0.1", "http://[::1]:9"}) {
    SCOPED_TRACE(origin);
    EXPECT_TRUE(p.OriginAllowed(origin));
  }
}

TEST(OriginPolicyTest, RejectsForeignHostsAndOrigins) {
  OriginPolicy p({}, {});
  for (const char* host : {"evil.example.com", "evil.example.com:8421", "localhost.evil.com",
                           "127.0.0.1.nip.io", "", "localhost:abc", "localhost:1234567"}) {
    SCOPED_TRACE(host);
    EXPECT_FALSE(p.HostAllowed(host));
  }
  for (const char* origin : {"http://evil.example.com", "null", "file://", "http://localhost.evil",
                             "ftp://localhost", "http://localhost/path"}) {
    SCOPED_TRACE(origin);
    EXPECT_FALSE(p.OriginAllowed(origin));
  }
}

TEST(OriginPolicyTest, ExtraHostsAndOriginsAreConfigurable) {
  OriginPolicy p({"gateway.internal:8421", "mcp.corp"}, {"https://console.corp"});
  EXPECT_TRUE(p.HostAllowed("gateway.internal:8421"));
  EXPECT_FALSE(p.HostAllowed("gateway.internal:9999"));
  EXPECT_TRUE(p.HostAllowed("mcp.corp:443"));
  EXPECT_TRUE(p.OriginAllowed("https://console.corp"));
  EXPECT_TRUE(p.OriginAllowed("https://mcp.corp"));
  EXPECT_FALSE(p.OriginAllowed("https://other.corp"));
  EXPECT_TRUE(OriginPolicy::AllowAll().HostAllowed("anything"));
}

}  // namespace
}  // namespace tw::transport
