#include "redis/redis_client.h"

#include <gtest/gtest.h>

#include <optional>
#include <thread>

#include <cstdlib>

#include "testing/redis_server.h"

namespace tw::redis {
namespace {

// Unsets the credential variables around a test, whatever the environment had.
class UrlTest : public ::testing::Test {
 protected:
  void SetUp() override { Clear(); }
  void TearDown() override { Clear(); }
  static void Clear() {
    unsetenv("TOOLWARDEN_REDIS_USERNAME");
    unsetenv("TOOLWARDEN_REDIS_PASSWORD");
  }
};

TEST_F(UrlTest, ParsesHostPortAndDatabase) {
  auto e = ParseUrl("redis://cache.internal:6380/3");
  ASSERT_TRUE(e) << e.error().message();
  EXPECT_EQ(e->host, "cache.internal");
  EXPECT_EQ(e->port, 6380);
  EXPECT_EQ(e->db, 3);
  EXPECT_EQ(e->Describe(), "redis://cache.internal:6380/3");
  e = ParseUrl("redis://10.0.0.7");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->port, 6379);
  EXPECT_EQ(e->db, 0);
  e = ParseUrl("redis://[::1]:7000/");
  ASSERT_TRUE(e) << e.error().message();
  EXPECT_EQ(e->host, "::1");
  EXPECT_EQ(e->Describe(), "redis://[::1]:7000/0");
}

TEST_F(UrlTest, ParsesSentinelsAndTheirMasterSet) {
  auto e = ParseUrl("redis-sentinel://s1.internal:26379,10.0.0.9:26380/mymaster/2");
  ASSERT_TRUE(e) << e.error().message();
  ASSERT_EQ(e->sentinels.size(), 2u);
  EXPECT_EQ(e->sentinels[1], (std::pair<std::string, int>{"10.0.0.9", 26380}));
  EXPECT_EQ(e->master, "mymaster");
  EXPECT_EQ(e->db, 2);
  EXPECT_EQ(e->Describe(), "redis-sentinel://s1.internal:26379,10.0.0.9:26380/mymaster/2");
  EXPECT_TRUE(IsRedisUrl("redis-sentinel://a:1/m"));
  for (const char* bad : {"redis-sentinel://a:1", "redis-sentinel://a/m", "redis-sentinel://a:1/",
                          "redis-sentinel://u:pw@a:1/m", "redis-sentinel://a:1/m/16",
                          "redis-sentinel://a:99999/m"}) {
    auto r = ParseUrl(bad);
    EXPECT_FALSE(r) << bad;
    if (!r) {
      EXPECT_EQ(r.error().message().find("pw"), std::string::npos) << r.error().message();
    }
  }
}

TEST_F(UrlTest, RefusesWhatItCannotHonourSayingWhy) {
  struct Case {
    const char* url;
    const char* says;
  };
  for (const Case& c : {Case{"redis://user:secret@h:6379/0", "TOOLWARDEN_REDIS_PASSWORD"},
                        Case{"redis://:secret@h/0", "credentials"},
                        Case{"rediss://user@h:6379/0", "TOOLWARDEN_REDIS_PASSWORD"},
                        Case{"http://h/0", "expected redis://"},
                        Case{"redis://h:0/0", "port"},
                        Case{"redis://h:70000/0", "port"},
                        Case{"redis://h/16", "0 to 15"},
                        Case{"redis://h/-1", "0 to 15"},
                        Case{"redis://h/1x", "0 to 15"},
                        Case{"redis://h/0/1", "0 to 15"},
                        Case{"redis://h/0?timeout=1", "query"},
                        Case{"redis:///0", "host"},
                        Case{"not a url", "not a URL"}}) {
    auto e = ParseUrl(c.url);
    ASSERT_FALSE(e) << c.url;
    EXPECT_NE(e.error().message().find(c.says), std::string::npos)
        << c.url << ": " << e.error().message();
    // A secret written into the URL is never repeated back into a log.
    EXPECT_EQ(e.error().message().find("secret"), std::string::npos) << e.error().message();
  }
}

TEST_F(UrlTest, CredentialsComeFromTheEnvironment) {
  setenv("TOOLWARDEN_REDIS_PASSWORD", "pw", 1);
  auto e = ParseUrl("redis://h/0");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->password, "pw");
  EXPECT_EQ(e->username, "");
  EXPECT_EQ(e->Describe().find("pw"), std::string::npos);
  setenv("TOOLWARDEN_REDIS_USERNAME", "gateway", 1);
  e = ParseUrl("redis://h/0");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->username, "gateway");
  unsetenv("TOOLWARDEN_REDIS_PASSWORD");
  e = ParseUrl("redis://h/0");
  ASSERT_FALSE(e);
  EXPECT_NE(e.error().message().find("without TOOLWARDEN_REDIS_PASSWORD"), std::string::npos);
}

class ClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (testing::RedisServer::Binary().empty()) GTEST_SKIP() << "redis-server is not installed";
  }
  static Endpoint At(int port) {
    Endpoint e;
    e.host = "127.0.0.1";
    e.port = port;
    return e;
  }
};

TEST_F(ClientTest, RunsCommandsWithAnyBytesAndScriptsTheServerForgot) {
  testing::RedisServer server;
  ASSERT_TRUE(server.started());
  auto c = Client::Connect(At(server.port()), std::chrono::seconds(2));
  ASSERT_TRUE(c) << c.error().message();
  const std::string odd("a\0b\r\n c", 7);
  ASSERT_TRUE((*c)->Command({"SET", odd, odd}));
  auto v = (*c)->Command({"GET", odd});
  ASSERT_TRUE(v);
  EXPECT_EQ(v->type, Value::Type::kString);
  EXPECT_EQ(v->str, odd);
  v = (*c)->Command({"GET", "missing"});
  ASSERT_TRUE(v);
  EXPECT_EQ(v->type, Value::Type::kNil);
  // An error the server answers is a failed Result naming the server.
  auto bad = (*c)->Command({"NOSUCHCOMMAND"});
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("unknown command"), std::string::npos);

  const Script add("return tonumber(ARGV[1]) + #KEYS");
  v = (*c)->Eval(add, {"k1", "k2"}, {"40"});
  ASSERT_TRUE(v) << v.error().message();
  EXPECT_EQ(v->integer, 42);
  ASSERT_TRUE((*c)->Command({"SCRIPT", "FLUSH"}));
  v = (*c)->Eval(add, {"k1"}, {"1"});
  ASSERT_TRUE(v) << v.error().message();
  EXPECT_EQ(v->integer, 2);
}

TEST_F(ClientTest, DatabasesAreSelected) {
  testing::RedisServer server;
  ASSERT_TRUE(server.started());
  Endpoint one = At(server.port()), two = At(server.port());
  two.db = 2;
  auto a = Client::Connect(one, std::chrono::seconds(2));
  auto b = Client::Connect(two, std::chrono::seconds(2));
  ASSERT_TRUE(a && b);
  ASSERT_TRUE((*a)->Command({"SET", "k", "db0"}));
  EXPECT_EQ((*b)->Command({"GET", "k"})->type, Value::Type::kNil);
}

TEST_F(ClientTest, AWrongPasswordIsRefusedWithoutRepeatingIt) {
  testing::RedisServer server({"--requirepass", "right-horse"});
  ASSERT_TRUE(server.started());
  Endpoint e = At(server.port());
  e.password = "wrong-battery";
  auto c = Client::Connect(e, std::chrono::seconds(2));
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message().find("authentication refused"), std::string::npos)
      << c.error().message();
  EXPECT_EQ(c.error().message().find("wrong-battery"), std::string::npos);
  // No password at all: the first command says so.
  e.password.clear();
  auto anonymous = Client::Connect(e, std::chrono::seconds(2));
  ASSERT_TRUE(anonymous);
  auto r = (*anonymous)->Command({"GET", "k"});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("NOAUTH"), std::string::npos);
  e.password = "right-horse";
  auto good = Client::Connect(e, std::chrono::seconds(2));
  ASSERT_TRUE(good) << good.error().message();
  EXPECT_TRUE((*good)->Command({"GET", "k"}));
}

TEST_F(ClientTest, ANewServerOnTheAddressIsReachedAgainAfterAFailure) {
  auto server = std::make_unique<testing::RedisServer>();
  ASSERT_TRUE(server->started());
  const int port = server->port();
  auto c = Client::Connect(At(port), std::chrono::seconds(2));
  ASSERT_TRUE(c);
  ASSERT_TRUE((*c)->Command({"PING"}));
  server->Stop();
  auto r = (*c)->Command({"PING"});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kUnavailable);
  EXPECT_NE(r.error().message().find("127.0.0.1:" + std::to_string(port)), std::string::npos);
  // Nothing listens: connecting fails at once (refused), naming the address.
  auto none = Client::Connect(At(port), std::chrono::seconds(2));
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().message().find(std::to_string(port)), std::string::npos);
}

