#include "transport/framing.h"

#include <charconv>

namespace tw::transport {

void LineFramer::Append(std::string_view data) {
  while (!data.empty()) {
    size_t nl = data.find('\n');
    std::string_view chunk = data.substr(0, nl);
    if (discarding_) {
      if (nl == std::string_view::npos) return;
      discarding_ = false;
    } else if (buffer_.size() + chunk.size() > max_line_) {
      on_oversize_(buffer_.size() + chunk.size());
      buffer_.clear();
      if (nl == std::string_view::npos) {
        discarding_ = true;
        return;
      }
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

}  // namespace tw::transport
