#include "admin/console_sessions.h"

#include <openssl/crypto.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>

#include "common/canonical_json.h"
#include "common/random.h"
#include "redis/redis_client.h"

namespace tw::admin {

namespace {

constexpr std::string_view kSharedKey = "tw:console:";
constexpr std::string_view kSharedSet = "tw:console-sessions";

// KEYS: the set of session keys. Deletes every session and the set.
const redis::Script kCloseAll(R"lua(
for _, k in ipairs(redis.call('SMEMBERS', KEYS[1])) do redis.call('DEL', k) end
redis.call('DEL', KEYS[1])
return 1
)lua");

}  // namespace

ConsoleSessions::ConsoleSessions(Options options) : options_(options) {}
ConsoleSessions::~ConsoleSessions() = default;

void ConsoleSessions::ShareThrough(std::unique_ptr<redis::Client> shared) {
  shared_ = std::move(shared);
}

void ConsoleSessions::CloseAll() {
  sessions_.clear();
  if (shared_ && !shared_->Eval(kCloseAll, {kSharedSet}, {})) {
    spdlog::error("console: the shared sessions could not be ended (Redis unreachable); "
                  "they end on their own within {} s", options_.idle_ms / 1000);
  }
}

std::optional<ConsoleSession> ConsoleSessions::FindShared(const std::string& key, int64_t now_ms) {
  auto r = shared_->Command({"HMGET", key, "csrf", "created_ms", "last_used_ms", "expires_ms", "principal"});
  if (!r || r->elements.size() != 5 || r->elements[0].type != redis::Value::Type::kString) {
    return std::nullopt;
  }
  ConsoleSession s{r->elements[0].str, redis::WholeOf(r->elements[1]), redis::WholeOf(r->elements[2]),
                   redis::WholeOf(r->elements[3]), r->elements[4].str};
  if (now_ms >= s.expires_ms || now_ms - s.last_used_ms >= options_.idle_ms) {
    (void)shared_->Command({"DEL", key});
    return std::nullopt;
  }
  s.last_used_ms = now_ms;
  const std::string ttl = std::to_string(std::min(options_.idle_ms, s.expires_ms - now_ms));
  (void)shared_->Command({"HSET", key, "last_used_ms", std::to_string(now_ms)});
  (void)shared_->Command({"PEXPIRE", key, ttl});
  return s;
}

ConsoleLogin ConsoleSessions::Open(int64_t now_ms, const std::string& principal) {
  if (shared_) {
    ConsoleLogin login{RandomHex(32), RandomHex(32), now_ms + options_.lifetime_ms};
    const std::string key = std::string(kSharedKey) + Sha256Hex(login.id);
    const std::string now = std::to_string(now_ms);
    auto r = shared_->Command({"HSET", key, "csrf", login.csrf, "created_ms", now, "last_used_ms",
                               now, "expires_ms", std::to_string(login.expires_ms), "principal", principal});
    if (r) r = shared_->Command({"PEXPIRE", key, std::to_string(std::min(options_.idle_ms, options_.lifetime_ms))});
    if (r) r = shared_->Command({"SADD", kSharedSet, key});
    // Not stored: the cookie names no session, and the next request asks to sign in again.
    if (!r) spdlog::error("console: a session could not be stored: {}", r.error().message());
    return login;
  }
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
  sessions_[Sha256Hex(login.id)] = ConsoleSession{login.csrf, now_ms, now_ms, login.expires_ms, principal};
  return login;
}

std::optional<ConsoleSession> ConsoleSessions::Find(std::string_view id, int64_t now_ms) {
  if (id.size() != 64) return std::nullopt;
  if (shared_) return FindShared(std::string(kSharedKey) + Sha256Hex(id), now_ms);
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

void ConsoleSessions::Close(std::string_view id) {
  if (shared_) {
    (void)shared_->Command({"DEL", std::string(kSharedKey) + Sha256Hex(id)});
    return;
  }
  sessions_.erase(Sha256Hex(id));
}

std::string ConsoleSessions::CookieValue(std::string_view header) { return CookieNamed(header, kConsoleCookie); }

std::string ConsoleSessions::CookieNamed(std::string_view header, std::string_view name) {
  // "a=1; __Host-tw_console=…; b=2"
  while (!header.empty()) {
    size_t end = header.find(';');
    std::string_view pair = header.substr(0, end);
    header = end == std::string_view::npos ? std::string_view() : header.substr(end + 1);
    while (!pair.empty() && pair.front() == ' ') pair.remove_prefix(1);
    if (pair.starts_with(name) && pair.size() > name.size() && pair[name.size()] == '=') {
      return std::string(pair.substr(name.size() + 1));
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
