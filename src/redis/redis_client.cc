#include "redis/redis_client.h"

#include <hiredis/hiredis.h>
#include <openssl/evp.h>

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <boost/url/parse.hpp>
#include <charconv>
#include <csignal>
#include <optional>
#include <cstdlib>

#include "common/hex.h"
#include "redis/tls_tunnel.h"

namespace tw::redis {

namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

std::string Sha1Hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), digest, &len, EVP_sha1(), nullptr);
  std::string out;
  AppendHex(out, digest, len);
  return out;
}

timeval ToTimeval(std::chrono::milliseconds ms) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
  return tv;
}

Value Convert(const redisReply* r) {
  Value v;
  switch (r->type) {
    case REDIS_REPLY_INTEGER:
      v.type = Value::Type::kInteger;
      v.integer = r->integer;
      break;
    case REDIS_REPLY_STRING:
      v.type = Value::Type::kString;
      v.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      v.type = Value::Type::kStatus;
      v.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ARRAY:
      v.type = Value::Type::kArray;
      v.elements.reserve(r->elements);
      for (size_t i = 0; i < r->elements; ++i) v.elements.push_back(Convert(r->element[i]));
      break;
    default:
      v.type = Value::Type::kNil;
  }
  return v;
}

}  // namespace

std::string Endpoint::Describe() const {
  if (!sentinels.empty()) {
    std::string out = "redis-sentinel://";
    for (size_t i = 0; i < sentinels.size(); ++i) {
      out += (i ? "," : "") + sentinels[i].first + ":" + std::to_string(sentinels[i].second);
    }
    return out + "/" + master + "/" + std::to_string(db);
  }
  const bool v6 = host.find(':') != std::string::npos;
  return std::string(tls ? "rediss://" : "redis://") + (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port) + "/" +
         std::to_string(db);
}

// `url` with whatever stands between "://" and an '@' in its authority replaced by "***", so
// that an error never repeats a password someone wrote into it.
static std::string Redacted(std::string_view url) {
  const size_t scheme = url.find("://");
  if (scheme == std::string_view::npos) return std::string(url);
  const size_t start = scheme + 3;
  const size_t authority_end = std::min(url.find('/', start), url.size());
  const size_t at = url.substr(0, authority_end).rfind('@');
  if (at == std::string_view::npos || at < start) return std::string(url);
  return std::string(url.substr(0, start)) + "***" + std::string(url.substr(at));
}

namespace {

// "HOST:PORT" (PORT required), for a sentinel.
std::optional<std::pair<std::string, int>> HostPort(std::string_view s) {
  const size_t colon = s.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return std::nullopt;
  std::string_view host = s.substr(0, colon), p = s.substr(colon + 1);
  if (host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  int port = 0;
  auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), port);
  if (ec != std::errc() || end != p.data() + p.size() || port < 1 || port > 65535 || host.empty()) {
    return std::nullopt;
  }
  return std::pair<std::string, int>(std::string(host), port);
}

}  // namespace

