#include "transport/origin.h"

#include <algorithm>
#include <cctype>

namespace tw::transport {

namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// Splits "host:port", "[v6]:port", "host" into the host part.
std::string_view HostPart(std::string_view host_port) {
  if (host_port.starts_with("[")) {
    size_t close = host_port.find(']');
    return close == std::string_view::npos ? host_port : host_port.substr(0, close + 1);
  }
  size_t colon = host_port.rfind(':');
  return colon == std::string_view::npos ? host_port : host_port.substr(0, colon);
}

bool ValidPort(std::string_view host_port, std::string_view host) {
  std::string_view rest = host_port.substr(host.size());
  if (rest.empty()) return true;
  if (rest.front() != ':' || rest.size() < 2 || rest.size() > 6) return false;
  return std::all_of(rest.begin() + 1, rest.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

OriginPolicy::OriginPolicy(std::vector<std::string> extra_hosts,
                           std::vector<std::string> extra_origins) {
  for (auto& h : extra_hosts) extra_hosts_.push_back(Lower(h));
  for (auto& o : extra_origins) extra_origins_.push_back(Lower(o));
}

OriginPolicy OriginPolicy::AllowAll() {
  OriginPolicy p({}, {});
  p.allow_all_ = true;
  return p;
}

bool OriginPolicy::NameAllowed(std::string_view host_port_raw) const {
  const std::string host_port = Lower(host_port_raw);
  const std::string_view host = HostPart(host_port);
  if (!ValidPort(host_port, host)) return false;
  if (host == "localhost" || host == "127.0.0.1" || host == "[::1]") return true;
  return std::any_of(extra_hosts_.begin(), extra_hosts_.end(),
                     [&](const std::string& h) { return h == host_port || h == host; });
}

bool OriginPolicy::HostAllowed(std::string_view host) const {
  if (allow_all_) return true;
  // HTTP/1.1 requires Host; a request without one is not from a browser we must fear, but it
  // is not well-formed either.
  if (host.empty()) return false;
  return NameAllowed(host);
}

bool OriginPolicy::CorsAllowed(std::string_view origin_raw) const {
  if (origin_raw.empty()) return false;
  const std::string origin = Lower(origin_raw);
  return std::find(extra_origins_.begin(), extra_origins_.end(), origin) != extra_origins_.end();
}

bool OriginPolicy::OriginAllowed(std::string_view origin_raw) const {
  if (allow_all_ || origin_raw.empty()) return true;  // non-browser clients send no Origin
  const std::string origin = Lower(origin_raw);
  if (std::find(extra_origins_.begin(), extra_origins_.end(), origin) != extra_origins_.end()) {
    return true;
  }
  std::string_view rest = origin;
  if (rest.starts_with("http://")) {
    rest.remove_prefix(7);
  } else if (rest.starts_with("https://")) {
    rest.remove_prefix(8);
  } else {
    return false;  // "null" (sandboxed frames, file://) and other schemes
  }
  if (rest.find('/') != std::string_view::npos) return false;
  return NameAllowed(rest);
}

}  // namespace tw::transport
