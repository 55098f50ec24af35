#include "config/config.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/address_set.h"
#include "policy/loader.h"
#include "policy/policy.h"
#include "policy/yaml_reader.h"

namespace tw::config {

namespace fs = std::filesystem;

namespace {

using policy::Diagnostic;

class ConfigReader : public policy::YamlReader {
 public:
  ConfigReader(std::vector<Diagnostic>& diags, const EnvLookup& env, fs::path base)
      : YamlReader(diags), env_(env), base_(std::move(base)) {}

  // Every string, with ${VAR} references replaced.
  bool ReadString(const YAML::Node& node, const std::string& where, std::string& out) override {
    std::string raw;
    if (!YamlReader::ReadString(node, where, raw)) return false;
    auto expanded = ExpandVariables(raw, env_);
    if (!expanded) {
      Error(node, where + ": " + expanded.error().message());
      return false;
    }
    out = std::move(*expanded);
    return true;
  }

  bool Pairs(const YAML::Node& node, const std::string& where,
             std::vector<std::pair<std::string, std::string>>& out) {
    if (!node.IsMap()) {
      Error(node, where + " must be a mapping of names to strings");
      return false;
    }
    ForEachKey(node, where, [&](const std::string& key, const YAML::Node&, const YAML::Node& v) {
      std::string value;
      if (ReadString(v, where + "." + key, value)) out.emplace_back(key, std::move(value));
    });
    return true;
  }

  bool DurationMs(const YAML::Node& node, const std::string& where, int64_t& out) {
    std::string text;
    if (!ReadString(node, where, text)) return false;
    auto ms = policy::ParseDurationMs(text);
    if (!ms) {
      Error(node, where + ": " + ms.error().message());
      return false;
    }
    out = *ms;
    return true;
  }

  // A size: whole bytes, or a number with KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB,
  // TiB (powers of 1024); at least `min`.
  bool Bytes(const YAML::Node& node, const std::string& where, int64_t min, int64_t& out) {
    std::string text;
    if (!ReadString(node, where, text)) return false;
    auto n = ParseBytes(text);
    if (!n || *n < min) {
      Error(node, where + ": expected a size such as 500MB, 2GiB or 1048576" +
                      (min > 0 ? " (at least " + std::to_string(min) + " bytes)" : std::string()));
      return false;
    }
    out = *n;
    return true;
  }

