#include "mcp/modern.h"

#include <boost/beast/core/detail/base64.hpp>
#include <algorithm>

#include "mcp/protocol.h"

namespace tw::mcp::modern {

bool IsModernVersion(std::string_view v) {
  return std::find(std::begin(kVersions), std::end(kVersions), v) != std::end(kVersions);
}

json::array SupportedVersions() {
  json::array out;
  for (std::string_view v : kVersions) out.emplace_back(v);
  for (std::string_view v : kSupportedVersions) out.emplace_back(v);
  return out;
}

Result<RequestMeta> ReadRequestMeta(const json::value& params) {
  const json::object* p = params.if_object();
  const json::value* meta = p ? p->if_contains("_meta") : nullptr;
  if (!meta || !meta->is_object()) {
    return Fail(Error::InvalidArgument(
        "Invalid params: a 2026-07-28 request carries params._meta with its protocol version "
        "and client capabilities"));
  }
  const json::object& m = meta->as_object();
  RequestMeta out;
  const json::value* version = m.if_contains(kMetaProtocolVersion);
  if (!version || !version->is_string() || version->as_string().empty()) {
    return Fail(Error::InvalidArgument("Invalid params: _meta[\"" + std::string(kMetaProtocolVersion) +
                                  "\"] must be a protocol version string"));
  }
  out.version = std::string(version->as_string());
  const json::value* caps = m.if_contains(kMetaClientCapabilities);
  if (!caps || !caps->is_object()) {
    return Fail(Error::InvalidArgument("Invalid params: _meta[\"" +
                                  std::string(kMetaClientCapabilities) + "\"] must be an object"));
  }
  out.client_capabilities = caps->as_object();
  if (const json::value* level = m.if_contains(kMetaLogLevel)) {
    if (!level->is_string()) {
      return Fail(Error::InvalidArgument("Invalid params: _meta[\"" + std::string(kMetaLogLevel) +
                                    "\"] must be a log level string"));
    }
    out.log_level = std::string(level->as_string());
  }
  return out;
}

std::optional<jsonrpc::Message> CheckRequest(const jsonrpc::Message& msg, RequestMeta& meta) {
  auto read = ReadRequestMeta(msg.params);
  if (!read) return jsonrpc::MakeError(msg.id, jsonrpc::kInvalidParams, read.error().message());
  meta = std::move(*read);
  if (!IsModernVersion(meta.version)) return UnsupportedVersionError(msg.id, meta.version);
  if (!RequestAllowed(msg.method)) {
    return jsonrpc::MakeError(msg.id, jsonrpc::kMethodNotFound, "Method not found: " + msg.method);
  }
  if (msg.method == kListen) {
    auto f = ReadListenFilter(msg.params);
    if (!f) return jsonrpc::MakeError(msg.id, jsonrpc::kInvalidParams, f.error().message());
    meta.listen = *f;
  }
  return std::nullopt;
}

bool RequestAllowed(std::string_view method) {
  static constexpr std::string_view kAllowed[] = {
      kDiscover,           kListen,          "tools/list",      "tools/call",
      "resources/list",    "resources/read", "prompts/list",    "prompts/get",
      "completion/complete", "resources/templates/list"};
  return std::find(std::begin(kAllowed), std::end(kAllowed), method) != std::end(kAllowed);
}

namespace {

// RFC 9110 field-value characters: visible ASCII, space and tab.
bool HeaderSafe(std::string_view v) {
  return std::all_of(v.begin(), v.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return (u >= 0x20 && u <= 0x7e) || u == '\t';
  });
}

constexpr std::string_view kSentinelStart = "=?base64?";
constexpr std::string_view kSentinelEnd = "?=";

// The value a request's Mcp-Name mirrors: params.name or params.uri, for the methods that
// name something.
std::optional<std::string_view> NamedValue(const jsonrpc::Message& msg) {
  const char* field = nullptr;
  if (msg.method == method::kToolsCall || msg.method == method::kPromptsGet) field = "name";
  if (msg.method == method::kResourcesRead) field = "uri";
  if (!field) return std::nullopt;
  const json::object* p = msg.params.if_object();
  const json::value* v = p ? p->if_contains(field) : nullptr;
  if (!v || !v->is_string()) return std::string_view();
  return std::string_view(v->as_string());
}

}  // namespace

