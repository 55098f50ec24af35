#include "oauth/jwt.h"

#include <gtest/gtest.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>

#include <atomic>
#include <boost/json.hpp>
#include <chrono>
#include <thread>

#include "oauth/issuer.h"
#include "oauth/test_keys.h"

namespace tw::oauth {
namespace {
namespace json = boost::json;

constexpr int64_t kNow = 1'800'000'000;  // seconds
const char* kIssuer = "https://idp.example.com/realms/acme";
const char* kAudience = "https://gw.example.com/mcp";

json::object Claims(int64_t exp = kNow + 300) {
  return json::object{{"iss", kIssuer},
                      {"aud", kAudience},
                      {"sub", "u-123"},
                      {"email", "alice@example.com"},
                      {"groups", json::array{"sre", "admins"}},
                      {"scope", "openid mcp"},
                      {"exp", exp},
                      {"iat", kNow}};
}

Expectation Expect() { return Expectation{kIssuer, {kAudience}, kNow, 60}; }

KeySet SetOf(std::initializer_list<const TestKey*> keys) {
  json::array a;
  for (const TestKey* k : keys) a.push_back(k->Jwk());
  auto set = KeySet::Parse(json::serialize(json::object{{"keys", std::move(a)}}));
  EXPECT_TRUE(set.has_value());
  return std::move(*set);
}

TEST(Base64UrlTest, RoundTripsAndRefusesOtherSpellings) {
  for (std::string s : std::vector<std::string>{"", "f", "fo", "foo", "foob", "fooba", "foobar",
                                                std::string("\xff\xfe\x00", 3)}) {
    EXPECT_EQ(Base64UrlDecode(Base64UrlEncode(s)), s);
  }
  EXPECT_EQ(Base64UrlEncode("\xfb\xff"), "-_8");
  EXPECT_FALSE(Base64UrlDecode("Zm9v="));  // padding
  EXPECT_FALSE(Base64UrlDecode("Zm9+"));   // the other alphabet
  EXPECT_FALSE(Base64UrlDecode("Zm9vY"));  // a length no encoding has
  EXPECT_FALSE(Base64UrlDecode("Zh"));     // trailing bits set: a second spelling of "f"
}

TEST(JwtTest, EveryTakenAlgorithmVerifies) {
  for (const char* alg : {"RS256", "PS256", "ES256", "ES384", "EdDSA"}) {
    TestKey key = TestKey::Make(alg, "k1");
    KeySet set = SetOf({&key});
    Verified v = Verify(key.Sign(Claims()), set, Expect());
    EXPECT_TRUE(v.ok()) << alg << ": " << v.reason;
    EXPECT_EQ(v.claims.at("sub").as_string(), "u-123");
  }
}

// The 401 matrix: each of these is refused, with a reason naming what is wrong.
TEST(JwtTest, RefusesWhatAResourceServerMustRefuse) {
  TestKey key = TestKey::Make("RS256", "k1");
  TestKey other = TestKey::Make("RS256", "k1");  // same kid, another key: a forgery
  KeySet set = SetOf({&key});
  auto refused = [&](const std::string& token, JwtRefusal why, std::string_view words) {
    Verified v = Verify(token, set, Expect());
    EXPECT_EQ(v.refusal, why) << v.reason;
    EXPECT_NE(v.reason.find(words), std::string::npos) << v.reason;
  };
  json::object wrong_aud = Claims();
  wrong_aud["aud"] = "https://other.example.com/mcp";
  refused(key.Sign(wrong_aud), JwtRefusal::kClaims, "audience");
  json::object aud_list = Claims();
  aud_list["aud"] = json::array{"a", kAudience};
  EXPECT_TRUE(Verify(key.Sign(aud_list), set, Expect()).ok());
  refused(key.Sign(Claims(kNow - 61)), JwtRefusal::kClaims, "expired");
  EXPECT_TRUE(Verify(key.Sign(Claims(kNow - 30)), set, Expect()).ok());  // within the leeway
  json::object no_exp = Claims();
  no_exp.erase("exp");
  refused(key.Sign(no_exp), JwtRefusal::kClaims, "no expiry");
  json::object later = Claims();
  later["nbf"] = kNow + 3600;
  refused(key.Sign(later), JwtRefusal::kClaims, "not valid yet");
  json::object wrong_iss = Claims();
  wrong_iss["iss"] = "https://idp.example.com/realms/acme/";  // one character off
  refused(key.Sign(wrong_iss), JwtRefusal::kClaims, "another issuer");
  refused(other.Sign(Claims()), JwtRefusal::kSignature, "signature");
  // A signature of the right key over other claims.
  std::string token = key.Sign(Claims());
  std::string forged = key.Sign(Claims(kNow + 99999));
  refused(forged.substr(0, forged.rfind('.')) + token.substr(token.rfind('.')), JwtRefusal::kSignature,
          "signature");
  // alg none, with and without a signature part; HS256 keyed with the RSA key's public bytes.
  const std::string payload = Base64UrlEncode(json::serialize(Claims()));
  refused(Base64UrlEncode(R"({"alg":"none"})") + "." + payload + ".", JwtRefusal::kAlgorithm, "none");
  refused(Base64UrlEncode(R"({"alg":"HS256","kid":"k1"})") + "." + payload + ".c2ln",
          JwtRefusal::kAlgorithm, "HS256");
  // An RS256 key asked to check an ES256 signature.
  refused(Base64UrlEncode(R"({"alg":"ES256","kid":"k1"})") + "." + payload + ".c2ln",
          JwtRefusal::kUnknownKey, "unknown key");
  refused(Base64UrlEncode(R"({"alg":"RS256","kid":"k1","crit":["exp"]})") + "." + payload + ".c2ln",
          JwtRefusal::kMalformed, "critical");
  refused("a.b", JwtRefusal::kMalformed, "three parts");
  refused("tw_notajwt", JwtRefusal::kMalformed, "three parts");
  refused("e30.e30.e30.e30", JwtRefusal::kMalformed, "three parts");
}

TEST(JwtTest, KeySetSkipsKeysThatCannotVerify) {
  TestKey key = TestKey::Make("ES256", "ec");
  json::array keys{key.Jwk(), json::object{{"kty", "oct"}, {"kid", "h"}, {"k", "c2VjcmV0"}},
                   json::object{{"kty", "RSA"}, {"kid", "enc"}, {"use", "enc"}, {"n", "AQAB"}, {"e", "AQAB"}}};
  auto set = KeySet::Parse(json::serialize(json::object{{"keys", keys}}));
  ASSERT_TRUE(set);
  EXPECT_EQ(set->keys.size(), 1u);
  EXPECT_EQ(set->skipped.size(), 2u);
  EXPECT_FALSE(KeySet::Parse("[]"));
  EXPECT_FALSE(KeySet::Parse("{\"keys\":3}"));
}

TEST(MapClaimsTest, MapsThePrincipalByTheConfiguredClaims) {
  IssuerOptions o;
  o.issuer = kIssuer;
  auto p = MapClaims(Claims(), o);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->subject, "u-123");
  EXPECT_EQ(p->email, "alice@example.com");
  EXPECT_EQ(p->groups, (std::vector<std::string>{"admins", "sre"}));
  EXPECT_TRUE(p->ScopeAllows("github"));
  o.principal_claim = "email";
  o.groups_claim = "roles";
  json::object c = Claims();
  c["roles"] = "b a b";
  c["scope"] = "mcp:github";
  p = MapClaims(c, o);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->subject, "alice@example.com");
  EXPECT_EQ(p->groups, (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(p->ScopeAllows("github"));
  EXPECT_FALSE(p->ScopeAllows("git"));
  EXPECT_FALSE(p->ScopeAllows("githubx"));
  c.erase("email");
  EXPECT_FALSE(MapClaims(c, o));
}

// A provider that rotates its keys: a token of the new key is answered "come back" while the
// set is fetched again, then accepted; a token of the key taken out is refused.
TEST(TrustedIssuerTest, FetchesKeysAgainWhenTheProviderRotatesThem) {
  TestKey old_key = TestKey::Make("RS256", "2026-01");
  TestKey new_key = TestKey::Make("ES256", "2026-02");
  std::mutex mu;
  std::string published = json::serialize(json::object{{"keys", json::array{old_key.Jwk()}}});
  std::atomic<int> fetches{0};
  IssuerOptions o;
  o.issuer = kIssuer;
  o.audiences = {kAudience};
  o.min_refetch_ms = 200;
  Fetcher fetch = [&](const std::string& url) -> Result<std::string> {
    if (url.ends_with("/.well-known/openid-configuration")) {
      return json::serialize(json::object{{"issuer", kIssuer}, {"jwks_uri", std::string(kIssuer) + "/certs"}});
    }
    fetches.fetch_add(1);
    std::lock_guard lock(mu);
    return published;
  };
  TrustedIssuer issuer(o, fetch);
  auto eventually = [](auto pred) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!pred() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return pred();
  };
  const int64_t now_ms = kNow * 1000;
  ASSERT_TRUE(eventually([&] { return issuer.ready(); })) << issuer.last_error();
  auto p = issuer.Authenticate(old_key.Sign(Claims()), now_ms);
  ASSERT_TRUE(p) << p.error().message();
  EXPECT_EQ(p->subject, "u-123");
  {
    std::lock_guard lock(mu);
    published = json::serialize(json::object{{"keys", json::array{new_key.Jwk()}}});
  }
  // Refused while the set was fetched less than min_refetch_ms ago, then "come back" while it
  // is fetched again, then accepted.
  bool asked_back = false;
  ASSERT_TRUE(eventually([&] {
    auto r = issuer.Authenticate(new_key.Sign(Claims()), now_ms);
    if (!r && r.error().code() == ErrorCode::kUnavailable) asked_back = true;
    return r.has_value();
  }));
  EXPECT_TRUE(asked_back);
  auto gone = issuer.Authenticate(old_key.Sign(Claims()), now_ms);
  // The old key is out of the set now: refused once the set is fresh (the refetch it may ask
  // for finds the same set).
  ASSERT_TRUE(eventually([&] {
    auto r = issuer.Authenticate(old_key.Sign(Claims()), now_ms);
    return !r && r.error().code() == ErrorCode::kInvalidArgument;
  }));
  (void)gone;
}

TEST(TrustedIssuerTest, DiscoveryMustNameTheSameIssuer) {
  Fetcher fetch = [](const std::string&) -> Result<std::string> {
    return std::string(R"({"issuer":"https://evil.example.com","jwks_uri":"https://evil.example.com/k"})");
  };
  auto uri = Discover(kIssuer, fetch);
  ASSERT_FALSE(uri);
  EXPECT_NE(uri.error().message().find("another issuer"), std::string::npos);
}

TEST(TrustedIssuerTest, NoKeysYetIsUnavailableNotAccepted) {
  Fetcher down = [](const std::string&) -> Result<std::string> {
    return Fail(Error::Unavailable("connection refused"));
  };
  IssuerOptions o;
  o.issuer = kIssuer;
  o.audiences = {kAudience};
  TrustedIssuer issuer(o, down);
  TestKey key = TestKey::Make("RS256", "k");
  auto r = issuer.Authenticate(key.Sign(Claims()), kNow * 1000);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kUnavailable);
}

TEST(TrustedIssuerTest, ARememberedTokenStillExpiresAndDiesWithItsKey) {
  TestKey key = TestKey::Make("ES256", "k1");
  TestKey next = TestKey::Make("ES256", "k2");
  IssuerOptions o;
  o.issuer = kIssuer;
  o.audiences = {kAudience};
  TrustedIssuer issuer(o, SetOf({&key}));
  const std::string token = key.Sign(Claims(kNow + 10));
  ASSERT_TRUE(issuer.Authenticate(token, kNow * 1000));
  ASSERT_TRUE(issuer.Authenticate(token, kNow * 1000 + 1));  // remembered
  auto late = issuer.Authenticate(token, (kNow + 10 + 61) * 1000);
  ASSERT_FALSE(late);
  EXPECT_NE(late.error().message().find("expired"), std::string::npos);
  ASSERT_TRUE(issuer.Authenticate(token, kNow * 1000));
  issuer.SetKeys(SetOf({&next}));
  auto gone = issuer.Authenticate(token, kNow * 1000);
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace tw::oauth
