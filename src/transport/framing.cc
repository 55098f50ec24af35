#include "transport/framing.h"

#include <cctype>
#include <charconv>

namespace tw::transport {

void LineFramer::KeepTail(std::string_view chunk) {
  if (chunk.size() >= kEdge) {
    tail_.assign(chunk.substr(chunk.size() - kEdge));
    return;
  }
  tail_.append(chunk);
  if (tail_.size() > kEdge) tail_.erase(0, tail_.size() - kEdge);
}

void LineFramer::Append(std::string_view data) {
  while (!data.empty()) {
    size_t nl = data.find('\n');
    std::string_view chunk = data.substr(0, nl);
    if (discarding_) {
      if (on_skipped_) KeepTail(chunk);
      if (nl == std::string_view::npos) return;
      discarding_ = false;
      if (on_skipped_) on_skipped_(head_, tail_);
    } else if (buffer_.size() + chunk.size() > max_line_) {
      on_oversize_(buffer_.size() + chunk.size());
      if (on_skipped_) {
        head_.assign(buffer_.substr(0, kEdge));
        if (head_.size() < kEdge) head_.append(chunk.substr(0, kEdge - head_.size()));
        tail_.clear();
        KeepTail(buffer_);
        KeepTail(chunk);
      }
      buffer_.clear();
      if (nl == std::string_view::npos) {
        discarding_ = true;
        return;
      }
      if (on_skipped_) on_skipped_(head_, tail_);
    } else if (nl == std::string_view::npos) {
      buffer_.append(chunk);
      return;
    } else {
      std::string_view line = chunk;
      if (!buffer_.empty()) {
        buffer_.append(chunk);
        line = buffer_;
      }
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (line.find_first_not_of(" \t") != std::string_view::npos) on_line_(line);
      buffer_.clear();
    }
    data.remove_prefix(nl + 1);
  }
}

std::string FormatSseEvent(std::string_view id, std::string_view data, std::string_view event) {
  std::string out;
  out.reserve(data.size() + id.size() + 32);
  if (!event.empty()) out.append("event: ").append(event).append("\n");
  if (!id.empty()) out.append("id: ").append(id).append("\n");
  for (;;) {
    size_t nl = data.find('\n');
    out.append("data: ").append(data.substr(0, nl)).append("\n");
    if (nl == std::string_view::npos) break;
    data.remove_prefix(nl + 1);
  }
  out.append("\n");
  return out;
}

std::string FormatSsePriming(std::string_view id, long retry_ms) {
  std::string out = "id: ";
  out.append(id).append("\nretry: ").append(std::to_string(retry_ms)).append("\ndata: \n\n");
  return out;
}

bool SseParser::Append(std::string_view data) {
  for (char c : data) {
    if (skip_lf_) {
      skip_lf_ = false;
      if (c == '\n') continue;
    }
    if (c == '\r' || c == '\n') {
      skip_lf_ = (c == '\r');
      Line(line_);
      line_.clear();
      continue;
    }
    line_.push_back(c);
    if (++event_bytes_ > max_event_) return false;
  }
  return true;
}

void SseParser::Line(std::string_view line) {
  if (line.empty()) {
    if (!current_.id.empty()) last_event_id_ = current_.id;
    if (has_data_) on_event_(std::move(current_));
    current_ = SseEvent{};
    has_data_ = false;
    event_bytes_ = 0;
    return;
  }
  if (line.front() == ':') return;  // comment
  size_t colon = line.find(':');
  std::string_view field = line.substr(0, colon);
  std::string_view value;
  if (colon != std::string_view::npos) {
    value = line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  }
  if (field == "data") {
    if (has_data_) current_.data.push_back('\n');
    current_.data.append(value);
    has_data_ = true;
  } else if (field == "event") {
    current_.event = std::string(value);
  } else if (field == "id") {
    if (value.find('\0') == std::string_view::npos) current_.id = std::string(value);
  } else if (field == "retry") {
    long ms = 0;
    auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), ms);
    if (ec == std::errc() && p == value.data() + value.size()) current_.retry_ms = ms;
  }
}

namespace {

// The id token at the start of `s` (an integer or a string without escapes), or nullopt.
std::optional<json::value> IdToken(std::string_view s) {
  size_t end = 0;
  if (!s.empty() && s[0] == '"') {
    end = s.find('"', 1);
    if (end == std::string_view::npos || s.substr(1, end - 1).find('\\') != std::string_view::npos) {
      return std::nullopt;
    }
    return json::value(json::string(s.substr(1, end - 1)));
  }
  if (!s.empty() && s[0] == '-') ++end;
  const size_t digits = end;
  while (end < s.size() && std::isdigit(static_cast<unsigned char>(s[end]))) ++end;
  if (end == digits || end > 19) return std::nullopt;
  return json::value(std::stoll(std::string(s.substr(0, end))));
}

}  // namespace

std::optional<json::value> OversizedAnswerId(std::string_view head, std::string_view tail) {
  for (std::string_view prefix : {std::string_view(R"({"jsonrpc":"2.0","id":)"), std::string_view(R"({"id":)")}) {
    if (head.starts_with(prefix)) {
      std::string_view rest = head.substr(prefix.size());
      auto id = IdToken(rest);
      const size_t after = id ? (id->is_string() ? id->get_string().size() + 2
                                                 : std::to_string(id->get_int64()).size())
                              : 0;
      if (id && after < rest.size() && rest[after] == ',') return id;
    }
  }
  while (!tail.empty() && (tail.back() == '\r' || tail.back() == ' ')) tail.remove_suffix(1);
  if (!tail.ends_with('}')) return std::nullopt;
  tail.remove_suffix(1);
  const size_t at = tail.rfind(R"("id":)");
  if (at == std::string_view::npos) return std::nullopt;
  std::string_view token = tail.substr(at + 5);
  auto id = IdToken(token);
  if (!id) return std::nullopt;
  const size_t len = id->is_string() ? id->get_string().size() + 2
                                     : std::to_string(id->get_int64()).size();
  return len == token.size() ? id : std::nullopt;
}

}  // namespace tw::transport
