#include "config/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace tw::config {
namespace {

using ::testing::HasSubstr;

EnvLookup Env(std::map<std::string, std::string> vars) {
  return [vars](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

TEST(ConfigTest, ReadsServersWithDefaultsAndEnvironment) {
  auto c = ParseConfig(R"(
listen: 127.0.0.1:0
servers:
  github:
    command: npx
    args: ["-y", "@modelcontextprotocol/server-github"]
    env: {GITHUB_TOKEN: "${GH}"}
    policy: policies/github.yaml
  stripe:
    url: https://mcp.stripe.com/mcp
    headers: {Authorization: "Bearer ${STRIPE_KEY}"}
    policy: /etc/tw/stripe.yaml
    pins: warn
    request_timeout: 30s
approvals: {webhook_url: "http://127.0.0.1:9/hook"}
audit: {include_arguments: true}
)",
                       "/srv/tw/toolwarden.yaml", Env({{"GH", "ghp_1"}, {"STRIPE_KEY", "sk_2"}}));
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->listen, "127.0.0.1:0");
  ASSERT_EQ(c->servers.size(), 2u);
  const ServerConfig& gh = c->servers.at("github");
  EXPECT_EQ(gh.command, (std::vector<std::string>{"npx", "-y", "@modelcontextprotocol/server-github"}));
  EXPECT_EQ(gh.env.at(0).second, "ghp_1");
  EXPECT_EQ(gh.policy_path, "/srv/tw/policies/github.yaml");
  EXPECT_EQ(gh.isolation, Isolation::kShared);
  EXPECT_EQ(gh.pins, PinMode::kEnforce);
  const ServerConfig& stripe = c->servers.at("stripe");
  EXPECT_TRUE(stripe.remote());
  EXPECT_EQ(stripe.headers.at(0).second, "Bearer sk_2");
  EXPECT_EQ(stripe.request_timeout_ms, 30000);
  EXPECT_EQ(c->approval_webhook_url, "http://127.0.0.1:9/hook");
  EXPECT_EQ(c->audit_arguments, catalog::ArgumentsKept::kFull);
}

TEST(ConfigTest, ReportsEveryProblemWithItsPosition) {
  auto c = ParseConfig(R"(servers:
  bad__name: {command: x, policy: p.yaml}
  both: {command: x, url: "http://h/mcp", policy: p.yaml}
  nopolicy: {command: x}
  typo: {command: x, policy: p.yaml, isolaton: session}
  secret: {url: "https://h/mcp", headers: {X: "${MISSING}"}, policy: p.yaml}
lisen: 1
)",
                       "tw.yaml", Env({}));
  ASSERT_FALSE(c);
  const std::string m = c.error().message();
  EXPECT_THAT(m, HasSubstr("tw.yaml:2:3: server name \"bad__name\""));
  EXPECT_THAT(m, HasSubstr("tw.yaml:3:9: servers.both needs exactly one of \"command\" or \"url\""));
  EXPECT_THAT(m, HasSubstr("tw.yaml:4:13: servers.nopolicy: missing \"policy\""));
  EXPECT_THAT(m, HasSubstr("tw.yaml:5:38: servers.typo: unknown key \"isolaton\""));
  EXPECT_THAT(m, HasSubstr("environment variable MISSING is not set"));
  EXPECT_THAT(m, HasSubstr("tw.yaml:7:1: unknown key \"lisen\""));
  // The value of a set variable never appears in an error.
  EXPECT_THAT(m, ::testing::Not(HasSubstr("${MISSING}}")));
}

TEST(ConfigTest, EscapedDollarIsLiteral) {
  auto c = ParseConfig("servers:\n  a: {command: echo, args: ['$${HOME}'], policy: p.yaml}\n",
                       "tw.yaml", Env({}));
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->servers.at("a").command.at(1), "${HOME}");
}