  void Root(const YAML::Node& root, Config& c) {
    if (!root.IsMap()) {
      Error(root, "the config must be a mapping with \"servers\"");
      return;
    }
    ForEachKey(root, "config", [&](const std::string& key, const YAML::Node& k,
                                   const YAML::Node& v) {
      if (key == "listen") {
        ReadString(v, "listen", c.listen);
      } else if (key == "state") {
        ReadString(v, "state", c.state);
      } else if (key == "replica") {
        if (ReadString(v, "replica", c.replica) && !ValidReplicaName(c.replica)) {
          Error(v, "replica must be 1-32 letters, digits, '_' or '-'");
        }
      } else if (key == "access") {
        ReadChoice(v, "access", {{"tokens", Access::kTokens}, {"local", Access::kLocal}}, c.access);
      } else if (key == "state_fail_mode") {
        ReadChoice(v, "state_fail_mode",
                   {{"closed", StateFailMode::kClosed}, {"open", StateFailMode::kOpen}},
                   c.state_fail_mode);
      } else if (key == "origin_check") {
        ReadBool(v, "origin_check", c.origin_check);
      } else if (key == "client_timeout") {
        DurationMs(v, "client_timeout", c.client_timeout_ms);
      } else if (key == "sse_keepalive") {
        DurationMs(v, "sse_keepalive", c.sse_keepalive_ms);
      } else if (key == "allowed_hosts") {
        ReadStrings(v, "allowed_hosts", c.allowed_hosts);
      } else if (key == "allowed_origins") {
        ReadStrings(v, "allowed_origins", c.allowed_origins);
      } else if (key == "workers") {
        if (v.IsScalar() && v.Scalar() == "auto") {
          c.workers = 0;
        } else if (int64_t n = 0; ReadInt(v, "workers", 1, n)) {
          if (n > kMaxWorkers) {
            Error(v, "workers must be \"auto\" or at most " + std::to_string(kMaxWorkers));
          } else {
            c.workers = static_cast<size_t>(n);
          }
        }
      } else if (key == "max_sessions") {
        int64_t n = 0;
        if (ReadInt(v, "max_sessions", 1, n)) c.max_sessions = static_cast<size_t>(n);
      } else if (key == "max_sessions_per_grant") {
        int64_t n = 0;
        if (ReadInt(v, "max_sessions_per_grant", 1, n)) {
          c.max_sessions_per_grant = static_cast<size_t>(n);
        }
      } else if (key == "trusted_proxies") {
        if (ReadStrings(v, "trusted_proxies", c.trusted_proxies)) {
          if (auto set = AddressSet::Parse(c.trusted_proxies); !set) {
            Error(v, "trusted_proxies: " + set.error().message());
          }
        }
      } else if (key == "max_body_bytes") {
        int64_t n = 0;
        if (ReadInt(v, "max_body_bytes", 1024, n)) c.max_body_bytes = static_cast<size_t>(n);
      } else if (key == "session_idle") {
        DurationMs(v, "session_idle", c.session_idle_ms);
      } else if (key == "shutdown_timeout") {
        DurationMs(v, "shutdown_timeout", c.shutdown_timeout_ms);
      } else if (key == "state_timeout") {
        DurationMs(v, "state_timeout", c.state_timeout_ms);
      } else if (key == "servers") {
        Servers(v, c);
      } else if (key == "approvals") {
        Section(v, "approvals", [&](const std::string& sk, const YAML::Node& skn,
                                    const YAML::Node& sv) {
          if (sk == "webhook_url") {
            if (ReadString(sv, "approvals.webhook_url", c.approval_webhook_url) &&
                !c.approval_webhook_url.starts_with("http://") &&
                !c.approval_webhook_url.starts_with("https://")) {
              Error(sv, "approvals.webhook_url must be an http:// or https:// URL");
            }
          } else {
            Error(skn, "approvals: unknown key \"" + sk + "\" (expected webhook_url)");
          }
        });
      } else if (key == "auth") {
        Auth(v, c.auth);
      } else if (key == "audit") {
        Section(v, "audit", [&](const std::string& sk, const YAML::Node& skn,
                                const YAML::Node& sv) {
          if (sk == "include_arguments") {
            // The older spelling: true is arguments: full, false arguments: none.
            bool include = false;
            if (ReadBool(sv, "audit.include_arguments", include)) {
              c.audit_arguments = include ? catalog::ArgumentsKept::kFull : catalog::ArgumentsKept::kNone;
            }
            if (v["arguments"]) {
              Error(skn, "audit: give either arguments or include_arguments (include_arguments: true is "
                         "arguments: full)");
            }
          } else if (sk == "arguments") {
            ReadChoice(sv, "audit.arguments",
                       {{"none", catalog::ArgumentsKept::kNone},
                        {"redacted", catalog::ArgumentsKept::kRedacted},
                        {"full", catalog::ArgumentsKept::kFull}},
                       c.audit_arguments);
          } else if (sk == "redact") {
            if (ReadStrings(sv, "audit.redact", c.audit_redact)) {
              if (auto r = catalog::ArgumentRedactor::Make(c.audit_arguments, c.audit_redact); !r) {
                Error(sv, "audit.redact: " + r.error().message());
              }
            }
          } else if (sk == "arguments_retention") {
            if (sv.IsScalar() && sv.Scalar() == "0") {
              c.audit_arguments_retention_ms = 0;
            } else {
              DurationMs(sv, "audit.arguments_retention", c.audit_arguments_retention_ms);
            }
          } else if (sk == "log") {
            ReadString(sv, "audit.log", c.audit_log);
          } else if (sk == "shared") {
            if (ReadString(sv, "audit.shared", c.audit_shared) &&
                !c.audit_shared.starts_with("postgresql://") && !c.audit_shared.starts_with("postgres://")) {
              Error(sv, "audit.shared must be a postgresql://HOST[:PORT]/DATABASE URL");
            }
          } else if (sk == "retention") {
            DurationMs(sv, "audit.retention", c.audit_retention_ms);
          } else if (sk == "max_size") {
            Bytes(sv, "audit.max_size", 1 << 20, c.audit_max_bytes);
          } else if (sk == "min_free_bytes") {
            Bytes(sv, "audit.min_free_bytes", 0, c.audit_min_free_bytes);
          } else if (sk == "store") {
            if (ReadString(sv, "audit.store", c.audit_store) &&
                !(c.audit_store.starts_with("sqlite:") && c.audit_store.size() > 7)) {
              Error(sv, "audit.store must be sqlite:PATH (records are made durable on this "
                        "host before a call is forwarded)");
            }
          } else {
            Error(skn, "audit: unknown key \"" + sk +
                           "\" (expected arguments, redact, arguments_retention, include_arguments, "
                           "log, store, shared, retention, max_size, min_free_bytes)");
          }
        });
      } else {
        Error(k, "unknown key \"" + key +
                     "\" (expected listen, access, state, state_fail_mode, state_timeout, replica, "
                     "allowed_hosts, allowed_origins, origin_check, trusted_proxies, "
                     "max_sessions, max_sessions_per_grant, max_body_bytes, session_idle, "
                     "client_timeout, sse_keepalive, shutdown_timeout, workers, servers, "
                     "approvals, audit, auth)");
      }
    });
    if (!root["servers"]) Error(root, "missing \"servers\"");
    if (root["servers"] && error_count() == 0) {
      if (auto ok = CheckConfig(c); !ok) {
        const YAML::Node& at = c.stdio() && root["listen"] ? root["listen"] : root["servers"];
        Error(root["access"] ? root["access"] : at, ok.error().message());
      }
    }
  }

