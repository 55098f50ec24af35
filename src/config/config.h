// The gateway configuration (`toolwarden serve -c toolwarden.yaml`): the listener, the state
// store, and the MCP servers behind the gateway, each with its policy.
//
// YAML or JSON (a `.json` file is held to strict JSON), one schema, validated like policies:
// every problem is reported as FILE:LINE:COLUMN: message, all at once, and unknown keys are
// errors. `${VAR}` in any string is replaced by the environment variable VAR (an unset
// variable is an error; `$${` writes a literal `${`). Relative policy paths are relative to
// the config file's folder. The loader reads the config file only; it does not open the policy
// files (the gateway does, so a policy can be fixed and reloaded on its own).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "catalog/redact.h"
#include "common/result.h"

namespace tw::config {

// How a command server's process is shared: one process for every session (the default; the
// gateway multiplexes sessions over it), or one process per MCP session (for servers that keep
// per-client state, or need the client's sampling, elicitation or roots).
enum class Isolation { kShared, kSession };

// Who may open a session. kTokens (the default): agents holding grant tokens; /mcp aggregates
// the servers a grant may use, /mcp/<server> is one; the admin API and console are served.
// kLocal (`access: local`, what `toolwarden run` builds): the local user alone, as grant
// "local" — no tokens, exactly one server, served on /mcp or on stdio; no admin API.
enum class Access { kTokens, kLocal };

// Tool pinning (gateway::ToolPins): a changed definition is denied (enforce), logged (warn), or
// not tracked (off).
// What a tool whose definition changed since it was approved gets (`pins:` / `on_drift:`):
// denied (kEnforce, on_drift: block), held for a human (kApproval, on_drift: require_approval),
// only logged (kWarn, on_drift: log), or logged with the block recorded as the call's shadow
// decision (kShadow, on_drift: shadow) — held all the same when its risk rose; kOff: no pins.
enum class PinMode { kEnforce, kApproval, kWarn, kShadow, kOff };

// When the state store cannot be reached: deny what needs it (closed), or let calls through
// uncounted (open).
enum class StateFailMode { kClosed, kOpen };

// Which protocol era a server speaks (gateway::EraUpstream): found by asking it
// `server/discover` (auto), the initialize handshake without asking (legacy), or 2026-07-28
// only (modern). Unset: auto for a url server, legacy for a command server (a legacy stdio
// server may never answer a request sent before initialize).
enum class ProtocolEra { kAuto, kLegacy, kModern };

// `listen: stdio` (access: local only): the one session is the process's stdin and stdout.
inline constexpr std::string_view kListenStdio = "stdio";
// The most event loops a gateway runs (a session id names its loop in one byte).
inline constexpr int64_t kMaxWorkers = 256;

std::string_view PinModeName(PinMode m);

// Whether a call must name a tool the server listed (the default), or may name any tool.
enum class UnlistedTools { kDeny, kAllow };
// Whether a call's arguments are checked against the tool's inputSchema.
enum class SchemaMode { kEnforce, kWarn, kOff };

// What every command server of `serve` inherits from the gateway's environment, whatever its
// `inherit_env` says: enough to find programs and run in the right locale, nothing secret.
// A trailing '*' matches every name with that prefix.
inline constexpr std::string_view kBaseEnvironment[] = {"PATH", "HOME", "LANG", "LC_*",
                                                        "TZ",   "TMPDIR", "USER"};

struct ServerConfig {
  std::string name;
  // Either a command (argv; its environment is kBaseEnvironment, the names in inherit_env, and
  // env over them) …
  std::vector<std::string> command;
  std::vector<std::pair<std::string, std::string>> env;
  std::vector<std::string> inherit_env;  // more names to pass from the gateway's environment
  bool inherit_all_env = false;          // `inherit_env: all` (warned about at start)
  // … or a remote Streamable HTTP server, with headers sent on every request.
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string ca_file;  // PEM CA certificates trusted for an https:// url besides the system's
  std::string policy_path;  // absolute
  // A candidate evaluated beside the policy on every call, its decisions recorded, never
  // enforced (absolute; empty: none).
  std::string policy_shadow_path;
  // When the state store cannot be reached: this server's own choice over the gateway's.
  std::optional<StateFailMode> state_fail_mode;
  std::optional<ProtocolEra> protocol;
  PinMode pins = PinMode::kEnforce;
  UnlistedTools unlisted_tools = UnlistedTools::kDeny;
  SchemaMode schema = SchemaMode::kEnforce;
  // Methods outside MCP's allow-lists that may cross anyway (gateway::Session).
  std::vector<std::string> extension_methods;
  Isolation isolation = Isolation::kShared;
  int64_t connect_timeout_ms = 10000;
  int64_t request_timeout_ms = 300000;
  // isolation: session: a session's process is started at its first request that needs the
  // server and stopped after this long without one (0: kept until the session ends).
  int64_t idle_timeout_ms = 300000;
  // Who may use the server besides what their grant says (`principals:`, `groups:`): when
  // either is set, a caller must be one of the principals or in one of the groups. Empty: any
  // caller the grant lets in.
  std::vector<std::string> principals;
  std::vector<std::string> groups;
  // `credentials: per_principal` (url servers): each caller's session sends the headers stored
  // for its principal (`toolwarden credentials set`) over `headers`; a caller with none stored
  // is not offered the server. false: `headers` for everyone.
  bool per_principal_credentials = false;