Result<Endpoint> ParseUrl(std::string_view url) {
  auto bad = [&](const std::string& why) {
    return Fail(Error::InvalidArgument("state \"" + Redacted(url) + "\": " + why));
  };
  if (url.starts_with("redis-sentinel://")) {
    std::string_view rest = url.substr(17);
    if (rest.find('@') != std::string_view::npos) {
      return bad("credentials do not belong in the URL: set TOOLWARDEN_REDIS_USERNAME and "
                 "TOOLWARDEN_REDIS_PASSWORD in the environment");
    }
    const size_t slash = rest.find('/');
    if (slash == std::string_view::npos) {
      return bad("expected redis-sentinel://HOST:PORT[,HOST:PORT…]/MASTER[/DB]");
    }
    Endpoint e;
    std::string_view list = rest.substr(0, slash), path = rest.substr(slash + 1);
    while (!list.empty()) {
      const size_t comma = list.find(',');
      auto hp = HostPort(list.substr(0, comma));
      if (!hp) return bad("each sentinel is HOST:PORT");
      e.sentinels.push_back(*hp);
      list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    }
    if (e.sentinels.empty()) return bad("name at least one sentinel");
    const size_t db_slash = path.find('/');
    e.master = std::string(path.substr(0, db_slash));
    if (e.master.empty() || e.master.find_first_of("?#") != std::string::npos) {
      return bad("name the master set (…/MASTER)");
    }
    if (db_slash != std::string_view::npos) {
      std::string_view d = path.substr(db_slash + 1);
      int db = -1;
      auto [end, ec] = std::from_chars(d.data(), d.data() + d.size(), db);
      if (ec != std::errc() || end != d.data() + d.size() || db < 0 || db > 15) {
        return bad("the database must be a number from 0 to 15");
      }
      e.db = db;
    }
    e.host = e.sentinels.front().first;  // until the primary is found
    e.port = e.sentinels.front().second;
    e.username = Env("TOOLWARDEN_REDIS_USERNAME");
    e.password = Env("TOOLWARDEN_REDIS_PASSWORD");
    if (!e.username.empty() && e.password.empty()) {
      return bad("TOOLWARDEN_REDIS_USERNAME is set without TOOLWARDEN_REDIS_PASSWORD");
    }
    return e;
  }
  auto u = boost::urls::parse_uri(url);
  if (!u) return bad("not a URL (expected redis://HOST[:PORT][/DB])");
  if (u->scheme() != "redis" && u->scheme() != "rediss") return bad("expected redis://HOST[:PORT][/DB]");
  if (u->has_userinfo()) {
    return bad(
        "credentials do not belong in the URL (a config file is kept in git): set "
        "TOOLWARDEN_REDIS_USERNAME and TOOLWARDEN_REDIS_PASSWORD in the environment");
  }
  if (u->has_query() || u->has_fragment()) return bad("a query or fragment is not understood");
  Endpoint e;
  e.tls = u->scheme() == "rediss";
  switch (u->host_type()) {
    case boost::urls::host_type::ipv6:
      e.host = u->host_ipv6_address().to_string();
      break;
    case boost::urls::host_type::ipv4:
    case boost::urls::host_type::name:
      e.host = u->host();
      break;
    default:
      return bad("expected a host name or IP address");
  }
  if (e.host.empty()) return bad("the host is missing");
  if (u->has_port()) {
    const std::string_view p = u->port();
    int port = 0;
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), port);
    if (ec != std::errc() || end != p.data() + p.size() || port < 1 || port > 65535) {
      return bad("the port must be a number from 1 to 65535");
    }
    e.port = port;
  }
  std::string_view path = u->encoded_path();
  if (!path.empty() && path != "/") {
    path.remove_prefix(1);
    int db = -1;
    auto [end, ec] = std::from_chars(path.data(), path.data() + path.size(), db);
    if (ec != std::errc() || end != path.data() + path.size() || db < 0 || db > 15) {
      return bad("the database (the path) must be a number from 0 to 15");
    }
    e.db = db;
  }
  e.username = Env("TOOLWARDEN_REDIS_USERNAME");
  e.password = Env("TOOLWARDEN_REDIS_PASSWORD");
  if (!e.username.empty() && e.password.empty()) {
    return bad("TOOLWARDEN_REDIS_USERNAME is set without TOOLWARDEN_REDIS_PASSWORD");
  }
  return e;
}

Stats& ProcessStats() {
  static Stats stats;
  return stats;
}

Result<std::unique_ptr<Client>> Client::Open(std::string_view url) {
  auto endpoint = ParseUrl(url);
  if (!endpoint) return Fail(endpoint.error());
  // Long enough for a loaded server, short enough that a call held by a hung one is refused
  // soon (the guard denies it: fail closed).
  return Connect(*endpoint, std::chrono::seconds(2));
}

// A server (or the TLS tunnel) that closes the connection makes a write fail with EPIPE — an
// error to report, never a signal that ends the process (a CLI command has no handler).
void IgnoreSigpipe() {
  static const bool ignored = [] {
    std::signal(SIGPIPE, SIG_IGN);
    return true;
  }();
  (void)ignored;
}

// A connection to a Redis server: hiredis's context and, for rediss://, the tunnel under it.
struct Dialed {
  redisContext* ctx = nullptr;
  std::unique_ptr<TlsTunnel> tunnel;
  std::string error;  // when ctx is null
};

Dialed Dial(const Endpoint& endpoint, const std::string& host, int port,
            std::chrono::milliseconds timeout) {
  IgnoreSigpipe();
  Dialed d;
  if (endpoint.tls) {
    auto t = TlsTunnel::Open(host, port, timeout);
    if (!t) {
      d.error = t.error().message();
      return d;
    }
    d.tunnel = std::move(*t);
    d.ctx = redisConnectFd(d.tunnel->plain_fd());
  } else {
    d.ctx = redisConnectWithTimeout(host.c_str(), port, ToTimeval(timeout));
  }
  if (d.ctx == nullptr) {
    d.error = "out of memory";
  } else if (d.ctx->err) {
    d.error = d.ctx->errstr;
    redisFree(d.ctx);
    d.ctx = nullptr;
    d.tunnel.reset();
  }
  return d;
}

