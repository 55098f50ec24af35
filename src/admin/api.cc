#include "admin/api.h"

#include <boost/url/parse.hpp>

#include "catalog/classify.h"
#include "common/random.h"
#include "policy/policy.h"

namespace tw::admin {

namespace {

Response Json(int status, json::value body) { return {status, json::serialize(body) + "\n"}; }

Response Err(int status, std::string_view code, std::string_view message) {
  return Json(status, json::object{{"error", json::object{{"code", code}, {"message", message}}}});
}

// Splits "/api/a/b?x=1" into {"a", "b"} and the query parameters (decoded).
struct Route {
  std::vector<std::string> parts;
  std::map<std::string, std::string> query;
};

std::optional<Route> ParseTarget(const std::string& target) {
  auto url = boost::urls::parse_origin_form(target);
  if (!url) return std::nullopt;
  Route r;
  for (auto seg : url->segments()) {
    if (!seg.empty()) r.parts.emplace_back(seg);
  }
  if (r.parts.empty() || r.parts[0] != "api") return std::nullopt;
  r.parts.erase(r.parts.begin());
  for (auto p : url->params()) r.query[std::string(p.key)] = std::string(p.value);
  return r;
}

std::string Str(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->get_string()) : std::string();
}

json::value RecordJson(const audit::Record& r) { return audit::ToJson(r); }

}  // namespace

json::value ApprovalJson(const approval::Approval& a) {
  boost::system::error_code ec;
  json::value args = json::parse(a.args, ec);
  if (ec) args = a.args;
  return json::object{{"id", a.id},
                      {"state", approval::StateName(a.state)},
                      {"grant", a.grant},
                      {"session", a.session},
                      {"server", a.server},
                      {"tool", a.tool},
                      {"arguments", std::move(args)},
                      {"arguments_digest", a.args_digest},
                      {"created_ms", a.created_ms},
                      {"expires_ms", a.expires_ms},
                      {"resolved_by", a.resolved_by},
                      {"resolved_ms", a.resolved_ms},
                      {"reason", a.reason}};
}

json::value GrantJson(const auth::Grant& g, int64_t now_ms) {
  json::array servers;
  for (const auto& s : g.servers) servers.emplace_back(s);
  json::object policies;
  for (const auto& [k, v] : g.policies) policies[k] = v;
  const char* state = g.revoked_ms         ? "revoked"
                      : g.expires_ms && now_ms >= g.expires_ms ? "expired"
                                                               : "active";
  return json::object{{"name", g.name},
                      {"servers", std::move(servers)},  // empty: every server
                      {"policies", std::move(policies)},
                      {"state", state},
                      {"created_ms", g.created_ms},
                      {"expires_ms", g.expires_ms},
                      {"revoked_ms", g.revoked_ms},
                      {"last_used_ms", g.last_used_ms}};
}