  static bool HttpUrl(const std::string& url) {
    return (url.starts_with("https://") && url.size() > 8) || (url.starts_with("http://") && url.size() > 7);
  }

  void Auth(const YAML::Node& v, AuthConfig& a) {
    Section(v, "auth", [&](const std::string& sk, const YAML::Node& skn, const YAML::Node& sv) {
      if (sk == "public_url") {
        if (ReadString(sv, "auth.public_url", a.public_url)) {
          while (a.public_url.ends_with("/")) a.public_url.pop_back();
          if (!HttpUrl(a.public_url) || a.public_url.find_first_of("?#", 8) != std::string::npos ||
              a.public_url.find('/', a.public_url.find("//") + 2) != std::string::npos) {
            Error(sv, "auth.public_url must be an origin such as https://gw.example.com (no path)");
          }
        }
      } else if (sk == "client_metadata") {
        Section(sv, "auth.client_metadata", [&](const std::string& ck, const YAML::Node& ckn,
                                                const YAML::Node& cv) {
          if (ck == "enabled") {
            ReadBool(cv, "auth.client_metadata.enabled", a.client_metadata.enabled);
          } else if (ck == "private_addresses") {
            ReadBool(cv, "auth.client_metadata.private_addresses", a.client_metadata.private_addresses);
          } else if (ck == "ca_file") {
            std::string p;
            if (ReadString(cv, "auth.client_metadata.ca_file", p)) {
              a.client_metadata.ca_file = (base_ / p).lexically_normal().string();
            }
          } else {
            Error(ckn, "auth.client_metadata: unknown key \"" + ck + "\" (expected enabled, private_addresses, ca_file)");
          }
        });
      } else if (sk == "credential_key_file") {
        std::string p;
        if (ReadString(sv, "auth.credential_key_file", p)) a.credential_key_file = (base_ / p).lexically_normal().string();
      } else if (sk == "builtin") {
        bool on = true;
        if (ReadBool(sv, "auth.builtin", on)) a.builtin = on;
      } else if (sk == "access_token_ttl") {
        DurationMs(sv, "auth.access_token_ttl", a.access_token_ttl_ms);
      } else if (sk == "refresh_token_ttl") {
        DurationMs(sv, "auth.refresh_token_ttl", a.refresh_token_ttl_ms);
      } else if (sk == "oidc") {
        OidcConfig o;
        Section(sv, "auth.oidc", [&](const std::string& ok, const YAML::Node& okn, const YAML::Node& ov) {
          if (ok == "issuer") {
            if (ReadString(ov, "auth.oidc.issuer", o.issuer) && !HttpUrl(o.issuer)) {
              Error(ov, "auth.oidc.issuer must be the identity provider's https:// URL");
            }
          } else if (ok == "audience") {
            if (ov.IsScalar()) {
              std::string one;
              if (ReadString(ov, "auth.oidc.audience", one)) o.audiences = {one};
            } else {
              ReadStrings(ov, "auth.oidc.audience", o.audiences);
            }
          } else if (ok == "jwks_uri") {
            if (ReadString(ov, "auth.oidc.jwks_uri", o.jwks_uri) && !HttpUrl(o.jwks_uri)) {
              Error(ov, "auth.oidc.jwks_uri must be an https:// URL");
            }
          } else if (ok == "console") {
            Section(ov, "auth.oidc.console", [&](const std::string& ck, const YAML::Node& ckn,
                                                 const YAML::Node& cv) {
              if (ck == "client_id") {
                ReadString(cv, "auth.oidc.console.client_id", o.console.client_id);
              } else if (ck == "client_secret") {
                ReadString(cv, "auth.oidc.console.client_secret", o.console.client_secret);
              } else if (ck == "admins_group") {
                ReadString(cv, "auth.oidc.console.admins_group", o.console.admins_group);
              } else if (ck == "scopes") {
                ReadString(cv, "auth.oidc.console.scopes", o.console.scopes);
              } else {
                Error(ckn, "auth.oidc.console: unknown key \"" + ck +
                               "\" (expected client_id, client_secret, admins_group, scopes)");
              }
            });
            if (o.console.client_id.empty()) Error(ov, "auth.oidc.console: missing \"client_id\"");
          } else if (ok == "claims") {
            Section(ov, "auth.oidc.claims", [&](const std::string& ck, const YAML::Node& ckn,
                                                const YAML::Node& cv) {
              if (ck == "principal") {
                ReadString(cv, "auth.oidc.claims.principal", o.principal_claim);
              } else if (ck == "email") {
                ReadString(cv, "auth.oidc.claims.email", o.email_claim);
              } else if (ck == "groups") {
                ReadString(cv, "auth.oidc.claims.groups", o.groups_claim);
              } else {
                Error(ckn, "auth.oidc.claims: unknown key \"" + ck + "\" (expected principal, email, groups)");
              }
            });
          } else {
            Error(okn, "auth.oidc: unknown key \"" + ok + "\" (expected issuer, audience, jwks_uri, claims, console)");
          }
        });
        if (o.issuer.empty() && sv.IsMap()) Error(sv, "auth.oidc: missing \"issuer\"");
        a.oidc = std::move(o);
      } else {
        Error(skn, "auth: unknown key \"" + sk +
                       "\" (expected public_url, builtin, access_token_ttl, refresh_token_ttl, oidc, "
                       "credential_key_file, client_metadata)");
      }
    });
  }

