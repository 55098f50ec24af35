// The bytes of an HTTP/1.1 message with a string body, for writing it ourselves: the start
// line and every field in one small buffer (the body goes out as a second buffer, uncopied),
// so one gathered write replaces Beast's serializer — whose buffer machinery cost ~20k
// instructions per message on the gateway's hot path (docs/benchmarks.md). Byte for byte what
// Beast writes for the same message.
#pragma once

#include <boost/beast/http.hpp>
#include <optional>
#include <string>
#include <string_view>

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

// A head whose last field is its Content-Length (what prepare_payload() leaves), split there:
// everything before that field. nullopt for any other head. With HeadWithLength, a head built
// once is reused for bodies of any length — the upstream leg's requests differ only there.
inline std::optional<std::string_view> HeadBeforeContentLength(std::string_view head) {
  constexpr std::string_view kField = "\r\nContent-Length: ";
  const size_t at = head.rfind(kField);
  if (at == std::string_view::npos || !head.ends_with("\r\n\r\n")) return std::nullopt;
  const std::string_view digits =
      head.substr(at + kField.size(), head.size() - 4 - at - kField.size());
  if (digits.empty() || digits.find_first_not_of("0123456789") != std::string_view::npos) {
    return std::nullopt;
  }
  return head.substr(0, at + 2);
}

// `prefix` (from HeadBeforeContentLength) with the Content-Length of a body of `n` bytes.
inline std::string HeadWithLength(std::string_view prefix, size_t n) {
  std::string out;
  out.reserve(prefix.size() + 40);
  out.append(prefix).append("Content-Length: ").append(std::to_string(n)).append("\r\n\r\n");
  return out;
}

// The head of the gateway's answer to a POST whose one request was answered with `n` bytes of
// JSON: what Beast writes for a 200 with Server and Content-Type, the CORS fields for an
// origin that may read answers (OriginPolicy::CorsAllowed), the request's keep-alive, Content-Length and the session id — in
// that order (HttpServer's MakeResponse, then the session header) — without building Beast
// fields for it on every call. `origin` empty: no CORS fields.
// `session_id` empty: no Mcp-Session-Id (a 2026-07-28 answer). `status` is 200, 400 or 404.
inline std::string JsonAnswerHead(unsigned version, bool keep_alive, std::string_view origin,
                                  std::string_view session_id, size_t n, int status = 200) {
  std::string out;
  out.reserve(160 + origin.size() + session_id.size());
  out.append(version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ");
  out.append(status == 404   ? "404 Not Found\r\n"
             : status == 400 ? "400 Bad Request\r\n"
                             : "200 OK\r\n");
  out.append("Server: toolwarden\r\nContent-Type: application/json\r\n");
  if (!origin.empty()) {
    out.append("Access-Control-Allow-Origin: ").append(origin).append("\r\n");
    out.append("Vary: Origin\r\nAccess-Control-Expose-Headers: Mcp-Session-Id\r\n");
  }
  if (version == 10 && keep_alive) out.append("Connection: keep-alive\r\n");
  if (version != 10 && !keep_alive) out.append("Connection: close\r\n");
  out.append("Content-Length: ").append(std::to_string(n)).append("\r\n");
  if (!session_id.empty()) out.append("Mcp-Session-Id: ").append(session_id).append("\r\n");
  out.append("\r\n");
  return out;
}

template <bool isRequest>
bool HasWireHead(const boost::beast::http::message<isRequest, boost::beast::http::string_body>& m) {
  return !m.chunked();
}

}  // namespace tw::transport
