#include "auth/grant_store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

#include "common/random.h"
#include "common/sqlite_db.h"
#include "redis/redis_client.h"
#include "testing/state_under_test.h"

namespace tw::auth {
namespace {

Grant Named(std::string name, int64_t expires_ms = 0) {
  Grant g;
  g.name = std::move(name);
  g.expires_ms = expires_ms;
  return g;
}

class GrantStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = std::filesystem::temp_directory_path() / ("tw-grants-" + RandomHex(8) + ".db");
    auto s = OpenGrantStore("sqlite:" + path_.string());
    ASSERT_TRUE(s) << s.error().message();
    store_ = std::move(*s);
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove(path_);
    std::filesystem::remove(path_.string() + "-wal");
    std::filesystem::remove(path_.string() + "-shm");
    std::filesystem::remove(path_.string() + "-grants-epoch");
  }
  std::filesystem::path path_;
  std::unique_ptr<GrantStore> store_;
};

TEST_F(GrantStoreTest, TokenAuthenticatesItsGrantAndOnlyItsHashIsStored) {
  Grant g = Named("ci-runner");
  g.servers = {"github"};
  g.policies = {{"github", "/p/ro.yaml"}};
  auto token = store_->Create(g, 1000);
  ASSERT_TRUE(token) << token.error().message();
  EXPECT_EQ(token->size(), 46u);
  EXPECT_TRUE(token->starts_with("tw_"));
  auto v = store_->Authenticate(*token, 2000);
  ASSERT_TRUE(v);
  ASSERT_TRUE(v->grant);
  EXPECT_EQ(v->grant->name, "ci-runner");
  EXPECT_TRUE(v->grant->MayUse("github"));
  EXPECT_FALSE(v->grant->MayUse("stripe"));
  EXPECT_EQ(v->grant->policies.at("github"), "/p/ro.yaml");
  // A second store on the same file (another process) sees it, and the file holds no token.
  auto other = OpenGrantStore("sqlite:" + path_.string());
  ASSERT_TRUE(other);
  EXPECT_TRUE((*other)->Authenticate(*token, 3000)->grant);
  store_.reset();
  other->reset();
  for (const auto& f : {path_.string(), path_.string() + "-wal"}) {
    std::ifstream in(f, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    EXPECT_EQ(bytes.find(token->substr(3)), std::string::npos) << f;
  }
}

TEST_F(GrantStoreTest, AnEventLoopAuthenticatesWhileAnotherProcessHoldsTheFile) {
  auto token = store_->Create(Named("agent"), 1000);
  ASSERT_TRUE(token) << token.error().message();
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  {
    SqliteNoWait loop;  // reads need no lock; the last-use stamp is best effort
    auto v = store_->Authenticate(*token, 120'000);
    ASSERT_TRUE(v) << v.error().message();
    ASSERT_TRUE(v->grant);
    EXPECT_EQ(v->grant->name, "agent");
    // From memory now, with its last-use stamp due and the file still locked: not waited for.
    v = store_->Authenticate(*token, 240'000);
    ASSERT_TRUE(v && v->grant);
  }
  sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(other);
}

TEST_F(GrantStoreTest, RefusalsSayWhy) {
  auto token = store_->Create(Named("a", 5000), 1000);
  ASSERT_TRUE(token);
  EXPECT_EQ(store_->Authenticate("", 2000)->refusal, Refusal::kMissing);
  EXPECT_EQ(store_->Authenticate("tw_short", 2000)->refusal, Refusal::kMalformed);
  std::string wrong = *token;
  wrong.back() = wrong.back() == 'a' ? 'b' : 'a';
  EXPECT_EQ(store_->Authenticate(wrong, 2000)->refusal, Refusal::kUnknown);
  EXPECT_EQ(store_->Authenticate(*token, 5000)->refusal, Refusal::kExpired);
  EXPECT_TRUE(store_->Authenticate(*token, 4999)->grant);
  ASSERT_TRUE(store_->Revoke("a", 4000));
  EXPECT_EQ(store_->Authenticate(*token, 4001)->refusal, Refusal::kRevoked);
  EXPECT_FALSE(store_->Revoke("a", 4002));  // already revoked
  EXPECT_FALSE(store_->Revoke("nobody", 4002));
}

TEST_F(GrantStoreTest, RequestsAreAnsweredFromMemoryUntilAnyStoreOnTheFileChangesAGrant) {
  auto token = store_->Create(Named("agent"), 1000);
  ASSERT_TRUE(token);
  ASSERT_TRUE(store_->Authenticate(*token, 2000)->grant);
  // Deleted behind toolwarden's back (no epoch bump): the request is still answered from memory,
  // which shows no read of the file happens per request.
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &raw), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(raw, "DELETE FROM grants", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(raw);
  EXPECT_TRUE(store_->Authenticate(*token, 3000)->grant);
  // So is the look-up by name a session makes when it opens.
  auto by_name = store_->Get("agent");
  ASSERT_TRUE(by_name && *by_name);
  EXPECT_EQ((*by_name)->name, "agent");
  // Any change through a grant store — here another one on the file, as another process —
  // empties every process's memory: the next request reads the file again.
  auto other = OpenGrantStore("sqlite:" + path_.string());
  ASSERT_TRUE(other);
  ASSERT_TRUE((*other)->Create(Named("unrelated"), 4000));
  EXPECT_EQ(store_->Authenticate(*token, 5000)->refusal, Refusal::kUnknown);
  by_name = store_->Get("agent");
  ASSERT_TRUE(by_name);
  EXPECT_FALSE(*by_name);
}

TEST_F(GrantStoreTest, ARevocationOrExpiryRefusesTheNextRequestOfAGrantInMemory) {
  auto token = store_->Create(Named("agent", 10'000), 1000);
  auto other_token = store_->Create(Named("other"), 1000);
  ASSERT_TRUE(token && other_token);
  ASSERT_TRUE(store_->Authenticate(*token, 2000)->grant);
  ASSERT_TRUE(store_->Authenticate(*other_token, 2000)->grant);
  EXPECT_EQ(store_->Authenticate(*token, 10'000)->refusal, Refusal::kExpired);
  auto other = OpenGrantStore("sqlite:" + path_.string());
  ASSERT_TRUE(other);
  ASSERT_TRUE((*other)->Revoke("other", 3000));
  EXPECT_EQ(store_->Authenticate(*other_token, 3001)->refusal, Refusal::kRevoked);
  // The last use is recorded at most once a minute, also when answered from memory.
  auto again = store_->Create(Named("stamped"), 1000);
  ASSERT_TRUE(store_->Authenticate(*again, 70'000)->grant);
  ASSERT_TRUE(store_->Authenticate(*again, 71'000)->grant);
  ASSERT_TRUE(store_->Authenticate(*again, 131'000)->grant);
  auto g = (*other)->Get("stamped");
  ASSERT_TRUE(g && *g);
  EXPECT_EQ((*g)->last_used_ms, 131'000);
}

TEST_F(GrantStoreTest, ActiveNamesAreUniqueRevokedOnesCanBeReplaced) {
  auto first = store_->Create(Named("bot"), 1);
  ASSERT_TRUE(first);
  EXPECT_FALSE(store_->Create(Named("bot"), 2));
  ASSERT_TRUE(store_->Revoke("bot", 3));
  auto second = store_->Create(Named("bot"), 4);
  ASSERT_TRUE(second);
  EXPECT_FALSE(store_->Authenticate(*first, 5)->grant);
  EXPECT_TRUE(store_->Authenticate(*second, 5)->grant);
  EXPECT_FALSE(store_->Create(Named("no spaces"), 6));
  auto list = store_->List();
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ(list->front().revoked_ms, 0);
}

TEST_F(GrantStoreTest, AdminTokenIsCreatedOnceAndCanBeReset) {
  auto first = store_->EnsureAdminToken(1);
  ASSERT_TRUE(first && *first);
  EXPECT_TRUE((*first)->starts_with("twa_"));
  EXPECT_FALSE(*store_->EnsureAdminToken(2));  // not shown again
  EXPECT_TRUE(*store_->IsAdminToken(**first));
  // A grant token is not an admin token, and the other way round.
  auto grant = store_->Create(Named("g"), 3);
  EXPECT_FALSE(*store_->IsAdminToken(*grant));
  EXPECT_FALSE(store_->Authenticate(**first, 3)->grant);
  auto reset = store_->ResetAdminTokens(4);
  ASSERT_TRUE(reset);
  EXPECT_FALSE(*store_->IsAdminToken(**first));
  EXPECT_TRUE(*store_->IsAdminToken(*reset));
}

// Whether `fn` holds now or, polled, within `ms`.
template <typename Fn>
bool Eventually(Fn fn, int ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  for (;;) {
    if (fn()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

// What every store that gateways share (a SQLite file on one host, Redis for a fleet) does.
class SharedGrantStoreTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (!state_.skip().empty()) GTEST_SKIP() << state_.skip();
    a_ = Open();
    b_ = Open();
  }
  std::unique_ptr<GrantStore> Open() {
    auto s = OpenGrantStore(state_.spec());
    EXPECT_TRUE(s.has_value()) << (s ? "" : s.error().message());
    return s ? std::move(*s) : nullptr;
  }
  testing::StateUnderTest state_{GetParam()};
  std::unique_ptr<GrantStore> a_, b_;  // two gateways
};

TEST_P(SharedGrantStoreTest, AGrantMadeThroughOneGatewayIsJudgedTheSameByAnother) {
  Grant g = Named("ci-bot", 1'000'000);
  g.servers = {"github", "db"};
  g.policies = {{"db", "/etc/tw/db-readonly.yaml"}};
  auto token = a_->Create(g, 1'000);
  ASSERT_TRUE(token) << token.error().message();
  auto v = b_->Authenticate(*token, 70'000);
  ASSERT_TRUE(v && v->grant);
  EXPECT_EQ(v->grant->name, "ci-bot");
  EXPECT_EQ(v->grant->servers, g.servers);
  EXPECT_EQ(v->grant->policies, g.policies);
  EXPECT_EQ(v->grant->created_ms, 1'000);
  EXPECT_EQ(v->grant->last_used_ms, 70'000);
  EXPECT_EQ((*a_->Get("ci-bot"))->last_used_ms, 70'000);
  // Refusals, each for its reason, whichever gateway answers.
  EXPECT_EQ(b_->Authenticate(*token, 1'000'000)->refusal, Refusal::kExpired);
  EXPECT_EQ(b_->Authenticate("", 70'000)->refusal, Refusal::kMissing);
  EXPECT_EQ(b_->Authenticate("tw_short", 70'000)->refusal, Refusal::kMalformed);
  std::string forged = *token;
  forged.back() = forged.back() == 'a' ? 'b' : 'a';
  EXPECT_EQ(b_->Authenticate(forged, 70'000)->refusal, Refusal::kUnknown);
  // A revocation through one refuses the next request through the other: at once on a shared
  // file; on Redis once the change message has reached it (well under a second).
  ASSERT_TRUE(b_->Revoke("ci-bot", 80'000));
  EXPECT_TRUE(Eventually([&] { return a_->Authenticate(*token, 80'001)->refusal == Refusal::kRevoked; },
                         GetParam() == "sqlite" ? 0 : 2000));
  EXPECT_FALSE(a_->Revoke("ci-bot", 80'002));
  EXPECT_FALSE(b_->Revoke("nobody", 80'002));
  // Replaced: the old token names nothing, the new one works everywhere.
  EXPECT_FALSE(b_->Create(Named("bad name"), 90'000));
  auto again = b_->Create(Named("ci-bot"), 90'000);
  ASSERT_TRUE(again);
  EXPECT_FALSE(a_->Create(Named("ci-bot"), 90'001));
  EXPECT_EQ(a_->Authenticate(*token, 90'002)->refusal, Refusal::kUnknown);
  EXPECT_TRUE(a_->Authenticate(*again, 90'002)->grant);
  auto list = a_->List();
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 1u);
  EXPECT_TRUE(list->front().servers.empty());
}

TEST_P(SharedGrantStoreTest, OneAdminTokenForEveryGateway) {
  auto first = a_->EnsureAdminToken(1);
  ASSERT_TRUE(first && *first);
  EXPECT_FALSE(*b_->EnsureAdminToken(2));  // the fleet has one already
  EXPECT_TRUE(*b_->IsAdminToken(**first));
  auto reset = b_->ResetAdminTokens(3);
  ASSERT_TRUE(reset);
  EXPECT_FALSE(*a_->IsAdminToken(**first));
  EXPECT_TRUE(*a_->IsAdminToken(*reset));
  EXPECT_FALSE(*a_->IsAdminToken("twa_x"));
}

// A server can go away; a file does not.
class RedisGrantStoreTest : public SharedGrantStoreTest {};

TEST_P(RedisGrantStoreTest, AStoreThatCannotBeReachedIsAnErrorNeverARefusalOrAGrant) {
  auto token = a_->Create(Named("bot"), 1);
  ASSERT_TRUE(token);
  state_.redis()->Stop();
  auto v = b_->Authenticate(*token, 2);
  ASSERT_FALSE(v.has_value());
  EXPECT_NE(v.error().message().find("checking a grant token"), std::string::npos) << v.error().message();
  // While it stays away, requests fail at once (no connect per request) and say so.
  auto again = b_->Authenticate(*token, 3);
  ASSERT_FALSE(again.has_value());
  EXPECT_FALSE(b_->IsAdminToken("twa_0000000000000000000000000000000000000000000").has_value());
}

TEST_P(RedisGrantStoreTest, RequestsAreAnsweredFromMemoryUntilAnyReplicaChangesAGrant) {
  auto token = a_->Create(Named("bot"), 1);
  ASSERT_TRUE(token);
  const redis::Stats& stats = redis::ProcessStats();
  // Once a's subscription is up, a request costs no command.
  EXPECT_TRUE(Eventually([&] {
    (void)a_->Authenticate(*token, 70'000);
    const uint64_t before = stats.commands.load();
    auto v = a_->Authenticate(*token, 70'001);
    return v && v->grant && stats.commands.load() == before;
  }, 2000));
  // A grant made elsewhere empties the cache too (any change does), and the next request asks.
  ASSERT_TRUE(b_->Create(Named("other"), 70'002));
  EXPECT_TRUE(Eventually([&] {
    const uint64_t before = stats.commands.load();
    return a_->Authenticate(*token, 70'003)->grant && stats.commands.load() > before;
  }, 2000));
  // A grant read from memory is still read from Redis once a minute (its use stamped).
  const uint64_t before = stats.commands.load();
  EXPECT_TRUE(a_->Authenticate(*token, 140'004)->grant);
  EXPECT_GT(stats.commands.load(), before);
  EXPECT_EQ((*b_->Get("bot"))->last_used_ms, 140'004);
  // A revocation reaches it.
  ASSERT_TRUE(b_->Revoke("bot", 140'005));
  EXPECT_TRUE(Eventually([&] { return a_->Authenticate(*token, 140'006)->refusal == Refusal::kRevoked; }, 2000));
}

TEST_P(RedisGrantStoreTest, WhileItCannotHearChangesItAsksRedisEveryTime) {
  auto token = a_->Create(Named("bot"), 1);
  ASSERT_TRUE(token);
  (void)a_->Authenticate(*token, 70'000);
  // Redis restarts on the same port without its data: the cached grant must not outlive it.
  const int port = state_.redis()->port();
  state_.redis()->Stop();
  testing::RedisServer again({}, port);
  ASSERT_TRUE(again.started());
  EXPECT_TRUE(Eventually([&] {
    auto v = a_->Authenticate(*token, 70'001);
    return v && !v->grant && v->refusal == Refusal::kUnknown;
  }, 5000));
}

INSTANTIATE_TEST_SUITE_P(Stores, SharedGrantStoreTest, ::testing::Values("sqlite", "redis"));
INSTANTIATE_TEST_SUITE_P(Stores, RedisGrantStoreTest, ::testing::Values("redis"));

}  // namespace
}  // namespace tw::auth

namespace tw::auth {
namespace {

TEST(BearerTokenTest, AcceptsOnlyTheBearerScheme) {
  EXPECT_EQ(BearerToken("Bearer tw_abc"), "tw_abc");
  EXPECT_EQ(BearerToken("bearer  tw_abc "), "tw_abc");
  EXPECT_EQ(BearerToken(""), "");
  EXPECT_FALSE(BearerToken("Basic dXNlcjpwYXNz"));
  EXPECT_FALSE(BearerToken("Bearer"));
  EXPECT_FALSE(BearerToken("tw_abc"));
}

}  // namespace
}  // namespace tw::auth
