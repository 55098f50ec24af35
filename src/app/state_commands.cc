#include "app/state_commands.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>

#include "admin/api.h"
#include "app/cli_common.h"
#include "approval/approval_store.h"
#include "auth/grant_store.h"
#include "common/clock.h"
#include "config/config.h"
#include "limits/counter_store.h"
#include "policy/loader.h"
#include "transport/http_client.h"

namespace tw::app {

namespace json = boost::json;

namespace {

// An approval as the admin API returns it (admin::ApprovalJson), back into the struct.
approval::Approval ApprovalFromJson(const json::object& o) {
  auto str = [&](const char* k) {
    const json::value* v = o.if_contains(k);
    return v && v->is_string() ? std::string(v->get_string()) : std::string();
  };
  auto num = [&](const char* k) {
    const json::value* v = o.if_contains(k);
    return v && v->is_int64() ? v->get_int64() : int64_t{0};
  };
  approval::Approval a;
  a.id = str("id");
  a.grant = str("grant");
  a.session = str("session");
  a.server = str("server");
  a.tool = str("tool");
  const json::value* args = o.if_contains("arguments");
  a.args = args ? json::serialize(*args) : "{}";
  a.args_digest = str("arguments_digest");
  a.created_ms = num("created_ms");
  a.expires_ms = num("expires_ms");
  a.resolved_ms = num("resolved_ms");
  a.resolved_by = str("resolved_by");
  a.reason = str("reason");
  const std::string state = str("state");
  for (auto st : {approval::State::kPending, approval::State::kApproved, approval::State::kDenied,
                  approval::State::kExpired, approval::State::kCancelled, approval::State::kAbandoned}) {
    if (approval::StateName(st) == state) a.state = st;
  }
  return a;
}

// Calls a running gateway's admin API; the token comes from TOOLWARDEN_ADMIN_TOKEN (never from
// the command line, where other users could read it).
Result<json::value> AdminApiCall(const std::string& base, const std::string& method,
                                 const std::string& path, const std::string& body) {
  const char* token = std::getenv("TOOLWARDEN_ADMIN_TOKEN");
  if (!token || !*token) {
    return Fail(Error::InvalidArgument("--api needs the admin token in TOOLWARDEN_ADMIN_TOKEN"));
  }
  std::vector<std::pair<std::string, std::string>> headers{
      {"Authorization", std::string("Bearer ") + token}};
  if (method != "GET") headers.emplace_back("Content-Type", "application/json");
  std::string url = base;
  while (!url.empty() && url.back() == '/') url.pop_back();
  auto reply = transport::FetchSync(method, url + path, headers, body);
  if (!reply) return Fail(reply.error());
  boost::system::error_code ec;
  json::value v = json::parse(reply->body, ec);
  if (reply->status / 100 != 2) {
    const json::value* m = !ec && v.is_object() && v.as_object().contains("error")
                               ? v.at("error").as_object().if_contains("message")
                               : nullptr;
    return Fail(Error::InvalidArgument(
        "admin API answered " + std::to_string(reply->status) +
        (m && m->is_string() ? ": " + std::string(m->get_string()) : std::string())));
  }
  if (ec) return Fail(Error::Unavailable("the admin API answered with something that is not JSON"));
  return v;
}

}  // namespace

int ApprovalsCommand(const std::string& action, const ApprovalsOptions& o) {
  std::unique_ptr<approval::ApprovalStore> store;
  if (o.api.empty()) {
    auto opened = approval::OpenApprovalStore(limits::StateSpecOrDefault(o.state));
    if (!opened) {
      std::cerr << "toolwarden approvals: " << opened.error().message() << "\n";
      return kExitUnavailable;
    }
    store = std::move(*opened);
  }
  const int64_t now = SystemClock().NowMs();
  const char* user = std::getenv("USER");
  const std::string who = user && *user ? user : "cli";
  if (action == "list") {
    std::vector<approval::Approval> list;
    if (store) {
      auto l = store->List(!o.all);
      if (!l) {
        std::cerr << "toolwarden approvals: " << l.error().message() << "\n";
        return kExitUnavailable;
      }
      list = std::move(*l);
    } else {
      auto v = AdminApiCall(o.api, "GET", o.all ? "/api/approvals?state=all" : "/api/approvals", "");
      if (!v) {
        std::cerr << "toolwarden approvals: " << v.error().message() << "\n";
        return kExitUnavailable;
      }
      for (const auto& a : v->at("approvals").as_array()) list.push_back(ApprovalFromJson(a.as_object()));
    }
    for (const auto& a : list) {
      if (o.json) {
        std::cout << json::serialize(admin::ApprovalJson(a)) << "\n";
        continue;
      }
      std::cout << a.id << "  " << approval::StateName(a.state) << "  " << a.server << " "
                << a.tool << "  grant " << a.grant << "  "
                << (a.state == approval::State::kPending
                        ? "expires in " + std::to_string(std::max<int64_t>(0, (a.expires_ms - now) / 1000)) + " s"
                        : FormatTime(a.resolved_ms) + (a.resolved_by.empty() ? "" : " by " + a.resolved_by))
                << "\n    arguments: " << a.args << "\n";
    }
    if (list.empty() && !o.json) std::cout << (o.all ? "no approvals\n" : "no pending approvals\n");
    return kExitOk;
  }
  approval::Approval resolved;
  if (store) {
    auto r = store->Resolve(o.id, action == "approve" ? approval::State::kApproved : approval::State::kDenied,
                            who, o.reason, now);
    if (!r) {
      std::cerr << "toolwarden approvals: " << r.error().message() << "\n";
      return kExitInvalid;
    }
    resolved = *r;
  } else {
    auto v = AdminApiCall(o.api, "POST", "/api/approvals/" + o.id + "/" + action,
                          json::serialize(json::object{{"reason", o.reason}, {"by", who}}));
    if (!v) {
      std::cerr << "toolwarden approvals: " << v.error().message() << "\n";
      return v.error().code() == ErrorCode::kUnavailable ? kExitUnavailable : kExitInvalid;
    }
    resolved = ApprovalFromJson(v->as_object());
  }
  std::cout << (action == "approve" ? "approved " : "denied ") << o.id << " (" << resolved.server
            << " " << resolved.tool << ")\n";
  return kExitOk;
}

int GrantsCommand(const std::string& action, const GrantsOptions& o) {
  auto spec = ResolveState(o.config, o.state);
  if (!spec) {
    std::cerr << spec.error().message() << "\n";
    return kExitInvalid;
  }
  auto store = auth::OpenGrantStore(*spec);
  if (!store) {
    std::cerr << "toolwarden grants: " << store.error().message() << "\n";
    return kExitUnavailable;
  }
  const int64_t now = SystemClock().NowMs();
  if (action == "list") {
    auto list = (*store)->List();
    if (!list) {
      std::cerr << "toolwarden grants: " << list.error().message() << "\n";
      return kExitUnavailable;
    }
    std::vector<std::vector<std::string>> rows{
        {"NAME", "STATE", "FOR", "SERVERS", "CREATED", "EXPIRES", "LAST USED", "POLICIES"}};
    for (const auto& g : *list) {
      json::value j = admin::GrantJson(g, now);
      if (o.json) {
        std::cout << json::serialize(j) << "\n";
        continue;
      }
      std::string servers, policies;
      for (const auto& sv : g.servers) servers += (servers.empty() ? "" : ",") + sv;
      for (const auto& [server, path] : g.policies) policies += (policies.empty() ? "" : " ") + server + "=" + path;
      const auto when = [](int64_t ms) { return ms ? FormatTime(ms) : std::string("never"); };
      std::string who = g.principal.empty() ? "-" : g.principal;
      if (!g.client.empty()) who += " (" + g.client + ")";
      rows.push_back({g.name, std::string(j.at("state").as_string()), who, servers.empty() ? "all" : servers,
                      FormatTime(g.created_ms), when(g.expires_ms), when(g.last_used_ms),
                      policies.empty() ? "-" : policies});
    }
    if (o.json) return kExitOk;
    if (list->empty()) {
      std::cout << "no grants\n";
    } else {
      PrintTable(std::cout, rows);
    }
    return kExitOk;
  }
  if (action == "revoke") {
    auto g = (*store)->Revoke(o.name, now);
    if (!g) {
      std::cerr << "toolwarden grants: " << g.error().message() << "\n";
      return kExitInvalid;
    }
    std::cout << "revoked " << o.name << ": its token no longer works\n";
    return kExitOk;
  }
  auth::Grant g;
  g.name = o.name;
  for (size_t start = 0; start < o.servers.size();) {
    size_t comma = o.servers.find(',', start);
    if (comma == std::string::npos) comma = o.servers.size();
    if (comma > start) g.servers.push_back(o.servers.substr(start, comma - start));
    start = comma + 1;
  }
  for (const auto& p : o.policies) {
    const size_t eq = p.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == p.size()) {
      std::cerr << "toolwarden grants: --policy \"" << p << "\" must be SERVER=FILE\n";
      return kExitUsage;
    }
    const std::string path = std::filesystem::absolute(p.substr(eq + 1)).string();
    if (auto loaded = policy::LoadPolicyFile(path); !loaded) {
      std::cerr << loaded.error().message() << "\n";
      return kExitInvalid;
    }
    g.policies[p.substr(0, eq)] = path;
  }
  if (!o.config.empty()) {
    auto c = LoadConfigForState(o.config);
    if (!c) {
      std::cerr << c.error().message() << "\n";
      return kExitInvalid;
    }
    for (const auto& sv : g.servers) {
      if (!c->servers.contains(sv)) {
        std::cerr << "toolwarden grants: " << o.config << " has no server \"" << sv << "\"\n";
        return kExitUsage;
      }
    }
  }
  if (!o.expires.empty()) {
    auto ms = auth::ParseExpiry(o.expires);
    if (!ms) {
      std::cerr << "toolwarden grants: " << ms.error().message() << "\n";
      return kExitUsage;
    }
    g.expires_ms = now + *ms;
  }
  g.principal = o.principal;
  auto token = (*store)->Create(g, now);
  if (!token) {
    std::cerr << "toolwarden grants: " << token.error().message() << "\n";
    return kExitInvalid;
  }
  if (o.json) {
    json::value j = admin::GrantJson(*(*store)->Get(g.name).value(), now);
    j.as_object()["token"] = *token;
    std::cout << json::serialize(j) << "\n";
    return kExitOk;
  }
  std::cout << "Created grant \"" << g.name << "\" (servers: "
            << (o.servers.empty() ? "all" : o.servers) << "; expires: "
            << (g.expires_ms ? FormatTime(g.expires_ms) : std::string("never"))
            << ").\nIts token is shown once; only its hash is stored:\n\n  " << *token
            << "\n\nAgents send it as   Authorization: Bearer " << *token << "\n";
  return kExitOk;
}

int AdminTokenCommand(const std::string& config_path, const std::string& state) {
  auto spec = ResolveState(config_path, state);
  if (!spec) {
    std::cerr << spec.error().message() << "\n";
    return kExitInvalid;
  }
  auto store = auth::OpenGrantStore(*spec);
  if (!store) {
    std::cerr << "toolwarden admin: " << store.error().message() << "\n";
    return kExitUnavailable;
  }
  auto token = (*store)->ResetAdminTokens(SystemClock().NowMs());
  if (!token) {
    std::cerr << "toolwarden admin: " << token.error().message() << "\n";
    return kExitUnavailable;
  }
  std::cout << "New admin API token (the old one no longer works; only its hash is stored):\n\n  "
            << *token << "\n";
  return kExitOk;
}

}  // namespace tw::app
