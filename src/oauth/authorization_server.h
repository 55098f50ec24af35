// The built-in OAuth 2.1 authorization server, for teams without an identity provider: what
// an MCP client finds when it is answered 401 (docs/oauth.md).
//
//   GET  /.well-known/oauth-authorization-server   metadata (RFC 8414)
//   POST /oauth/register                           Dynamic Client Registration (RFC 7591)
//   GET  /oauth/authorize                          → the console's consent screen
//   POST /oauth/token                              authorization_code (PKCE S256 only) and
//                                                  refresh_token (rotated)
//
// A consent is a grant: the person signed in to the console chooses which servers, for how
// long, and the grant is created in the GrantStore under a name made from the client's (the
// admin lists and revokes it like any other; revoking it ends its tokens at their next
// request). Access tokens are the GrantStore's ("twat_", an hour by default, never past the
// grant), refresh tokens the OAuthStore's, both kept hashed. The token audience (RFC 8707) is
// the gateway's one resource, `<base>/mcp`; a request naming another is refused.
//
// Everything an outsider sends is bounded: registrations (count, redirect URIs and their
// length, names), pending consents, code and verifier shapes. Redirect URIs must be https,
// http on a loopback address (any port, RFC 8252 §7.3) or a private-use scheme; the client is
// only ever redirected to a URI it registered, and errors before that check are shown, not
// redirected.
//
// Not thread-safe by itself beyond the pending map's mutex: the gateway calls it from its
// home loop (where the admin API runs).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "auth/grant_store.h"
#include "auth/oauth_store.h"
#include "common/clock.h"
#include "common/result.h"

namespace tw::oauth {

struct AsOptions {
  int64_t access_ttl_ms = 3600'000;
  int64_t refresh_ttl_ms = 30LL * 24 * 3600'000;
  int64_t code_ttl_ms = 60'000;
  int64_t consent_ttl_ms = 10 * 60'000;  // how long a sign-in may wait on the consent screen
  int64_t max_clients = 10'000;
  size_t max_pending = 1000;
};

struct AsRequest {
  std::string method;  // GET, POST
  std::string path;    // without the query
  std::string query;   // without '?'
  std::string body;
  std::string content_type;
  std::string base;  // the gateway's public origin: "https://gw.example.com" (no slash)
};

struct AsReply {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
};

// Every issue and refusal, for the audit: `event` is "oauth.register", "oauth.authorize",
// "oauth.consent", "oauth.token" or "oauth.refresh"; `grant` when known; `reason` why refused
// (empty when it went through). Never a secret.
using AsAuditor = std::function<void(std::string_view event, bool ok, std::string_view grant,
                                     std::string_view client, std::string_view reason)>;

// A sign-in waiting on the consent screen.
struct PendingConsent {
  std::string id;
  auth::OAuthClient client;
  std::string redirect_uri;
  std::string state;
  std::string challenge;
  std::string resource;
  std::vector<std::string> scopes;  // requested, known ones only
  int64_t expires_ms = 0;
};

// What the person on the consent screen chose.
struct ConsentChoice {
  bool approve = false;
  std::vector<std::string> servers;  // empty: every server
  int64_t expires_ms = 0;            // the grant's; 0: never
  std::string principal;             // who consented
};

// PKCE's S256 code challenge of `verifier` (RFC 7636 §4.2): base64url(SHA-256(verifier)).
std::string PkceChallenge(std::string_view verifier);

// The resource URL of a gateway at `base`: what tokens are for.
std::string ResourceOf(const std::string& base);
// RFC 9728 Protected Resource Metadata for a gateway at `base`.
std::string ProtectedResourceMetadata(const std::string& base,
                                      const std::vector<std::string>& authorization_servers,
                                      const std::vector<std::string>& servers);
// The scopes: "mcp" and "mcp:<server>" for each server.
std::vector<std::string> ScopesFor(const std::vector<std::string>& servers);

class AuthorizationServer {
 public:
  AuthorizationServer(auth::GrantStore& grants, auth::OAuthStore& store, const Clock& clock,
                      AsOptions options, AsAuditor audit);

  // Client ID Metadata Documents: a client whose client_id is an https URL is described by the
  // document there, which `fetch` gets (the caller bounds and guards the fetch, and may cache
  // it). Unset: only registered clients.
  using DocumentFetcher = std::function<Result<std::string>(const std::string& url)>;
  void SetDocumentFetcher(DocumentFetcher fetch) { fetch_document_ = std::move(fetch); }

  // Whether `path` is one of the server's (the metadata or /oauth/…).
  static bool Owns(std::string_view path);
  // `servers`: the names the scopes and the consent may use (the gateway's, now).
  AsReply Handle(const AsRequest& req, const std::vector<std::string>& servers);

  // The console's side of a consent (the caller has checked the person's sign-in).
  std::optional<PendingConsent> Pending(const std::string& id);
  // Ends a pending consent: approved, the grant is made and the URL the browser goes to
  // carries the code; denied, it carries access_denied. NotFound when the id is unknown or
  // expired; InvalidArgument for a choice that cannot be made (an unknown server).
  Result<std::string> Decide(const std::string& id, const ConsentChoice& choice,
                             const std::vector<std::string>& servers, const std::string& base);

 private:
  AsReply Metadata(const AsRequest& req, const std::vector<std::string>& servers) const;
  AsReply Register(const AsRequest& req);
  AsReply Authorize(const AsRequest& req, const std::vector<std::string>& servers);
  AsReply Token(const AsRequest& req);
  AsReply ExchangeCode(const std::map<std::string, std::string>& form, const std::string& base);
  AsReply Refresh(const std::map<std::string, std::string>& form, const std::string& base);
  // Access and refresh tokens for `grant` in one answer.
  AsReply IssueTokens(const std::string& event, const std::string& grant, const std::string& client,
                      const std::string& family, const std::string& resource,
                      const std::string& scope);
  AsReply Refuse(std::string_view event, int status, std::string_view error, std::string reason,
                 std::string_view client = {}, std::string_view grant = {});
  // The client an https client_id names, from its metadata document; InvalidArgument says why
  // it is not one.
  Result<auth::OAuthClient> ClientFromDocument(const std::string& url);

  auth::GrantStore& grants_;
  auth::OAuthStore& store_;
  const Clock& clock_;
  const AsOptions options_;
  AsAuditor audit_;
  DocumentFetcher fetch_document_;
  std::mutex mu_;
  std::map<std::string, PendingConsent> pending_;  // Guarded by mu_.
};

}  // namespace tw::oauth