TEST(ConfigTest, JsonFilesAreStrictJson) {
  auto c = ParseConfig("{\"servers\": {}, }", "tw.json", Env({}));
  ASSERT_FALSE(c);
  EXPECT_THAT(c.error().message(), HasSubstr("tw.json:1:"));
  EXPECT_THAT(c.error().message(), HasSubstr("invalid JSON"));
}

TEST(ConfigTest, ServerNames) {
  EXPECT_TRUE(ValidServerName("github"));
  EXPECT_TRUE(ValidServerName("server-everything2"));
  EXPECT_FALSE(ValidServerName(""));
  EXPECT_FALSE(ValidServerName("a_b"));
  EXPECT_FALSE(ValidServerName("a+b"));
  EXPECT_FALSE(ValidServerName(std::string(65, 'a')));
}

TEST(ConfigTest, ReadsTheEnforcementSettings) {
  auto c = ParseConfig(R"(
max_sessions: 100
max_sessions_per_grant: 7
trusted_proxies: [10.0.0.5, "::1", 172.16.0.0/12]
state_timeout: 1500ms
servers:
  a:
    command: node
    env: {A_TOKEN: x}
    inherit_env: [HTTPS_PROXY, LC_*]
    unlisted_tools: allow
    schema: warn
    extension_methods: [x-vendor/ping]
    policy: p.yaml
  b:
    command: node
    inherit_env: all
    policy: p.yaml
)",
                       "/srv/tw/toolwarden.yaml", Env({}));
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->max_sessions_per_grant, 7u);
  EXPECT_EQ(c->state_timeout_ms, 1500);
  EXPECT_EQ(c->trusted_proxies, (std::vector<std::string>{"10.0.0.5", "::1", "172.16.0.0/12"}));
  const ServerConfig& a = c->servers.at("a");
  EXPECT_EQ(a.inherit_env, (std::vector<std::string>{"HTTPS_PROXY", "LC_*"}));
  EXPECT_FALSE(a.inherit_all_env);
  EXPECT_EQ(a.unlisted_tools, UnlistedTools::kAllow);
  EXPECT_EQ(a.schema, SchemaMode::kWarn);
  EXPECT_EQ(a.extension_methods, std::vector<std::string>{"x-vendor/ping"});
  EXPECT_TRUE(c->servers.at("b").inherit_all_env);
  EXPECT_EQ(c->servers.at("b").schema, SchemaMode::kEnforce);  // the defaults
  EXPECT_EQ(c->servers.at("b").unlisted_tools, UnlistedTools::kDeny);
  // A changed inherit_env is a different process: a reload must restart it.
  ServerConfig changed = a;
  changed.inherit_env.push_back("HOME");
  EXPECT_FALSE(a.SameUpstream(changed));
}

TEST(ConfigTest, RefusesBadEnforcementSettingsWithPositions) {
  auto c = ParseConfig(R"(servers:
  a:
    command: node
    inherit_env: [GOOD, "BAD-NAME", "1X"]
    unlisted_tools: maybe
    schema: strict
    policy: p.yaml
  r:
    url: https://example.com/mcp
    inherit_env: [HOME]
    policy: p.yaml
max_sessions_per_grant: 0
trusted_proxies: [10.0.0.0/8, proxy.internal]
)",
                       "t.yaml", Env({}));
  ASSERT_FALSE(c);
  const std::string m = c.error().message();
  EXPECT_THAT(m, HasSubstr("t.yaml:4:25: servers.a.inherit_env: \"BAD-NAME\" is not an environment variable name"));
  EXPECT_THAT(m, HasSubstr("t.yaml:4:37: servers.a.inherit_env: \"1X\""));
  EXPECT_THAT(m, HasSubstr("t.yaml:5:21: servers.a.unlisted_tools must be one of \"deny\", \"allow\""));
  EXPECT_THAT(m, HasSubstr("t.yaml:6:13: servers.a.schema must be one of \"enforce\", \"warn\", \"off\""));
  EXPECT_THAT(m, HasSubstr("servers.r: args, env, inherit_env and isolation apply to command servers only"));
  EXPECT_THAT(m, HasSubstr("max_sessions_per_grant"));
  EXPECT_THAT(
      m,
      HasSubstr(
          "t.yaml:13:18: trusted_proxies: \"proxy.internal\" is not an IP address or CIDR range"));
}

