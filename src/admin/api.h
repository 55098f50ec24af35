// The admin API: JSON over HTTP under /api/ (docs/api.md). What the web console and scripts
// use to see servers, tools, grants, approvals, the audit trail and policies, and to change
// grants, approvals, pins and reload the config.
//
// Every call needs an admin token (`Authorization: Bearer twa_…`, separate from grant tokens)
// or the web console's session cookie (POST /api/login exchanges the admin token for one; see
// ConsoleSessions); 401 otherwise. State-changing calls (POST, PUT, DELETE) must send
// `Content-Type: application/json` (a cross-site form cannot), with a cookie also the session's
// `X-CSRF-Token` (403 otherwise) — the listener has already refused a foreign Origin — and
// each is written to the audit trail as server "(admin)". Responses are JSON; errors are
// {"error": {"code": "...", "message": "..."}} with the right status.
//
// No I/O of its own: everything goes through the Backend. Thread: the caller's.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "approval/approval_store.h"
#include "common/failure_throttle.h"
#include "audit/audit.h"
#include "auth/grant_store.h"
#include "admin/console_sessions.h"
#include "catalog/pin_store.h"
#include "common/event_hub.h"
#include "common/result.h"
#include "policy/policy.h"
#include "jsonrpc/message.h"

namespace tw::admin {

struct ServerInfo {
  std::string name;
  std::string transport;  // "stdio" or "http"
  std::string target;     // the command line or URL (never env values or header values)
  std::string isolation;  // "shared" or "session" (stdio servers)
  std::string policy;     // the default policy file
  std::string policy_version;
  std::string pins;       // enforce | approval | warn | shadow | off
  std::string shadow_policy;  // its policy_shadow file ("" for none)
  std::string shadow_draft;   // the version of a draft tried live ("" for none)
  std::string state;      // "up", "down", or "idle" (not started: no session needed it yet)
  std::string last_error;
  int64_t changed_ms = 0;
};

// What POST /api/replay asks of the backend (app/replay.h).
struct ReplayRequest {
  std::string server;
  std::string grant;  // "" for every grant
  int64_t since_ms = 0;
  int64_t until_ms = 0;
  int64_t max_records = 0;  // stop after this many (0: no cap)
};

struct PolicyInfo {
  std::string path;
  std::string version;  // digest of the text that is in force
  std::vector<std::string> servers;  // the servers it is the default policy of
  uint64_t reloads = 0;
  uint64_t failed_reloads = 0;
  std::string text;  // the file as it is in force
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::vector<ServerInfo> Servers() = 0;
  virtual std::vector<PolicyInfo> Policies() = 0;
  // The policy in force for `server` (its default one); null for an unknown server.
  virtual std::shared_ptr<const policy::Policy> PolicyOf(const std::string& server) = 0;
  // Re-reads the config file and every policy; returns what changed, or why nothing did.
  virtual Result<std::string> Reload() = 0;
  virtual auth::GrantStore& Grants() = 0;
  virtual approval::ApprovalStore& Approvals() = 0;
  virtual catalog::PinStore& Pins() = 0;
  virtual audit::AuditLog& Audit() = 0;
  virtual Result<std::vector<audit::Record>> QueryAudit(const audit::Query& q) = 0;
  virtual Result<int64_t> CountAudit(const audit::Query& q) = 0;
  virtual Result<std::vector<audit::Bucket>> AuditHistogram(const audit::Query& q, int64_t bucket_ms) = 0;
  virtual int64_t NowMs() = 0;
  // Decisions and outcomes as they happen (events "decision" and "outcome").
  virtual EventHub& Events() = 0;
  // The policy a grant's calls to `server` are decided by (its override, or the server's).
  virtual std::shared_ptr<const policy::Policy> PolicyForGrant(const std::string& server,
                                                               const auth::Grant& grant) {
    (void)grant;
    return PolicyOf(server);
  }
  // What a limit's counter holds now for the scope id (a grant name, or "*" for global).
  virtual Result<int64_t> CounterUsed(const policy::Limit& limit, const std::string& scope_id,
                                      int64_t now_ms) = 0;
  // The text of a policy file on disk, and its atomic replacement (write beside, fsync,
  // rename; the file keeps its permissions), put in force before it returns.
  virtual Result<std::string> ReadPolicyFile(const std::string& path) = 0;
  virtual Result<bool> WritePolicyFile(const std::string& path, const std::string& text) = 0;
  // What `candidate` would have decided of the server's recorded calls: the report as
  // `toolwarden replay --json` prints it.
  virtual Result<json::object> Replay(const policy::Policy& candidate, const ReplayRequest& request) {
    (void)candidate;
    (void)request;
    return Fail(Error::Unavailable("replay is not available in this gateway"));
  }
  // The built-in authorization server's consent screen (oauth/authorization_server.h): the
  // sign-in waiting as `id` (client, redirect host, requested scopes), and its answer — the
  // URL the person's browser goes to next. NotFound when the sign-in is over.
  struct ConsentAnswer {
    bool approve = false;
    std::vector<std::string> servers;  // empty: every server
    int64_t expires_ms = 0;            // the grant's; 0: never
    std::string principal;             // who answered
    std::string base;                  // the gateway's origin as the browser reached it
  };
  // The console's sign-in through the identity provider (auth.oidc.console): the provider's
  // name for the login page ("" when there is none), where to send the browser (`return_to`:
  // the console page to come back to), and who came back — a member of the admins group.
  virtual std::string SsoName() { return {}; }
  // `browser`: a secret the browser that starts the sign-in holds in a cookie; the sign-in
  // finishes only in that browser (no one else's code opens a session in it).
  virtual Result<std::string> SsoStart(const std::string& base, const std::string& return_to,
                                       const std::string& browser) {
    (void)base;
    (void)return_to;
    (void)browser;
    return Fail(Error::NotFound("this gateway signs the console in with the admin token only"));
  }
  struct SsoUser {
    std::string principal;
    std::string return_to;
  };
  virtual Result<SsoUser> SsoFinish(const std::string& base, const std::string& code, const std::string& state,
                                    const std::string& browser) {
    (void)base;
    (void)code;
    (void)state;
    (void)browser;
    return Fail(Error::NotFound("this gateway signs the console in with the admin token only"));
  }
  virtual Result<json::object> PendingConsent(const std::string& id) {
    (void)id;
    return Fail(Error::Unavailable("this gateway has no built-in authorization server"));
  }
  virtual Result<std::string> AnswerConsent(const std::string& id, const ConsentAnswer& answer) {
    (void)id;
    (void)answer;
    return Fail(Error::Unavailable("this gateway has no built-in authorization server"));
  }
  // Tries `draft` live as the server's shadow policy (evaluated on every call, recorded, never
  // enforced) in place of its policy_shadow; null withdraws it. NotFound for an unknown server.
  virtual Result<bool> SetShadowDraft(const std::string& server,
                                      std::shared_ptr<const policy::Policy> draft) {
    (void)server;
    (void)draft;
    return Fail(Error::Unavailable("shadow drafts are not available in this gateway"));
  }
};

struct Request {
  std::string method;
  std::string target;  // path and query
  std::string body;
  std::string authorization;
  std::string content_type;
  std::string cookie;  // the Cookie header
  std::string csrf;    // the X-CSRF-Token header
  std::string client;  // the client's address, for the brake on guessing tokens
  std::string base;    // the gateway's origin as the client reached it
};

struct Response {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;  // Set-Cookie, Content-Disposition
  // Set for GET /api/events: the listener streams this queue as text/event-stream.
  std::shared_ptr<EventQueue> events;
};

// The JSON shapes the API (and the CLI's --json, and the approvals webhook) use.
json::value ApprovalJson(const approval::Approval& a);
json::value GrantJson(const auth::Grant& g, int64_t now_ms);

// A request target under /api/: its path segments after "api" and its query (decoded).
struct ApiRoute {
  std::vector<std::string> parts;
  std::map<std::string, std::string> query;
  std::string Get(const std::string& key) const {
    auto it = query.find(key);
    return it == query.end() ? std::string() : it->second;
  }
};

class Api {
 public:
  explicit Api(Backend& backend) : backend_(backend) {}
  Response Handle(const Request& request);
  ConsoleSessions& console_sessions() { return console_; }

