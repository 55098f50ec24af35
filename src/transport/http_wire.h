// The bytes of an HTTP/1.1 message with a string body, for writing it ourselves: the start
// line and every field in one small buffer (the body goes out as a second buffer, uncopied),
// so one gathered write replaces Beast's serializer — whose buffer machinery cost ~20k
// instructions per message on the gateway's hot path (docs/benchmarks.md). Byte for byte what
// Beast writes for the same message.
#pragma once

#include <boost/beast/http.hpp>
#include <string>

namespace tw::transport {

// Requires a message whose length is in its fields (prepare_payload()), never a chunked one
// (HasWireHead says which).
template <bool isRequest>
std::string WireHead(const boost::beast::http::message<isRequest, boost::beast::http::string_body>& m) {
  std::string out;
  out.reserve(160);
  const std::string_view version = m.version() == 10 ? "HTTP/1.0" : "HTTP/1.1";
  if constexpr (isRequest) {
    out.append(m.method_string()).append(" ").append(m.target()).append(" ").append(version);
  } else {
    out.append(version).append(" ").append(std::to_string(m.result_int())).append(" ");
    out.append(m.reason());
  }
  out.append("\r\n");
  for (const auto& f : m) out.append(f.name_string()).append(": ").append(f.value()).append("\r\n");
  out.append("\r\n");
  return out;
}

template <bool isRequest>
bool HasWireHead(const boost::beast::http::message<isRequest, boost::beast::http::string_body>& m) {
  return !m.chunked();
}

}  // namespace tw::transport