TEST(ConfigTest, IdleTimeoutIsForSessionIsolatedServersOnly) {
  auto c = ParseConfig(R"(
servers:
  files:
    command: files-server
    policy: p.yaml
    isolation: session
    idle_timeout: 90s
  shared:
    command: other
    policy: p.yaml
    idle_timeout: 1m
)",
                       "t.yaml", Env({}));
  ASSERT_FALSE(c);
  EXPECT_THAT(c.error().message(),
              HasSubstr("t.yaml:11:19: servers.shared.idle_timeout applies to servers with isolation: session"));
  auto ok = ParseConfig("servers:\n  files:\n    command: f\n    policy: p.yaml\n    isolation: session\n"
                        "    idle_timeout: 90s\n  plain:\n    command: g\n    policy: p.yaml\n    isolation: session\n",
                        "t.yaml", Env({}));
  ASSERT_TRUE(ok) << ok.error().message();
  EXPECT_EQ(ok->servers.at("files").idle_timeout_ms, 90000);
  EXPECT_EQ(ok->servers.at("plain").idle_timeout_ms, 300000);  // five minutes unless set
}

TEST(ConfigTest, OnDriftNamesWhatAChangedToolGets) {
  auto ok = ParseConfig("servers:\n  a:\n    command: x\n    policy: p.yaml\n    on_drift: require_approval\n"
                        "  b:\n    command: y\n    policy: p.yaml\n    on_drift: log\n"
                        "  c:\n    command: z\n    policy: p.yaml\n",
                        "t.yaml", Env({}));
  ASSERT_TRUE(ok) << ok.error().message();
  EXPECT_EQ(ok->servers.at("a").pins, PinMode::kApproval);
  EXPECT_EQ(ok->servers.at("b").pins, PinMode::kWarn);
  EXPECT_EQ(ok->servers.at("c").pins, PinMode::kEnforce);  // block, as ever
  auto both = ParseConfig("servers:\n  a:\n    command: x\n    policy: p.yaml\n    pins: warn\n    on_drift: block\n",
                          "t.yaml", Env({}));
  ASSERT_FALSE(both);
  EXPECT_THAT(both.error().message(), HasSubstr("t.yaml:6:15: servers.a: give either pins or on_drift"));
  auto shadow = ParseConfig("servers:\n  a:\n    command: x\n    policy: p.yaml\n    on_drift: shadow\n", "t.yaml", Env({}));
  ASSERT_TRUE(shadow) << shadow.error().message();
  EXPECT_EQ(shadow->servers.at("a").pins, PinMode::kShadow);
  auto bad = ParseConfig("servers:\n  a:\n    command: x\n    policy: p.yaml\n    on_drift: ignore\n", "t.yaml", Env({}));
  ASSERT_FALSE(bad);
  EXPECT_THAT(bad.error().message(),
              HasSubstr("servers.a.on_drift must be one of \"block\", \"require_approval\", \"shadow\", \"log\""));
}

TEST(ConfigTest, PolicyShadowIsAFileBesideThePolicy) {
  auto ok = ParseConfig("servers:\n  a:\n    command: x\n    policy: p.yaml\n    policy_shadow: drafts/next.yaml\n",
                        "/etc/tw/t.yaml", Env({}));
  ASSERT_TRUE(ok) << ok.error().message();
  EXPECT_EQ(ok->servers.at("a").policy_shadow_path, "/etc/tw/drafts/next.yaml");
  EXPECT_EQ(ok->servers.at("a").policy_path, "/etc/tw/p.yaml");
}

