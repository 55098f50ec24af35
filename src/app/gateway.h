// Gateway: the composition root. Everything a running gateway is, built from one validated
// config::Config — by `toolwarden serve` from its config file, by `toolwarden run` from its
// flags (app/run.h), and by the tests: the state stores, the audit log, the approval waiter,
// each configured server with its policies, guards and shared connection, and the metrics.
// It answers what a listener asks: who is calling (Authenticate), what serves a new session
// (MakeSession, for HTTP and stdio alike), and the admin API and web console (HandleAdmin).
// Every audit record written is also published to Events() for the console's live view.
//
// Access (config::Access): with tokens, sessions belong to grants and /mcp aggregates the
// servers a grant may use; local (run) has one server, one implicit grant "local", no admin.
//
// Reload: the config file, when there is one, is watched (and SIGHUP); a valid change adds,
// replaces and removes servers for new sessions (a server whose command, URL or settings are
// unchanged keeps its connection); an invalid one is refused and logged with positions, and
// nothing changes. Sessions keep the servers they opened with. listen and state need a restart.
//
// Threads: the gateway belongs to the home loop (the io_context it is opened with): reloads,
// the config and policy watchers, approval polling, shared server connections and the admin
// API run there. With several event loops (transport/EventLoops) sessions run on all of them:
// MakeSession, Authenticate and what sessions call back (health) may be called from any loop,
// and whatever they share is thread-safe or posted to its owner's loop (gateway/loop_bridge.h).
// mu_ guards the servers and policies against a reload on the home loop; it is taken when a
// session opens, never per call.
#pragma once

#include <boost/asio/io_context.hpp>
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "admin/api.h"
#include "app/approval_waiter.h"
#include "app/policy_reloader.h"
#include "app/session_timers.h"
#include "approval/approval_store.h"
#include "audit/audit.h"
#include "audit/shared_trail.h"
#include "auth/grant_store.h"
#include "auth/credential_store.h"
#include "auth/oauth_store.h"
#include "oauth/authorization_server.h"
#include "oauth/issuer.h"
#include "catalog/pin_store.h"
#include "common/clock.h"
#include "config/config.h"
#include "gateway/lazy_upstream.h"
#include "gateway/loop_bridge.h"
#include "gateway/metrics.h"
#include "gateway/policy_holder.h"
#include "gateway/shared_upstream.h"
#include "gateway/tool_call_guard.h"
#include "gateway/tool_pins.h"
#include "limits/counter_store.h"
#include "transport/http_server.h"

namespace tw::app {

// One configured server as the gateway runs it. Sessions hold it (McpSession::KeepAlive).
struct ServerRuntime {
  config::ServerConfig config;
  gateway::PolicyHolder* policy = nullptr;  // its default policy (owned by the Gateway)
  // policy_shadow (owned by the Gateway), null when none; and a draft tried live from the
  // console, which is the shadow instead while it is set (null: none).
  gateway::PolicyHolder* shadow_policy = nullptr;
  gateway::PolicyHolder draft_shadow{nullptr};
  std::unique_ptr<gateway::ToolPins> pins;
  std::unique_ptr<gateway::ToolCatalog> catalog;  // its tools, shared by its guards
  std::map<std::string, std::unique_ptr<gateway::ToolCallGuard>> guards;  // by policy file
  std::shared_ptr<gateway::UpstreamHub> hub;  // isolation: shared; lives on `home`
  // isolation: session: what the server said that a session may be told without starting it.
  std::shared_ptr<gateway::ServerMemories> memory;
  boost::asio::io_context* home = nullptr;
  // What sessions last saw (isolation: session servers; shared ones ask the hub).
  std::string state = "idle";
  std::string last_error;
  int64_t changed_ms = 0;

  // The last session of a removed server may end on any loop; the hub is closed on its own.
  ~ServerRuntime();
};

// The loop running on this thread (transport::EventLoops::Current), or `fallback` off the
// loops (a test that runs its io_context itself).
boost::asio::io_context& LoopHere(boost::asio::io_context& fallback);
// Posts to `io`.
gateway::Post PostTo(boost::asio::io_context& io);

// The guards' group commit (gateway::GuardDeps::group_commit): posts from the audit writer's
// thread to the loop of the call (the one running where the call was decided, else `io`), and
// keeps that loop running while the call's record is in flight.
std::function<gateway::LoopPoster()> LoopPosterFor(boost::asio::io_context& io);

class Gateway : public admin::Backend {
 public:
  // Opens the state stores and builds every server of `config` (which CheckConfig accepts).
  // Errors: InvalidArgument (a policy or a server's settings), else the store's.
  static Result<std::unique_ptr<Gateway>> Open(boost::asio::io_context& io,
                                               const config::Config& config, const Clock& clock);
  ~Gateway() override;

  const config::Config& config() const { return config_; }
  gateway::Metrics& metrics() { return metrics_; }
  std::string ServerNames() const;