  bool remote() const { return !url.empty(); }
  // Whether two entries would run the same server (a reload keeps its connection when equal).
  bool SameUpstream(const ServerConfig& o) const {
    return command == o.command && env == o.env && inherit_env == o.inherit_env &&
           inherit_all_env == o.inherit_all_env && url == o.url && headers == o.headers &&
           ca_file == o.ca_file && per_principal_credentials == o.per_principal_credentials &&
           isolation == o.isolation && connect_timeout_ms == o.connect_timeout_ms &&
           request_timeout_ms == o.request_timeout_ms && idle_timeout_ms == o.idle_timeout_ms;
  }
  bool operator==(const ServerConfig&) const = default;
};

// How agents sign in besides grant tokens (`auth:`, docs/oauth.md). Every MCP request's 401
// names the gateway's Protected Resource Metadata, which names the authorization server: the
// company identity provider when `oidc` is set, else the built-in one.
struct OidcConfig {
  std::string issuer;                  // exactly as the tokens' `iss` says it
  std::vector<std::string> audiences;  // empty: the gateway's resource URL (<public_url>/mcp)
  std::string jwks_uri;                // empty: found by discovery
  std::string principal_claim = "sub";
  std::string email_claim = "email";
  std::string groups_claim = "groups";
  // The console's sign-in through the provider (`console:`): this gateway as an OpenID
  // client (authorization code with PKCE); members of `admins_group` get the console. Empty
  // client_id: the console takes the admin token only.
  struct Console {
    std::string client_id;
    std::string client_secret;  // ${VAR} from the environment; empty: a public client
    std::string admins_group = "admins";
    std::string scopes = "openid email profile";
    bool operator==(const Console&) const = default;
  } console;
  bool operator==(const OidcConfig&) const = default;
};

struct AuthConfig {
  // The gateway's origin as clients reach it ("https://gw.example.com"); empty: "http://" and
  // the request's Host (which must be one of the allowed hosts). Set it behind a proxy that
  // ends TLS.
  std::string public_url;
  // The built-in OAuth authorization server (dynamic registration, consent in the console).
  // Unset: on with a SQLite state, off with Redis (its tokens are kept in SQLite).
  std::optional<bool> builtin;
  int64_t access_token_ttl_ms = 3600'000;
  int64_t refresh_token_ttl_ms = 30LL * 24 * 3600'000;
  std::optional<OidcConfig> oidc;
  // The key of the per-person upstream credentials, when TOOLWARDEN_CREDENTIAL_KEY is not set
  // (absolute; a file only its owner may read, never beside the state).
  std::string credential_key_file;
  // Client ID Metadata Documents (a client named by an https URL, its document fetched there):
  // on by default; fetched only from public addresses unless `private_addresses`; `ca_file`
  // trusted besides the system's CAs (absolute).
  struct ClientMetadata {
    bool enabled = true;
    bool private_addresses = false;
    std::string ca_file;
    bool operator==(const ClientMetadata&) const = default;
  } client_metadata;
  bool operator==(const AuthConfig&) const = default;
};

struct Config {
  std::string path;  // the file it came from; empty for one built from `run`'s flags
  Access access = Access::kTokens;
  std::string listen = "127.0.0.1:8421";  // HOST:PORT, or kListenStdio
  std::string state;  // empty: the default state store
  // This gateway's name in a fleet (`replica:`, `serve --replica`): its session ids start with
  // it and a dot, so that a load balancer can route a session to the replica holding it.
  std::string replica;
  StateFailMode state_fail_mode = StateFailMode::kClosed;
  std::vector<std::string> allowed_hosts;
  std::vector<std::string> allowed_origins;
  bool origin_check = true;  // false: any Host and Origin (no DNS-rebinding protection)
  std::map<std::string, ServerConfig> servers;  // by name
  std::string approval_webhook_url;
  // What records keep of argument values (`audit.arguments`; include_arguments: true is full),
  // the paths always redacted (`audit.redact`), and how long values are kept
  // (`audit.arguments_retention`; 0: as long as the record).
  catalog::ArgumentsKept audit_arguments = catalog::ArgumentsKept::kRedacted;
  std::vector<std::string> audit_redact;
  int64_t audit_arguments_retention_ms = 7LL * 24 * 3600 * 1000;
  std::string audit_log;  // JSON lines mirror; empty for none
  // sqlite:PATH where records are made durable; empty: limits::AuditSpecFor's default.
  std::string audit_store;
  // postgresql://… the fleet's shared trail (records shipped there; queries read it); "": none.
  std::string audit_shared;
  int64_t audit_retention_ms = 0;             // audit.retention; 0: keep every record
  int64_t audit_max_bytes = 0;                // audit.max_size; 0: no limit
  int64_t audit_min_free_bytes = 64LL << 20;  // audit.min_free_bytes; 0: no check
  size_t max_sessions = 1000;
  // The most sessions one grant may hold; unset: a quarter of max_sessions (at least 1), so
  // one agent cannot lock the others out.
  std::optional<size_t> max_sessions_per_grant;
  std::vector<std::string> trusted_proxies;  // see transport::HttpServerOptions
  int64_t session_idle_ms = 30 * 60 * 1000;
  int64_t client_timeout_ms = 30000;  // to send one whole HTTP request
  int64_t sse_keepalive_ms = 15000;   // between keep-alive comments on idle SSE streams
  int64_t shutdown_timeout_ms = 10000;
  // How long the audit writer waits for a state file another process holds before the calls
  // it was recording are denied (the event loop never waits for it: sqlite_db.h).
  int64_t state_timeout_ms = 5000;
  size_t max_body_bytes = 4 << 20;
  // Event loops of an HTTP gateway (`workers: auto | N`); 0 (auto): one per core available to
  // the process. `listen: stdio` runs one.
  size_t workers = 0;
  AuthConfig auth;

