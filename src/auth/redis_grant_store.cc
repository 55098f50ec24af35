// Grants and admin tokens in Redis, shared by every gateway of a fleet: a grant created or
// revoked through any replica (or `toolwarden grants … --state redis://…`) is what every
// replica judges requests by.
//
// Requests are authenticated from memory while nothing has changed: every write publishes on
// tw:grants:changed:<db>, and each store empties its cache on every message — and stops using
// it while its subscription is down (the messages it would miss). A revocation so reaches
// every replica within the message's delivery (well under a millisecond on one network); a
// grant is read from Redis again at least once a minute (its last use is stamped then).
//
// Layout (all under "tw:"): grant:<name> is a hash of the grant's fields, token_hash included;
// grant-token:<sha256> names the grant a token belongs to; grants is the set of names;
// admin-tokens the set of admin token digests. Each operation is one script, so a reader never
// sees half a write. The scripts reach grant:<name> from the name they read, which ties the
// keys to one server: a Redis Cluster is not supported (Sentinel is the way to high
// availability).
#include <charconv>
#include <atomic>
#include <mutex>
#include <unordered_map>

#include "auth/grant_store_internal.h"
#include "redis/redis_client.h"

namespace tw::auth {

namespace {

constexpr std::string_view kGrantKey = "tw:grant:";
constexpr std::string_view kTokenKey = "tw:grant-token:";
constexpr std::string_view kNamesKey = "tw:grants";
constexpr std::string_view kAdminKey = "tw:admin-tokens";

// The fields of a grant's hash, in the order every script returns them.
#define TW_GRANT_FIELDS \
  "'name', 'servers', 'policies', 'created_ms', 'expires_ms', 'revoked_ms', 'last_used_ms', 'token_hash', 'principal', 'client'"

// KEYS: grant:<name>, grant-token:<new hash>, grants. ARGV: name, hash, servers, policies,
// now, expires, the change channel. 0 when an active grant has the name; else replaces a revoked one (its old
// token then names nothing) and returns 1.
const redis::Script kCreate(R"lua(
local g = KEYS[1]
local revoked = redis.call('HGET', g, 'revoked_ms')
if revoked == '0' then return 0 end
local old = redis.call('HGET', g, 'token_hash')
if old then redis.call('DEL', 'tw:grant-token:' .. old) end
redis.call('DEL', g)
redis.call('HSET', g, 'name', ARGV[1], 'token_hash', ARGV[2], 'servers', ARGV[3],
           'policies', ARGV[4], 'created_ms', ARGV[5], 'expires_ms', ARGV[6], 'revoked_ms', '0',
           'last_used_ms', '0', 'principal', ARGV[8], 'client', ARGV[9])
redis.call('SET', KEYS[2], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[1])
redis.call('PUBLISH', ARGV[7], '1')
return 1
)lua");

// KEYS: grant:<name>. ARGV: now, the change channel. The grant's fields after revoking it; nil when there is no
// active grant of that name.
const redis::Script kRevoke(R"lua(
if redis.call('HGET', KEYS[1], 'revoked_ms') ~= '0' then return nil end
redis.call('HSET', KEYS[1], 'revoked_ms', ARGV[1])
redis.call('PUBLISH', ARGV[2], '1')
return redis.call('HMGET', KEYS[1], )lua" TW_GRANT_FIELDS R"lua()
)lua");

// KEYS: grant-token:<hash>. ARGV: hash, now. The fields of the grant the token belongs to (its
// use stamped, at most once a minute, while it is active), or an empty array.
const redis::Script kAuthenticate(R"lua(
local name = redis.call('GET', KEYS[1])
if not name then return {} end
local g = 'tw:grant:' .. name
local f = redis.call('HMGET', g, )lua" TW_GRANT_FIELDS R"lua()
if f[8] ~= ARGV[1] then return {} end
local now = tonumber(ARGV[2])
local expires = tonumber(f[5])
if f[6] == '0' and (expires == 0 or now < expires) and now - tonumber(f[7]) >= 60000 then
  redis.call('HSET', g, 'last_used_ms', ARGV[2])
  f[7] = ARGV[2]
end
return f
)lua");

// KEYS: grants. Every grant's fields, one array after another.
const redis::Script kList(R"lua(
local out = {}
for _, name in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local f = redis.call('HMGET', 'tw:grant:' .. name, )lua" TW_GRANT_FIELDS R"lua()
  if f[1] then out[#out + 1] = f end
end
return out
)lua");

// KEYS: admin-tokens. ARGV: hash, replace ('1': drop every other first). 1 when `hash` was
// added, 0 when there was one already and replace is '0'.
const redis::Script kAdmin(R"lua(
if ARGV[2] == '1' then redis.call('DEL', KEYS[1])
elseif redis.call('SCARD', KEYS[1]) > 0 then return 0 end
redis.call('SADD', KEYS[1], ARGV[1])
return 1
)lua");

#undef TW_GRANT_FIELDS

// A grant from a script's fields; nullopt when they are not a grant's (missing).
std::optional<Grant> FromFields(const redis::Value& v) {
  if (v.type != redis::Value::Type::kArray || v.elements.size() < 7 ||
      v.elements[0].type != redis::Value::Type::kString) {
    return std::nullopt;
  }
  const auto& f = v.elements;
  Grant g;
  g.name = f[0].str;
  g.servers = ServersFromJson(f[1].str);
  g.policies = PoliciesFromJson(f[2].str);
  g.created_ms = redis::WholeOf(f[3]);
  g.expires_ms = redis::WholeOf(f[4]);
  g.revoked_ms = redis::WholeOf(f[5]);
  g.last_used_ms = redis::WholeOf(f[6]);
  if (f.size() >= 10) {
    g.principal = f[8].str;
    g.client = f[9].str;
  }
  return g;
}

std::string Cat(std::string_view a, std::string_view b) {
  std::string s;
  s.reserve(a.size() + b.size());
  return s.append(a).append(b);
}

class RedisGrantStore : public GrantStore {
 public:
  explicit RedisGrantStore(std::unique_ptr<redis::Client> client)
      : client_(std::move(client)),
        channel_("tw:grants:changed:" + std::to_string(client_->endpoint().db)),
        subscriber_(client_->endpoint(), channel_, [this] { epoch_.fetch_add(1); },
                    [this](bool live) {
                      if (!live) live_.store(false);
                      epoch_.fetch_add(1);
                      if (live) live_.store(true);
                    }) {}

  Result<std::string> Create(const Grant& g, int64_t now_ms) override {
    if (auto ok = CheckNewGrantName(g.name); !ok) return Fail(ok.error());
    const std::string token = NewToken(kGrantPrefix);
    const std::string hash = TokenHash(token);
    const std::string key = Cat(kGrantKey, g.name), token_key = Cat(kTokenKey, hash);
    const std::string servers = ServersJson(g.servers), policies = PoliciesJson(g.policies);
    const std::string now = std::to_string(now_ms), expires = std::to_string(g.expires_ms);
    auto r = client_->Eval(kCreate, {key, token_key, kNamesKey},
                           {g.name, hash, servers, policies, now, expires, channel_, g.principal,
                            g.client});
    if (!r) return Fail(r.error().Context("creating a grant"));
    if (r->integer == 0) {
      return Fail(Error::InvalidArgument("a grant named \"" + g.name +
                                         "\" already exists (revoke it first to replace it)"));
    }
    return token;
  }

  Result<std::vector<Grant>> List() override {
    auto r = client_->Eval(kList, {kNamesKey}, {});
    if (!r) return Fail(r.error().Context("listing grants"));
    std::vector<Grant> out;
    for (const auto& f : r->elements) {
      if (auto g = FromFields(f)) out.push_back(std::move(*g));
    }
    std::sort(out.begin(), out.end(), [](const Grant& a, const Grant& b) { return a.name < b.name; });
    return out;
  }

  Result<std::optional<Grant>> Get(const std::string& name) override {
    auto r = client_->Command({"HMGET", Cat(kGrantKey, name), "name", "servers", "policies",
                               "created_ms", "expires_ms", "revoked_ms", "last_used_ms", "token_hash",
                               "principal", "client"});
    if (!r) return Fail(r.error().Context("reading a grant"));
    return FromFields(*r);
  }

  Result<Grant> Revoke(const std::string& name, int64_t now_ms) override {
    auto r = client_->Eval(kRevoke, {Cat(kGrantKey, name)}, {std::to_string(now_ms), channel_});
    if (!r) return Fail(r.error().Context("revoking a grant"));
    auto g = FromFields(*r);
    if (!g) return Fail(Error::NotFound("no active grant named \"" + name + "\""));
    return *g;
  }

  Result<Verdict> Authenticate(const std::string& token, int64_t now_ms) override {
    Verdict v;
    if (auto refused = RefusedByShape(token)) {
      v.refusal = *refused;
      return v;
    }
    if (token.starts_with(kAccessTokenPrefix)) {
      // The built-in authorization server keeps its tokens in a SQLite state only.
      v.refusal = Refusal::kUnknown;
      return v;
    }
    const std::string hash = TokenHash(token);
    // The epoch before the read, so that a change published meanwhile outdates what is read.
    const uint64_t epoch = epoch_.load();
    if (live_.load()) {
      if (std::shared_ptr<const Grant> cached = Cached(hash, epoch);
          cached && now_ms - cached->last_used_ms < 60000) {
        if (cached->expires_ms != 0 && now_ms >= cached->expires_ms) {
          v.refusal = Refusal::kExpired;
        } else {
          v.grant = *cached;
        }
        return v;
      }
    }
    auto r = client_->Eval(kAuthenticate, {Cat(kTokenKey, hash)}, {hash, std::to_string(now_ms)});
    if (!r) return Fail(r.error().Context("checking a grant token"));
    std::optional<Grant> g = FromFields(*r);
    if (g && g->revoked_ms == 0) Remember(hash, epoch, *g);
    if (!g) {
      v.refusal = Refusal::kUnknown;
    } else if (g->revoked_ms != 0) {
      v.refusal = Refusal::kRevoked;
    } else if (g->expires_ms != 0 && now_ms >= g->expires_ms) {
      v.refusal = Refusal::kExpired;
    } else {
      v.grant = std::move(g);
    }
    return v;
  }

  Result<std::string> IssueAccessToken(const std::string&, const std::string&, int64_t,
                                       int64_t) override {
    return Fail(Error::InvalidArgument(
        "the built-in authorization server keeps its tokens in a SQLite state; with a Redis "
        "state, sign agents in through an identity provider (auth.oidc)"));
  }
  Result<int64_t> RevokeFamily(const std::string&, int64_t) override { return 0; }

  Result<std::optional<std::string>> EnsureAdminToken(int64_t) override {
    const std::string token = NewToken(kAdminPrefix);
    auto r = client_->Eval(kAdmin, {kAdminKey}, {TokenHash(token), "0"});
    if (!r) return Fail(r.error().Context("creating the admin token"));
    if (r->integer == 0) return std::optional<std::string>();
    return std::optional<std::string>(token);
  }

  Result<std::string> ResetAdminTokens(int64_t) override {
    const std::string token = NewToken(kAdminPrefix);
    auto r = client_->Eval(kAdmin, {kAdminKey}, {TokenHash(token), "1"});
    if (!r) return Fail(r.error().Context("replacing the admin token"));
    return token;
  }

  Result<bool> IsAdminToken(const std::string& token) override {
    if (!WellFormedToken(token, kAdminPrefix)) return false;
    auto r = client_->Command({"SISMEMBER", kAdminKey, TokenHash(token)});
    if (!r) return Fail(r.error().Context("checking an admin token"));
    return r->integer == 1;
  }

 private:
  // The cached grant of a token hash, if the cache is of `epoch` (emptied otherwise).
  std::shared_ptr<const Grant> Cached(const std::string& hash, uint64_t epoch) {
    std::lock_guard lock(cache_mu_);
    if (cache_epoch_ != epoch) {
      cache_.clear();
      cache_epoch_ = epoch;
      return nullptr;
    }
    auto it = cache_.find(hash);
    return it == cache_.end() ? nullptr : it->second;
  }

  // Caches a grant read at `epoch`, unless a change came since or nobody listens for changes.
  void Remember(const std::string& hash, uint64_t epoch, const Grant& g) {
    std::lock_guard lock(cache_mu_);
    if (!live_.load() || epoch != epoch_.load()) return;
    if (cache_epoch_ != epoch) {
      cache_.clear();
      cache_epoch_ = epoch;
    }
    if (cache_.size() >= 100'000) cache_.clear();  // tokens are few; never unbounded
    cache_[hash] = std::make_shared<const Grant>(g);
  }

  const std::unique_ptr<redis::Client> client_;
  const std::string channel_;
  std::atomic<uint64_t> epoch_{1};
  std::atomic<bool> live_{false};  // subscribed: the cache may be trusted
  std::mutex cache_mu_;
  uint64_t cache_epoch_ = 0;  // Guarded by cache_mu_.
  std::unordered_map<std::string, std::shared_ptr<const Grant>> cache_;  // Guarded by cache_mu_.
  // Last: its thread calls into the members above until it is gone.
  redis::Subscriber subscriber_;
};

}  // namespace

Result<std::unique_ptr<GrantStore>> OpenRedisGrantStore(const std::string& url) {
  return redis::OpenStore<GrantStore, RedisGrantStore>(url);
}

}  // namespace tw::auth