// rediss://: a real redis-server with TLS (its own test CA, made with the openssl command),
// reached through the tunnel; its certificate is checked against the CA and the address.
TEST_F(ClientTest, TlsIsVerifiedAndCarriesCommands) {
  if (std::system("command -v openssl > /dev/null") != 0) GTEST_SKIP() << "openssl is not installed";
  const std::string dir = "/tmp/tw-tls-" + std::to_string(getpid());
  const std::string make =
      "set -e; mkdir -p " + dir + "; cd " + dir + "; "
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key "
      "-out ca.crt -days 1 -subj /CN=tw-test-ca 2>/dev/null; "
      "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout srv.key "
      "-out srv.csr -subj /CN=redis 2>/dev/null; "
      "printf 'subjectAltName=IP:127.0.0.1\\n' > ext; "
      "openssl x509 -req -in srv.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out srv.crt "
      "-days 1 -extfile ext 2>/dev/null; chmod 644 srv.key";
  ASSERT_EQ(std::system(make.c_str()), 0);
  const int tls_port = testing::RedisServer::FreePortForTests();
  testing::RedisServer server({"--tls-port", std::to_string(tls_port), "--tls-cert-file", dir + "/srv.crt",
                               "--tls-key-file", dir + "/srv.key", "--tls-ca-cert-file", dir + "/ca.crt",
                               "--tls-auth-clients", "no"});
  ASSERT_TRUE(server.started());
  const std::string url = "rediss://127.0.0.1:" + std::to_string(tls_port) + "/0";
  // The system's CAs do not know the test CA: refused, saying why.
  unsetenv("TOOLWARDEN_REDIS_CA_FILE");
  auto refused = Client::Open(url);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message().find("certificate"), std::string::npos) << refused.error().message();
  setenv("TOOLWARDEN_REDIS_CA_FILE", (dir + "/ca.crt").c_str(), 1);
  auto c = Client::Open(url);
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ((*c)->endpoint().Describe(), url);
  ASSERT_TRUE((*c)->Command({"SET", "k", std::string(100'000, 'x')}));  // larger than a TLS record
  auto v = (*c)->Command({"GET", "k"});
  ASSERT_TRUE(v);
  EXPECT_EQ(v->str.size(), 100'000u);
  Script script("return ARGV[1]");
  EXPECT_EQ((*c)->Eval(script, {}, {"tls"})->str, "tls");
  // A name the certificate does not carry is refused too.
  auto wrong = Client::Open("rediss://localhost:" + std::to_string(tls_port) + "/0");
  EXPECT_FALSE(wrong);
  // The server goes: an error, then a new server on the port is reached again.
  server.Stop();
  EXPECT_FALSE((*c)->Command({"PING"}));
  unsetenv("TOOLWARDEN_REDIS_CA_FILE");
  std::system(("rm -rf " + dir).c_str());
}

// A primary, its replica and a Sentinel, all real: the client finds the primary through the
// Sentinel, and after the primary dies and the Sentinel promotes the replica, the next commands
// reach the new primary — with every write the old one had acknowledged to a WAIT.
TEST_F(ClientTest, ThroughASentinelTheClientFollowsAFailover) {
  auto primary = std::make_unique<testing::RedisServer>();
  ASSERT_TRUE(primary->started());
  testing::RedisServer replica({"--replicaof", "127.0.0.1", std::to_string(primary->port())});
  ASSERT_TRUE(replica.started());
  auto sentinel = testing::RedisServer::Sentinel(primary->port(), "tw", 300);
  ASSERT_TRUE(sentinel->started());
  auto e = ParseUrl("redis-sentinel://127.0.0.1:" + std::to_string(sentinel->port()) + "/tw");
  ASSERT_TRUE(e);
  auto c = Client::Connect(*e, std::chrono::seconds(2));
  ASSERT_TRUE(c) << c.error().message();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  // Until the replica has synchronized, WAIT answers 0.
  for (;;) {
    ASSERT_TRUE((*c)->Command({"INCR", "n"}));
    auto w = (*c)->Command({"WAIT", "1", "100"});
    if (w && w->integer == 1) break;
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the replica never caught up";
  }
  auto before = (*c)->Command({"GET", "n"});
  ASSERT_TRUE(before);
  primary->Stop();
  // The Sentinel sees it down (300 ms) and promotes the replica; meanwhile commands fail.
  std::optional<Value> after;
  while (!after) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "no failover";
    if (auto r = (*c)->Command({"GET", "n"})) {
      auto role = (*c)->Command({"ROLE"});
      if (role && role->elements[0].str == "master") after = *r;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(after->str, before->str) << "an acknowledged write was lost in the failover";
  EXPECT_TRUE((*c)->Command({"INCR", "n"})) << "the new primary takes writes";
}

}  // namespace
}  // namespace tw::redis
