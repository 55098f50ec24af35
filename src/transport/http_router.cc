#include "transport/http_router.h"

#include <spdlog/spdlog.h>

#include <boost/beast/core/string.hpp>
#include <boost/beast/http.hpp>
#include <boost/url/parse.hpp>
#include <charconv>
#include <chrono>

#include "common/random.h"
#include "jsonrpc/message.h"
#include "mcp/protocol.h"

namespace tw::transport {

namespace beast = boost::beast;
namespace http = beast::http;

namespace {

constexpr std::string_view kSessionHeader = "Mcp-Session-Id";

// What a caller without a valid token is told (401 bodies, OAuth discovery paths).
constexpr std::string_view kGrantTokenHint =
    "This gateway takes a grant token, not OAuth sign-in: its administrator makes one with "
    "`toolwarden grants create NAME -c toolwarden.yaml`, and the client sends it as the header "
    "`Authorization: Bearer tw_...` (Claude Code: `claude mcp add --transport http NAME URL "
    "--header \"Authorization: Bearer tw_...\"`)";

constexpr std::string_view kOAuthHint =
    "Sign in with OAuth (the WWW-Authenticate header names this gateway's metadata: "
    "/.well-known/oauth-protected-resource/mcp), or use a grant token: its administrator makes "
    "one with `toolwarden grants create NAME -c toolwarden.yaml`, and the client sends it as "
    "`Authorization: Bearer tw_...`";
constexpr std::string_view kResourceMetadataPath = "/.well-known/oauth-protected-resource";

// A quoted-string of RFC 9110 §5.6.4 holds no '"' or '\\' unescaped, nor control characters.
std::string Quoted(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) continue;
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

// The paths a client probes for OAuth sign-in after a 401.
bool IsOAuthDiscovery(std::string_view path) {
  return path.starts_with("/.well-known/oauth-protected-resource") ||
         path.starts_with("/.well-known/oauth-authorization-server") ||
         path.starts_with("/.well-known/openid-configuration") || path == "/register" ||
         path == "/authorize" || path == "/token";
}
constexpr std::string_view kVersionHeader = "MCP-Protocol-Version";
constexpr std::string_view kLastEventIdHeader = "Last-Event-ID";

std::string JsonRpcErrorBody(int code, std::string_view message) {
  return jsonrpc::Serialize(jsonrpc::MakeError(nullptr, code, message));
}

bool AcceptsType(std::string_view accept, std::string_view type) {
  return accept.find(type) != std::string_view::npos ||
         accept.find("*/*") != std::string_view::npos;
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// "/mcp" → "" (every server), "/mcp/<server>" → server; nullopt for other paths.
std::optional<std::string> McpRoute(std::string_view path) {
  if (path == "/mcp" || path == "/mcp/") return std::string();
  if (!path.starts_with("/mcp/")) return std::nullopt;
  std::string_view rest = path.substr(5);
  if (rest.ends_with('/')) rest.remove_suffix(1);
  if (rest.empty() || rest.find('/') != std::string_view::npos) return std::nullopt;
  return std::string(rest);
}

}  // namespace

Result<std::unique_ptr<HttpRouter>> HttpRouter::Create(boost::asio::any_io_executor executor,
                                                       const HttpServerOptions& options,
                                                       SessionFactory sessions,
                                                    RouterPlace place) {
  auto proxies = AddressSet::Parse(options.trusted_proxies);
  if (!proxies) return Fail(proxies.error().Context("trusted_proxies"));
  return std::unique_ptr<HttpRouter>(
      new HttpRouter(std::move(executor), options, std::move(sessions), std::move(*proxies),
                     std::move(place)));
}

HttpRouter::HttpRouter(boost::asio::any_io_executor executor, const HttpServerOptions& options,
                       SessionFactory sessions, AddressSet trusted_proxies, RouterPlace place)
    : executor_(std::move(executor)),
      options_(options),
      sessions_factory_(std::move(sessions)),
      trusted_proxies_(std::move(trusted_proxies)),
      place_(std::move(place)) {
  if (!place_.shared) place_.shared = std::make_shared<RouterShared>(options.auth_failures_per_minute);
  if (place_.loops == 0) place_.loops = 1;
}

RouterShared::Open RouterShared::TryOpen(const std::string& grant, size_t max_total,
                                         size_t max_grant) {
  std::lock_guard lock(mu_);
  auto it = per_grant_.find(grant);
  const size_t mine = it == per_grant_.end() ? 0 : it->second;
  if (max_grant > 0 && mine >= max_grant) return Open::kGrantFull;
  if (open_.load(std::memory_order_relaxed) >= max_total) return Open::kFull;
  ++per_grant_[grant];
  open_.fetch_add(1, std::memory_order_relaxed);
  return Open::kOk;
}

void RouterShared::Closed(const std::string& grant) {
  std::lock_guard lock(mu_);
  if (auto it = per_grant_.find(grant); it != per_grant_.end() && --it->second == 0) {
    per_grant_.erase(it);
  }
  open_.fetch_sub(1, std::memory_order_relaxed);
}

std::optional<size_t> HttpRouter::LoopOfSession(std::string_view id, size_t loops) {
  if (loops <= 1) return 0;
  if (const size_t dot = id.rfind('.'); dot != std::string_view::npos) id.remove_prefix(dot + 1);
  if (id.size() != 32) return std::nullopt;
  unsigned byte = 0;
  auto [end, ec] = std::from_chars(id.data(), id.data() + 2, byte, 16);
  if (ec != std::errc() || end != id.data() + 2) return std::nullopt;
  return byte % loops;
}

std::string HttpRouter::NewSessionId(size_t loop, size_t loops, std::string_view prefix) {
  std::string id = RandomHex(16);
  if (loops > 1) {
    unsigned byte = 0;
    std::from_chars(id.data(), id.data() + 2, byte, 16);
    unsigned v = static_cast<unsigned>(byte - byte % loops + loop);
    if (v > 255) v -= static_cast<unsigned>(loops);
    static constexpr char kHex[] = "0123456789abcdef";
    id[0] = kHex[(v >> 4) & 0xf];
    id[1] = kHex[v & 0xf];
  }
  return std::string(prefix) + id;
}

HttpRouter::Fields HttpRouter::ReadFields(const Request& req) {
  Fields f;
  f.keep_alive = req.keep_alive();
  unsigned seen = 0;
  // Keeps the first field of a name; false for a repetition.
  auto take = [&seen](unsigned bit, std::string_view& slot, std::string_view value) {
    if (seen & bit) return false;
    seen |= bit;
    slot = value;
    return true;
  };
  for (const auto& field : req) {
    switch (field.name()) {
      case http::field::host:
        if (!take(1u << 0, f.host, field.value())) f.repeated_singleton = true;
        break;
      case http::field::origin:
        if (!take(1u << 1, f.origin, field.value())) f.repeated_singleton = true;
        break;
      case http::field::authorization:
        if (!take(1u << 2, f.authorization, field.value())) f.repeated_singleton = true;
        break;
      case http::field::content_type:
        take(1u << 3, f.content_type, field.value());
        break;
      case http::field::accept:
        take(1u << 4, f.accept, field.value());
        break;
      case http::field::unknown: {
        const std::string_view name = field.name_string();
        if (beast::iequals(name, kSessionHeader)) {
          if (!take(1u << 5, f.session_id, field.value())) f.repeated_singleton = true;
        } else if (beast::iequals(name, kVersionHeader)) {
          if (!take(1u << 6, f.protocol_version, field.value())) f.repeated_singleton = true;
        } else if (beast::iequals(name, "Mcp-Method")) {
          if (!take(1u << 8, f.mcp_method, field.value())) f.repeated_singleton = true;
          f.has_mcp_method = true;
        } else if (beast::iequals(name, "Mcp-Name")) {
          if (!take(1u << 9, f.mcp_name, field.value())) f.repeated_singleton = true;
          f.has_mcp_name = true;
        } else if (beast::iequals(name, kLastEventIdHeader)) {
          take(1u << 7, f.last_event_id, field.value());
        } else if (beast::iequals(name, "X-Forwarded-For")) {
          // A proxy appends to the last one: that is the one it vouches for.
          f.forwarded_for = field.value();
        }
        break;
      }
      default:
        break;
    }
  }
  return f;
}

HttpRouter::Response HttpRouter::MakeResponse(const Request& req, http::status status,
                                              std::string body, std::string_view content_type) {
  Response res{status, req.version()};
  res.set(http::field::server, "toolwarden");
  if (!body.empty()) res.set(http::field::content_type, content_type);
  if (auto origin = req[http::field::origin]; options_.origins.CorsAllowed(origin)) {
    res.set(http::field::access_control_allow_origin, origin);
    res.set(http::field::vary, "Origin");
    res.set(http::field::access_control_expose_headers, "Mcp-Session-Id");
  }
  res.keep_alive(req.keep_alive());
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

HttpRouter::Response HttpRouter::ErrorResponse(const Request& req, http::status status, int code,
                                               std::string_view message) {
  return MakeResponse(req, status, JsonRpcErrorBody(code, message));
}

HttpRouter::Routed HttpRouter::Route(const Request& req, const Fields& fields) {
  std::string_view target = req.target();
  std::string_view path = target.substr(0, target.find('?'));

  if (fields.repeated_singleton) {
    return Routed::Respond(
        ErrorResponse(req, http::status::bad_request, jsonrpc::kConnectionClosed,
                      "Bad Request: more than one Host, Origin, Authorization, Mcp-Session-Id, "
                      "MCP-Protocol-Version, Mcp-Method or Mcp-Name field"));
  }
  if (!options_.origins.HostAllowed(fields.host) ||
      !options_.origins.OriginAllowed(fields.origin)) {
    spdlog::warn("http: refused {} {} from Host \"{}\" Origin \"{}\"",
                 std::string(req.method_string()), std::string(path), std::string(fields.host),
                 std::string(fields.origin));
    return Routed::Respond(ErrorResponse(req, http::status::forbidden, jsonrpc::kConnectionClosed,
                                         "Forbidden: Host or Origin not allowed"));
  }
  if (path == "/healthz") {
    return Routed::Respond(MakeResponse(req, http::status::ok, "ok\n", "text/plain"));
  }
  if (path == "/readyz") {
    // Listening, not shutting down, and able to reach what calls need: ready for sessions.
    std::string why = stopped_ || draining_ ? "stopping"
                      : options_.readiness   ? options_.readiness()
                                             : "";
    const bool ready = why.empty();
    return Routed::Respond(
        MakeResponse(req, ready ? http::status::ok : http::status::service_unavailable,
                     ready ? "ready\n" : why + "\n", "text/plain"));
  }
  if (path == "/metrics" && options_.metrics && req.method() == http::verb::get) {
    return Routed::Respond(
        MakeResponse(req, http::status::ok, options_.metrics(), "text/plain; version=0.0.4"));
  }
  if (req.method() == http::verb::options) {
    Response res = MakeResponse(req, http::status::no_content);
    res.set(http::field::access_control_allow_methods, "GET, POST, DELETE, OPTIONS");
    res.set(http::field::access_control_allow_headers,
            "Content-Type, Accept, Authorization, Mcp-Session-Id, MCP-Protocol-Version, "
            "Mcp-Method, Mcp-Name, Last-Event-ID");
    res.set(http::field::access_control_max_age, "86400");
    return Routed::Respond(std::move(res));
  }
  if (options_.admin &&
      (path == "/api" || path.starts_with("/api/") || path == "/ui" || path.starts_with("/ui/"))) {
    Routed r;
    r.to = Routed::To::kAdmin;
    return r;
  }
  if (options_.oauth && path.starts_with(kResourceMetadataPath) &&
      (path.size() == kResourceMetadataPath.size() || path[kResourceMetadataPath.size()] == '/')) {
    if (req.method() != http::verb::get) {
      return Routed::Respond(ErrorResponse(req, http::status::method_not_allowed,
                                           jsonrpc::kConnectionClosed, "Method not allowed"));
    }
    Response res = MakeResponse(req, http::status::ok,
                                options_.oauth->resource_metadata(PublicBase(fields)));
    res.set(http::field::cache_control, "max-age=300");
    return Routed::Respond(std::move(res));
  }
  if (options_.oauth && options_.admin && options_.oauth->owns(path)) {
    Routed r;
    r.to = Routed::To::kAdmin;
    return r;
  }
  if (options_.authenticate && IsOAuthDiscovery(path)) {
    // A client answered 401 looks for OAuth sign-in (RFC 9728, RFC 8414, dynamic client
    // registration). There is none: say what the gateway takes instead, where a client may
    // show it, rather than a bare 404.
    return Routed::Respond(MakeResponse(
        req, http::status::not_found,
        json::serialize(json::object{
            {"error", "invalid_request"},
            {"error_description", std::string(options_.oauth ? kOAuthHint : kGrantTokenHint)}})));
  }
  if (options_.admin && path == "/" && req.method() == http::verb::get) {
    Response res = MakeResponse(req, http::status::found, "", "text/plain");
    res.set(http::field::location, "/ui/");
    return Routed::Respond(std::move(res));
  }
  std::optional<std::string> route = McpRoute(path);
  const bool legacy = path == "/sse" || path == "/messages";
  if (!route && !legacy) {
    return Routed::Respond(
        ErrorResponse(req, http::status::not_found, jsonrpc::kConnectionClosed, "Not found"));
  }
  // Every MCP request names its caller.
  std::string grant = "local";
  if (options_.authenticate) {
    const std::string client = ClientAddress(fields);
    const int64_t now_ms = NowMs();
    if (auto wait = place_.shared->auth_throttle.Blocked(client, now_ms)) {
      spdlog::warn("http: {} is refused for a while after too many bad tokens", client);
      Response res = ErrorResponse(req, http::status::too_many_requests, jsonrpc::kConnectionClosed,
                                   "Too Many Requests: too many failed authentications from "
                                   "this address; try again later");
      res.set(http::field::retry_after, std::to_string(*wait));
      return Routed::Respond(std::move(res));
    }
    auto who = options_.authenticate(fields.authorization, route ? std::string_view(*route) : "");
    if (!who && who.error().code() == ErrorCode::kUnavailable) {
      // The grant store cannot answer: nobody's token was judged, so nothing counts against
      // the client, and the client is told to come back rather than to sign in again.
      Response res = ErrorResponse(req, http::status::service_unavailable,
                                   jsonrpc::kConnectionClosed,
                                   "Service Unavailable: " + who.error().message());
      res.set(http::field::retry_after, "2");
      return Routed::Respond(std::move(res));
    }
    if (!who && who.error().code() == ErrorCode::kPermissionDenied) {
      // A valid token without the scope this route needs (RFC 6750 §3.1): the client may ask
      // for it (MCP's step-up authorization); not a guess, so nothing counts against it.
      const std::string scope = route && !route->empty() ? "mcp:" + *route : "mcp";
      Response res = ErrorResponse(req, http::status::forbidden, jsonrpc::kConnectionClosed,
                                   "Forbidden: " + who.error().message());
      res.set(http::field::www_authenticate, Challenge(fields, "insufficient_scope",
                                                       who.error().message(), scope));
      return Routed::Respond(std::move(res));
    }
    if (!who) place_.shared->auth_throttle.Failed(client, now_ms);
    if (!who) {
      const std::string hint = options_.oauth ? std::string(kOAuthHint) : std::string(kGrantTokenHint);
      Response res = ErrorResponse(req, http::status::unauthorized, jsonrpc::kConnectionClosed,
                                   "Unauthorized: " + who.error().message() + ". " + hint);
      res.set(http::field::www_authenticate,
              Challenge(fields, fields.authorization.empty() ? "" : "invalid_token",
                        who.error().message(), ""));
      return Routed::Respond(std::move(res));
    }
    grant = std::move(*who);
  }
  if (route) {
    switch (req.method()) {
      case http::verb::post:
        return RoutePost(req, fields, grant, *route);
      case http::verb::get:
        return RouteGet(req, fields, grant, *route);
      case http::verb::delete_:
        return Routed::Respond(Delete(req, fields, grant, *route));
      default: {
        Response res = ErrorResponse(req, http::status::method_not_allowed,
                                     jsonrpc::kConnectionClosed, "Method not allowed");
        res.set(http::field::allow, "GET, POST, DELETE, OPTIONS");
        return Routed::Respond(std::move(res));
      }
    }
  }
  if (path == "/sse" && req.method() == http::verb::get) {
    if (!AcceptsType(fields.accept, "text/event-stream")) {
      return Routed::Respond(ErrorResponse(req, http::status::not_acceptable,
                                           jsonrpc::kConnectionClosed,
                                           "Not Acceptable: text/event-stream"));
    }
    Routed r;
    r.to = Routed::To::kLegacySse;
    r.grant = std::move(grant);
    return r;
  }
  if (path == "/messages" && req.method() == http::verb::post) {
    return Routed::Respond(LegacyPost(req, grant));
  }
  return Routed::Respond(ErrorResponse(req, http::status::method_not_allowed,
                                       jsonrpc::kConnectionClosed, "Method not allowed"));
}

std::string HttpRouter::PublicBase(const Fields& fields) const {
  if (options_.oauth && !options_.oauth->public_url.empty()) return options_.oauth->public_url;
  std::string base = "http://";
  return base.append(fields.host);
}

std::string HttpRouter::Challenge(const Fields& fields, std::string_view error,
                                  std::string_view description, std::string_view scope) const {
  std::string h = "Bearer realm=\"toolwarden\"";
  if (options_.oauth) {
    h.append(", resource_metadata=\"")
        .append(Quoted(PublicBase(fields)))
        .append(kResourceMetadataPath)
        .append("/mcp\"");
  }
  if (!error.empty()) {
    h.append(", error=\"").append(error).append("\", error_description=\"").append(Quoted(description)).append("\"");
  }
  if (!scope.empty()) h.append(", scope=\"").append(scope).append("\"");
  return h;
}

std::string HttpRouter::ClientAddress(const Fields& fields) const {
  auto trusted = [this](std::string_view a) { return trusted_proxies_.Contains(a); };
  std::string_view client = fields.peer;
  if (!trusted(client) || fields.forwarded_for.empty()) return std::string(client);
  std::string_view rest = fields.forwarded_for;
  while (!rest.empty()) {
    const size_t comma = rest.rfind(',');
    std::string_view hop = comma == std::string_view::npos ? rest : rest.substr(comma + 1);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(0, comma);
    while (!hop.empty() && hop.front() == ' ') hop.remove_prefix(1);
    while (!hop.empty() && hop.back() == ' ') hop.remove_suffix(1);
    if (hop.empty()) continue;
    client = hop;
    if (!trusted(hop)) break;
  }
  return std::string(client.substr(0, 64));
}

std::shared_ptr<HttpMcpSession> HttpRouter::FindSession(const Request& req, const Fields& fields,
                                                        std::optional<Response>& error,
                                                        const std::string& grant,
                                                        const std::string& route) {
  if (fields.session_id.empty()) {
    error = ErrorResponse(req, http::status::bad_request, jsonrpc::kConnectionClosed,
                          "Bad Request: Mcp-Session-Id header is required");
    return nullptr;
  }
  auto it = sessions_.find(std::string(fields.session_id));
  // A session exists only for the caller that opened it, on the endpoint it was opened on.
  if (it == sessions_.end() || it->second->legacy() || it->second->grant() != grant ||
      it->second->route() != route) {
    error = ErrorResponse(req, http::status::not_found, jsonrpc::kConnectionClosed,
                          "Session not found");
    return nullptr;
  }
  const std::string_view version = fields.protocol_version;
  if (!version.empty() && !mcp::IsSupportedVersion(version)) {
    error = ErrorResponse(req, http::status::bad_request, jsonrpc::kConnectionClosed,
                          "Bad Request: Unsupported protocol version " + std::string(version));
    return nullptr;
  }
  it->second->Touch();
  return it->second;
}

std::shared_ptr<HttpMcpSession> HttpRouter::NewSession(const Request& req, bool legacy,
                                                       const std::string& grant,
                                                       const std::string& route,
                                                       std::optional<Response>& error) {
  if (draining_) {
    error = ErrorResponse(req, http::status::service_unavailable, jsonrpc::kConnectionClosed,
                          "The gateway is shutting down");
    return nullptr;
  }
  // Every loop's sessions count against the limits. A full grant (or gateway) makes room by
  // closing an idle session of its own (of the grant holding the most) on this loop.
  RouterShared::Open place = TryOpen(grant);
  if (place == RouterShared::Open::kGrantFull && ReapIdle(grant)) place = TryOpen(grant);
  if (place == RouterShared::Open::kFull && ReapIdle(LargestGrant())) place = TryOpen(grant);
  if (place == RouterShared::Open::kGrantFull) {
    error = ErrorResponse(req, http::status::service_unavailable, jsonrpc::kConnectionClosed,
                          "Too many sessions for this grant (" +
                              std::to_string(options_.max_sessions_per_grant) +
                              "); close some or try again later");
    error->set(http::field::retry_after, "30");
    return nullptr;
  }
  if (place == RouterShared::Open::kFull) {
    error = ErrorResponse(req, http::status::service_unavailable, jsonrpc::kConnectionClosed,
                          "Too many sessions; try again later");
    error->set(http::field::retry_after, "30");
    return nullptr;
  }
  std::string id = NewSessionId(place_.loop, place_.loops, options_.session_prefix);
  auto maker = sessions_factory_(SessionRequest{id, route, grant});
  if (!maker) {
    place_.shared->Closed(grant);
    const bool missing = maker.error().code() == ErrorCode::kNotFound;
    error = ErrorResponse(req, missing ? http::status::not_found : http::status::forbidden,
                          jsonrpc::kConnectionClosed, maker.error().message());
    return nullptr;
  }
  auto session = std::make_shared<HttpMcpSession>(
      id,
      legacy ? HttpMcpSession::Transport::kLegacySse : HttpMcpSession::Transport::kStreamableHttp,
      *maker, options_.max_events_per_stream, grant, route);
  sessions_.emplace(id, session);
  ++grant_sessions_[grant];
  session->relay().Start();
  spdlog::info("http: session {} opened{} for {}{} ({} open)", id.substr(0, 8),
               legacy ? " (legacy SSE)" : "", grant, route.empty() ? "" : " on " + route,
               place_.shared->open());
  return session;
}

HttpRouter::Routed HttpRouter::RoutePost(const Request& req, const Fields& fields,
                                         const std::string& grant, const std::string& route) {
  if (fields.content_type.find("application/json") == std::string_view::npos) {
    return Routed::Respond(
        ErrorResponse(req, http::status::unsupported_media_type, jsonrpc::kConnectionClosed,
                      "Unsupported Media Type: Content-Type must be application/json"));
  }
  if (!AcceptsType(fields.accept, "application/json") ||
      !AcceptsType(fields.accept, "text/event-stream")) {
    return Routed::Respond(
        ErrorResponse(req, http::status::not_acceptable, jsonrpc::kConnectionClosed,
                      "Not Acceptable: Client must accept both application/json and "
                      "text/event-stream"));
  }
  jsonrpc::Incoming in = jsonrpc::Parse(req.body());
  if (IsStateless(fields, in)) return RouteStateless(req, fields, std::move(in), grant, route);
  if (!in.is_batch && !in.items[0]) {
    return Routed::Respond(
        MakeResponse(req, http::status::bad_request,
                     jsonrpc::Serialize(jsonrpc::MakeError(in.items[0].error()))));
  }
  bool has_initialize = false;
  for (auto& item : in.items) {
    if (item && item->IsRequest() && item->method == mcp::method::kInitialize) {
      has_initialize = true;
    }
  }

  std::shared_ptr<HttpMcpSession> session;
  std::optional<Response> error;
  if (has_initialize) {
    if (in.is_batch) {
      return Routed::Respond(
          ErrorResponse(req, http::status::bad_request, jsonrpc::kInvalidRequest,
                        "Invalid Request: initialize must not be part of a batch"));
    }
    if (!fields.session_id.empty() && sessions_.contains(std::string(fields.session_id))) {
      return Routed::Respond(ErrorResponse(req, http::status::bad_request, jsonrpc::kInvalidRequest,
                                           "Invalid Request: Server already initialized"));
    }
    session = NewSession(req, false, grant, route, error);
  } else {
    session = FindSession(req, fields, error, grant, route);
  }
  if (!session) return Routed::Respond(std::move(*error));

  bool has_requests = false;
  for (auto& item : in.items) {
    if (!item || item->IsRequest()) has_requests = true;
  }
  if (!has_requests) {
    for (auto& item : in.items) session->relay().HandleClientMessage(std::move(*item));
    Response res = MakeResponse(req, http::status::accepted);
    res.set(kSessionHeader, session->id());
    return Routed::Respond(std::move(res));
  }

  Routed r;
  r.to = Routed::To::kStream;
  r.batch = in.is_batch;
  r.writer = std::make_shared<StreamWriter>(executor_);
  r.writer->single = !in.is_batch;
  r.sid = session->OpenStream(r.writer);
  std::vector<jsonrpc::Message> to_relay;
  size_t accepted = 0;  // requests whose answers this stream waits for
  for (auto& item : in.items) {
    if (!item) {
      session->DeliverOn(r.sid, jsonrpc::MakeError(item.error()));
      continue;
    }
    if (item->IsRequest()) {
      // In flight already — from an earlier POST or earlier in this batch.
      if (session->IsPending(item->id)) {
        session->DeliverOn(
            r.sid, jsonrpc::MakeError(item->id, jsonrpc::kInvalidRequest,
                                      "Invalid Request: id " + jsonrpc::IdToString(item->id) +
                                          " is already in use by a pending request"));
        continue;
      }
      session->AddRequest(r.sid, item->id);
      ++accepted;
    }
    to_relay.push_back(std::move(*item));
  }
  for (auto& m : to_relay) session->relay().HandleClientMessage(std::move(m));
  // Nothing left to wait for (every request refused or invalid): the stream ends with the
  // refusals instead of staying open.
  if (accepted == 0 && !r.writer->done) r.writer->Finish();
  r.session = std::move(session);
  return r;
}

HttpRouter::Routed HttpRouter::RouteGet(const Request& req, const Fields& fields,
                                        const std::string& grant, const std::string& route) {
  if (!AcceptsType(fields.accept, "text/event-stream")) {
    return Routed::Respond(ErrorResponse(req, http::status::not_acceptable,
                                         jsonrpc::kConnectionClosed,
                                         "Not Acceptable: Client must accept text/event-stream"));
  }
  std::optional<Response> error;
  auto session = FindSession(req, fields, error, grant, route);
  if (!session) return Routed::Respond(std::move(*error));

  Routed r;
  uint64_t after = 0;
  // Our ids are "<stream>_<seq>".
  if (!fields.last_event_id.empty() && !ParseEventId(fields.last_event_id, r.sid, after)) {
    return Routed::Respond(ErrorResponse(req, http::status::bad_request, jsonrpc::kConnectionClosed,
                                         "Bad Request: unknown Last-Event-ID"));
  }
  r.writer = std::make_shared<StreamWriter>(executor_);
  const auto mode = fields.last_event_id.empty() ? HttpMcpSession::Mode::kExclusive
                                                 : HttpMcpSession::Mode::kTakeOver;
  switch (session->AttachWriter(r.sid, after, r.writer, mode)) {
    case HttpMcpSession::Attach::kBusy:
      return Routed::Respond(ErrorResponse(req, http::status::conflict, jsonrpc::kConnectionClosed,
                                           "Conflict: Only one SSE stream is allowed per session"));
    case HttpMcpSession::Attach::kUnknown:
      return Routed::Respond(ErrorResponse(req, http::status::bad_request,
                                           jsonrpc::kConnectionClosed,
                                           "Bad Request: unknown Last-Event-ID"));
    case HttpMcpSession::Attach::kOk:
      break;
  }
  r.to = Routed::To::kSse;
  r.session = std::move(session);
  return r;
}

HttpRouter::Response HttpRouter::Delete(const Request& req, const Fields& fields,
                                        const std::string& grant, const std::string& route) {
  std::optional<Response> error;
  auto session = FindSession(req, fields, error, grant, route);
  if (!session) return std::move(*error);
  if (auto it = sessions_.find(session->id()); it != sessions_.end()) Close(it);
  spdlog::info("http: session {} deleted by the client", session->id().substr(0, 8));
  return MakeResponse(req, http::status::ok);
}

std::string HttpRouter::LegacySessionId(std::string_view target) {
  auto url = boost::urls::parse_origin_form(target);
  if (!url) return {};
  auto params = url->params();
  auto it = params.find("sessionId");
  return it == params.end() ? std::string() : std::string((*it).value);
}

HttpRouter::Response HttpRouter::LegacyPost(const Request& req, const std::string& grant) {
  auto found = sessions_.find(LegacySessionId(req.target()));
  if (found == sessions_.end() || !found->second->legacy() || found->second->grant() != grant) {
    return ErrorResponse(req, http::status::not_found, jsonrpc::kConnectionClosed,
                         "Session not found");
  }
  auto session = found->second;
  session->Touch();
  jsonrpc::Incoming in = jsonrpc::Parse(req.body());
  if (!in.is_batch && !in.items[0]) {
    return MakeResponse(req, http::status::bad_request,
                        jsonrpc::Serialize(jsonrpc::MakeError(in.items[0].error())));
  }
  for (auto& item : in.items) {
    if (!item) {
      session->DeliverOn(0, jsonrpc::MakeError(item.error()));
      continue;
    }
    session->relay().HandleClientMessage(std::move(*item));
  }
  return MakeResponse(req, http::status::accepted, "Accepted", "text/plain");
}

std::shared_ptr<HttpMcpSession> HttpRouter::OpenLegacySession(const Request& req,
                                                              const std::string& grant,
                                                              std::optional<Response>& error) {
  return NewSession(req, true, grant, "", error);
}

std::string HttpRouter::LargestGrant() const {
  std::string largest;
  size_t most = 0;
  for (const auto& [grant, n] : grant_sessions_) {
    if (n > most) {
      most = n;
      largest = grant;
    }
  }
  return largest;
}

bool HttpRouter::ReapIdle(const std::string& grant) {
  const auto now = std::chrono::steady_clock::now();
  auto victim = sessions_.end();
  for (auto it = sessions_.begin(); it != sessions_.end(); ++it) {
    const HttpMcpSession& s = *it->second;
    if (s.grant() != grant || s.Busy() || now - s.last_active() < std::chrono::minutes(1)) continue;
    if (victim == sessions_.end() || s.last_active() < victim->second->last_active()) victim = it;
  }
  if (victim == sessions_.end()) return false;
  spdlog::info("http: session {} of {} idle; closed to make room", victim->first.substr(0, 8),
               grant);
  Close(victim);
  return true;
}

RouterShared::Open HttpRouter::TryOpen(const std::string& grant) {
  return place_.shared->TryOpen(grant, options_.max_sessions, options_.max_sessions_per_grant);
}

HttpRouter::SessionMap::iterator HttpRouter::Close(SessionMap::iterator it) {
  std::shared_ptr<HttpMcpSession> session = it->second;
  place_.shared->Closed(session->grant());
  if (auto g = grant_sessions_.find(session->grant());
      g != grant_sessions_.end() && --g->second == 0) {
    grant_sessions_.erase(g);
  }
  auto next = sessions_.erase(it);
  session->Close();
  return next;
}

void HttpRouter::CloseSession(const std::string& id) {
  if (auto it = sessions_.find(id); it != sessions_.end()) Close(it);
}

void HttpRouter::CloseIdleSessions() {
  const auto now = std::chrono::steady_clock::now();
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    auto& s = it->second;
    if (!s->Busy() && now - s->last_active() > options_.session_idle) {
      spdlog::info("http: session {} idle; closing it", it->first.substr(0, 8));
      it = Close(it);
    } else {
      ++it;
    }
  }
  for (auto it = channels_.begin(); it != channels_.end();) {
    it->second->Sweep(now);
    if (it->second->idle() && now - it->second->last_active() > options_.session_idle) {
      it->second->Close();
      it = channels_.erase(it);
    } else {
      ++it;
    }
  }
}

void HttpRouter::Stop() {
  stopped_ = true;
  auto channels = std::move(channels_);
  channels_.clear();
  for (auto& [key, c] : channels) c->Close();
  auto sessions = std::move(sessions_);
  sessions_.clear();
  grant_sessions_.clear();
  for (auto& [id, s] : sessions) {
    place_.shared->Closed(s->grant());
    s->Close();
  }
}

size_t HttpRouter::requests_in_flight() const {
  size_t n = 0;
  for (const auto& [id, s] : sessions_) n += s->relay().pending_requests();
  for (const auto& [key, c] : channels_) n += c->in_flight();
  return n;
}

}  // namespace tw::transport
