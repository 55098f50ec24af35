// Fire-and-forget JSON POSTs (the approvals webhook). At most one attempt, bounded by
// `timeout`; failures are logged, never retried, never block the caller.
#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <string>

namespace tw::transport {

void PostWebhook(boost::asio::io_context& io, const std::string& url, std::string body,
                 std::chrono::milliseconds timeout = std::chrono::seconds(5));

}  // namespace tw::transport