std::optional<std::string> DecodeHeaderValue(std::string_view value) {
  if (value.size() >= kSentinelStart.size() + kSentinelEnd.size() &&
      value.starts_with(kSentinelStart) && value.ends_with(kSentinelEnd)) {
    std::string_view b64 = value.substr(
        kSentinelStart.size(), value.size() - kSentinelStart.size() - kSentinelEnd.size());
    namespace base64 = boost::beast::detail::base64;
    if (b64.size() % 4 != 0) return std::nullopt;
    const bool alphabet = std::all_of(b64.begin(), b64.end(), [](char c) {
      return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
             c == '+' || c == '/' || c == '=';
    });
    if (!alphabet) return std::nullopt;
    std::string out(base64::decoded_size(b64.size()), '\0');
    auto [written, read] = base64::decode(out.data(), b64.data(), b64.size());
    // Decoding stops at the padding: everything before it must have been read.
    const size_t padding = b64.size() - b64.find_last_not_of('=') - 1;
    if (padding > 2 || read + padding != b64.size()) return std::nullopt;
    out.resize(written);
    return out;
  }
  if (!HeaderSafe(value)) return std::nullopt;
  return std::string(value);
}

std::string EncodeHeaderValue(std::string_view value) {
  const bool looks_encoded = value.starts_with(kSentinelStart) && value.ends_with(kSentinelEnd);
  const bool padded = !value.empty() && (value.front() == ' ' || value.front() == '\t' ||
                                         value.back() == ' ' || value.back() == '\t');
  if (HeaderSafe(value) && !looks_encoded && !padded) return std::string(value);
  namespace base64 = boost::beast::detail::base64;
  std::string out(base64::encoded_size(value.size()), '\0');
  out.resize(base64::encode(out.data(), value.data(), value.size()));
  return std::string(kSentinelStart) + out + std::string(kSentinelEnd);
}

namespace {

// RFC 9110 token characters.
bool IsToken(std::string_view s) {
  static constexpr std::string_view kExtra = "!#$%&'*+-.^_`|~";
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           kExtra.find(c) != std::string_view::npos;
  });
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Collects the annotations reachable from `schema` through `properties` (path so far in
// `path`); fails on an annotation that is invalid there.
Result<void> CollectParams(const json::object& schema, std::vector<std::string>& path,
                           std::vector<HeaderParam>& out) {
  if (const json::value* mark = schema.if_contains("x-mcp-header")) {
    if (path.empty()) return Fail(Error::InvalidArgument("x-mcp-header on the schema root"));
    if (!mark->is_string() || !IsToken(mark->as_string())) {
      return Fail(Error::InvalidArgument("x-mcp-header must be a header token"));
    }
    const json::value* type = schema.if_contains("type");
    if (!type || !type->is_string() ||
        (type->as_string() != "string" && type->as_string() != "integer" &&
         type->as_string() != "boolean")) {
      return Fail(Error::InvalidArgument("x-mcp-header on a parameter that is not a string, "
                                         "integer or boolean"));
    }
    out.push_back({std::string(mark->as_string()), path});
  }
  if (const json::value* props = schema.if_contains("properties"); props && props->is_object()) {
    for (const auto& kv : props->as_object()) {
      if (!kv.value().is_object()) continue;
      path.emplace_back(kv.key());
      auto r = CollectParams(kv.value().as_object(), path, out);
      path.pop_back();
      if (!r) return r;
    }
  }
  return {};
}

// Whether an annotation hides anywhere but under `properties` chains (items, combinators,
// conditionals, $defs...): such a schema is invalid.
bool MarkedElsewhere(const json::value& v, bool reachable) {
  if (const json::object* o = v.if_object()) {
    if (!reachable && o->contains("x-mcp-header")) return true;
    for (const auto& kv : *o) {
      if (kv.key() == "properties" && reachable && kv.value().is_object()) {
        for (const auto& p : kv.value().as_object()) {
          if (MarkedElsewhere(p.value(), true)) return true;
        }
        continue;
      }
      if (kv.key() == "x-mcp-header") continue;
      if (MarkedElsewhere(kv.value(), false)) return true;
    }
  } else if (const json::array* a = v.if_array()) {
    for (const auto& e : *a) {
      if (MarkedElsewhere(e, false)) return true;
    }
  }
  return false;
}

}  // namespace