TEST(ConfigTest, AuditArgumentsAreRedactedForAWeekUnlessSaid) {
  const std::string servers = "servers:\n  a: {command: node, policy: p.yaml}\n";
  auto plain = ParseConfig(servers, "t.yaml", Env({}));
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->audit_arguments, catalog::ArgumentsKept::kRedacted);
  EXPECT_EQ(plain->audit_arguments_retention_ms, 7LL * 24 * 3600 * 1000);
  auto set = ParseConfig("audit: {arguments: full, redact: [args.body, args.*.note], arguments_retention: 2d}\n" + servers,
                         "t.yaml", Env({}));
  ASSERT_TRUE(set) << set.error().message();
  EXPECT_EQ(set->audit_arguments, catalog::ArgumentsKept::kFull);
  EXPECT_EQ(set->audit_redact, (std::vector<std::string>{"args.body", "args.*.note"}));
  EXPECT_EQ(set->audit_arguments_retention_ms, 2LL * 24 * 3600 * 1000);
  auto none = ParseConfig("audit: {include_arguments: false, arguments_retention: 0}\n" + servers, "t.yaml", Env({}));
  ASSERT_TRUE(none) << none.error().message();
  EXPECT_EQ(none->audit_arguments, catalog::ArgumentsKept::kNone);
  EXPECT_EQ(none->audit_arguments_retention_ms, 0);
  auto both = ParseConfig("audit: {include_arguments: true, arguments: none}\n" + servers, "t.yaml", Env({}));
  ASSERT_FALSE(both);
  EXPECT_THAT(both.error().message(), HasSubstr("give either arguments or include_arguments"));
  auto word = ParseConfig("audit: {arguments: some, redact: [password]}\n" + servers, "t.yaml", Env({}));
  ASSERT_FALSE(word);
  EXPECT_THAT(word.error().message(),
              HasSubstr("audit.arguments must be one of \"none\", \"redacted\", \"full\""));
  EXPECT_THAT(word.error().message(), HasSubstr("audit.redact: \"password\" is not an argument path"));
}

TEST(ConfigTest, WorkersIsAutoOrACountOfEventLoops) {
  const std::string servers = "servers:\n  a: {command: node, policy: p.yaml}\n";
  auto defaulted = ParseConfig(servers, "t.yaml", Env({}));
  ASSERT_TRUE(defaulted) << defaulted.error().message();
  EXPECT_EQ(defaulted->workers, 0u) << "auto: one loop per core";
  auto autod = ParseConfig("workers: auto\n" + servers, "t.yaml", Env({}));
  ASSERT_TRUE(autod);
  EXPECT_EQ(autod->workers, 0u);
  auto four = ParseConfig("workers: 4\n" + servers, "t.yaml", Env({}));
  ASSERT_TRUE(four);
  EXPECT_EQ(four->workers, 4u);
  for (const char* bad : {"workers: 0\n", "workers: 257\n", "workers: many\n", "workers: -2\n",
                          "workers: [2]\n"}) {
    auto c = ParseConfig(bad + servers, "t.yaml", Env({}));
    ASSERT_FALSE(c) << bad;
    EXPECT_THAT(c.error().message(), HasSubstr("t.yaml:1:10: workers")) << bad;
  }
}

TEST(ConfigTest, AccessLocalIsOneServerWithoutTokensOnHttpOrStdio) {
  auto c = ParseConfig(R"(
access: local
listen: stdio
origin_check: false
client_timeout: 5s
sse_keepalive: 2s
state_fail_mode: open
servers:
  api:
    url: https://mcp.example.com/mcp
    ca_file: certs/ca.pem
    policy: p.yaml
    pins: off
)",
                       "/srv/tw/local.yaml", Env({}));
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->access, Access::kLocal);
  EXPECT_TRUE(c->stdio());
  EXPECT_FALSE(c->origin_check);
  EXPECT_EQ(c->client_timeout_ms, 5000);
  EXPECT_EQ(c->sse_keepalive_ms, 2000);
  EXPECT_EQ(c->state_fail_mode, StateFailMode::kOpen);
  EXPECT_EQ(c->servers.at("api").ca_file, "/srv/tw/certs/ca.pem");
  EXPECT_EQ(c->servers.at("api").pins, PinMode::kOff);
  EXPECT_EQ(PinModeName(PinMode::kOff), "off");
}

