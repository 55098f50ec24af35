#include "admin/api.h"

#include <boost/url/encode.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>

#include <algorithm>
#include <set>
#include <variant>

#include "catalog/classify.h"
#include "common/log.h"
#include "common/random.h"
#include "policy/loader.h"
#include "policy/policy.h"
#include "policy/yaml_reader.h"

namespace tw::admin {

namespace {

Response Json(int status, json::value body) { return {status, json::serialize(body) + "\n"}; }

Response Err(int status, std::string_view code, std::string_view message) {
  return Json(status, json::object{{"error", json::object{{"code", code}, {"message", message}}}});
}

// Splits "/api/a/b?x=1" into {"a", "b"} and the query parameters (decoded).
std::optional<ApiRoute> ParseTarget(const std::string& target) {
  auto url = boost::urls::parse_origin_form(target);
  if (!url) return std::nullopt;
  ApiRoute r;
  for (auto seg : url->segments()) {
    if (!seg.empty()) r.parts.emplace_back(seg);
  }
  if (r.parts.empty() || r.parts[0] != "api") return std::nullopt;
  r.parts.erase(r.parts.begin());
  for (auto p : url->params()) r.query[std::string(p.key)] = std::string(p.value);
  return r;
}

// The most records one replay from the console reads: about half a second of the home loop
// (docs/benchmarks.md, "Replay"); the CLI reads any number.
constexpr int64_t kConsoleReplayRecords = 250'000;

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
                      {"last_used_ms", g.last_used_ms},
                      {"principal", g.principal},
                      {"client", g.client}};
}

void Api::Record(int64_t now, const std::string& action, const std::string& target,
                 const std::string& detail) {
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
}

// Holds, in the browser that started a console sign-in, what binds the sign-in to it.
constexpr std::string_view kSsoCookie = "__Host-tw_sso";

Response Api::Sso(const Request& req, const ApiRoute& route, int64_t now) {
  if (req.method != "GET") return Err(405, "method_not_allowed", req.method + " is not allowed here");
  auto redirect = [](std::string location) {
    Response r{302, ""};
    r.content_type = "text/plain";
    r.headers.emplace_back("Location", std::move(location));
    return r;
  };
  if (route.parts.size() == 2) {
    // Only a console page to come back to: never another site.
    std::string back = route.Get("return");
    if (!back.starts_with("#/")) back.clear();
    const std::string browser = RandomHex(32);
    auto url = backend_.SsoStart(req.base, back, browser);
    if (!url) return Err(url.error().code() == ErrorCode::kNotFound ? 404 : 503, "unavailable", url.error().message());
    Response r = redirect(*url);
    // Lax: the provider sends the browser back by a cross-site navigation.
    r.headers.emplace_back("Set-Cookie", std::string(kSsoCookie) + "=" + browser +
                                             "; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=600");
    return r;
  }
  if (route.parts.size() != 3 || route.parts[2] != "callback") return Err(404, "not_found", "no such endpoint");
  auto fail = [&](const std::string& why) {
    Record(now, "console.login", "console", "refused: " + why);
    return redirect("/ui/?sso_error=" + boost::urls::encode(why, boost::urls::unreserved_chars));
  };
  if (!route.Get("error").empty()) return fail("the identity provider said " + route.Get("error"));
  auto user = backend_.SsoFinish(req.base, route.Get("code"), route.Get("state"),
                                 ConsoleSessions::CookieNamed(req.cookie, kSsoCookie));
  if (!user) return fail(user.error().message());
  ConsoleLogin login = console_.Open(now, user->principal);
  Record(now, "console.login", "console", "as " + user->principal);
  Response r = redirect("/ui/" + user->return_to);
  r.headers.emplace_back("Set-Cookie", ConsoleSessions::SetCookie(login, now));
  r.headers.emplace_back("Set-Cookie", std::string(kSsoCookie) + "=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0");
  return r;
}

Response Api::Login(const Request& req, int64_t now) {
  if (req.method == "GET") {
    // How the console may sign in: the admin token always, the identity provider when set.
    const std::string sso = backend_.SsoName();
    return Json(200, json::object{{"sso", sso.empty() ? json::value(nullptr) : json::value(sso)}});
  }
  if (req.method != "POST") return Err(405, "method_not_allowed", req.method + " is not allowed here");
  if (req.content_type.find("application/json") == std::string::npos) {
    return Err(415, "unsupported_media_type", "send the token as JSON: {\"token\": \"twa_…\"}");
  }
  if (auto wait = failures_.Blocked(req.client, now)) {
    Response r = Err(429, "too_many_requests", "too many failed logins; try again in a minute");
    r.headers.emplace_back("Retry-After", std::to_string(*wait));
    return r;
  }
  boost::system::error_code ec;
  json::value v = json::parse(req.body, ec);
  const std::string token = !ec && v.is_object() ? Str(v.get_object(), "token") : std::string();
  auto is_admin = token.empty() ? Result<bool>(false) : backend_.Grants().IsAdminToken(token);
  if (!is_admin) return Err(503, "unavailable", is_admin.error().message());
  if (!*is_admin) {
    failures_.Failed(req.client, now);
    Record(now, "console.login", "console", "refused: not the admin token");
    return Err(401, "unauthorized",
               token.empty() ? "paste the admin token (twa_…)" : "that is not the admin token");
  }
  ConsoleLogin login = console_.Open(now);
  Record(now, "console.login", "console", "");
  Response r = Json(200, json::object{{"csrf", login.csrf}, {"expires_ms", login.expires_ms}});
  r.headers.emplace_back("Set-Cookie", ConsoleSessions::SetCookie(login, now));
  return r;
}

