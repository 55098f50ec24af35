#include "oauth/authorization_server.h"

#include <gtest/gtest.h>
#include <openssl/sha.h>

#include <boost/json.hpp>
#include <boost/url.hpp>
#include <filesystem>

#include "oauth/jwt.h"
#include "testing/fake_clock.h"

namespace tw::oauth {
namespace {
namespace json = boost::json;

constexpr const char* kBase = "http://127.0.0.1:8421";
const std::vector<std::string> kServers{"github", "db"};

std::string S256(const std::string& v) {
  unsigned char d[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(v.data()), v.size(), d);
  return Base64UrlEncode(std::string(reinterpret_cast<char*>(d), sizeof d));
}

std::string Param(const std::string& url, const std::string& key) {
  boost::urls::url_view u(url);
  auto it = u.params().find(key);
  return it == u.params().end() ? std::string() : std::string((*it).value);
}

struct Event {
  std::string event;
  bool ok;
  std::string grant, client, reason;
};

class AuthorizationServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("tw-as-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    const std::string spec = "sqlite:" + (dir_ / "state.db").string();
    grants_ = std::move(*auth::OpenGrantStore(spec));
    store_ = std::move(*auth::OpenOAuthStore(spec));
    as_ = std::make_unique<AuthorizationServer>(
        *grants_, *store_, clock_, AsOptions{},
        [this](std::string_view e, bool ok, std::string_view g, std::string_view c, std::string_view r) {
          events_.push_back({std::string(e), ok, std::string(g), std::string(c), std::string(r)});
        });
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  AsReply Call(const std::string& method, const std::string& target, const std::string& body = {},
               const std::string& type = "application/x-www-form-urlencoded") {
    AsRequest r;
    r.method = method;
    const size_t q = target.find('?');
    r.path = target.substr(0, q);
    if (q != std::string::npos) r.query = target.substr(q + 1);
    r.body = body;
    r.content_type = type;
    r.base = kBase;
    return as_->Handle(r, kServers);
  }
  static std::string Header(const AsReply& r, const std::string& name) {
    for (const auto& [k, v] : r.headers) {
      if (k == name) return v;
    }
    return {};
  }
  std::string RegisterClient(const std::string& redirect = "http://127.0.0.1:33418/callback") {
    AsReply r = Call("POST", "/oauth/register",
                     R"j({"client_name":"Claude Code (gw)","redirect_uris":[")j" + redirect + R"j("]})j",
                     "application/json");
    EXPECT_EQ(r.status, 201) << r.body;
    return std::string(json::parse(r.body).at("client_id").as_string());
  }
  // Through the consent: the URL the browser is sent back to.
  std::string SignIn(const std::string& client, const std::string& verifier, ConsentChoice choice,
                     const std::string& redirect = "http://127.0.0.1:33418/callback") {
    AsReply r = Call("GET", "/oauth/authorize?response_type=code&client_id=" + client +
                                "&redirect_uri=" + redirect + "&code_challenge=" + S256(verifier) +
                                "&code_challenge_method=S256&state=st8&scope=mcp&resource=" + kBase +
                                "/mcp");
    EXPECT_EQ(r.status, 302) << r.body;
    const std::string location = Header(r, "Location");
    EXPECT_TRUE(location.starts_with("/ui/#/consent/")) << location;
    const std::string id = location.substr(std::string("/ui/#/consent/").size());
    auto back = as_->Decide(id, choice, kServers, kBase);
    EXPECT_TRUE(back) << back.error().message();
    return back ? *back : std::string();
  }
  std::string Form(std::initializer_list<std::pair<std::string, std::string>> params) {
    boost::urls::url u;
    for (const auto& [k, v] : params) u.params().append({k, v});
    return std::string(u.encoded_query());
  }

  testing::FakeClock clock_;
  std::filesystem::path dir_;
  std::unique_ptr<auth::GrantStore> grants_;
  std::unique_ptr<auth::OAuthStore> store_;
  std::unique_ptr<AuthorizationServer> as_;
  std::vector<Event> events_;
};

TEST_F(AuthorizationServerTest, MetadataSaysWhatAnMcpClientNeeds) {
  AsReply r = Call("GET", "/.well-known/oauth-authorization-server");
  ASSERT_EQ(r.status, 200);
  json::object m = json::parse(r.body).as_object();
  EXPECT_EQ(m.at("issuer").as_string(), kBase);
  EXPECT_EQ(m.at("code_challenge_methods_supported"), json::array{"S256"});
  EXPECT_EQ(m.at("registration_endpoint").as_string(), std::string(kBase) + "/oauth/register");
  EXPECT_FALSE(m.contains("client_id_metadata_document_supported"));
  json::object prm = json::parse(ProtectedResourceMetadata(kBase, {kBase}, kServers)).as_object();
  EXPECT_EQ(prm.at("resource").as_string(), std::string(kBase) + "/mcp");
  EXPECT_EQ(prm.at("scopes_supported"), (json::array{"mcp", "mcp:github", "mcp:db"}));
}

TEST_F(AuthorizationServerTest, CodeWithPkceThenRotatingRefreshTokens) {
  const std::string client = RegisterClient();
  const std::string verifier(50, 'v');
  // Another loopback port than registered (RFC 8252 §7.3).
  const std::string back = SignIn(client, verifier, {true, {"github"}, 0, "admin"},
                                  "http://127.0.0.1:40001/callback");
  EXPECT_EQ(Param(back, "state"), "st8");
  EXPECT_EQ(Param(back, "iss"), kBase);
  const std::string code = Param(back, "code");
  ASSERT_FALSE(code.empty()) << back;

  // Every piece of the binding is checked: the code is single-use, so a wrong verifier burns it.
  AsReply wrong = Call("POST", "/oauth/token",
                       Form({{"grant_type", "authorization_code"}, {"code", code}, {"client_id", client},
                             {"redirect_uri", "http://127.0.0.1:40001/callback"},
                             {"code_verifier", std::string(50, 'w')}}));
  EXPECT_EQ(wrong.status, 400);
  EXPECT_NE(wrong.body.find("code_verifier does not match"), std::string::npos) << wrong.body;
  AsReply again = Call("POST", "/oauth/token",
                       Form({{"grant_type", "authorization_code"}, {"code", code}, {"client_id", client},
                             {"redirect_uri", "http://127.0.0.1:40001/callback"},
                             {"code_verifier", verifier}}));
  EXPECT_EQ(again.status, 400);
  EXPECT_NE(again.body.find("unknown, expired or used"), std::string::npos);

  // A fresh sign-in, exchanged properly.
  const std::string code2 = Param(SignIn(client, verifier, {true, {"github"}, 0, "admin"}), "code");
  AsReply ok = Call("POST", "/oauth/token",
                    Form({{"grant_type", "authorization_code"}, {"code", code2}, {"client_id", client},
                          {"redirect_uri", "http://127.0.0.1:33418/callback"},
                          {"code_verifier", verifier}, {"resource", std::string(kBase) + "/mcp"}}));
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(Header(ok, "Cache-Control"), "no-store");
  json::object t = json::parse(ok.body).as_object();
  const std::string access(t.at("access_token").as_string());
  const std::string refresh(t.at("refresh_token").as_string());
  EXPECT_EQ(t.at("scope").as_string(), "mcp:github");
  EXPECT_EQ(t.at("expires_in").as_int64(), 3600);
  auto v = grants_->Authenticate(access, clock_.NowMs());
  ASSERT_TRUE(v && v->grant);
  EXPECT_TRUE(v->grant->name.starts_with("claude-code-gw-")) << v->grant->name;
  EXPECT_EQ(v->grant->principal, "admin");
  EXPECT_EQ(v->grant->client, "Claude Code (gw)");
  EXPECT_EQ(v->grant->servers, std::vector<std::string>{"github"});

  // Rotation: the new refresh token works, the old one used again ends the chain.
  AsReply r1 = Call("POST", "/oauth/token",
                    Form({{"grant_type", "refresh_token"}, {"refresh_token", refresh}, {"client_id", client}}));
  ASSERT_EQ(r1.status, 200) << r1.body;
  json::object t1 = json::parse(r1.body).as_object();
  const std::string access1(t1.at("access_token").as_string());
  EXPECT_NE(t1.at("refresh_token").as_string(), refresh);
  ASSERT_TRUE(grants_->Authenticate(access1, clock_.NowMs())->grant);
  AsReply replay = Call("POST", "/oauth/token",
                        Form({{"grant_type", "refresh_token"}, {"refresh_token", refresh}, {"client_id", client}}));
  EXPECT_EQ(replay.status, 400);
  EXPECT_NE(replay.body.find("used before"), std::string::npos);
  EXPECT_FALSE(grants_->Authenticate(access1, clock_.NowMs())->grant);
  EXPECT_FALSE(grants_->Authenticate(access, clock_.NowMs())->grant);
  AsReply after = Call("POST", "/oauth/token",
                       Form({{"grant_type", "refresh_token"},
                             {"refresh_token", std::string(t1.at("refresh_token").as_string())},
                             {"client_id", client}}));
  EXPECT_EQ(after.status, 400);
  EXPECT_TRUE(std::any_of(events_.begin(), events_.end(), [](const Event& e) {
    return e.event == "oauth.refresh" && !e.ok && e.reason.find("used before") != std::string::npos;
  }));
}

TEST_F(AuthorizationServerTest, AccessTokensExpireAndDieWithTheirGrant) {
  const std::string client = RegisterClient();
  const std::string verifier(43, 'a');
  const std::string code = Param(SignIn(client, verifier, {true, {}, 0, "admin"}), "code");
  AsReply ok = Call("POST", "/oauth/token",
                    Form({{"grant_type", "authorization_code"}, {"code", code}, {"client_id", client},
                          {"redirect_uri", "http://127.0.0.1:33418/callback"}, {"code_verifier", verifier}}));
  ASSERT_EQ(ok.status, 200) << ok.body;
  json::object t = json::parse(ok.body).as_object();
  const std::string access(t.at("access_token").as_string());
  EXPECT_EQ(t.at("scope").as_string(), "mcp");
  auto v = grants_->Authenticate(access, clock_.NowMs());
  ASSERT_TRUE(v->grant);
  const std::string grant = v->grant->name;
  clock_.Advance(3600'000);
  v = grants_->Authenticate(access, clock_.NowMs());
  EXPECT_FALSE(v->grant);
  EXPECT_EQ(v->refusal, auth::Refusal::kExpired);
  AsReply r = Call("POST", "/oauth/token",
                   Form({{"grant_type", "refresh_token"},
                         {"refresh_token", std::string(t.at("refresh_token").as_string())},
                         {"client_id", client}}));
  ASSERT_EQ(r.status, 200) << r.body;
  const std::string access2(json::parse(r.body).at("access_token").as_string());
  ASSERT_TRUE(grants_->Authenticate(access2, clock_.NowMs())->grant);
  ASSERT_TRUE(grants_->Revoke(grant, clock_.NowMs()));
  v = grants_->Authenticate(access2, clock_.NowMs());
  EXPECT_FALSE(v->grant);
  EXPECT_EQ(v->refusal, auth::Refusal::kRevoked);
  // A grant of the same name made again does not inherit the old one's tokens.
  auth::Grant same;
  same.name = grant;
  ASSERT_TRUE(grants_->Create(same, clock_.NowMs() + 1));
  EXPECT_FALSE(grants_->Authenticate(access2, clock_.NowMs())->grant);
}

TEST_F(AuthorizationServerTest, RefusesWhatIsNotExactlyAsRegistered) {
  // Registration: what a browser would run, http elsewhere than loopback, fragments.
  for (const char* uri : {"javascript:alert(1)", "http://evil.example.com/cb", "https://a.example.com/cb#x",
                          "data:text/html,hi", "not a uri"}) {
    AsReply r = Call("POST", "/oauth/register", std::string(R"({"redirect_uris":[")") + uri + "\"]}",
                     "application/json");
    EXPECT_EQ(r.status, 400) << uri;
    EXPECT_NE(r.body.find("invalid_redirect_uri"), std::string::npos) << r.body;
  }
  EXPECT_EQ(Call("POST", "/oauth/register", "[]", "application/json").status, 400);
  EXPECT_EQ(Call("POST", "/oauth/register", R"({"redirect_uris":["cursor://anysphere.cursor-mcp/oauth/callback"]})",
                 "application/json")
                .status,
            201);
  const std::string client = RegisterClient("https://app.example.com/cb");
  const std::string challenge = S256(std::string(43, 'a'));
  // Unknown client, unregistered redirect: shown, never redirected.
  AsReply r = Call("GET", "/oauth/authorize?response_type=code&client_id=twc_nobody&code_challenge=" + challenge +
                              "&code_challenge_method=S256");
  EXPECT_EQ(r.status, 400);
  r = Call("GET", "/oauth/authorize?response_type=code&client_id=" + client +
                      "&redirect_uri=https://app.example.com/cb2&code_challenge=" + challenge +
                      "&code_challenge_method=S256");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(Header(r, "Location"), "");
  // The registered redirect: errors go back there.
  r = Call("GET", "/oauth/authorize?response_type=code&client_id=" + client +
                      "&redirect_uri=https://app.example.com/cb&code_challenge=" + challenge +
                      "&code_challenge_method=plain&state=s");
  EXPECT_EQ(r.status, 302);
  EXPECT_EQ(Param(Header(r, "Location"), "error"), "invalid_request");
  EXPECT_EQ(Param(Header(r, "Location"), "state"), "s");
  r = Call("GET", "/oauth/authorize?response_type=code&client_id=" + client + "&code_challenge=" + challenge +
                      "&code_challenge_method=S256&resource=https://other.example.com/mcp");
  EXPECT_EQ(Param(Header(r, "Location"), "error"), "invalid_target");
  r = Call("GET", "/oauth/authorize?response_type=token&client_id=" + client);
  EXPECT_EQ(Param(Header(r, "Location"), "error"), "unsupported_response_type");
  r = Call("GET", "/oauth/authorize?client_id=a&client_id=b");
  EXPECT_EQ(r.status, 400);
  // Declined: access_denied goes back, no grant made.
  r = Call("GET", "/oauth/authorize?response_type=code&client_id=" + client + "&code_challenge=" + challenge +
                      "&code_challenge_method=S256");
  const std::string id = Header(r, "Location").substr(std::string("/ui/#/consent/").size());
  ASSERT_TRUE(as_->Pending(id));
  EXPECT_FALSE(as_->Decide(id, {true, {"nosuch"}, 0, "admin"}, kServers, kBase));
  auto denied = as_->Decide(id, {false, {}, 0, "admin"}, kServers, kBase);
  ASSERT_TRUE(denied);
  EXPECT_EQ(Param(*denied, "error"), "access_denied");
  EXPECT_FALSE(as_->Pending(id));
  EXPECT_FALSE(as_->Decide(id, {true, {}, 0, "admin"}, kServers, kBase));
  EXPECT_TRUE(grants_->List()->empty());
  // Token requests of other shapes.
  EXPECT_EQ(Call("POST", "/oauth/token", "grant_type=password").status, 400);
  EXPECT_EQ(Call("POST", "/oauth/token", "grant_type=authorization_code", "application/json").status, 400);
  EXPECT_EQ(Call("GET", "/oauth/token").status, 405);
}

TEST_F(AuthorizationServerTest, AFloodOfSignInsPushesOutTheOldestNotTheNext) {
  AsOptions small;
  small.max_pending = 2;
  as_ = std::make_unique<AuthorizationServer>(*grants_, *store_, clock_, small,
                                              [](auto, bool, auto, auto, auto) {});
  const std::string client = RegisterClient();
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    clock_.Advance(1);
    AsReply r = Call("GET", "/oauth/authorize?response_type=code&client_id=" + client + "&code_challenge=" +
                                S256(std::string(43, 'a')) + "&code_challenge_method=S256");
    ASSERT_EQ(r.status, 302);
    ids.push_back(Header(r, "Location").substr(std::string("/ui/#/consent/").size()));
  }
  EXPECT_FALSE(as_->Pending(ids[0]));
  EXPECT_TRUE(as_->Pending(ids[1]));
  EXPECT_TRUE(as_->Pending(ids[2]));
  clock_.Advance(AsOptions{}.consent_ttl_ms);
  EXPECT_FALSE(as_->Pending(ids[2]));  // a consent waits ten minutes at most
}

TEST_F(AuthorizationServerTest, AClientNamedByAUrlIsWhatItsDocumentSays) {
  const std::string url = "https://agent.example.com/oauth/client.json";
  std::string document = R"({"client_id":")" + url + R"(","client_name":"Agent","redirect_uris":["http://127.0.0.1:5000/cb"]})";
  int fetches = 0;
  as_->SetDocumentFetcher([&](const std::string& u) -> Result<std::string> {
    ++fetches;
    EXPECT_EQ(u, url);
    return document;
  });
  EXPECT_NE(Call("GET", "/.well-known/oauth-authorization-server").body.find(R"("client_id_metadata_document_supported":true)"),
            std::string::npos);
  const std::string verifier(43, 'c');
  auto authorize = [&](const std::string& id) {
    return Call("GET", "/oauth/authorize?response_type=code&client_id=" + id + "&code_challenge=" + S256(verifier) +
                           "&code_challenge_method=S256&redirect_uri=http://127.0.0.1:5001/cb");
  };
  AsReply r = authorize(url);
  ASSERT_EQ(r.status, 302) << r.body;
  const std::string id = Header(r, "Location").substr(std::string("/ui/#/consent/").size());
  ASSERT_TRUE(as_->Pending(id));
  EXPECT_EQ(as_->Pending(id)->client.name, "Agent");
  const std::string code = Param(*as_->Decide(id, {true, {}, 0, "admin"}, kServers, kBase), "code");
  AsReply t = Call("POST", "/oauth/token", Form({{"grant_type", "authorization_code"}, {"code", code}, {"client_id", url},
                                                 {"redirect_uri", "http://127.0.0.1:5001/cb"}, {"code_verifier", verifier}}));
  EXPECT_EQ(t.status, 200) << t.body;
  // What is not the client it claims to be, or not a URL a document may be at.
  document = R"({"client_id":"https://other.example.com/c.json","redirect_uris":["http://127.0.0.1:5000/cb"]})";
  r = authorize(url);
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("names another client_id"), std::string::npos);
  document = R"j({"client_id":")j" + url + R"j(","redirect_uris":["javascript:alert(1)"]})j";
  EXPECT_EQ(authorize(url).status, 400);
  const int before = fetches;
  for (const char* bad : {"https://agent.example.com", "https://agent.example.com/", "https://u:p@agent.example.com/c.json"}) {
    EXPECT_EQ(authorize(bad).status, 400) << bad;
  }
  EXPECT_EQ(fetches, before) << "nothing is fetched for a client_id that cannot be a document's URL";
}

}  // namespace
}  // namespace tw::oauth