  template <typename Fn>
  void Section(const YAML::Node& v, const std::string& where, Fn fn) {
    if (!v.IsMap()) {
      Error(v, where + " must be a mapping");
      return;
    }
    ForEachKey(v, where, fn);
  }

  void Servers(const YAML::Node& v, Config& c) {
    if (!v.IsMap()) {
      Error(v, "servers must be a mapping of server names to their settings");
      return;
    }
    ForEachKey(v, "servers", [&](const std::string& name, const YAML::Node& k,
                                 const YAML::Node& entry) {
      if (!ValidServerName(name)) {
        Error(k, "server name \"" + name +
                     "\" must be 1-64 letters, digits or '-' (tools are named server__tool)");
        return;
      }
      ServerConfig s;
      s.name = name;
      if (Server(entry, "servers." + name, s)) c.servers.emplace(name, std::move(s));
    });
  }

  // Reads one of a closed set of words into its enum; anything else is an error naming them.
  template <typename E>
  void ReadChoice(const YAML::Node& v, const std::string& where,
                  std::initializer_list<std::pair<std::string_view, E>> choices, E& out) {
    std::string text;
    if (!ReadString(v, where, text)) return;
    std::string names;
    for (const auto& [word, value] : choices) {
      if (word == text) {
        out = value;
        return;
      }
      names += (names.empty() ? "\"" : ", \"") + std::string(word) + "\"";
    }
    Error(v, where + " must be one of " + names);
  }

