#include "admin/console_sessions.h"

#include <openssl/crypto.h>

#include <algorithm>

#include "common/canonical_json.h"
#include "common/random.h"

namespace tw::admin {

ConsoleLogin ConsoleSessions::Open(int64_t now_ms) {
  // Expired sessions go first, then the least recently used while over the cap.
  std::erase_if(sessions_, [&](const auto& kv) {
    return now_ms >= kv.second.expires_ms || now_ms - kv.second.last_used_ms >= options_.idle_ms;
  });
  while (sessions_.size() >= options_.max_sessions) {
    auto oldest = std::min_element(sessions_.begin(), sessions_.end(), [](const auto& a, const auto& b) {
      return a.second.last_used_ms < b.second.last_used_ms;
    });
    sessions_.erase(oldest);
  }
  ConsoleLogin login{RandomHex(32), RandomHex(32), now_ms + options_.lifetime_ms};
  sessions_[Sha256Hex(login.id)] = ConsoleSession{login.csrf, now_ms, now_ms, login.expires_ms};
  return login;
}

std::optional<ConsoleSession> ConsoleSessions::Find(std::string_view id, int64_t now_ms) {
  if (id.size() != 64) return std::nullopt;
  auto it = sessions_.find(Sha256Hex(id));
  if (it == sessions_.end()) return std::nullopt;
  ConsoleSession& s = it->second;
  if (now_ms >= s.expires_ms || now_ms - s.last_used_ms >= options_.idle_ms) {
    sessions_.erase(it);
    return std::nullopt;
  }
  s.last_used_ms = now_ms;
  return s;
}

void ConsoleSessions::Close(std::string_view id) { sessions_.erase(Sha256Hex(id)); }

std::string ConsoleSessions::CookieValue(std::string_view header) {
  // "a=1; __Host-tw_console=…; b=2"
  while (!header.empty()) {
    size_t end = header.find(';');
    std::string_view pair = header.substr(0, end);
    header = end == std::string_view::npos ? std::string_view() : header.substr(end + 1);
    while (!pair.empty() && pair.front() == ' ') pair.remove_prefix(1);
    if (pair.starts_with(kConsoleCookie) && pair.size() > kConsoleCookie.size() &&
        pair[kConsoleCookie.size()] == '=') {
      return std::string(pair.substr(kConsoleCookie.size() + 1));
    }
  }
  return {};
}

std::string ConsoleSessions::SetCookie(const ConsoleLogin& login, int64_t now_ms) {
  // __Host-: Secure, Path=/ and no Domain, so no other host or path can set or shadow it.
  // Browsers accept Secure cookies from http://localhost and 127.0.0.1; anywhere else the
  // console needs HTTPS (a TLS-terminating proxy in front of the gateway).
  return std::string(kConsoleCookie) + "=" + login.id +
         "; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=" +
         std::to_string((login.expires_ms - now_ms) / 1000);
}

std::string ConsoleSessions::ClearCookie() {
  return std::string(kConsoleCookie) + "=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0";
}

bool ConsoleSessions::SameSecret(std::string_view a, std::string_view b) {
  return a.size() == b.size() && !a.empty() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace tw::admin
