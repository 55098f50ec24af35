// A small blocking HTTP client for the command line (`toolwarden approvals --api URL`): one
// request, one answer, bounded by a timeout. Not for the gateway's event loop.
#pragma once

#include <chrono>
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

}  // namespace tw::transport