Response Api::Handle(const Request& req) {
  // Who: an admin token, nothing else.
  const std::string token = auth::BearerToken(req.authorization).value_or("");
  auto is_admin = token.empty() ? Result<bool>(false) : backend_.Grants().IsAdminToken(token);
  if (!is_admin) return Err(503, "unavailable", is_admin.error().message());
  if (!*is_admin) {
    return Err(401, "unauthorized",
               token.empty() ? "an admin token is required (Authorization: Bearer twa_…)"
                             : "not an admin token");
  }
  auto route = ParseTarget(req.target);
  if (!route) return Err(404, "not_found", "no such endpoint");
  const auto& p = route->parts;
  const std::string& m = req.method;
  const bool changes = m == "POST" || m == "DELETE" || m == "PUT" || m == "PATCH";
  json::object body;
  if (changes) {
    if (req.content_type.find("application/json") == std::string::npos) {
      return Err(415, "unsupported_media_type",
                 "state-changing calls must send Content-Type: application/json");
    }
    if (!req.body.empty()) {
      boost::system::error_code ec;
      json::value v = json::parse(req.body, ec);
      if (ec || !v.is_object()) return Err(400, "bad_request", "the body must be a JSON object");
      body = std::move(v.as_object());
    }
  }
  const int64_t now = backend_.NowMs();
  // State changes are audited, with the admin API as the actor.
  auto record = [&](const std::string& action, const std::string& target, const std::string& detail) {
    audit::Record r;
    r.id = audit::NewRecordId();
    r.ts_ms = now;
    r.grant = "admin";
    r.server = "(admin)";
    r.tool = action;
    r.decision = "allow";
    r.rule = "admin-api";
    r.reason = target + (detail.empty() ? "" : ": " + detail);
    r.outcome = "ok";
    (void)backend_.Audit().Write(r);
  };
  auto method_not_allowed = [&] { return Err(405, "method_not_allowed", m + " is not allowed here"); };

  if (p.empty() || p[0] == "health") {
    return Json(200, json::object{{"status", "ok"}});
  }

  if (p[0] == "servers") {
    auto servers = backend_.Servers();
    if (p.size() == 1) {
      if (m != "GET") return method_not_allowed();
      json::array out;
      for (const auto& s : servers) {
        out.push_back(json::object{{"name", s.name},         {"transport", s.transport},
                                   {"target", s.target},     {"isolation", s.isolation},
                                   {"policy", s.policy},     {"policy_version", s.policy_version},
                                   {"pins", s.pins},         {"state", s.state},
                                   {"last_error", s.last_error}, {"changed_ms", s.changed_ms}});
      }
      return Json(200, json::object{{"servers", std::move(out)}});
    }
    const std::string& name = p[1];
    bool known = false;
    for (const auto& s : servers) known = known || s.name == name;
    if (!known) return Err(404, "not_found", "no server named \"" + name + "\"");
    if (p.size() == 3 && p[2] == "tools") {
      if (m != "GET") return method_not_allowed();
      auto pins = backend_.Pins().List(name);
      if (!pins) return Err(503, "unavailable", pins.error().message());
      json::array tools;
      const std::shared_ptr<const policy::Policy> policy = backend_.PolicyOf(name);
      for (const auto& pin : *pins) {
        boost::system::error_code ec;
        json::value def = pin.definition.empty() ? json::value(nullptr) : json::parse(pin.definition, ec);
        json::object t{{"name", pin.tool},
                       {"definition", def},
                       {"pinned_ms", pin.pinned_ms},
                       {"changed", pin.pending_hash.has_value()}};
        if (policy) {
          const policy::ToolStance stance = policy::StanceOf(*policy, pin.tool);
          t["decision"] = policy::StanceName(stance.stance);
          t["rule"] = stance.rule;
        }
        const json::value& source = pin.pending_definition
                                        ? json::parse(*pin.pending_definition, ec)
                                        : def;
        if (source.is_object()) {
          const catalog::Classification c = catalog::Classify(source.get_object());
          t["category"] = catalog::CategoryName(c.category);
          t["risk"] = catalog::RiskName(c.risk);
        }
        if (pin.pending_definition) {
          t["pending_definition"] = json::parse(*pin.pending_definition, ec);
          t["pending_note"] = pin.pending_note;
          t["changed_ms"] = pin.changed_ms;
        }
        tools.push_back(std::move(t));
      }
      return Json(200, json::object{{"server", name}, {"tools", std::move(tools)}});
    }
    // POST /api/servers/<s>/tools/<t>/accept, POST /api/servers/<s>/accept: approve changes.
    const bool accept_one = p.size() == 5 && p[2] == "tools" && p[4] == "accept";
    const bool accept_all = p.size() == 3 && p[2] == "accept";
    if (accept_one || accept_all) {
      if (m != "POST") return method_not_allowed();
      const std::string tool = accept_one ? p[3] : "";
      auto n = backend_.Pins().Accept(name, tool, now);
      if (!n) return Err(503, "unavailable", n.error().message());
      record("pins.accept", name + (tool.empty() ? "" : " " + tool), std::to_string(*n) + " change(s)");
      return Json(200, json::object{{"accepted", *n}});
    }
    return Err(404, "not_found", "no such endpoint");
  }

  if (p[0] == "grants") {
    auth::GrantStore& grants = backend_.Grants();
    if (p.size() == 1 && m == "GET") {
      auto list = grants.List();
      if (!list) return Err(503, "unavailable", list.error().message());
      json::array out;
      for (const auto& g : *list) out.push_back(GrantJson(g, now));
      return Json(200, json::object{{"grants", std::move(out)}});
    }
    if (p.size() == 1 && m == "POST") {
      auth::Grant g;
      g.name = Str(body, "name");
      if (const json::value* s = body.if_contains("servers")) {
        if (!s->is_array()) return Err(400, "bad_request", "servers must be a list of server names");
        for (const auto& v : s->get_array()) {
          if (!v.is_string()) return Err(400, "bad_request", "servers must be a list of server names");
          g.servers.emplace_back(v.get_string());
        }
      }
      if (const json::value* pol = body.if_contains("policies")) {
        if (!pol->is_object()) return Err(400, "bad_request", "policies must map server names to policy files");
        for (const auto& kv : pol->get_object()) {
          if (!kv.value().is_string()) return Err(400, "bad_request", "policies must map server names to policy files");
          g.policies[kv.key()] = std::string(kv.value().get_string());
        }
      }
      const std::string expires = Str(body, "expires");
      if (!expires.empty()) {
        auto ms = auth::ParseExpiry(expires);
        if (!ms) return Err(400, "bad_request", ms.error().message());
        g.expires_ms = now + *ms;
      }
      std::vector<std::string> unknown;
      auto servers = backend_.Servers();
      for (const auto& s : g.servers) {
        bool found = false;
        for (const auto& info : servers) found = found || info.name == s;
        if (!found) unknown.push_back(s);
      }
      if (!unknown.empty()) return Err(400, "bad_request", "unknown server \"" + unknown[0] + "\"");
      auto created_token = grants.Create(g, now);
      if (!created_token) {
        const bool exists = created_token.error().message().find("already exists") != std::string::npos;
        return Err(exists ? 409 : 400, exists ? "conflict" : "bad_request", created_token.error().message());
      }
      record("grants.create", g.name, "");
      auto created = grants.Get(g.name);
      json::value out = created && *created ? GrantJson(**created, now) : json::value(json::object{});
      out.as_object()["token"] = *created_token;  // shown once
      return Json(201, std::move(out));
    }
    if (p.size() == 2 && m == "GET") {
      auto g = grants.Get(p[1]);
      if (!g) return Err(503, "unavailable", g.error().message());
      if (!*g) return Err(404, "not_found", "no grant named \"" + p[1] + "\"");
      return Json(200, GrantJson(**g, now));
    }
    if (p.size() == 2 && m == "DELETE") {
      auto g = grants.Revoke(p[1], now);
      if (!g) return Err(404, "not_found", g.error().message());
      record("grants.revoke", p[1], "");
      return Json(200, GrantJson(*g, now));
    }
    return p.size() <= 2 ? method_not_allowed() : Err(404, "not_found", "no such endpoint");
  }

  if (p[0] == "approvals") {
    approval::ApprovalStore& approvals = backend_.Approvals();
    if (p.size() == 1 && m == "GET") {
      auto it = route->query.find("state");
      const bool all = it != route->query.end() && it->second == "all";
      auto list = approvals.List(!all);
      if (!list) return Err(503, "unavailable", list.error().message());
      json::array out;
      for (const auto& a : *list) out.push_back(ApprovalJson(a));
      return Json(200, json::object{{"approvals", std::move(out)}});
    }
    if (p.size() == 2 && m == "GET") {
      auto a = approvals.Get(p[1]);
      if (!a) return Err(503, "unavailable", a.error().message());
      if (!*a) return Err(404, "not_found", "no approval " + p[1]);
      return Json(200, ApprovalJson(**a));
    }
    if (p.size() == 3 && (p[2] == "approve" || p[2] == "deny")) {
      if (m != "POST") return method_not_allowed();
      std::string by = Str(body, "by");
      by = by.empty() ? "admin-api" : "admin-api:" + by;
      auto existing = approvals.Get(p[1]);
      if (existing && !*existing) return Err(404, "not_found", "no approval " + p[1]);
      auto r = approvals.Resolve(p[1],
                                 p[2] == "approve" ? approval::State::kApproved : approval::State::kDenied,
                                 by, Str(body, "reason"), now);
      if (!r) return Err(409, "conflict", r.error().message());
      record(p[2] == "approve" ? "approvals.approve" : "approvals.deny", p[1],
             r->server + " " + r->tool);
      return Json(200, ApprovalJson(*r));
    }
    return Err(404, "not_found", "no such endpoint");
  }

  if (p[0] == "audit" && p.size() == 1) {
    if (m != "GET") return method_not_allowed();
    audit::Query q;
    auto get = [&](const char* k) {
      auto it = route->query.find(k);
      return it == route->query.end() ? std::string() : it->second;
    };
    q.grant = get("grant");
    q.server = get("server");
    q.tool = get("tool");
    q.decision = get("decision");
    if (!get("since").empty()) {
      auto ms = policy::ParseDurationMs(get("since"));
      if (!ms) return Err(400, "bad_request", "since: " + ms.error().message());
      q.since_ms = now - *ms;
    }
    if (!get("limit").empty()) {
      try {
        q.limit = std::clamp(std::stoi(get("limit")), 1, 10000);
      } catch (const std::exception&) {
        return Err(400, "bad_request", "limit must be a number");
      }
    }
    auto records = backend_.QueryAudit(q);
    if (!records) return Err(503, "unavailable", records.error().message());
    json::array out;
    for (const auto& r : *records) out.push_back(RecordJson(r));
    return Json(200, json::object{{"records", std::move(out)}});
  }

  if (p[0] == "policies" && p.size() == 1) {
    if (m != "GET") return method_not_allowed();
    json::array out;
    for (const auto& pi : backend_.Policies()) {
      json::array servers;
      for (const auto& s : pi.servers) servers.emplace_back(s);
      out.push_back(json::object{{"path", pi.path},
                                 {"version", pi.version},
                                 {"servers", std::move(servers)},
                                 {"reloads", pi.reloads},
                                 {"failed_reloads", pi.failed_reloads},
                                 {"text", pi.text}});
    }
    return Json(200, json::object{{"policies", std::move(out)}});
  }

  if (p[0] == "reload" && p.size() == 1) {
    if (m != "POST") return method_not_allowed();
    auto r = backend_.Reload();
    record("reload", "config", r ? *r : r.error().message());
    if (!r) return Err(422, "invalid_config", r.error().message());
    return Json(200, json::object{{"result", *r}});
  }

  return Err(404, "not_found", "no such endpoint");
}

}  // namespace tw::admin