Result<std::vector<HeaderParam>> ReadHeaderParams(const json::value& input_schema) {
  std::vector<HeaderParam> out;
  const json::object* root = input_schema.if_object();
  if (!root) return out;
  if (MarkedElsewhere(input_schema, true)) {
    return Fail(Error::InvalidArgument(
        "x-mcp-header is only allowed on properties reached through `properties` alone"));
  }
  std::vector<std::string> path;
  if (auto r = CollectParams(*root, path, out); !r) return Fail(r.error());
  std::vector<std::string> seen;
  for (const HeaderParam& p : out) {
    std::string lower = Lower(p.name);
    if (std::find(seen.begin(), seen.end(), lower) != seen.end()) {
      return Fail(Error::InvalidArgument("x-mcp-header \"" + p.name + "\" is not unique"));
    }
    seen.push_back(std::move(lower));
  }
  return out;
}

std::string ParamHeaderLines(const std::vector<HeaderParam>& params, const json::value& arguments) {
  std::string out;
  for (const HeaderParam& p : params) {
    const json::value* v = &arguments;
    for (const std::string& key : p.path) {
      const json::object* o = v->if_object();
      v = o ? o->if_contains(key) : nullptr;
      if (!v) break;
    }
    if (!v || v->is_null()) continue;
    std::string text;
    if (v->is_string()) {
      text = EncodeHeaderValue(v->as_string());
    } else if (v->is_bool()) {
      text = v->as_bool() ? "true" : "false";
    } else if (v->is_int64()) {
      text = std::to_string(v->as_int64());
    } else if (v->is_uint64()) {
      text = std::to_string(v->as_uint64());
    } else {
      continue;  // not a value the annotation allows: the server judges the call
    }
    out.append("Mcp-Param-").append(p.name).append(": ").append(text).append("\r\n");
  }
  return out;
}

std::string MirrorHeaderLines(const jsonrpc::Message& msg) {
  if (msg.kind != jsonrpc::Kind::kRequest && msg.kind != jsonrpc::Kind::kNotification) return {};
  const json::object* p = msg.params.if_object();
  const json::value* meta = p ? p->if_contains("_meta") : nullptr;
  const json::value* version =
      meta && meta->is_object() ? meta->as_object().if_contains(kMetaProtocolVersion) : nullptr;
  if (!version || !version->is_string() || !IsModernVersion(version->as_string())) return {};
  std::string out;
  out.append("MCP-Protocol-Version: ").append(version->as_string()).append("\r\n");
  out.append("Mcp-Method: ").append(EncodeHeaderValue(msg.method)).append("\r\n");
  if (std::optional<std::string_view> name = NamedValue(msg); name && !name->empty()) {
    out.append("Mcp-Name: ").append(EncodeHeaderValue(*name)).append("\r\n");
  }
  return out;
}

std::optional<std::string> HeaderMismatch(const MirroredHeaders& headers,
                                          const jsonrpc::Message& msg,
                                          std::string_view meta_version) {
  if (headers.protocol_version.empty()) {
    return "Header mismatch: the MCP-Protocol-Version header is required";
  }
  if (headers.protocol_version != meta_version) {
    return "Header mismatch: MCP-Protocol-Version header value '" +
           std::string(headers.protocol_version) + "' does not match the body's protocol version '" +
           std::string(meta_version) + "'";
  }
  if (!headers.has_method) return "Header mismatch: the Mcp-Method header is required";
  if (headers.method != msg.method) {
    return "Header mismatch: Mcp-Method header value '" + std::string(headers.method) +
           "' does not match body value '" + msg.method + "'";
  }
  const std::optional<std::string_view> named = NamedValue(msg);
  if (!named) {
    if (headers.has_name) return "Header mismatch: Mcp-Name is not defined for " + msg.method;
    return std::nullopt;
  }
  if (!headers.has_name) return "Header mismatch: the Mcp-Name header is required for " + msg.method;
  const std::optional<std::string> name = DecodeHeaderValue(headers.name);
  if (!name) return "Header mismatch: the Mcp-Name header value is malformed";
  if (*name != *named) {
    return "Header mismatch: Mcp-Name header value '" + std::string(headers.name) +
           "' does not match body value '" + std::string(*named) + "'";
  }
  return std::nullopt;
}

jsonrpc::Message UnsupportedVersionError(const json::value& id, std::string_view requested) {
  json::object data;
  data["supported"] = SupportedVersions();
  data["requested"] = requested;
  return jsonrpc::MakeError(id, kUnsupportedProtocolVersion, "Unsupported protocol version",
                            json::value(std::move(data)));
}