Response Api::Handle(const Request& req) {
  auto route = ParseTarget(req.target);
  if (!route) return Err(404, "not_found", "no such endpoint");
  const auto& p = route->parts;
  const std::string& m = req.method;
  const int64_t now = backend_.NowMs();
  if (p.size() == 1 && p[0] == "login") return Login(req, now);
  if (p.size() >= 2 && p[0] == "login" && p[1] == "sso") return Sso(req, *route, now);

  // Who: an admin token, or a console session cookie — nothing else.
  const std::string token = auth::BearerToken(req.authorization).value_or("");
  std::optional<ConsoleSession> console;
  const std::string cookie = ConsoleSessions::CookieValue(req.cookie);
  if (token.empty() && !cookie.empty()) console = console_.Find(cookie, now);
  if (!console) {
    if (auto wait = failures_.Blocked(req.client, now)) {
      Response r = Err(429, "too_many_requests",
                       "too many failed authentications from this address; try again later");
      r.headers.emplace_back("Retry-After", std::to_string(*wait));
      return r;
    }
    auto is_admin = token.empty() ? Result<bool>(false) : backend_.Grants().IsAdminToken(token);
    if (!is_admin) return Err(503, "unavailable", is_admin.error().message());
    if (!*is_admin) {
      if (!token.empty()) failures_.Failed(req.client, now);
      Response r = Err(401, "unauthorized",
                       !token.empty()   ? "not an admin token"
                       : cookie.empty() ? "an admin token is required (Authorization: Bearer twa_…)"
                                        : "the console session has ended; log in again");
      if (!cookie.empty()) r.headers.emplace_back("Set-Cookie", ConsoleSessions::ClearCookie());
      return r;
    }
  }

  // What: the route whose path matches, then its method.
  const Route* found = nullptr;
  bool path_known = false;
  std::vector<std::string> params;
  for (const Route& r : Routes()) {
    std::vector<std::string> captured;
    if (!MatchPath(r.path, p, captured)) continue;
    path_known = true;
    if (r.method != m) continue;
    found = &r;
    params = std::move(captured);
    break;
  }
  if (!found) {
    return path_known ? Err(405, "method_not_allowed", m + " is not allowed here")
                      : Err(404, "not_found", "no such endpoint");
  }

  json::object body;
  if (m != "GET") {
    if (req.content_type.find("application/json") == std::string::npos) {
      return Err(415, "unsupported_media_type",
                 "state-changing calls must send Content-Type: application/json");
    }
    // A browser sends the cookie with any request to this host; only our page can read the
    // CSRF token to send with it.
    if (console && !ConsoleSessions::SameSecret(req.csrf, console->csrf)) {
      return Err(403, "csrf", "missing or wrong X-CSRF-Token for this console session");
    }
    if (!req.body.empty()) {
      boost::system::error_code ec;
      json::value v = json::parse(req.body, ec);
      if (ec || !v.is_object()) return Err(400, "bad_request", "the body must be a JSON object");
      body = std::move(v.as_object());
    }
  }
  return (this->*found->handler)(Call{req, *route, std::move(params), body, now, console, cookie});
}

bool Api::MatchPath(const std::vector<std::string_view>& pattern,
                    const std::vector<std::string>& parts, std::vector<std::string>& params) {
  if (pattern.size() != parts.size()) return false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i].starts_with(':')) {
      params.push_back(parts[i]);
    } else if (pattern[i] != parts[i]) {
      return false;
    }
  }
  return true;
}