  bool Server(const YAML::Node& entry, const std::string& where, ServerConfig& s) {
    if (!entry.IsMap()) {
      Error(entry, where + " must be a mapping with command or url, and policy");
      return false;
    }
    const size_t errors = error_count();
    std::string command;
    std::vector<std::string> args;
    YAML::Node isolation_node(YAML::NodeType::Undefined);
    YAML::Node inherit_node(YAML::NodeType::Undefined);
    YAML::Node idle_node(YAML::NodeType::Undefined);
    YAML::Node pins_node(YAML::NodeType::Undefined);
    YAML::Node drift_node(YAML::NodeType::Undefined);
    ForEachKey(entry, where, [&](const std::string& key, const YAML::Node& k,
                                 const YAML::Node& v) {
      if (key == "command") {
        ReadString(v, where + ".command", command);
      } else if (key == "args") {
        ReadStrings(v, where + ".args", args);
      } else if (key == "env") {
        Pairs(v, where + ".env", s.env);
      } else if (key == "url") {
        if (ReadString(v, where + ".url", s.url) && !s.url.starts_with("http://") &&
            !s.url.starts_with("https://")) {
          Error(v, where + ".url must be an http:// or https:// URL");
        }
      } else if (key == "headers") {
        Pairs(v, where + ".headers", s.headers);
      } else if (key == "policy") {
        std::string p;
        if (ReadString(v, where + ".policy", p)) s.policy_path = (base_ / p).lexically_normal().string();
      } else if (key == "policy_shadow") {
        std::string p;
        if (ReadString(v, where + ".policy_shadow", p)) {
          s.policy_shadow_path = (base_ / p).lexically_normal().string();
        }
      } else if (key == "pins") {
        pins_node = v;
        ReadChoice(v, where + ".pins",
                   {{"enforce", PinMode::kEnforce}, {"approval", PinMode::kApproval},
                    {"warn", PinMode::kWarn}, {"shadow", PinMode::kShadow}, {"off", PinMode::kOff}},
                   s.pins);
      } else if (key == "on_drift") {
        drift_node = v;
        ReadChoice(v, where + ".on_drift",
                   {{"block", PinMode::kEnforce}, {"require_approval", PinMode::kApproval},
                    {"shadow", PinMode::kShadow}, {"log", PinMode::kWarn}},
                   s.pins);
      } else if (key == "ca_file") {
        std::string p;
        if (ReadString(v, where + ".ca_file", p)) s.ca_file = (base_ / p).lexically_normal().string();
      } else if (key == "isolation") {
        isolation_node = v;
        ReadChoice(v, where + ".isolation",
                   {{"shared", Isolation::kShared}, {"session", Isolation::kSession}}, s.isolation);
      } else if (key == "inherit_env") {
        inherit_node = v;
        if (v.IsScalar() && v.Scalar() == "all") {
          s.inherit_all_env = true;
        } else if (ReadStrings(v, where + ".inherit_env", s.inherit_env)) {
          for (size_t i = 0; i < s.inherit_env.size(); ++i) {
            const std::string& n = s.inherit_env[i];
            if (!ValidEnvPattern(n)) {
              Error(v.IsSequence() ? v[i] : v, where + ".inherit_env: \"" + n +
                           "\" is not an environment variable name (letters, digits, '_', "
                           "optionally ending in '*')");
            }
          }
        }
      } else if (key == "unlisted_tools") {
        ReadChoice(v, where + ".unlisted_tools",
                   {{"deny", UnlistedTools::kDeny}, {"allow", UnlistedTools::kAllow}},
                   s.unlisted_tools);
      } else if (key == "schema") {
        ReadChoice(v, where + ".schema",
                   {{"enforce", SchemaMode::kEnforce}, {"warn", SchemaMode::kWarn},
                    {"off", SchemaMode::kOff}},
                   s.schema);
      } else if (key == "extension_methods") {
        ReadStrings(v, where + ".extension_methods", s.extension_methods);
      } else if (key == "state_fail_mode") {
        StateFailMode m = StateFailMode::kClosed;
        const size_t before = error_count();
        ReadChoice(v, where + ".state_fail_mode",
                   {{"closed", StateFailMode::kClosed}, {"open", StateFailMode::kOpen}}, m);
        if (error_count() == before) s.state_fail_mode = m;
      } else if (key == "protocol") {
        ProtocolEra era = ProtocolEra::kAuto;
        const size_t before = error_count();
        ReadChoice(v, where + ".protocol",
                   {{"auto", ProtocolEra::kAuto}, {"legacy", ProtocolEra::kLegacy},
                    {"modern", ProtocolEra::kModern}},
                   era);
        if (error_count() == before) s.protocol = era;
      } else if (key == "connect_timeout") {
        DurationMs(v, where + ".connect_timeout", s.connect_timeout_ms);
      } else if (key == "request_timeout") {
        DurationMs(v, where + ".request_timeout", s.request_timeout_ms);
      } else if (key == "idle_timeout") {
        idle_node = v;
        DurationMs(v, where + ".idle_timeout", s.idle_timeout_ms);
      } else if (key == "credentials") {
        bool per = false;
        ReadChoice(v, where + ".credentials", {{"config", false}, {"per_principal", true}}, per);
        s.per_principal_credentials = per;
      } else if (key == "principals") {
        ReadStrings(v, where + ".principals", s.principals);
      } else if (key == "groups") {
        ReadStrings(v, where + ".groups", s.groups);
      } else {
        Error(k, where + ": unknown key \"" + key +
                     "\" (expected command, args, env, inherit_env, url, headers, ca_file, policy, "
                     "policy_shadow, pins, "
                     "isolation, unlisted_tools, schema, extension_methods, state_fail_mode, "
                     "protocol, connect_timeout, request_timeout, idle_timeout, on_drift, principals, "
                     "groups, credentials)");
      }
    });
    if (command.empty() == s.url.empty()) {
      Error(entry, where + " needs exactly one of \"command\" or \"url\"");
    }
    if (pins_node && drift_node) {
      Error(drift_node, where + ": give either pins or on_drift (on_drift: block is pins: enforce, "
                               "require_approval is pins: approval, shadow is pins: shadow, log is "
                               "pins: warn)");
    }
    if (idle_node && s.isolation != Isolation::kSession) {
      Error(idle_node, where + ".idle_timeout applies to servers with isolation: session (a shared "
                               "server's one process serves every session)");
    }
    if (!s.url.empty() && (!args.empty() || !s.env.empty() || isolation_node || inherit_node)) {
      Error(entry, where + ": args, env, inherit_env and isolation apply to command servers only");
    }
    if (s.url.empty() && s.per_principal_credentials) {
      Error(entry, where + ".credentials: per_principal applies to url servers (a command server's "
                           "process is shared by every caller)");
    }
    if (s.url.empty() && (!s.headers.empty() || !s.ca_file.empty())) {
      Error(entry, where + ": headers and ca_file apply to url servers only");
    }
    if (!entry["policy"]) Error(entry, where + ": missing \"policy\" (the policy file for it)");
    if (!command.empty()) {
      s.command.push_back(command);
      s.command.insert(s.command.end(), args.begin(), args.end());
    }
    return error_count() == errors;
  }