  // The listener's count of open sessions, for /metrics.
  void CountSessions(std::function<double()> sessions);
  // Watches the config file for changes (nothing to watch without one).
  void StartWatching();
  // Stops waiting for approvals and watching files, and closes every shared connection.
  void Stop();

  // Who an Authorization header names for `route` ("" for /mcp), or why not (audited, without
  // the token): a grant's name (grant and OAuth access tokens), or "idp:<principal>" for an
  // identity provider's access token (auth.oidc). PermissionDenied: the token's scopes do not
  // reach the route; Unavailable: the grant store or the provider's keys cannot answer now.
  Result<std::string> Authenticate(std::string_view authorization, std::string_view route = {});
  // OAuth as the listener serves it (nullopt without `access: tokens`).
  std::optional<transport::HttpServerOptions::OAuth> OAuthOptions();
  std::vector<std::string> ServerList() const;
  // For /readyz: "" when calls can be served, else why not (the state store is unreachable).
  std::string Readiness();
  // What serves a new session: with tokens, on `r.route` ("" for the aggregate) for `r.grant`;
  // local, the one server on "" for grant "local".
  Result<gateway::SessionMaker> MakeSession(const transport::SessionRequest& r);
  transport::HttpServerOptions::AdminReply HandleAdmin(
      const transport::HttpServerOptions::AdminCall& call);

  // admin::Backend
  std::vector<admin::ServerInfo> Servers() override;
  std::vector<admin::PolicyInfo> Policies() override;
  std::shared_ptr<const policy::Policy> PolicyOf(const std::string& server) override;
  Result<std::string> Reload() override;
  auth::GrantStore& Grants() override { return *grants_; }
  approval::ApprovalStore& Approvals() override { return *approvals_; }
  catalog::PinStore& Pins() override { return *pin_store_; }
  audit::AuditLog& Audit() override { return *audit_; }
  Result<std::vector<audit::Record>> QueryAudit(const audit::Query& q) override;
  Result<int64_t> CountAudit(const audit::Query& q) override;
  Result<std::vector<audit::Bucket>> AuditHistogram(const audit::Query& q, int64_t bucket_ms) override;
  int64_t NowMs() override { return clock_.NowMs(); }
  EventHub& Events() override { return events_; }
  std::shared_ptr<const policy::Policy> PolicyForGrant(const std::string& server,
                                                       const auth::Grant& grant) override;
  Result<int64_t> CounterUsed(const policy::Limit& limit, const std::string& scope_id,
                              int64_t now_ms) override;
  Result<std::string> ReadPolicyFile(const std::string& path) override;
  Result<bool> WritePolicyFile(const std::string& path, const std::string& text) override;
  Result<json::object> Replay(const policy::Policy& candidate,
                              const admin::ReplayRequest& request) override;
  Result<bool> SetShadowDraft(const std::string& server,
                              std::shared_ptr<const policy::Policy> draft) override;
  std::string SsoName() override;
  Result<std::string> SsoStart(const std::string& base, const std::string& return_to,
                               const std::string& browser) override;
  Result<SsoUser> SsoFinish(const std::string& base, const std::string& code, const std::string& state,
                            const std::string& browser) override;
  Result<json::object> PendingConsent(const std::string& id) override;
  Result<std::string> AnswerConsent(const std::string& id, const ConsentAnswer& answer) override;


 private:
  Gateway(boost::asio::io_context& io, const config::Config& config, const Clock& clock);
  struct PolicyFile {
    std::unique_ptr<gateway::PolicyHolder> holder;
    std::unique_ptr<PolicyReloader> reloader;
  };
  Result<gateway::PolicyHolder*> PolicyFor(const std::string& path);
  Result<std::shared_ptr<ServerRuntime>> Build(const config::ServerConfig& sc);
  Result<const gateway::ToolCallGuard*> GuardFor(ServerRuntime& server, const std::string& policy_path);
  // The upstream of a new session on this thread's loop: a connection of its own, or a
  // channel of the server's shared one (bridged when the session is not on the home loop).
  // The upstream of one session of `grant` on `server`.
  // `own`: the caller's own headers (credentials: per_principal), over the config's.
  std::unique_ptr<gateway::Upstream> Connect(ServerRuntime& server, const std::string& grant,
                                             const auth::Headers* own = nullptr);
  // A connection of its own to `sc`, on the loop `io`, speaking the server's era
  // (gateway::EraUpstream over the transport).
  std::unique_ptr<gateway::Upstream> NewUpstream(const config::ServerConfig& sc,
                                                 boost::asio::io_context& io);
  std::unique_ptr<gateway::Upstream> NewTransportUpstream(const config::ServerConfig& sc,
                                                          boost::asio::io_context& io);
  void ObserveHealth(const std::string& server, bool up, const std::string& why);
  gateway::SessionMaker OneServer(std::shared_ptr<ServerRuntime> rt,
                                  const gateway::ToolCallGuard& guard, std::string id,
                                  gateway::Caller caller,
                                  std::shared_ptr<const auth::Headers> own = nullptr);
  void AddGauges();
  // Opens the stores, the audit log (and its shipper) and the approval waiters (gateway_state.cc).
  Result<bool> OpenState();
  // The built-in authorization server and the trusted identity provider (gateway_oauth.cc).
  Result<bool> OpenSignIn();
  // Who a session's caller is: the grant (or, for "idp:…", the principal an identity
  // provider's token named, as a grant of the servers its scopes reach). Unavailable / NotFound.
  struct CallerInfo {
    auth::Grant grant;
    std::vector<std::string> groups;
  };
  Result<CallerInfo> CallerOf(const std::string& name);
  static gateway::Caller CallerFor(const CallerInfo& info);
  // The headers stored for `principal` on `server` (credentials: per_principal); null when none
  // are, when the principal is empty, or when they cannot be read (logged: fail closed).
  std::shared_ptr<const auth::Headers> CredentialsFor(const std::string& server, const std::string& principal);
  // Whether `server`'s principals/groups (config) let `caller` in.
  static bool ServerAdmits(const config::ServerConfig& server, const CallerInfo& caller);
  void AuditSignIn(std::string_view event, bool ok, std::string_view grant, std::string_view client,
                   std::string_view reason);
  void SubmitAuthRecord(audit::Record r);
  // Where audit queries go: the shared trail when there is one, else the local records.
  std::string AuditQuerySpec() const;
  std::string ConfigFileHash() const;