// The admin API, resource by resource (docs/api.md). Every path is under /api/; ":x" matches
// one segment, handed to the handler in order. A known path with another method is a 405.
const std::vector<Api::Route>& Api::Routes() {
  static const std::vector<Route> kRoutes = {
      {"GET", {}, &Api::Health},
      {"GET", {"health"}, &Api::Health},
      // The caller's own console session.
      {"GET", {"session"}, &Api::SessionInfo},
      {"POST", {"logout"}, &Api::Logout},
      // Decisions as they happen (text/event-stream).
      {"GET", {"events"}, &Api::EventStream},
      // Servers, their tools and pins, their policies.
      {"GET", {"servers"}, &Api::ListServers},
      {"GET", {"servers", ":server", "tools"}, &Api::ServerTools},
      {"GET", {"servers", ":server", "policy"}, &Api::GetPolicy},
      {"PUT", {"servers", ":server", "policy"}, &Api::SavePolicy},
      {"POST", {"servers", ":server", "accept"}, &Api::AcceptPins},
      {"POST", {"servers", ":server", "tools", ":tool", "accept"}, &Api::AcceptPins},
      // Grants: agents' tokens.
      {"GET", {"grants"}, &Api::ListGrants},
      {"POST", {"grants"}, &Api::CreateGrant},
      {"GET", {"grants", ":grant"}, &Api::GetGrant},
      {"DELETE", {"grants", ":grant"}, &Api::RevokeGrant},
      // Approvals: calls held for a human.
      {"GET", {"approvals"}, &Api::ListApprovals},
      {"GET", {"approvals", ":id"}, &Api::GetApproval},
      {"POST", {"approvals", ":id", "approve"}, &Api::ResolveApproval},
      {"POST", {"approvals", ":id", "deny"}, &Api::ResolveApproval},
      // The audit trail and the counters.
      {"GET", {"audit"}, &Api::Audit},
      {"GET", {"audit", ":view"}, &Api::Audit},
      {"GET", {"counters"}, &Api::Counters},
      // Policies: in force, checked, explained; the config reloaded.
      {"GET", {"policies"}, &Api::ListPolicies},
      {"POST", {"policies", "validate"}, &Api::Validate},
      {"POST", {"explain"}, &Api::Explain},
      {"POST", {"replay"}, &Api::ReplayDraft},
      {"PUT", {"servers", ":server", "shadow"}, &Api::SetShadow},
      {"DELETE", {"servers", ":server", "shadow"}, &Api::StopShadow},
      {"POST", {"reload"}, &Api::Reload},
      {"GET", {"oauth", "consents", ":id"}, &Api::GetConsent},
      {"POST", {"oauth", "consents", ":id"}, &Api::AnswerConsent},
  };
  return kRoutes;
}

Response Api::Health(const Call&) { return Json(200, json::object{{"status", "ok"}}); }

Response Api::SessionInfo(const Call& c) {
  json::object out{{"via", c.console ? "cookie" : "token"}};
  if (c.console) {
    out["csrf"] = c.console->csrf;
    out["expires_ms"] = c.console->expires_ms;
  }
  return Json(200, std::move(out));
}

Response Api::Logout(const Call& c) {
  if (c.console) console_.Close(c.cookie);
  Response r = Json(200, json::object{{"result", "logged out"}});
  r.headers.emplace_back("Set-Cookie", ConsoleSessions::ClearCookie());
  return r;
}

Response Api::EventStream(const Call&) {
  Response r;
  r.content_type = "text/event-stream";
  r.events = backend_.Events().Subscribe();
  return r;
}

std::optional<ServerInfo> Api::FindServer(const std::string& name) {
  for (auto& s : backend_.Servers()) {
    if (s.name == name) return std::move(s);
  }
  return std::nullopt;
}

Response Api::ListServers(const Call&) {
  json::array out;
  for (const auto& s : backend_.Servers()) {
    out.push_back(json::object{{"name", s.name},         {"transport", s.transport},
                               {"target", s.target},     {"isolation", s.isolation},
                               {"policy", s.policy},     {"policy_version", s.policy_version},
                               {"pins", s.pins},         {"state", s.state},
                               {"shadow_policy", s.shadow_policy}, {"shadow_draft", s.shadow_draft},
                               {"last_error", s.last_error}, {"changed_ms", s.changed_ms}});
  }
  return Json(200, json::object{{"servers", std::move(out)}});
}