Result<std::pair<std::string, int>> FindPrimary(const Endpoint& endpoint,
                                                std::chrono::milliseconds timeout) {
  if (endpoint.sentinels.empty()) return std::pair<std::string, int>(endpoint.host, endpoint.port);
  IgnoreSigpipe();
  std::string why = "no sentinel answered";
  for (const auto& [host, port] : endpoint.sentinels) {
    redisContext* ctx = redisConnectWithTimeout(host.c_str(), port, ToTimeval(timeout));
    if (ctx == nullptr || ctx->err) {
      if (ctx) {
        why = "sentinel " + host + ":" + std::to_string(port) + ": " + ctx->errstr;
        redisFree(ctx);
      }
      continue;
    }
    redisSetTimeout(ctx, ToTimeval(timeout));
    const char* argv[] = {"SENTINEL", "get-master-addr-by-name", endpoint.master.c_str()};
    size_t lens[] = {8, 23, endpoint.master.size()};
    auto* r = static_cast<redisReply*>(redisCommandArgv(ctx, 3, argv, lens));
    std::optional<std::pair<std::string, int>> found;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2) {
      found = std::pair<std::string, int>(std::string(r->element[0]->str, r->element[0]->len),
                                          std::atoi(r->element[1]->str));
    } else {
      why = "sentinel " + host + ":" + std::to_string(port) + " knows no master \"" +
            endpoint.master + "\"";
    }
    if (r) freeReplyObject(r);
    redisFree(ctx);
    if (!found) continue;
    // During a failover a sentinel may still name the old primary: ask it what it is.
    redisContext* p = redisConnectWithTimeout(found->first.c_str(), found->second, ToTimeval(timeout));
    bool primary = false;
    if (p && !p->err) {
      redisSetTimeout(p, ToTimeval(timeout));
      std::vector<const char*> a;
      std::vector<size_t> l;
      if (!endpoint.password.empty()) {
        a = {"AUTH"};
        l = {4};
        if (!endpoint.username.empty()) {
          a.push_back(endpoint.username.c_str());
          l.push_back(endpoint.username.size());
        }
        a.push_back(endpoint.password.c_str());
        l.push_back(endpoint.password.size());
        auto* ar = static_cast<redisReply*>(redisCommandArgv(p, static_cast<int>(a.size()), a.data(), l.data()));
        if (ar) freeReplyObject(ar);
      }
      const char* role[] = {"ROLE"};
      size_t role_len[] = {4};
      auto* rr = static_cast<redisReply*>(redisCommandArgv(p, 1, role, role_len));
      primary = rr && rr->type == REDIS_REPLY_ARRAY && rr->elements > 0 &&
                rr->element[0]->type == REDIS_REPLY_STRING &&
                std::string_view(rr->element[0]->str, rr->element[0]->len) == "master";
      if (rr) freeReplyObject(rr);
    }
    if (p) redisFree(p);
    if (primary) return *found;
    why = found->first + ":" + std::to_string(found->second) + " is not (or no longer) the primary";
  }
  return Fail(Error::Unavailable(endpoint.Describe() + ": " + why));
}

Script::Script(std::string source) : source_(std::move(source)), sha1_(Sha1Hex(source_)) {}

void Client::ReplyFree::operator()(redisReply* r) const { freeReplyObject(r); }

Client::Client(Endpoint endpoint, std::chrono::milliseconds timeout)
    : endpoint_(std::move(endpoint)), where_(endpoint_.Describe()), timeout_(timeout) {}

Client::~Client() { DropLocked(); }

Result<std::unique_ptr<Client>> Client::Connect(const Endpoint& endpoint,
                                                std::chrono::milliseconds timeout) {
  std::unique_ptr<Client> c(new Client(endpoint, timeout));
  std::lock_guard lock(c->mu_);
  if (auto r = c->ConnectLocked(); !r) return Fail(r.error());
  return c;
}

void Client::DropLocked() {
  if (ctx_) redisFree(ctx_);
  ctx_ = nullptr;
  tunnel_.reset();
}