TEST(ConfigTest, RefusesAccessAndListenThatCannotWorkTogether) {
  const char* two = R"(access: local
servers:
  a: {command: a, policy: p.yaml}
  b: {command: b, policy: p.yaml}
)";
  auto c = ParseConfig(two, "t.yaml", Env({}));
  ASSERT_FALSE(c);
  EXPECT_THAT(c.error().message(), HasSubstr("t.yaml:1:9: access: local serves exactly one server, not 2"));

  auto stdio = ParseConfig("listen: stdio\nservers:\n  a: {command: a, policy: p.yaml}\n", "t.yaml", Env({}));
  ASSERT_FALSE(stdio);
  EXPECT_THAT(stdio.error().message(), HasSubstr("t.yaml:1:9: listen: stdio needs access: local"));

  auto audit = ParseConfig("access: local\nlisten: stdio\naudit: {log: \"-\"}\nservers:\n  a: {command: a, policy: p.yaml}\n",
                           "t.yaml", Env({}));
  ASSERT_FALSE(audit);
  EXPECT_THAT(audit.error().message(), HasSubstr("cannot be used with listen: stdio"));

  auto words = ParseConfig("access: open\nservers:\n  a: {command: a, policy: p.yaml, pins: maybe, ca_file: x}\n",
                           "t.yaml", Env({}));
  ASSERT_FALSE(words);
  EXPECT_THAT(words.error().message(), HasSubstr("t.yaml:1:9: access must be one of \"tokens\", \"local\""));
  EXPECT_THAT(words.error().message(), HasSubstr("pins must be one of \"enforce\", \"approval\", \"warn\", \"shadow\", \"off\""));
  EXPECT_THAT(words.error().message(), HasSubstr("headers and ca_file apply to url servers only"));
}

}  // namespace
}  // namespace tw::config

namespace tw::config {
namespace {

TEST(ConfigTest, AFleetReplicaNamesItselfAndItsAuditLimits) {
  auto c = ParseConfig(R"(
state: redis://10.0.0.5:6379/2
replica: ${TW_REPLICA}
audit:
  store: sqlite:/var/lib/toolwarden/audit.db
  retention: 30d
  max_size: 20GiB
  min_free_bytes: 500MB
servers:
  a: {command: echo, policy: p.yaml}
  b: {command: echo, policy: p.yaml, state_fail_mode: open}
)",
                       "/etc/tw/tw.yaml", Env({{"TW_REPLICA", "r2"}}));
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->replica, "r2");
  EXPECT_FALSE(c->servers.at("a").state_fail_mode.has_value());
  EXPECT_EQ(c->servers.at("b").state_fail_mode, StateFailMode::kOpen);
  EXPECT_EQ(c->audit_store, "sqlite:/var/lib/toolwarden/audit.db");
  EXPECT_EQ(c->audit_retention_ms, 30LL * 24 * 3600 * 1000);
  EXPECT_EQ(c->audit_max_bytes, 20LL << 30);
  EXPECT_EQ(c->audit_min_free_bytes, 500'000'000);
  EXPECT_EQ(ParseBytes("1048576"), 1048576);
  EXPECT_EQ(ParseBytes("2 KiB"), 2048);
  for (const char* bad : {"", "MB", "5 XB", "1.5GB", "-1", "1234567890123456GB",
                          "999999999999999TB"}) {
    EXPECT_FALSE(ParseBytes(bad).has_value()) << bad;
  }
}

TEST(ConfigTest, FleetAndAuditMistakesPointAtTheirLine) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"replica: \"r 1\"\n", "t.yaml:1:10: replica must be 1-32"},
      {"audit: {store: redis://x:1/0}\n", "audit.store must be sqlite:PATH"},
      {"audit: {max_size: 10KB}\n", "audit.max_size: expected a size"},
      {"audit: {min_free_bytes: lots}\n", "audit.min_free_bytes: expected a size"},
      {"audit: {retention: forever}\n", "audit.retention"},
      {"audit: {keep: 1d}\n", "expected arguments, redact, arguments_retention, include_arguments, log, store"},
      {"audit: {shared: \"redis://x:1/0\"}\n", "audit.shared must be a postgresql://"},
  };
  for (const auto& [text, want] : cases) {
    auto c = ParseConfig(text + "servers:\n  a: {command: echo, policy: p.yaml}\n", "t.yaml", Env({}));
    ASSERT_FALSE(c) << text;
    EXPECT_THAT(c.error().message(), HasSubstr(want)) << text;
  }
}

