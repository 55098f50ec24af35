// HttpRouter's 2026-07-28 path: requests without a session, each carrying its version and
// capabilities in `_meta` and mirroring its method and name in headers. See
// transport/stateless_channel.h for how they are relayed.
#include <spdlog/spdlog.h>

#include "jsonrpc/message.h"
#include "mcp/modern.h"
#include "mcp/protocol.h"
#include "transport/http_router.h"

namespace tw::transport {

namespace http = boost::beast::http;
namespace modern = mcp::modern;

bool HttpRouter::IsStateless(const Fields& fields, const jsonrpc::Incoming& in) {
  if (!fields.session_id.empty()) return false;
  if (modern::IsModernVersion(fields.protocol_version)) return true;
  // A legacy version names a legacy client, whose requests without a session are refused as
  // they always were; a legacy client's first request is its initialize.
  if (mcp::IsSupportedVersion(fields.protocol_version)) return false;
  for (const auto& item : in.items) {
    if (item && item->IsRequest() && item->method == mcp::method::kInitialize) return false;
  }
  return true;
}

std::shared_ptr<StatelessChannel> HttpRouter::Channel(const Request& req, const std::string& grant,
                                                      const std::string& route,
                                                      std::optional<Response>& error) {
  const std::string key = grant + "\n" + route;
  if (auto it = channels_.find(key); it != channels_.end()) {
    if (!it->second->failed()) return it->second;
    it->second->Close();
    channels_.erase(it);
  }
  if (draining_) {
    error = ErrorResponse(req, http::status::service_unavailable, jsonrpc::kConnectionClosed,
                          "The gateway is shutting down");
    return nullptr;
  }
  // The same id on every loop: what `scope: session` counts for a client without sessions is
  // the grant's use of the route.
  const std::string id = "stateless:" + grant + (route.empty() ? "" : "/" + route);
  auto maker = sessions_factory_(SessionRequest{id, route, grant});
  if (!maker) {
    const bool missing = maker.error().code() == ErrorCode::kNotFound;
    error = ErrorResponse(req, missing ? http::status::not_found : http::status::forbidden,
                          jsonrpc::kConnectionClosed, maker.error().message());
    return nullptr;
  }
  auto channel = std::make_shared<StatelessChannel>(id, *maker, grant, route);
  channels_.emplace(key, channel);
  channel->Start();
  spdlog::info("http: stateless channel opened for {}{}", grant,
               route.empty() ? "" : " on /mcp/" + route);
  return channel;
}

HttpRouter::Routed HttpRouter::RouteStateless(const Request& req, const Fields& fields,
                                              jsonrpc::Incoming in, const std::string& grant,
                                              const std::string& route) {
  auto refuse = [&](http::status status, const jsonrpc::Message& error) {
    return Routed::Respond(MakeResponse(req, status, jsonrpc::Serialize(error)));
  };
  if (in.is_batch) {
    return refuse(http::status::bad_request,
                  jsonrpc::MakeError(nullptr, jsonrpc::kInvalidRequest,
                                     "Invalid Request: a 2026-07-28 request is one JSON-RPC "
                                     "message, never a batch"));
  }
  if (!in.items[0]) return refuse(http::status::bad_request, jsonrpc::MakeError(in.items[0].error()));
  jsonrpc::Message msg = std::move(*in.items[0]);
  if (!msg.IsRequest()) {
    // The 2026-07-28 transport defines no client notifications on HTTP (closing a response
    // stream is the cancellation) and a client sends no responses: nothing here is relayed.
    return refuse(http::status::bad_request,
                  jsonrpc::MakeError(nullptr, jsonrpc::kInvalidRequest,
                                     "Invalid Request: without a session, only requests are "
                                     "accepted (" + (msg.method.empty() ? "a response" : msg.method) +
                                         " was not relayed)"));
  }
  modern::RequestMeta meta;
  std::optional<jsonrpc::Message> problem = modern::CheckRequest(msg, meta);
  if (problem && meta.version.empty() && fields.protocol_version.empty()) {
    // Nothing says which era: a 2025-era client that skipped initialize as much as a
    // 2026-07-28 client that forgot its metadata.
    return refuse(http::status::bad_request,
                  jsonrpc::MakeError(msg.id, jsonrpc::kConnectionClosed,
                                     "Bad Request: Mcp-Session-Id header is required (a 2025-era "
                                     "client sends initialize first; a 2026-07-28 client sends "
                                     "MCP-Protocol-Version and params._meta with its version "
                                     "and capabilities)"));
  }
  const modern::MirroredHeaders headers{fields.protocol_version, fields.mcp_method,
                                        fields.mcp_name, fields.has_mcp_method,
                                        fields.has_mcp_name};
  // A header that disagrees with the body is a mismatch whatever the versions; then the
  // request itself; then the method and name the headers mirror.
  if (!meta.version.empty() && !fields.protocol_version.empty() &&
      fields.protocol_version != meta.version) {
    problem = jsonrpc::MakeError(msg.id, modern::kHeaderMismatch,
                                 *modern::HeaderMismatch(headers, msg, meta.version));
  } else if (!problem) {
    if (auto mismatch = modern::HeaderMismatch(headers, msg, meta.version)) {
      problem = jsonrpc::MakeError(msg.id, modern::kHeaderMismatch, *mismatch);
    }
  }
  if (problem) {
    const int code = static_cast<int>(problem->error.at("code").as_int64());
    if (code == modern::kHeaderMismatch) {
      spdlog::warn("http: refused a 2026-07-28 request from {}: {}", grant,
                   std::string(problem->error.at("message").as_string()));
    }
    return refuse(code == jsonrpc::kMethodNotFound ? http::status::not_found
                                                   : http::status::bad_request,
                  *problem);
  }
  std::optional<Response> error;
  auto channel = Channel(req, grant, route, error);
  if (!channel) return Routed::Respond(std::move(*error));

  Routed r;
  r.to = Routed::To::kStateless;
  r.writer = std::make_shared<StreamWriter>(executor_);
  r.writer->single = true;
  r.channel = channel;
  if (msg.method == modern::kDiscover) {
    channel->Discover(msg.id, r.writer);
  } else if (meta.listen) {
    channel->Listen(msg.id, *meta.listen, r.writer);
  } else {
    channel->Submit(std::move(msg), meta, r.writer);
  }
  return r;
}

}  // namespace tw::transport