Result<void> Client::ConnectLocked() {
  auto primary = FindPrimary(endpoint_, timeout_);
  if (!primary) return Fail(primary.error());
  Dialed d = Dial(endpoint_, primary->first, primary->second, timeout_);
  if (d.ctx == nullptr) return Fail(Error::Unavailable(where_ + ": " + d.error));
  redisContext* ctx = d.ctx;
  redisSetTimeout(ctx, ToTimeval(timeout_));
  if (!endpoint_.tls) redisEnableKeepAlive(ctx);  // (a socket pair has no keep-alive)
  ctx_ = ctx;
  tunnel_ = std::move(d.tunnel);
  // The handshake: AUTH (its error names the step and the server's answer, never the
  // secret), then SELECT. A refusal of either leaves no connection behind.
  auto step = [this](const std::vector<std::string_view>& argv,
                     const std::string& what) -> Result<void> {
    auto reply = SendLocked(argv);
    if (!reply) return Fail(reply.error());
    if ((*reply)->type != REDIS_REPLY_ERROR) return {};
    DropLocked();
    return Fail(Error::Unavailable(where_ + ": " + what + " refused (" +
                                   std::string((*reply)->str, (*reply)->len) + ")"));
  };
  if (!endpoint_.password.empty()) {
    std::vector<std::string_view> auth{"AUTH"};
    if (!endpoint_.username.empty()) auth.push_back(endpoint_.username);
    auth.push_back(endpoint_.password);
    if (auto r = step(auth, "authentication"); !r) return r;
  }
  if (endpoint_.db != 0) {
    if (auto r = step({"SELECT", std::to_string(endpoint_.db)}, "selecting the database"); !r) {
      return r;
    }
  }
  return {};
}

Result<Client::Reply> Client::SendLocked(const std::vector<std::string_view>& argv) {
  using std::chrono::steady_clock;
  Stats& stats = ProcessStats();
  if (ctx_ == nullptr) {
    const auto now = steady_clock::now();
    if (now < retry_at_) {
      stats.failures.fetch_add(1, std::memory_order_relaxed);
      const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(retry_at_ - now);
      return Fail(Error::Unavailable(where_ + ": unreachable (next attempt in " +
                                     std::to_string(wait.count() + 1) + " ms)"));
    }
    if (auto r = ConnectLocked(); !r) {
      stats.failures.fetch_add(1, std::memory_order_relaxed);
      backoff_ = std::clamp(backoff_ * 2, std::chrono::milliseconds(50), std::chrono::milliseconds(2000));
      retry_at_ = steady_clock::now() + backoff_;
      return Fail(r.error());
    }
    backoff_ = std::chrono::milliseconds(0);
  }
  const auto start = steady_clock::now();
  std::vector<const char*> ptrs;
  std::vector<size_t> lens;
  ptrs.reserve(argv.size());
  lens.reserve(argv.size());
  for (std::string_view a : argv) {
    ptrs.push_back(a.data());
    lens.push_back(a.size());
  }
  Reply reply(static_cast<redisReply*>(
      redisCommandArgv(ctx_, static_cast<int>(argv.size()), ptrs.data(), lens.data())));
  if (!reply) {
    // The connection is unusable (closed, timed out after `timeout_`, a protocol error): drop
    // it. Whether the server ran the command is unknown; the caller fails closed.
    Error e = Error::Unavailable(where_ + ": " + ctx_->errstr);
    DropLocked();
    stats.failures.fetch_add(1, std::memory_order_relaxed);
    return Fail(std::move(e));
  }
  // A primary demoted by a failover answers writes READONLY: find the new one next time.
  if (reply->type == REDIS_REPLY_ERROR && std::string_view(reply->str, reply->len).starts_with("READONLY")) {
    DropLocked();
  }
  stats.commands.fetch_add(1, std::memory_order_relaxed);
  stats.micros.fetch_add(static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                             steady_clock::now() - start).count()),
                         std::memory_order_relaxed);
  return reply;
}

Result<Value> Client::ValueOf(Result<Reply> reply) const {
  if (!reply) return Fail(reply.error());
  if ((*reply)->type == REDIS_REPLY_ERROR) {
    return Fail(Error::Unavailable(where_ + ": " + std::string((*reply)->str, (*reply)->len)));
  }
  return Convert(reply->get());
}

Result<Value> Client::Command(const std::vector<std::string_view>& argv) {
  std::lock_guard lock(mu_);
  return ValueOf(SendLocked(argv));
}