TEST(ConfigTest, AuthTrustsAProviderAndNamesWhoMayUseAServer) {
  auto c = ParseConfig(R"(
auth:
  public_url: https://gw.example.com/
  access_token_ttl: 15m
  oidc:
    issuer: https://login.example.com/realms/acme
    claims: {principal: email, groups: roles}
servers:
  github: {command: echo, policy: p.yaml, groups: [sre, platform], principals: [alice@example.com]}
)",
                       "t.yaml", Env({}));
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->auth.public_url, "https://gw.example.com");
  EXPECT_EQ(c->auth.access_token_ttl_ms, 15 * 60'000);
  EXPECT_FALSE(c->auth.builtin.has_value());
  ASSERT_TRUE(c->auth.oidc);
  EXPECT_EQ(c->auth.oidc->issuer, "https://login.example.com/realms/acme");
  EXPECT_EQ(c->auth.oidc->principal_claim, "email");
  EXPECT_EQ(c->auth.oidc->groups_claim, "roles");
  EXPECT_EQ(c->auth.oidc->email_claim, "email");
  EXPECT_EQ(c->servers.at("github").groups, (std::vector<std::string>{"sre", "platform"}));
  EXPECT_EQ(c->servers.at("github").principals, (std::vector<std::string>{"alice@example.com"}));
}

TEST(ConfigTest, AuthMistakesAreRefusedWithTheirReason) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"auth: {public_url: \"gw.example.com\"}\n", "auth.public_url must be an origin"},
      {"auth: {public_url: \"https://gw.example.com/mcp\"}\n", "no path"},
      {"auth: {oidc: {issuer: https://idp.example.com}}\n", "auth.oidc needs the audience"},
      {"auth: {oidc: {audience: x}}\n", "auth.oidc: missing \"issuer\""},
      {"auth: {public_url: \"https://gw\", oidc: {issuer: \"http://idp.example.com\"}}\n",
       "must be https:// (http only on a loopback address)"},
      {"auth: {oidc: {issuer: https://i, audience: a, claims: {role: x}}}\n", "expected principal, email, groups"},
      {"auth: {sign_in: true}\n", "expected public_url, builtin"},
      {"auth: {builtin: maybe}\n", "auth.builtin"},
      {"state: redis://127.0.0.1:6379/0\nauth: {builtin: true}\n", "keeps its tokens in a SQLite state"},
  };
  for (const auto& [text, want] : cases) {
    auto c = ParseConfig(text + "servers:\n  a: {command: echo, policy: p.yaml}\n", "t.yaml", Env({}));
    ASSERT_FALSE(c) << text;
    EXPECT_THAT(c.error().message(), HasSubstr(want)) << text;
  }
  // An http issuer on a loopback address (a provider started beside the gateway) is taken.
  auto local = ParseConfig(
      "auth: {public_url: \"http://127.0.0.1:8421\", oidc: {issuer: \"http://127.0.0.1:9000\"}}\n"
      "servers:\n  a: {command: echo, policy: p.yaml}\n",
      "t.yaml", Env({}));
  EXPECT_TRUE(local) << local.error().message();
  auto on_local = ParseConfig("access: local\nauth: {builtin: false}\nservers:\n  a: {command: echo, policy: p.yaml}\n",
                              "t.yaml", Env({}));
  ASSERT_FALSE(on_local);
  EXPECT_THAT(on_local.error().message(), HasSubstr("auth applies to access: tokens"));
}

}  // namespace
}  // namespace tw::config