  bool stdio() const { return listen == kListenStdio; }
  // Every field, `path` included (compare copies with it cleared to compare what they say).
  bool operator==(const Config&) const = default;
};

// What a config must satisfy beyond its keys' own syntax (ParseConfig reports these with
// positions; a Config built otherwise — from `run`'s flags — is held to them here): access:
// local has exactly one server; stdio needs access: local and no audit log on stdout.
Result<bool> CheckConfig(const Config& c);
// "500MB", "2GiB", "1048576": bytes (KB/MB/GB/TB powers of 1000, KiB… of 1024).
std::optional<int64_t> ParseBytes(std::string_view text);
// 1-32 of [A-Za-z0-9_-].
bool ValidReplicaName(const std::string& name);

// Looks up an environment variable (nullopt when unset).
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;
EnvLookup ProcessEnv();
// `raw` with every `${VAR}` replaced by the variable's value (`$${` is a literal `${`). Fails
// naming an unset variable, an invalid name or an unterminated reference.
Result<std::string> ExpandVariables(std::string_view raw, const EnvLookup& env);

// Server names: letters, digits and '-', at most 64 characters, so that `server__tool` and
// `server+uri` split unambiguously.
bool ValidServerName(std::string_view name);
// An environment variable name, or a prefix of names ending in '*' (`LC_*`).
bool ValidEnvPattern(std::string_view name);

// Parses config text. `path` names it in messages and anchors relative policy paths.
Result<Config> ParseConfig(std::string_view text, const std::string& path, const EnvLookup& env);
// Reads and parses a config file.
Result<Config> LoadConfig(const std::string& path, const EnvLookup& env = ProcessEnv());

}  // namespace tw::config
