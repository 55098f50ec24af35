#include "jsonrpc/message.h"

#include <boost/json/monotonic_resource.hpp>
#include <memory>

namespace tw::jsonrpc {
namespace detail {

// The arena of one parsed message: a monotonic resource whose first block is inside this
// object. Boost.JSON's own first block is 1 KiB, which glibc serves from its large bins — every
// message paid a malloc_consolidate and a slow free. The whole object stays under 1 KiB (a
// tcache-sized chunk); a message whose tree needs more grows into blocks from the heap.
class MessageArena final : public json::memory_resource {
 public:
  MessageArena() = default;

 private:
  void* do_allocate(std::size_t n, std::size_t align) override { return mr_.allocate(n, align); }
  void do_deallocate(void*, std::size_t, std::size_t) override {}  // freed all at once
  bool do_is_equal(const json::memory_resource& other) const noexcept override {
    return this == &other;
  }

  alignas(16) unsigned char first_[768];
  json::monotonic_resource mr_{first_, sizeof first_};
};

}  // namespace detail
}  // namespace tw::jsonrpc

// Nothing to free node by node: destroying a tree in the arena need not walk it.
template <>
struct boost::json::is_deallocate_trivial<tw::jsonrpc::detail::MessageArena> : std::true_type {};

namespace tw::jsonrpc {

namespace {

// MCP: "The ID MUST NOT be null"; JSON-RPC: a string or a number, integers in practice.
bool IsValidId(const json::value& id) { return id.is_string() || id.is_int64() || id.is_uint64(); }

ErrorReply Invalid(const json::value& id, std::string message) {
  return ErrorReply{IsValidId(id) ? id : json::value(nullptr), kInvalidRequest,
                    "Invalid Request: " + std::move(message)};
}

// Moves `from` into `field`, keeping `from`'s memory resource. (Assigning would copy the whole
// tree into `field`'s resource: Boost.JSON moves only between values of the same resource.)
template <typename T>
void Adopt(T& field, T&& from) {
  std::destroy_at(&field);
  std::construct_at(&field, std::move(from));
}

}  // namespace

ParsedMessage FromValue(json::value v) {
  if (!v.is_object()) return tl::unexpected(Invalid(nullptr, "a message must be a JSON object"));
  json::object& o = v.as_object();
  json::value id = nullptr;
  if (auto* p = o.if_contains("id")) id = *p;

  auto* version = o.if_contains("jsonrpc");
  if (!version || !version->is_string() || version->as_string() != "2.0") {
    return tl::unexpected(Invalid(id, "\"jsonrpc\" must be \"2.0\""));
  }
  Message m;
  if (auto* method = o.if_contains("method")) {
    if (!method->is_string()) return tl::unexpected(Invalid(id, "\"method\" must be a string"));
    if (method->as_string().empty()) return tl::unexpected(Invalid(id, "\"method\" is empty"));
    if (o.contains("result") || o.contains("error")) {
      return tl::unexpected(Invalid(id, "a request cannot carry \"result\" or \"error\""));
    }
    m.method = std::string(method->as_string());
    if (auto* params = o.if_contains("params")) {
      if (!params->is_object()) {
        return tl::unexpected(Invalid(id, "\"params\" must be an object"));
      }
      Adopt(m.params, std::move(*params));
    }
    if (o.contains("id")) {
      if (!IsValidId(id)) {
        return tl::unexpected(Invalid(nullptr, "\"id\" must be a string or an integer"));
      }
      m.kind = Kind::kRequest;
      m.id = std::move(id);
    } else {
      m.kind = Kind::kNotification;
    }
    return m;
  }

  bool has_result = o.contains("result");
  bool has_error = o.contains("error");
  if (has_result == has_error) {
    return tl::unexpected(
        Invalid(id, "a message needs \"method\", or exactly one of \"result\" and \"error\""));
  }
  if (has_result) {
    if (!IsValidId(id)) return tl::unexpected(Invalid(nullptr, "a response needs a valid \"id\""));
    m.kind = Kind::kResponse;
    m.id = std::move(id);
    Adopt(m.result, std::move(o["result"]));
    return m;
  }
  json::value& err = o["error"];
  if (!err.is_object()) return tl::unexpected(Invalid(id, "\"error\" must be an object"));
  auto* code = err.as_object().if_contains("code");
  auto* message = err.as_object().if_contains("message");
  if (!code || !(code->is_int64() || code->is_uint64())) {
    return tl::unexpected(Invalid(id, "\"error.code\" must be an integer"));
  }
  if (!message || !message->is_string()) {
    return tl::unexpected(Invalid(id, "\"error.message\" must be a string"));
  }
  // Error responses to unparseable input legitimately carry a null id.
  if (!IsValidId(id) && !id.is_null()) {
    return tl::unexpected(Invalid(nullptr, "\"id\" must be a string or an integer"));
  }
  m.kind = Kind::kError;
  m.id = std::move(id);
  Adopt(m.error, std::move(err.as_object()));
  return m;
}

Incoming Parse(std::string_view text) {
  Incoming in;
  boost::system::error_code ec;
  // One arena per message text: its nodes are allocated from a few blocks and freed together
  // when the last value of the message goes, instead of one malloc and one free per node. The
  // messages' trees keep it (Adopt in FromValue).
  json::value v = json::parse(text, ec, json::make_shared_resource<detail::MessageArena>());
  if (ec) {
    in.items.push_back(
        tl::unexpected(ErrorReply{nullptr, kParseError, "Parse error: " + ec.message()}));
    return in;
  }
  std::shared_ptr<const NumberFinding> numbers;
  if (auto finding = FindInexactNumber(text)) {
    numbers = std::make_shared<const NumberFinding>(std::move(*finding));
  }
  if (v.is_array()) {
    in.is_batch = true;
    json::array& arr = v.as_array();
    if (arr.empty()) {
      in.items.push_back(tl::unexpected(Invalid(nullptr, "empty batch")));
      return in;
    }
    in.items.reserve(arr.size());
    for (json::value& element : arr) {
      in.items.push_back(FromValue(std::move(element)));
      if (numbers && in.items.back()) in.items.back()->numbers = numbers;
    }
    return in;
  }
  in.items.push_back(FromValue(std::move(v)));
  if (numbers && in.items.back()) in.items.back()->numbers = std::move(numbers);
  return in;
}

json::value ToValue(const Message& m) {
  json::object o;
  o.reserve(4);
  o["jsonrpc"] = "2.0";
  switch (m.kind) {
    case Kind::kRequest:
      o["id"] = m.id;
      o["method"] = m.method;
      if (!m.params.is_null()) o["params"] = m.params;
      break;
    case Kind::kNotification:
      o["method"] = m.method;
      if (!m.params.is_null()) o["params"] = m.params;
      break;
    case Kind::kResponse:
      o["id"] = m.id;
      o["result"] = m.result;
      break;
    case Kind::kError:
      o["id"] = m.id;
      o["error"] = m.error;
      break;
  }
  return o;
}

void AppendSerialized(std::string& out, json::serializer& sr) {
  char buf[512];
  while (!sr.done()) {
    const json::string_view chunk = sr.read(buf, sizeof buf);
    out.append(chunk.data(), chunk.size());
  }
}

// Byte for byte json::serialize(ToValue(m)) (same members, same order), without copying the
// message's trees into a new object first (that copy was one allocation per JSON node, on
// every message in both directions), and with one serializer for all members.
std::string Serialize(const Message& m) {
  std::string out;
  out.reserve(128);
  out.append(R"({"jsonrpc":"2.0")");
  json::serializer sr;
  auto member = [&out, &sr](std::string_view key, const auto& value) {
    out.append(",\"").append(key).append("\":");
    if constexpr (std::is_same_v<std::decay_t<decltype(value)>, json::string_view>) {
      sr.reset(value);
    } else {
      sr.reset(&value);
    }
    AppendSerialized(out, sr);
  };
  switch (m.kind) {
    case Kind::kRequest:
      member("id", m.id);
      member("method", json::string_view(m.method));
      if (!m.params.is_null()) member("params", m.params);
      break;
    case Kind::kNotification:
      member("method", json::string_view(m.method));
      if (!m.params.is_null()) member("params", m.params);
      break;
    case Kind::kResponse:
      member("id", m.id);
      member("result", m.result);
      break;
    case Kind::kError:
      member("id", m.id);
      member("error", m.error);
      break;
  }
  out.push_back('}');
  return out;
}

Message MakeRequest(json::value id, std::string method, json::value params) {
  Message m;
  m.kind = Kind::kRequest;
  m.id = std::move(id);
  m.method = std::move(method);
  m.params = std::move(params);
  return m;
}

Message MakeNotification(std::string method, json::value params) {
  Message m;
  m.kind = Kind::kNotification;
  m.method = std::move(method);
  m.params = std::move(params);
  return m;
}

Message MakeResponse(json::value id, json::value result) {
  Message m;
  m.kind = Kind::kResponse;
  m.id = std::move(id);
  m.result = std::move(result);
  return m;
}

Message MakeError(json::value id, int code, std::string_view message,
                  std::optional<json::value> data) {
  Message m;
  m.kind = Kind::kError;
  m.id = std::move(id);
  m.error["code"] = code;
  m.error["message"] = message;
  if (data) m.error["data"] = std::move(*data);
  return m;
}

Message MakeError(const ErrorReply& reply) {
  return MakeError(reply.id, reply.code, reply.message);
}

std::string IdToString(const json::value& id) {
  if (id.is_string()) return std::string(id.as_string());
  return json::serialize(id);
}

std::string IdKey(const json::value& id) {
  if (id.is_int64()) return std::to_string(id.get_int64());
  if (id.is_uint64()) return std::to_string(id.get_uint64());
  return json::serialize(id);
}

}  // namespace tw::jsonrpc