  boost::asio::io_context& io_;
  config::Config config_;
  const Clock& clock_;
  std::string state_spec_;
  std::unique_ptr<limits::CounterStore> counters_;
  std::unique_ptr<catalog::PinStore> pin_store_;
  std::unique_ptr<approval::ApprovalStore> approvals_;
  std::unique_ptr<auth::GrantStore> grants_;
  std::unique_ptr<auth::OAuthStore> oauth_store_;
  std::unique_ptr<oauth::AuthorizationServer> as_;  // null: no built-in authorization server
  std::unique_ptr<oauth::TrustedIssuer> issuer_;    // null: no auth.oidc
  std::unique_ptr<auth::CredentialStore> credentials_;  // opened at the first need
  // The console's sign-ins under way at the identity provider, by `state`.
  struct SsoPending {
    std::string verifier, nonce, return_to, browser;
    int64_t expires_ms = 0;
  };
  std::map<std::string, SsoPending> sso_;  // Guarded by callers_mu_.
  // Client ID Metadata Documents fetched (by URL: when, what) and when fetches were made.
  std::map<std::string, std::pair<int64_t, std::string>> documents_;  // Guarded by callers_mu_.
  std::vector<int64_t> document_fetches_;                             // Guarded by callers_mu_.
  Result<std::string> FetchClientDocument(const std::string& url);
  // Principals identity providers' tokens named, by caller name ("idp:…"); bounded.
  std::mutex callers_mu_;
  std::unordered_map<std::string, std::shared_ptr<const CallerInfo>> callers_;  // Guarded by callers_mu_.
  // After the stores: its writer thread writes to them (AuditLog::Run) until it is gone.
  std::unique_ptr<audit::AuditLog> audit_;
  std::string audit_spec_;  // where the local records are (sqlite:PATH or memory)
  // Ships audit_'s records to config_.audit_shared; before audit_ goes (declared after it).
  std::unique_ptr<audit::Shipper> shipper_;
  gateway::Metrics metrics_;
  std::unique_ptr<PollingApprovalWaiter> polling_;
  std::unique_ptr<WebhookApprovalWaiter> waiter_;
  std::map<std::string, PolicyFile> policies_;  // by path; kept for the gateway's lifetime
  std::map<std::string, std::shared_ptr<ServerRuntime>> servers_;
  std::unique_ptr<FileWatcher> config_watcher_;
  std::string config_text_hash_;
  uint64_t config_reloads_ = 0;
  uint64_t config_reload_failures_ = 0;
  bool config_refused_ = false;  // the last config change seen was refused (home loop)
  std::atomic<uint64_t> unauthorized_{0};  // counted on every loop
  // Guards servers_, policies_ and each server's guards, state and health against a reload.
  // Recursive: Reload builds servers, which asks for their policies.
  mutable std::recursive_mutex mu_;
  // What the guards wait on: waiter_ (home loop) seen from the session's loop.
  std::unique_ptr<gateway::LoopBridgedApprovalWaiter> bridged_waiter_;
  EventHub events_;
  SessionTimers timers_;  // the aggregate sessions' timers, cancelled by Stop
  admin::Api api_{*this};
  std::function<double()> sessions_;
  // Charges against a remote store (Redis), batched off the loops. Last: it goes first, with
  // the calls it still holds, while the guards and the audit log it calls into are there.
  std::unique_ptr<limits::ChargeBatcher> batcher_;
};

}  // namespace tw::app
