// A small blocking HTTP client for the command line (`toolwarden approvals --api URL`): one
// request, one answer, bounded by a timeout. Not for the gateway's event loop.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "common/result.h"

namespace tw::transport {

struct HttpReply {
  int status = 0;
  std::string body;
};

// `url` is http:// or https:// (verified against the system CA store).
Result<HttpReply> FetchSync(const std::string& method, const std::string& url,
                            const std::vector<std::pair<std::string, std::string>>& headers,
                            const std::string& body,
                            std::chrono::milliseconds timeout = std::chrono::seconds(10));

// A fetch of a URL someone outside named (a client's metadata document): bounded in time and
// size, and only to addresses `address_allowed` accepts (every address the name resolves to is
// asked; the connection goes only to accepted ones) — no request into the gateway's own network
// on an outsider's word. Redirects are not followed.
struct GuardedFetch {
  std::chrono::milliseconds timeout{3000};
  size_t max_body_bytes = 16 << 10;
  std::string ca_file;  // trusted besides the system's CA store
  std::function<bool(const std::string& address)> address_allowed;
};
Result<HttpReply> FetchGuarded(const std::string& url, const GuardedFetch& options);
// Whether `address` (an IP address's text) is one the public internet routes: not loopback,
// private, link-local, carrier-grade NAT, multicast, unspecified or reserved (IPv4 and IPv6).
bool IsPublicAddress(const std::string& address);

}  // namespace tw::transport