 private:
  // One authenticated call as its handler sees it.
  struct Call {
    const Request& request;
    const ApiRoute& route;
    std::vector<std::string> params;  // what the route's ":x" segments matched, in order
    const json::object& body;         // a state-changing call's JSON body ({} for none)
    int64_t now;
    const std::optional<ConsoleSession>& console;  // set when it came with a console cookie
    const std::string& cookie;
  };
  using Handler = Response (Api::*)(const Call&);
  struct Route {
    std::string_view method;
    std::vector<std::string_view> path;  // segments after /api/; ":x" matches any one
    Handler handler;
  };
  static const std::vector<Route>& Routes();
  static bool MatchPath(const std::vector<std::string_view>& pattern,
                        const std::vector<std::string>& parts, std::vector<std::string>& params);

  Response Login(const Request& req, int64_t now);  // before authentication
  Response Sso(const Request& req, const ApiRoute& route, int64_t now);  // /api/login/sso[/callback]
  // The handlers of Routes(), one per route.
  Response Health(const Call& c);
  Response SessionInfo(const Call& c);
  Response Logout(const Call& c);
  Response EventStream(const Call& c);
  Response ListServers(const Call& c);
  Response ServerTools(const Call& c);
  Response GetPolicy(const Call& c);
  Response SavePolicy(const Call& c);
  Response AcceptPins(const Call& c);
  Response ListGrants(const Call& c);
  Response CreateGrant(const Call& c);
  Response GetGrant(const Call& c);
  Response RevokeGrant(const Call& c);
  Response ListApprovals(const Call& c);
  Response GetApproval(const Call& c);
  Response ResolveApproval(const Call& c);
  Response Audit(const Call& c);
  Response Counters(const Call& c);
  Response ListPolicies(const Call& c);
  Response Validate(const Call& c);
  Response Explain(const Call& c);
  Response ReplayDraft(const Call& c);
  Response GetConsent(const Call& c);
  Response AnswerConsent(const Call& c);
  Response SetShadow(const Call& c);
  Response StopShadow(const Call& c);
  Response Reload(const Call& c);

  std::optional<ServerInfo> FindServer(const std::string& name);
  void Record(int64_t now, const std::string& action, const std::string& target,
              const std::string& detail);

  Backend& backend_;
  ConsoleSessions console_;
  // Failed logins and admin-token checks per client address (a brake on guessing that never
  // locks out the admin from another address; the token has 256 bits).
  FailureThrottle failures_{20};
};

}  // namespace tw::admin
