// The admin API: JSON over HTTP under /api/ (docs/api.md). What the web console and scripts
// use to see servers, tools, grants, approvals, the audit trail and policies, and to change
// grants, approvals, pins and reload the config.
//
// Every call needs an admin token (`Authorization: Bearer twa_…`, separate from grant tokens;
// 401 otherwise). State-changing calls (POST, DELETE) must send `Content-Type:
// application/json` (a cross-site form cannot) — the listener has already refused a foreign
// Origin — and each is written to the audit trail as server "(admin)". Responses are JSON;
// errors are {"error": {"code": "...", "message": "..."}} with the right status.
//
// No I/O of its own: everything goes through the Backend. Thread: the caller's.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "approval/approval_store.h"
#include "audit/audit.h"
#include "auth/grant_store.h"
#include "catalog/pin_store.h"
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
  std::string pins;       // enforce | warn | off
  std::string state;      // "up", "down", or "idle" (not started: no session needed it yet)
  std::string last_error;
  int64_t changed_ms = 0;
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
  virtual int64_t NowMs() = 0;
};

struct Request {
  std::string method;
  std::string target;  // path and query
  std::string body;
  std::string authorization;
  std::string content_type;
};

struct Response {
  int status = 200;
  std::string body;
};

// The JSON shapes the API (and the CLI's --json, and the approvals webhook) use.
json::value ApprovalJson(const approval::Approval& a);
json::value GrantJson(const auth::Grant& g, int64_t now_ms);

class Api {
 public:
  explicit Api(Backend& backend) : backend_(backend) {}
  Response Handle(const Request& request);

 private:
  Backend& backend_;
};

}  // namespace tw::admin