Response Api::ServerTools(const Call& c) {
  const std::string& name = c.params[0];
  if (!FindServer(name)) return Err(404, "not_found", "no server named \"" + name + "\"");
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
    const json::value& source = pin.pending_definition ? json::parse(*pin.pending_definition, ec) : def;
    policy::ToolClass cls;
    if (source.is_object()) {
      const catalog::Classification cl = catalog::Classify(source.get_object());
      cls = {catalog::CategoryName(cl.category), catalog::RiskName(cl.risk)};
      t["category"] = cls.category;
      t["risk"] = cls.risk;
    }
    if (policy) {
      const policy::ToolStance stance = policy::StanceOf(*policy, pin.tool, cls);
      t["decision"] = policy::StanceName(stance.stance);
      t["rule"] = stance.rule;
      t["selector"] = policy::SelectorOf(*policy, pin.tool, cls);
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
Response Api::AcceptPins(const Call& c) {
  const std::string& name = c.params[0];
  if (!FindServer(name)) return Err(404, "not_found", "no server named \"" + name + "\"");
  const std::string tool = c.params.size() > 1 ? c.params[1] : "";
  auto n = backend_.Pins().Accept(name, tool, c.now);
  if (!n) return Err(503, "unavailable", n.error().message());
  Record(c.now, "pins.accept", name + (tool.empty() ? "" : " " + tool), std::to_string(*n) + " change(s)");
  return Json(200, json::object{{"accepted", *n}});
}

Response Api::ListGrants(const Call& c) {
  auto list = backend_.Grants().List();
  if (!list) return Err(503, "unavailable", list.error().message());
  json::array out;
  for (const auto& g : *list) out.push_back(GrantJson(g, c.now));
  return Json(200, json::object{{"grants", std::move(out)}});
}

Response Api::CreateGrant(const Call& c) {
  const json::object& body = c.body;
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
    g.expires_ms = c.now + *ms;
  }
  for (const auto& s : g.servers) {
    if (!FindServer(s)) return Err(400, "bad_request", "unknown server \"" + s + "\"");
  }
  auth::GrantStore& grants = backend_.Grants();
  auto created_token = grants.Create(g, c.now);
  if (!created_token) {
    const bool exists = created_token.error().message().find("already exists") != std::string::npos;
    return Err(exists ? 409 : 400, exists ? "conflict" : "bad_request", created_token.error().message());
  }
  Record(c.now, "grants.create", g.name, "");
  auto created = grants.Get(g.name);
  json::value out = created && *created ? GrantJson(**created, c.now) : json::value(json::object{});
  out.as_object()["token"] = *created_token;  // shown once
  return Json(201, std::move(out));
}

Response Api::GetGrant(const Call& c) {
  auto g = backend_.Grants().Get(c.params[0]);
  if (!g) return Err(503, "unavailable", g.error().message());
  if (!*g) return Err(404, "not_found", "no grant named \"" + c.params[0] + "\"");
  return Json(200, GrantJson(**g, c.now));
}

Response Api::RevokeGrant(const Call& c) {
  auto g = backend_.Grants().Revoke(c.params[0], c.now);
  if (!g) return Err(404, "not_found", g.error().message());
  Record(c.now, "grants.revoke", c.params[0], "");
  return Json(200, GrantJson(*g, c.now));
}

Response Api::GetConsent(const Call& c) {
  auto pending = backend_.PendingConsent(c.params[0]);
  if (!pending) {
    const bool over = pending.error().code() == ErrorCode::kNotFound;
    return Err(over ? 404 : 503, over ? "not_found" : "unavailable", pending.error().message());
  }
  return Json(200, std::move(*pending));
}

Response Api::AnswerConsent(const Call& c) {
  Backend::ConsentAnswer answer;
  const json::value* approve = c.body.if_contains("approve");
  if (!approve || !approve->is_bool()) return Err(400, "bad_request", "\"approve\" must be true or false");
  answer.approve = approve->as_bool();
  if (const json::value* servers = c.body.if_contains("servers")) {
    if (!servers->is_array()) return Err(400, "bad_request", "\"servers\" must be a list of server names");
    for (const json::value& s : servers->as_array()) {
      if (!s.is_string()) return Err(400, "bad_request", "\"servers\" must be a list of server names");
      answer.servers.emplace_back(s.as_string());
    }
  }
  if (const std::string expires = Str(c.body, "expires"); !expires.empty()) {
    auto ms = auth::ParseExpiry(expires);
    if (!ms) return Err(400, "bad_request", ms.error().message());
    answer.expires_ms = c.now + *ms;
  }
  // Who the grant acts for: the person named on the consent screen (the admin may approve a
  // teammate's client), else the admin.
  answer.principal = Str(c.body, "principal");
  if (answer.principal.empty()) answer.principal = c.console && !c.console->principal.empty() ? c.console->principal : "admin";
  if (answer.principal.size() > 256) return Err(400, "bad_request", "\"principal\" is longer than 256 bytes");
  answer.base = c.request.base;
  auto next = backend_.AnswerConsent(c.params[0], answer);
  if (!next) {
    const ErrorCode code = next.error().code();
    return code == ErrorCode::kNotFound         ? Err(404, "not_found", next.error().message())
           : code == ErrorCode::kInvalidArgument ? Err(400, "bad_request", next.error().message())
                                                 : Err(503, "unavailable", next.error().message());
  }
  Record(c.now, answer.approve ? "oauth.consent" : "oauth.decline", c.params[0], "");
  return Json(200, json::object{{"redirect", *next}});
}

Response Api::ListApprovals(const Call& c) {
  const bool all = c.route.Get("state") == "all";
  auto list = backend_.Approvals().List(!all);
  if (!list) return Err(503, "unavailable", list.error().message());
  json::array out;
  for (const auto& a : *list) out.push_back(ApprovalJson(a));
  return Json(200, json::object{{"approvals", std::move(out)}});
}

Response Api::GetApproval(const Call& c) {
  auto a = backend_.Approvals().Get(c.params[0]);
  if (!a) return Err(503, "unavailable", a.error().message());
  if (!*a) return Err(404, "not_found", "no approval " + c.params[0]);
  return Json(200, ApprovalJson(**a));
}

Response Api::ResolveApproval(const Call& c) {
  const std::string& id = c.params[0];
  const bool approve = c.route.parts.back() == "approve";
  approval::ApprovalStore& approvals = backend_.Approvals();
  std::string by = Str(c.body, "by");
  by = by.empty() ? "admin-api" : "admin-api:" + by;
  auto existing = approvals.Get(id);
  if (existing && !*existing) return Err(404, "not_found", "no approval " + id);
  auto r = approvals.Resolve(id, approve ? approval::State::kApproved : approval::State::kDenied, by,
                             Str(c.body, "reason"), c.now);
  if (!r) return Err(409, "conflict", r.error().message());
  Record(c.now, approve ? "approvals.approve" : "approvals.deny", id, r->server + " " + r->tool);
  return Json(200, ApprovalJson(*r));
}

Response Api::ListPolicies(const Call&) {
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

Response Api::Reload(const Call& c) {
  auto r = backend_.Reload();
  Record(c.now, "reload", "config", r ? *r : r.error().message());
  if (!r) return Err(422, "invalid_config", r.error().message());
  return Json(200, json::object{{"result", *r}});
}

namespace {

// A non-negative integer query parameter; 0 when absent, an error when malformed.
Result<int64_t> IntParam(const ApiRoute& route, const std::string& key) {
  const std::string v = route.Get(key);
  if (v.empty()) return int64_t{0};
  int64_t n = 0;
  for (char c : v) {
    if (c < '0' || c > '9' || n > (INT64_MAX - 9) / 10) {
      return Fail(Error::InvalidArgument(key + " must be a non-negative integer"));
    }
    n = n * 10 + (c - '0');
  }
  return n;
}


// One CSV cell (RFC 4180 quoting). A cell that a spreadsheet would run as a formula (=, +, -,
// @, tab, CR first) gets a leading apostrophe: tool names and reasons come from outsiders.
std::string CsvCell(std::string_view v) {
  std::string out;
  if (!v.empty() && std::string_view("=+-@\t\r").find(v.front()) != std::string_view::npos) {
    out += '\'';
  }
  out.append(v);
  if (out.find_first_of(",\"\r\n") == std::string::npos) return out;
  std::string quoted = "\"";
  for (char c : out) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  return quoted + "\"";
}

json::value DiagnosticsJson(const std::vector<policy::Diagnostic>& diags) {
  json::array out;
  for (const auto& d : diags) {
    out.push_back(json::object{{"line", d.line}, {"column", d.column}, {"message", d.message}});
  }
  return out;
}

}  // namespace

Response Api::Audit(const Call& call) {
  const ApiRoute& route = call.route;
  const int64_t now = call.now;
  audit::Query q;
  q.grant = route.Get("grant");
  q.server = route.Get("server");
  q.tool = route.Get("tool");
  q.decision = route.Get("decision");
  if (!route.Get("since").empty()) {
    auto ms = policy::ParseDurationMs(route.Get("since"));
    if (!ms) return Err(400, "bad_request", "since: " + ms.error().message());
    q.since_ms = now - *ms;
  }
  auto from = IntParam(route, "from");
  auto to = IntParam(route, "to");
  auto offset = IntParam(route, "offset");
  auto limit = IntParam(route, "limit");
  for (auto* r : {&from, &to, &offset, &limit}) {
    if (!*r) return Err(400, "bad_request", r->error().message());
  }
  q.since_ms = std::max(q.since_ms, *from);
  q.until_ms = *to;
  q.offset = *offset;

  if (route.parts.size() == 2) {
    if (route.parts[1] != "histogram") return Err(404, "not_found", "no such endpoint");
    int64_t bucket = 60'000;
    if (!route.Get("bucket").empty()) {
      auto b = policy::ParseDurationMs(route.Get("bucket"));
      if (!b || *b < 1000) return Err(400, "bad_request", "bucket must be a duration of 1s or more");
      bucket = *b;
    }
    if (!q.since_ms) q.since_ms = now - 3600'000;
    const int64_t end = q.until_ms ? q.until_ms : now;
    if ((end - q.since_ms) / bucket > 2000) {
      return Err(400, "bad_request", "at most 2000 buckets: widen the bucket or narrow the range");
    }
    auto buckets = backend_.AuditHistogram(q, bucket);
    if (!buckets) return Err(503, "unavailable", buckets.error().message());
    json::array out;
    for (const auto& b : *buckets) {
      out.push_back(json::object{{"start_ms", b.start_ms}, {"allow", b.allow}, {"deny", b.deny},
                                 {"approval", b.approval}});
    }
    return Json(200, json::object{{"bucket_ms", bucket}, {"from_ms", q.since_ms}, {"to_ms", end},
                                  {"buckets", std::move(out)}});
  }

  const std::string format = route.Get("format");
  const bool exporting = format == "jsonl" || format == "csv";
  if (!format.empty() && format != "json" && !exporting) {
    return Err(400, "bad_request", "format must be json, jsonl or csv");
  }
  const int64_t max_limit = exporting ? 100'000 : 10'000;
  q.limit = static_cast<int>(std::clamp<int64_t>(*limit ? *limit : (exporting ? max_limit : 100), 1, max_limit));
  auto records = backend_.QueryAudit(q);
  if (!records) return Err(503, "unavailable", records.error().message());
  if (exporting) {
    Response r;
    r.content_type = format == "csv" ? "text/csv; charset=utf-8" : "application/x-ndjson";
    r.headers.emplace_back("Content-Disposition",
                           "attachment; filename=\"toolwarden-audit." + format + "\"");
    if (format == "csv") {
      r.body = "id,time,grant,session,server,tool,decision,rule,reason,outcome,latency_ms,policy_version,args_digest\r\n";
      for (const auto& rec : *records) {
        for (const std::string& cell :
             {rec.id, IsoTimeUtc(rec.ts_ms), rec.grant, rec.session, rec.server, rec.tool, rec.decision,
              rec.rule, rec.reason, rec.outcome, std::to_string(rec.latency_ms), rec.policy_version}) {
          r.body += CsvCell(cell);
          r.body += ',';
        }
        r.body += CsvCell(rec.args_digest);
        r.body += "\r\n";
      }
    } else {
      for (const auto& rec : *records) {
        r.body += json::serialize(RecordJson(rec));
        r.body += '\n';
      }
    }
    return r;
  }
  auto total = backend_.CountAudit(q);
  if (!total) return Err(503, "unavailable", total.error().message());
  json::array out;
  for (const auto& r : *records) out.push_back(RecordJson(r));
  return Json(200, json::object{{"records", std::move(out)},
                                {"total", *total},
                                {"offset", q.offset},
                                {"limit", q.limit}});
}

Response Api::Counters(const Call& call) {
  const ApiRoute& route = call.route;
  const int64_t now = call.now;
  auto grants = backend_.Grants().List();
  if (!grants) return Err(503, "unavailable", grants.error().message());
  const std::string only = route.Get("grant");
  json::array rows;
  auto row = [&](const std::string& grant, const std::string& server, const policy::Limit& l,
                 std::optional<int64_t> used) {
    json::object r{{"grant", grant},
                   {"server", server},
                   {"counter", l.counter},
                   {"rule", l.rule},
                   {"scope", policy::ScopeName(l.scope)},
                   {"window", l.window.text},
                   {"max", l.max},
                   {"resets_ms", l.window.End(now)}};
    if (used) {
      r["used"] = *used;
      r["remaining"] = std::max<int64_t>(0, l.max - *used);
    }
    rows.push_back(std::move(r));
  };
  for (const auto& server : backend_.Servers()) {
    std::set<std::string> global_seen;  // a global counter is one row per server
    for (const auto& g : *grants) {
      if (g.revoked_ms || (g.expires_ms && now >= g.expires_ms)) continue;
      if (!only.empty() && g.name != only) continue;
      if (!g.servers.empty() &&
          std::find(g.servers.begin(), g.servers.end(), server.name) == g.servers.end()) {
        continue;
      }
      auto policy = backend_.PolicyForGrant(server.name, g);
      if (!policy) continue;
      for (const policy::Limit* l : policy->AllLimits()) {
        if (rows.size() >= 5000) break;
        if (l->scope == policy::Scope::kSession) {
          row(g.name, server.name, *l, std::nullopt);  // one counter per session: no single value
          continue;
        }
        if (l->scope == policy::Scope::kGlobal && !global_seen.insert(l->counter).second) continue;
        auto used = backend_.CounterUsed(*l, l->scope == policy::Scope::kGlobal ? "*" : g.name, now);
        if (!used) return Err(503, "unavailable", used.error().message());
        row(l->scope == policy::Scope::kGlobal ? "*" : g.name, server.name, *l, *used);
      }
    }
  }
  return Json(200, json::object{{"counters", std::move(rows)}});
}

Response Api::GetPolicy(const Call& call) {
  const std::optional<ServerInfo> found = FindServer(call.params[0]);
  if (!found) return Err(404, "not_found", "no server named \"" + call.params[0] + "\"");
  const ServerInfo& info = *found;
  const std::string& server = info.name;
  const std::string& path = info.policy;
  if (path.empty()) {
    return Err(404, "no_policy",
               "server \"" + server + "\" has no policy file, so every call is allowed; add "
               "`policy: FILE` to its entry in the config to edit it here");
  }
  auto text = backend_.ReadPolicyFile(path);
  if (!text) return Err(503, "unavailable", text.error().message());
  const policy::FileFormat format = policy::FormatFromName(path);
  json::value document = nullptr;
  std::vector<policy::Diagnostic> diags;
  if (auto node = policy::ParseYaml(*text, format == policy::FileFormat::kJson, diags)) {
    document = policy::YamlToJson(*node);
  }
  const policy::CompileResult compiled = policy::CompilePolicy(*text, path, format);
  auto in_force = backend_.PolicyOf(server);
  // Comments and layout are lost when the console rewrites a YAML file; say so before.
  bool comments = false;
  size_t at = 0;
  while ((at = text->find('#', at)) != std::string::npos) {
    if (at == 0 || (*text)[at - 1] == ' ' || (*text)[at - 1] == '\n' || (*text)[at - 1] == '\t') {
      comments = true;
      break;
    }
    ++at;
  }
  return Json(200, json::object{
                       {"server", server},
                       {"path", path},
                       {"format", format == policy::FileFormat::kJson ? "json" : "yaml"},
                       {"dialect", compiled.policy && compiled.policy->format == policy::Format::kIntercept
                                       ? "intercept"
                                       : "native"},
                       {"text", *text},
                       {"version", policy::PolicyVersion(*text)},
                       {"in_force_version", in_force ? in_force->version : std::string()},
                       {"has_comments", comments},
                       {"document", std::move(document)},
                       {"diagnostics", DiagnosticsJson(compiled.diagnostics)}});
}

Response Api::SavePolicy(const Call& call) {
  const std::optional<ServerInfo> found = FindServer(call.params[0]);
  if (!found) return Err(404, "not_found", "no server named \"" + call.params[0] + "\"");
  const ServerInfo& info = *found;
  const json::object& body = call.body;
  const int64_t now = call.now;
  const std::string& server = info.name;
  const std::string& path = info.policy;
  if (path.empty()) return Err(404, "no_policy", "server \"" + server + "\" has no policy file");
  const json::value* text = body.if_contains("text");
  const std::string base = Str(body, "base_version");
  if (!text || !text->is_string()) return Err(400, "bad_request", "text (the new file) is required");
  if (base.empty()) {
    return Err(400, "bad_request", "base_version (the version the edit started from) is required");
  }
  auto current = backend_.ReadPolicyFile(path);
  if (!current) return Err(503, "unavailable", current.error().message());
  if (policy::PolicyVersion(*current) != base) {
    return Err(409, "conflict",
               path + " changed on disk since it was loaded (version " + policy::PolicyVersion(*current) +
                   ", not " + base + "); reload it and apply the changes again");
  }
  const std::string new_text(text->get_string());
  const policy::CompileResult compiled =
      policy::CompilePolicy(new_text, path, policy::FormatFromName(path));
  if (!compiled.policy) {
    return Json(422, json::object{{"error", json::object{{"code", "invalid_policy"},
                                                         {"message", policy::FormatDiagnostics(path, compiled.diagnostics)},
                                                         {"diagnostics", DiagnosticsJson(compiled.diagnostics)}}}});
  }
  if (auto w = backend_.WritePolicyFile(path, new_text); !w) {
    return Err(503, "unavailable", w.error().message());
  }
  // WritePolicyFile has put the new policy in force; the next call is decided by it.
  auto in_force = backend_.PolicyOf(server);
  const std::string version = policy::PolicyVersion(new_text);
  Record(now, "policies.save", server, path + " " + version);
  return Json(200, json::object{{"path", path},
                                {"version", version},
                                {"in_force_version", in_force ? in_force->version : std::string()},
                                {"reloaded", in_force && in_force->version == version}});
}

Response Api::Validate(const Call& call) {
  const json::object& body = call.body;
  const json::value* text = body.if_contains("text");
  if (!text || !text->is_string()) return Err(400, "bad_request", "text (the policy) is required");
  std::string format = Str(body, "format");
  if (format.empty()) format = "yaml";
  if (format != "yaml" && format != "json") return Err(400, "bad_request", "format must be yaml or json");
  const policy::CompileResult compiled =
      policy::CompilePolicy(text->get_string(), format == "json" ? "policy.json" : "policy.yaml",
                            format == "json" ? policy::FileFormat::kJson : policy::FileFormat::kYaml);
  return Json(200, json::object{{"ok", compiled.policy != nullptr},
                                {"diagnostics", DiagnosticsJson(compiled.diagnostics)}});
}

Response Api::Explain(const Call& call) {
  const json::object& body = call.body;
  const int64_t now = call.now;
  const std::string server = Str(body, "server");
  const std::string tool = Str(body, "tool");
  if (server.empty() || tool.empty()) return Err(400, "bad_request", "server and tool are required");
  json::object args;
  if (const json::value* a = body.if_contains("arguments")) {
    if (!a->is_object()) return Err(400, "bad_request", "arguments must be a JSON object");
    args = a->get_object();
  }
  std::string grant = Str(body, "grant");
  if (grant.empty()) grant = "console";
  const auto servers = backend_.Servers();
  auto info = std::find_if(servers.begin(), servers.end(), [&](const ServerInfo& s) { return s.name == server; });
  if (info == servers.end()) return Err(404, "not_found", "no server named \"" + server + "\"");
  const std::string& path = info->policy;
  std::shared_ptr<const policy::Policy> policy;
  if (const json::value* draft = body.if_contains("text"); draft && draft->is_string()) {
    // A draft from the builder: explain what it would do once saved.
    const auto format = Str(body, "format") == "json" || policy::FormatFromName(path) == policy::FileFormat::kJson
                            ? policy::FileFormat::kJson
                            : policy::FileFormat::kYaml;
    auto compiled = policy::CompilePolicy(draft->get_string(), path.empty() ? "draft" : path, format);
    if (!compiled.policy) {
      return Json(422, json::object{{"error", json::object{{"code", "invalid_policy"},
                                                           {"message", "the draft policy is not valid"},
                                                           {"diagnostics", DiagnosticsJson(compiled.diagnostics)}}}});
    }
    policy = compiled.policy;
  } else {
    policy = backend_.PolicyOf(server);
  }
  if (!policy) return Err(404, "not_found", "no policy for \"" + server + "\"");
  // The tool's class (what the server's tools listing shows: "Destructive/High"), for classes:.
  const std::string cls_text = Str(body, "class");
  const policy::ToolClass cls = policy::ParseToolClass(cls_text);
  std::vector<std::string> groups;
  if (const json::value* gs = body.if_contains("groups"); gs && gs->is_array()) {
    for (const json::value& x : gs->as_array()) {
      if (x.is_string()) groups.emplace_back(x.as_string());
    }
  }
  std::sort(groups.begin(), groups.end());
  const std::string principal = Str(body, "principal");
  const policy::Identity identity{grant, "(explain)", {}, principal, groups};
  const mcp::ToolCall tool_call{tool, args};
  policy::Decision d = policy::Evaluate(*policy, tool_call, identity, now, cls);
  json::array limits;
  std::optional<policy::Decision> limited;
  for (const policy::PlannedCharge& c : d.charges) {
    const policy::Limit& l = *c.limit;
    json::object row{{"rule", l.rule}, {"counter", l.counter}, {"amount", c.amount}, {"max", l.max},
                     {"window", l.window.text}, {"scope", policy::ScopeName(l.scope)}};
    if (l.scope != policy::Scope::kSession) {
      auto used = backend_.CounterUsed(l, l.scope == policy::Scope::kGlobal ? "*" : grant, now);
      if (used) {
        row["used"] = *used;
        if (c.amount > l.max - *used && !limited) limited = policy::LimitDenial(c, *used, now);
      }
    }
    limits.push_back(std::move(row));
  }
  if (limited) d = *limited;
  const std::string_view decision = policy::DecisionName(d);
  json::object out{{"decision", decision}, {"rule", d.rule}, {"reason", d.reason},
                   {"selector", policy::SelectorOf(*policy, tool, cls)},
                   {"limits", std::move(limits)}, {"policy_version", policy->version}};
  if (d.approval_timeout_ms && d.verdict == policy::Verdict::kAllow) {
    out["approval_timeout_ms"] = *d.approval_timeout_ms;
  }
  if (policy->shadow) {
    const policy::Decision s = policy::Evaluate(*policy->shadow, tool_call, identity, now, cls);
    out["shadow"] = json::object{{"decision", policy::DecisionName(s)}, {"rule", s.rule}, {"reason", s.reason}};
  }
  return Json(200, std::move(out));
}

namespace {

// A draft from the builder compiled as the shadow it would be (its `mode: shadow` parts
// enforcing), or the 422 that says why it cannot be.
std::variant<std::shared_ptr<const policy::Policy>, Response> CompileDraft(const json::object& body,
                                                                          const std::string& path) {
  const json::value* text = body.if_contains("text");
  if (!text || !text->is_string()) return Err(400, "bad_request", "text (the draft policy) is required");
  const auto format = Str(body, "format") == "json" ||
                              (Str(body, "format").empty() && policy::FormatFromName(path) == policy::FileFormat::kJson)
                          ? policy::FileFormat::kJson
                          : policy::FileFormat::kYaml;
  auto compiled = policy::CompilePolicy(text->get_string(), path.empty() ? "draft" : path, format);
  if (!compiled.policy) {
    return Json(422, json::object{{"error", json::object{{"code", "invalid_policy"},
                                                         {"message", "the draft policy is not valid"},
                                                         {"diagnostics", DiagnosticsJson(compiled.diagnostics)}}}});
  }
  return policy::WouldBe(compiled.policy);
}

}  // namespace

Response Api::ReplayDraft(const Call& call) {
  const json::object& body = call.body;
  const std::string server = Str(body, "server");
  if (server.empty()) return Err(400, "bad_request", "server is required");
  const std::optional<ServerInfo> info = FindServer(server);
  if (!info) return Err(404, "not_found", "no server named \"" + server + "\"");
  auto draft = CompileDraft(body, info->policy);
  if (auto* refused = std::get_if<Response>(&draft)) return std::move(*refused);
  ReplayRequest r;
  r.server = server;
  r.grant = Str(body, "grant");
  std::string since = Str(body, "since");
  if (since.empty()) since = "24h";
  auto ms = policy::ParseDurationMs(since);
  if (!ms) return Err(400, "bad_request", "since: " + ms.error().message());
  r.since_ms = call.now - *ms;
  r.max_records = kConsoleReplayRecords;
  auto report = backend_.Replay(*std::get<std::shared_ptr<const policy::Policy>>(draft), r);
  if (!report) return Err(503, "unavailable", report.error().message());
  return Json(200, std::move(*report));
}

Response Api::SetShadow(const Call& call) {
  const std::optional<ServerInfo> info = FindServer(call.params[0]);
  if (!info) return Err(404, "not_found", "no server named \"" + call.params[0] + "\"");
  auto draft = CompileDraft(call.body, info->policy);
  if (auto* refused = std::get_if<Response>(&draft)) return std::move(*refused);
  const auto& p = std::get<std::shared_ptr<const policy::Policy>>(draft);
  if (auto set = backend_.SetShadowDraft(info->name, p); !set) {
    return Err(503, "unavailable", set.error().message());
  }
  Record(call.now, "policies.shadow", info->name, "draft " + p->version);
  return Json(200, json::object{{"server", info->name}, {"shadow_draft", p->version}});
}

Response Api::StopShadow(const Call& call) {
  const std::optional<ServerInfo> info = FindServer(call.params[0]);
  if (!info) return Err(404, "not_found", "no server named \"" + call.params[0] + "\"");
  if (auto set = backend_.SetShadowDraft(info->name, nullptr); !set) {
    return Err(503, "unavailable", set.error().message());
  }
  Record(call.now, "policies.shadow_stop", info->name, info->shadow_draft);
  return Json(200, json::object{{"server", info->name}, {"shadow_draft", ""}});
}

}  // namespace tw::admin
