// ConsoleSessions: the web console's logins. A login with the admin token opens a session
// whose id travels only in a cookie (`__Host-tw_console`: Secure, HttpOnly, SameSite=Strict,
// Path=/) and whose CSRF token must accompany every state-changing request in the
// `X-CSRF-Token` header — a page on another site can make the browser send the cookie, but
// cannot read the token.
//
// Only SHA-256 digests of session ids are kept (a memory dump yields no usable cookie); CSRF
// tokens are compared in constant time. Sessions live in this process (a restart logs every
// console out), or — for a fleet — in Redis (ShareThrough), where every replica finds a
// session any replica opened. Idle sessions end after `idle_ms`, every session after
// `lifetime_ms`; in this process at most `max_sessions` are kept (the least recently used goes
// first); in Redis each expires on its own (only an administrator can open one).
//
// Thread: one (the gateway's io thread).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace tw::redis {
class Client;
}

namespace tw::admin {

inline constexpr std::string_view kConsoleCookie = "__Host-tw_console";

struct ConsoleLogin {
  std::string id;    // goes into the cookie; never stored
  std::string csrf;  // the page sends it back in X-CSRF-Token
  int64_t expires_ms = 0;
};

struct ConsoleSession {
  std::string csrf;
  int64_t created_ms = 0;
  int64_t last_used_ms = 0;
  int64_t expires_ms = 0;  // absolute end
  // Who signed in through the identity provider ("" for the admin token).
  std::string principal;
};

class ConsoleSessions {
 public:
  struct Options {
    int64_t idle_ms = 8 * 3600'000LL;
    int64_t lifetime_ms = 24 * 3600'000LL;
    size_t max_sessions = 256;
  };
  ConsoleSessions() : ConsoleSessions(Options{}) {}
  explicit ConsoleSessions(Options options);
  ~ConsoleSessions();

  // `principal`: who signed in through the identity provider ("" for the admin token).
  ConsoleLogin Open(int64_t now_ms, const std::string& principal = {});
  // The live session a cookie value names (and marks it used), or nullopt.
  std::optional<ConsoleSession> Find(std::string_view id, int64_t now_ms);
  void Close(std::string_view id);
  // Ends every session (the admin token was replaced, say).
  void CloseAll();
  // Keeps sessions on the Redis server of `shared` from now on. A Redis that cannot be reached
  // finds no session (the console asks to sign in again): it never lets a request through.
  void ShareThrough(std::unique_ptr<redis::Client> shared);
  size_t size() const { return sessions_.size(); }  // in this process

  // The cookie value of a `Cookie:` header, or "".
  static std::string CookieValue(std::string_view cookie_header);
  // The value of the cookie `name` in a `Cookie:` header, or "".
  static std::string CookieNamed(std::string_view cookie_header, std::string_view name);
  // Set-Cookie values that open and clear the session cookie.
  static std::string SetCookie(const ConsoleLogin& login, int64_t now_ms);
  static std::string ClearCookie();
  // Constant-time comparison (for CSRF tokens).
  static bool SameSecret(std::string_view a, std::string_view b);

 private:
  std::optional<ConsoleSession> FindShared(const std::string& key, int64_t now_ms);

  Options options_;
  std::map<std::string, ConsoleSession> sessions_;  // by SHA-256 of the id
  std::unique_ptr<redis::Client> shared_;            // when set, sessions_ is unused
};

}  // namespace tw::admin