Result<Value> Client::Eval(const Script& script, const std::vector<std::string_view>& keys,
                           const std::vector<std::string_view>& args) {
  const std::string nkeys = std::to_string(keys.size());
  std::vector<std::string_view> argv;
  argv.reserve(3 + keys.size() + args.size());
  argv.push_back("EVALSHA");
  argv.push_back(script.sha1());
  argv.push_back(nkeys);
  argv.insert(argv.end(), keys.begin(), keys.end());
  argv.insert(argv.end(), args.begin(), args.end());
  std::lock_guard lock(mu_);
  auto reply = SendLocked(argv);
  // A server that does not know the script (restarted, flushed) never ran it: send its text.
  if (reply && (*reply)->type == REDIS_REPLY_ERROR &&
      std::string_view((*reply)->str, (*reply)->len).starts_with("NOSCRIPT ")) {
    argv[0] = "EVAL";
    argv[1] = script.source();
    reply = SendLocked(argv);
  }
  return ValueOf(std::move(reply));
}

Subscriber::Subscriber(Endpoint endpoint, std::string channel, std::function<void()> on_message,
                       std::function<void(bool)> on_live)
    : endpoint_(std::move(endpoint)),
      channel_(std::move(channel)),
      on_message_(std::move(on_message)),
      on_live_(std::move(on_live)) {
  thread_ = std::thread([this] { Loop(); });
}

Subscriber::~Subscriber() {
  stop_ = true;
  thread_.join();
}

void Subscriber::Loop() {
  std::chrono::milliseconds backoff(0);
  while (!stop_) {
    auto primary = FindPrimary(endpoint_, std::chrono::seconds(2));
    Dialed d;
    if (primary) d = Dial(endpoint_, primary->first, primary->second, std::chrono::seconds(2));
    redisContext* ctx = d.ctx;
    bool ok = ctx != nullptr;
    if (ok) {
      redisSetTimeout(ctx, ToTimeval(std::chrono::seconds(2)));
      if (!endpoint_.tls) redisEnableKeepAlive(ctx);
      auto command = [&](const std::vector<std::string_view>& argv) {
        std::vector<const char*> ptrs;
        std::vector<size_t> lens;
        for (std::string_view a : argv) {
          ptrs.push_back(a.data());
          lens.push_back(a.size());
        }
        auto* r = static_cast<redisReply*>(
            redisCommandArgv(ctx, static_cast<int>(argv.size()), ptrs.data(), lens.data()));
        const bool good = r != nullptr && r->type != REDIS_REPLY_ERROR;
        if (r) freeReplyObject(r);
        return good;
      };
      if (!endpoint_.password.empty()) {
        std::vector<std::string_view> auth{"AUTH"};
        if (!endpoint_.username.empty()) auth.push_back(endpoint_.username);
        auth.push_back(endpoint_.password);
        ok = command(auth);
      }
      if (ok) ok = command({"SUBSCRIBE", channel_});
    }
    if (ok) {
      backoff = std::chrono::milliseconds(0);
      on_live_(true);
      const bool stopped = Listen(ctx);
      on_live_(false);
      if (stopped) {
        redisFree(ctx);
        return;
      }
    }
    if (ctx) redisFree(ctx);
    backoff = std::clamp(backoff * 2, std::chrono::milliseconds(50), std::chrono::milliseconds(2000));
    for (auto waited = std::chrono::milliseconds(0); waited < backoff && !stop_;
         waited += std::chrono::milliseconds(10)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
}

bool Subscriber::Listen(redisContext* ctx) {
  while (!stop_) {
    pollfd p{ctx->fd, POLLIN, 0};
    const int n = poll(&p, 1, 200);
    if (n < 0 && errno != EINTR) return false;
    if (n <= 0) continue;
    if (redisBufferRead(ctx) != REDIS_OK) return false;
    void* reply = nullptr;
    while (redisGetReplyFromReader(ctx, &reply) == REDIS_OK && reply != nullptr) {
      auto* r = static_cast<redisReply*>(reply);
      // ["message", channel, payload]
      if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 && r->element[0]->type == REDIS_REPLY_STRING &&
          std::string_view(r->element[0]->str, r->element[0]->len) == "message") {
        on_message_();
      }
      freeReplyObject(r);
      reply = nullptr;
    }
  }
  return true;
}

}  // namespace tw::redis