 private:
  const EnvLookup& env_;
  fs::path base_;
};

}  // namespace

Result<std::string> ExpandVariables(std::string_view raw, const EnvLookup& env) {
  std::string out;
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw.compare(i, 3, "$${") == 0) {
      out += "${";
      i += 2;
      continue;
    }
    if (raw.compare(i, 2, "${") != 0) {
      out += raw[i];
      continue;
    }
    const size_t close = raw.find('}', i + 2);
    if (close == std::string_view::npos) {
      return Fail(Error::InvalidArgument("unterminated \"${\" (write $${ for a literal one)"));
    }
    const std::string var(raw.substr(i + 2, close - i - 2));
    if (var.empty() || var.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                             "0123456789_") != std::string::npos) {
      return Fail(Error::InvalidArgument("\"${" + var + "}\" is not a valid variable reference"));
    }
    std::optional<std::string> value = env(var);
    if (!value) return Fail(Error::InvalidArgument("environment variable " + var + " is not set"));
    out += *value;
    i = close;
  }
  return out;
}

EnvLookup ProcessEnv() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (!v) return std::nullopt;
    return std::string(v);
  };
}

bool ValidEnvPattern(std::string_view name) {
  if (name.ends_with('*')) name.remove_suffix(1);
  if (name.empty() || (name[0] >= '0' && name[0] <= '9')) return false;
  for (char ch : name) {
    const bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                    (ch >= '0' && ch <= '9') || ch == '_';
    if (!ok) return false;
  }
  return true;
}