void StripRequestMeta(json::value& params) {
  json::object* p = params.if_object();
  json::value* meta = p ? p->if_contains("_meta") : nullptr;
  if (!meta || !meta->is_object()) return;
  json::object& m = meta->as_object();
  for (auto it = m.begin(); it != m.end();) {
    if (std::string_view(it->key()).starts_with("io.modelcontextprotocol/")) {
      it = m.erase(it);
    } else {
      ++it;
    }
  }
  if (m.empty()) p->erase("_meta");
}

bool IsCacheable(std::string_view method) {
  return method == method::kToolsList || method == method::kPromptsList ||
         method == method::kResourcesList || method == method::kResourceTemplatesList ||
         method == method::kResourcesRead || method == kDiscover;
}

void DecorateResult(json::value& result, std::string_view method, const json::value& server_info,
                    const CacheHints& hints) {
  json::object* r = result.if_object();
  if (!r) return;
  if (!r->contains("resultType")) (*r)["resultType"] = "complete";
  if (server_info.is_object()) {
    json::value& meta = (*r)["_meta"];
    if (!meta.is_object()) meta = json::object();
    meta.as_object()[kMetaServerInfo] = server_info;
  }
  if (!IsCacheable(method)) return;
  long long ttl = hints.ttl_ms;
  // The upstream's own hint only ever shortens ours (a larger one, or one that is not a
  // non-negative integer, is ignored).
  if (const json::value* t = r->if_contains("ttlMs"); t && t->is_int64() && t->as_int64() >= 0) {
    ttl = std::min<long long>(ttl, t->as_int64());
  }
  (*r)["ttlMs"] = ttl;
  bool upstream_public = false;
  if (const json::value* s = r->if_contains("cacheScope"); s && s->is_string()) {
    upstream_public = s->as_string() == "public";
  }
  (*r)["cacheScope"] = upstream_public && hints.scope == "public" ? "public" : "private";
}

json::value DiscoverResult(const json::value& initialize_result, const CacheHints& hints) {
  json::object out;
  out["supportedVersions"] = SupportedVersions();
  json::value capabilities = json::object();
  json::value server_info;
  if (const json::object* init = initialize_result.if_object()) {
    if (const json::value* caps = init->if_contains("capabilities"); caps && caps->is_object()) {
      capabilities = *caps;
    }
    if (const json::value* info = init->if_contains("serverInfo"); info && info->is_object()) {
      server_info = *info;
    }
    if (const json::value* text = init->if_contains("instructions"); text && text->is_string()) {
      out["instructions"] = *text;
    }
  }
  // Resource subscriptions of this era go through subscriptions/listen, which the gateway
  // serves for list changes only; it does not promise per-resource updates.
  if (json::object* caps = capabilities.if_object()) {
    if (json::value* res = caps->if_contains("resources"); res && res->is_object()) {
      res->as_object().erase("subscribe");
    }
  }
  out["capabilities"] = std::move(capabilities);
  json::value result(std::move(out));
  DecorateResult(result, kDiscover, server_info, hints);
  return result;
}

Result<ListenFilter> ReadListenFilter(const json::value& params) {
  const json::object* p = params.if_object();
  const json::value* n = p ? p->if_contains("notifications") : nullptr;
  ListenFilter f;
  if (!n) return f;
  if (!n->is_object()) {
    return Fail(Error::InvalidArgument("Invalid params: notifications must be an object"));
  }
  auto flag = [&](std::string_view key, bool& out) -> bool {
    const json::value* v = n->as_object().if_contains(key);
    if (!v) return true;
    if (!v->is_bool()) return false;
    out = v->as_bool();
    return true;
  };
  if (!flag("toolsListChanged", f.tools) || !flag("promptsListChanged", f.prompts) ||
      !flag("resourcesListChanged", f.resources)) {
    return Fail(Error::InvalidArgument("Invalid params: notification filter flags must be booleans"));
  }
  return f;
}

bool Wants(const ListenFilter& filter, std::string_view method) {
  if (method == method::kToolsListChanged) return filter.tools;
  if (method == method::kPromptsListChanged) return filter.prompts;
  if (method == method::kResourcesListChanged) return filter.resources;
  return false;
}

}  // namespace tw::mcp::modern
