// DNS-rebinding protection for the HTTP listener: which Host and Origin headers are accepted.
//
// A browser page on evil.example can make a victim's browser send requests to 127.0.0.1 with
// `Host: evil.example` (after DNS rebinding) and `Origin: http://evil.example`. Accepting only
// known host names, and only origins on those names, closes that door. On by default.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace tw::transport {

class OriginPolicy {
 public:
  // Allows the loopback names (localhost, 127.0.0.1, [::1]) on any port, plus `extra_hosts`
  // (host or host:port) and `extra_origins` (scheme://host[:port], exact).
  OriginPolicy(std::vector<std::string> extra_hosts, std::vector<std::string> extra_origins);
  // Accepts every Host and Origin (--no-origin-check).
  static OriginPolicy AllowAll();

  // `host` is the Host header (may be empty: HTTP/1.0); `origin` the Origin header or empty.
  bool HostAllowed(std::string_view host) const;
  bool OriginAllowed(std::string_view origin) const;
  // Whether a browser page of `origin` may read the answers (CORS): only an origin configured
  // by name (`extra_origins`). Loopback origins may send requests (a local tool's page posting
  // to its own gateway), but no other page on this machine reads what the gateway answers.
  bool CorsAllowed(std::string_view origin) const;

 private:
  bool NameAllowed(std::string_view host_port) const;

  bool allow_all_ = false;
  std::vector<std::string> extra_hosts_;
  std::vector<std::string> extra_origins_;
};

}  // namespace tw::transport