bool ValidServerName(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char ch : name) {
    const bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                    (ch >= '0' && ch <= '9') || ch == '-';
    if (!ok) return false;
  }
  return true;
}

std::string_view PinModeName(PinMode m) {
  switch (m) {
    case PinMode::kEnforce: return "enforce";
    case PinMode::kApproval: return "approval";
    case PinMode::kWarn: return "warn";
    case PinMode::kShadow: return "shadow";
    case PinMode::kOff: return "off";
  }
  return "enforce";
}

std::optional<int64_t> ParseBytes(std::string_view text) {
  size_t i = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
  if (i == 0 || i > 15) return std::nullopt;
  const int64_t n = std::stoll(std::string(text.substr(0, i)));
  std::string_view unit = text.substr(i);
  while (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
  static const std::pair<std::string_view, int64_t> kUnits[] = {
      {"", 1},           {"B", 1},           {"KB", 1000},       {"MB", 1000'000},
      {"GB", 1000'000'000}, {"TB", 1000'000'000'000}, {"KiB", 1LL << 10}, {"MiB", 1LL << 20},
      {"GiB", 1LL << 30}, {"TiB", 1LL << 40}};
  for (const auto& [name, factor] : kUnits) {
    if (unit == name) {
      if (n > INT64_MAX / factor) return std::nullopt;
      return n * factor;
    }
  }
  return std::nullopt;
}

bool ValidReplicaName(const std::string& name) {
  if (name.empty() || name.size() > 32) return false;
  return std::all_of(name.begin(), name.end(), [](char ch) {
    return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '-';
  });
}

namespace {
// http://127.0.0.1…, http://localhost…, http://[::1]….
bool IsLoopbackUrl(std::string_view url) {
  for (std::string_view host : {"http://127.0.0.1", "http://localhost", "http://[::1]"}) {
    if (url.starts_with(host) && (url.size() == host.size() || url[host.size()] == ':' || url[host.size()] == '/')) {
      return true;
    }
  }
  return false;
}
}  // namespace

Result<bool> CheckConfig(const Config& c) {
  if (c.access == Access::kLocal && c.servers.size() != 1) {
    return Fail(Error::InvalidArgument("access: local serves exactly one server, not " +
                                       std::to_string(c.servers.size())));
  }
  if (c.stdio() && c.access != Access::kLocal) {
    return Fail(Error::InvalidArgument(
        "listen: stdio needs access: local (stdio carries one local session, without tokens)"));
  }
  if (!c.replica.empty() && !ValidReplicaName(c.replica)) {
    return Fail(Error::InvalidArgument("replica \"" + c.replica +
                                       "\" must be 1-32 letters, digits, '_' or '-'"));
  }
  if (c.stdio() && c.audit_log == "-") {
    return Fail(Error::InvalidArgument(
        "audit.log \"-\" (stdout) cannot be used with listen: stdio, where stdout carries MCP"));
  }
  if (c.auth.builtin.value_or(false) && (c.state.starts_with("redis://") || c.state.starts_with("rediss://"))) {
    return Fail(Error::InvalidArgument(
        "auth.builtin: the built-in authorization server keeps its tokens in a SQLite state; with a "
        "Redis state, sign agents in through an identity provider (auth.oidc)"));
  }
  if (c.access == Access::kLocal && c.auth != AuthConfig{}) {
    return Fail(Error::InvalidArgument("auth applies to access: tokens (a local gateway has one user)"));
  }
  if (c.auth.oidc) {
    const OidcConfig& o = *c.auth.oidc;
    if (o.audiences.empty() && c.auth.public_url.empty()) {
      return Fail(Error::InvalidArgument(
          "auth.oidc needs the audience its tokens are for: auth.oidc.audience, or auth.public_url "
          "(then <public_url>/mcp)"));
    }
    // Keys fetched over plain http could be swapped on the way: https, or a loopback address.
    for (const std::string* url : {&o.issuer, &o.jwks_uri}) {
      if (url->starts_with("http://") && !IsLoopbackUrl(*url)) {
        return Fail(Error::InvalidArgument("auth.oidc: " + *url +
                                           " must be https:// (http only on a loopback address)"));
      }
    }
  }
  return true;
}

Result<Config> ParseConfig(std::string_view text, const std::string& path, const EnvLookup& env) {
  std::vector<Diagnostic> diags;
  std::optional<YAML::Node> root = policy::ParseYaml(text, path.ends_with(".json"), diags);
  Config c;
  c.path = path;
  if (root) {
    ConfigReader reader(diags, env, fs::absolute(path).parent_path());
    reader.Root(*root, c);
  }
  if (!diags.empty()) {
    std::stable_sort(diags.begin(), diags.end(), [](const Diagnostic& a, const Diagnostic& b) {
      return std::tie(a.line, a.column) < std::tie(b.line, b.column);
    });
    return Fail(Error::InvalidArgument(policy::FormatDiagnostics(path, diags)));
  }
  return c;
}

Result<Config> LoadConfig(const std::string& path, const EnvLookup& env) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Fail(Error::NotFound(path + ": cannot open config file"));
  std::ostringstream buf;
  buf << in.rdbuf();
  return ParseConfig(buf.str(), path, env);
}

}  // namespace tw::config
