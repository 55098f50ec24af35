// A connection to a Redis server, for the state a fleet of gateways shares (`state:
// redis://…`). Thin on purpose: commands go as argument vectors (never formatted strings, so a
// key or value can hold any byte), replies come back as plain values, and every failure is a
// Result the caller turns into a denial (fail closed).
//
// Contract: thread-safe — one command at a time on one connection (callers queue on a mutex).
// The first connection sets SIGPIPE to be ignored, process-wide: a closed connection is an
// error the caller reports, not the process's end.
// A command that fails on the wire (the server went away, a timeout) drops the connection; the
// next command connects again. A command is sent once: it is never retried behind the caller's
// back, so a charge whose answer was lost is reported as an error, not made twice.
#pragma once

#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <memory>
#include <functional>
#include <mutex>
#include <thread>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

struct redisContext;

namespace tw::redis {
class TlsTunnel;
}
struct redisReply;

namespace tw::redis {

// Where the server is. Credentials never come from the URL (a state spec lives in a config
// file kept in git): TOOLWARDEN_REDIS_USERNAME and TOOLWARDEN_REDIS_PASSWORD in the environment.
struct Endpoint {
  std::string host;
  int port = 6379;
  int db = 0;
  // redis-sentinel://: the sentinels to ask for the primary of `master` (host and port above
  // are then the primary found last).
  std::vector<std::pair<std::string, int>> sentinels;
  std::string master;
  std::string username;          // empty: the default user (AUTH with a password only)
  std::string password;          // empty: no AUTH
  bool tls = false;              // rediss:// (tls_tunnel.h)
  std::string Describe() const;  // "redis://host:port/db", never the credentials
};

// Whether a state spec names a Redis server (redis://…), rather than sqlite:PATH or memory.
inline bool IsRedisUrl(std::string_view spec) {
  return spec.starts_with("redis://") || spec.starts_with("rediss://") ||
         spec.starts_with("redis-sentinel://");
}

// Parses "redis://HOST[:PORT][/DB]" (an IPv6 host in brackets; "rediss://" for TLS) or
// "redis-sentinel://HOST:PORT[,HOST:PORT…]/MASTER[/DB]"; fills the credentials from the
// environment (they are the primary's; the sentinels are asked without). Refuses a URL with a
// user or password in it, a query, or a DB that is not a number from 0 to 15 (the database
// count of a default Redis server).
Result<Endpoint> ParseUrl(std::string_view url);

// The primary's address: `endpoint`'s own, or — with sentinels — the first answer of
// SENTINEL get-master-addr-by-name among them, checked with ROLE (a stale answer during a
// failover names a server that is no longer primary).
Result<std::pair<std::string, int>> FindPrimary(const Endpoint& endpoint,
                                                std::chrono::milliseconds timeout);

// One reply. Errors the server answers (`-ERR …`) come back as a failed Result, not a Value.
struct Value {
  enum class Type { kNil, kInteger, kString, kStatus, kArray };
  Type type = Type::kNil;
  int64_t integer = 0;
  std::string str;  // kString, kStatus
  std::vector<Value> elements;
};

// A Lua script run with EVALSHA, loaded again (EVAL) where the server does not know it (after
// a restart or a SCRIPT FLUSH).
class Script {
 public:
  explicit Script(std::string source);
  const std::string& source() const { return source_; }
  const std::string& sha1() const { return sha1_; }

 private:
  std::string source_;
  std::string sha1_;  // hex, as EVALSHA wants it
};

// What a client has done, for /metrics (every gateway store's client adds to the same one).
struct Stats {
  std::atomic<uint64_t> commands{0};   // commands answered (error replies included)
  std::atomic<uint64_t> failures{0};   // commands that got no answer: unreachable, timed out
  std::atomic<uint64_t> micros{0};     // time spent waiting for answers, in microseconds
};
// The process's one Stats.
Stats& ProcessStats();

class Client {
 public:
  // Connects (and authenticates, and selects the DB) at once, so that a wrong address or
  // password is reported when the gateway starts. `timeout` bounds the connect and each
  // command's reply.
  static Result<std::unique_ptr<Client>> Connect(const Endpoint& endpoint,
                                                 std::chrono::milliseconds timeout);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Connects to the server a redis:// URL names, with the timeout the gateway's stores use.
  static Result<std::unique_ptr<Client>> Open(std::string_view url);

  // While the server cannot be reached, commands fail at once (saying when the next attempt
  // is) rather than each waiting for a connect: attempts back off from 50 ms to 2 s, and the
  // first command after that tries again.
  Result<Value> Command(const std::vector<std::string_view>& argv);
  Result<Value> Eval(const Script& script, const std::vector<std::string_view>& keys,
                     const std::vector<std::string_view>& args);

  const Endpoint& endpoint() const { return endpoint_; }

 private:
  struct ReplyFree {
    void operator()(redisReply* r) const;
  };
  using Reply = std::unique_ptr<redisReply, ReplyFree>;

  Client(Endpoint endpoint, std::chrono::milliseconds timeout);
  Result<void> ConnectLocked();  // Requires mu_.
  void DropLocked();             // Requires mu_.
  // Sends one command (connecting first when there is no connection) and returns the server's
  // reply, an error reply included; a failure on the wire drops the connection. Requires mu_.
  Result<Reply> SendLocked(const std::vector<std::string_view>& argv);
  // The reply as a Value; an error reply as a failed Result naming the server.
  Result<Value> ValueOf(Result<Reply> reply) const;

  const Endpoint endpoint_;
  const std::string where_;  // endpoint_.Describe(), for messages
  const std::chrono::milliseconds timeout_;
  std::mutex mu_;
  redisContext* ctx_ = nullptr;  // Guarded by mu_; null while disconnected.
  std::unique_ptr<TlsTunnel> tunnel_;  // Guarded by mu_; rediss:// only, beside ctx_.
  std::chrono::steady_clock::time_point retry_at_{};  // Guarded by mu_.
  std::chrono::milliseconds backoff_{0};              // Guarded by mu_; 0 after a success.
};

// The whole number a string reply holds (0 when it holds none: a missing field).
inline int64_t WholeOf(const Value& v) {
  int64_t n = 0;
  std::from_chars(v.str.data(), v.str.data() + v.str.size(), n);
  return n;
}

// A store implemented by `Impl` (constructed from its own Client) on the server of `url`.
template <typename Interface, typename Impl>
Result<std::unique_ptr<Interface>> OpenStore(std::string_view url) {
  auto client = Client::Open(url);
  if (!client) return Fail(client.error());
  return std::unique_ptr<Interface>(std::make_unique<Impl>(std::move(*client)));
}

// Subscriber: listens on one channel from a thread of its own (its own connection), calls
// `on_message` for each message, and says whether it is listening: `on_live(true)` once
// subscribed, `on_live(false)` when the connection is lost (messages may then be missed: a
// cache that relies on them must stop trusting itself). Reconnects with backoff (50 ms to 2 s).
// Channels are server-wide, not per database: name them with the database in them.
class Subscriber {
 public:
  Subscriber(Endpoint endpoint, std::string channel, std::function<void()> on_message,
             std::function<void(bool live)> on_live);
  ~Subscriber();  // stops within 200 ms
  Subscriber(const Subscriber&) = delete;
  Subscriber& operator=(const Subscriber&) = delete;

 private:
  void Loop();
  bool Listen(redisContext* ctx);  // until the connection fails or Stop; true when stopped

  const Endpoint endpoint_;
  const std::string channel_;
  const std::function<void()> on_message_;
  const std::function<void(bool)> on_live_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace tw::redis
