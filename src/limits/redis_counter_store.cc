// Counters in Redis, shared by every gateway that names the same server: a call's charges are
// ONE server-side script (all of them or none), so N gateways admit exactly a limit's worth of
// calls between them, as the loops of one gateway do on a SQLite file.
//
// A counter is a hash {v: value, e: window end in ms}. Windows are judged by the `now_ms` the
// gateway passes — its clock, as with the other stores — not by the Redis server's clock; the
// key's own expiry (PEXPIRE, relative, a minute past the window's end) only removes counters
// nobody reads again. Values are exact integers up to 2^53 - 1 (Lua's numbers are doubles);
// a charge beyond that is refused as an error, which the guard turns into a denial.
//
// Redis replicates asynchronously: a charge acknowledged by a primary that then fails over to
// a replica it had not reached is lost (the counter reads lower; calls are admitted again).
// Where the primary has replicas (ROLE, asked every 5 s), a charge counts only once one of them
// has it — WAIT 1, 500 ms; otherwise the charge is an error (the call is denied; the charge
// stays on the primary, so the count errs high, never low).
#include <atomic>
#include <charconv>
#include <chrono>
#include <string>

#include "limits/counter_store.h"
#include "redis/redis_client.h"

namespace tw::limits {

namespace {

constexpr int64_t kMaxExact = (int64_t{1} << 53) - 1;
constexpr std::string_view kKeyPrefix = "tw:counter:";

// KEYS: the counters. ARGV[1]: now_ms; then per counter: amount, max, window end (ms).
// Charges of the same key add up (as successive charges in one SQLite transaction do).
// Returns {1, 0, 0} when every charge fits (and adds them), else {0, index, value} of the
// first that does not (and changes nothing).
const redis::Script kCharge(R"lua(
local now = tonumber(ARGV[1])
local cur, add, ends = {}, {}, {}
for i = 1, #KEYS do
  local k = KEYS[i]
  local amount, max = tonumber(ARGV[3 * i - 1]), tonumber(ARGV[3 * i])
  if cur[k] == nil then
    local h = redis.call('HMGET', k, 'v', 'e')
    cur[k], add[k] = 0, 0
    if h[2] and tonumber(h[2]) > now then cur[k] = tonumber(h[1]) end
  end
  if amount > max - cur[k] - add[k] then return {0, i - 1, string.format('%d', cur[k])} end
  add[k] = add[k] + amount
  ends[k] = ARGV[3 * i + 1]
end
for k, a in pairs(add) do
  redis.call('HSET', k, 'v', string.format('%d', cur[k] + a), 'e', ends[k])
  redis.call('PEXPIRE', k, math.max(0, tonumber(ends[k]) - now) + 60000)
end
return {1, 0, '0'}
)lua");

// TryCharge for several calls in one script. KEYS: every call's counters, one call after
// another. ARGV[1]: the number of calls; then per call: its now_ms, its number of counters n,
// and n times amount, max, window end. Each call is all or none, judged at its own time and
// after the calls before it; returns one {admitted, index, value} per call, as kCharge does.
const redis::Script kChargeMany(R"lua(
local state = {}
local function load(k)
  if state[k] == nil then
    local h = redis.call('HMGET', k, 'v', 'e')
    state[k] = {v = tonumber(h[1]) or 0, e = tonumber(h[2]) or 0, dirty = false}
  end
  return state[k]
end
local out, ki, ai = {}, 1, 2
for c = 1, tonumber(ARGV[1]) do
  local now, n = tonumber(ARGV[ai]), tonumber(ARGV[ai + 1])
  ai = ai + 2
  local base, add, ends, order, rejected = {}, {}, {}, {}, nil
  for i = 0, n - 1 do
    local k = KEYS[ki + i]
    local amount, max = tonumber(ARGV[ai + 3 * i]), tonumber(ARGV[ai + 3 * i + 1])
    if base[k] == nil then
      local s = load(k)
      base[k], add[k] = 0, 0
      if s.e > now then base[k] = s.v end
      order[#order + 1] = k
    end
    if not rejected and amount > max - base[k] - add[k] then
      rejected = {0, i, string.format('%d', base[k])}
    end
    add[k] = add[k] + amount
    ends[k] = tonumber(ARGV[ai + 3 * i + 2])
  end
  if rejected then
    out[c] = rejected
  else
    for _, k in ipairs(order) do
      local s = state[k]
      s.v, s.e, s.dirty, s.now = base[k] + add[k], ends[k], true, now
    end
    out[c] = {1, 0, '0'}
  end
  ki, ai = ki + n, ai + 3 * n
end
for k, s in pairs(state) do
  if s.dirty then
    redis.call('HSET', k, 'v', string.format('%d', s.v), 'e', string.format('%d', s.e))
    redis.call('PEXPIRE', k, math.max(0, s.e - s.now) + 60000)
  end
end
return out
)lua");

// KEYS: the counters. ARGV[1]: now_ms; then per counter: amount. Never below zero; a counter
// whose window ended is left alone.
const redis::Script kRefund(R"lua(
local now = tonumber(ARGV[1])
for i = 1, #KEYS do
  local h = redis.call('HMGET', KEYS[i], 'v', 'e')
  if h[2] and tonumber(h[2]) > now then
    local v = math.max(0, tonumber(h[1]) - tonumber(ARGV[i + 1]))
    redis.call('HSET', KEYS[i], 'v', string.format('%d', v))
  end
end
return 1
)lua");

bool Exact(int64_t v) { return v >= 0 && v <= kMaxExact; }

// A whole number Redis answered; an error for anything else (a key written by someone else).
Result<int64_t> Whole(const std::string& s) {
  int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) {
    return Fail(Error::Internal("a counter in Redis holds \"" + s + "\", not a whole number"));
  }
  return v;
}

class RedisStore : public CounterStore {
 public:
  explicit RedisStore(std::unique_ptr<redis::Client> client) : client_(std::move(client)) {}

  Result<ChargeOutcome> TryCharge(const std::vector<Charge>& charges, int64_t now_ms) override {
    if (charges.empty()) return ChargeOutcome{true, 0, 0};
    for (const Charge& c : charges) {
      if (!Exact(c.amount) || !Exact(c.max) || !Exact(c.expires_ms)) {
        return Fail(Error::InvalidArgument(
            "counter " + c.key + ": the Redis state store counts whole numbers up to 2^53-1"));
      }
    }
    std::vector<std::string> keys, args;
    keys.reserve(charges.size());
    args.reserve(1 + 3 * charges.size());
    args.push_back(std::to_string(now_ms));
    for (const Charge& c : charges) {
      keys.push_back(Key(c.key));
      args.push_back(std::to_string(c.amount));
      args.push_back(std::to_string(c.max));
      args.push_back(std::to_string(c.expires_ms));
    }
    auto r = client_->Eval(kCharge, Views(keys), Views(args));
    if (!r) return Fail(r.error().Context("charging a counter"));
    if (auto ok = Replicated(); !ok) return Fail(ok.error());
    if (r->type != redis::Value::Type::kArray || r->elements.size() != 3) {
      return Fail(Error::Internal("charging a counter: unexpected reply from Redis"));
    }
    ChargeOutcome out;
    out.admitted = r->elements[0].integer == 1;
    if (!out.admitted) {
      out.rejected = static_cast<size_t>(r->elements[1].integer);
      auto current = Whole(r->elements[2].str);
      if (!current) return Fail(current.error());
      out.current = *current;
    }
    return out;
  }

  std::vector<Result<ChargeOutcome>> TryChargeMany(const std::vector<Call>& calls) override {
    std::vector<Result<ChargeOutcome>> out(calls.size(), ChargeOutcome{true, 0, 0});
    std::vector<size_t> sent;  // calls that go to the script, by index
    std::vector<std::string> keys, args;
    args.push_back("");  // the number of calls, once known
    for (size_t c = 0; c < calls.size(); ++c) {
      const Call& call = calls[c];
      if (call.charges.empty()) continue;
      bool exact = true;
      for (const Charge& ch : call.charges) exact = exact && Exact(ch.amount) && Exact(ch.max) && Exact(ch.expires_ms);
      if (!exact) {
        out[c] = Fail(Error::InvalidArgument("a counter: the Redis state store counts whole "
                                             "numbers up to 2^53-1"));
        continue;
      }
      sent.push_back(c);
      args.push_back(std::to_string(call.now_ms));
      args.push_back(std::to_string(call.charges.size()));
      for (const Charge& ch : call.charges) {
        keys.push_back(Key(ch.key));
        args.push_back(std::to_string(ch.amount));
        args.push_back(std::to_string(ch.max));
        args.push_back(std::to_string(ch.expires_ms));
      }
    }
    if (sent.empty()) return out;
    args[0] = std::to_string(sent.size());
    auto r = client_->Eval(kChargeMany, Views(keys), Views(args));
    if (r) {
      if (auto ok = Replicated(); !ok) r = Fail(ok.error());
    }
    if (!r || r->type != redis::Value::Type::kArray || r->elements.size() != sent.size()) {
      const Error e = !r ? r.error().Context("charging a counter")
                         : Error::Internal("charging a counter: unexpected reply from Redis");
      for (size_t c : sent) out[c] = Fail(e);
      return out;
    }
    for (size_t i = 0; i < sent.size(); ++i) {
      const auto& v = r->elements[i];
      if (v.type != redis::Value::Type::kArray || v.elements.size() != 3) {
        out[sent[i]] = Fail(Error::Internal("charging a counter: unexpected reply from Redis"));
        continue;
      }
      ChargeOutcome o;
      o.admitted = v.elements[0].integer == 1;
      if (!o.admitted) {
        o.rejected = static_cast<size_t>(v.elements[1].integer);
        auto current = Whole(v.elements[2].str);
        if (!current) {
          out[sent[i]] = Fail(current.error());
          continue;
        }
        o.current = *current;
      }
      out[sent[i]] = o;
    }
    return out;
  }

  Result<bool> Refund(const std::vector<Charge>& charges, int64_t now_ms) override {
    if (charges.empty()) return true;
    std::vector<std::string> keys, args;
    args.push_back(std::to_string(now_ms));
    for (const Charge& c : charges) {
      keys.push_back(Key(c.key));
      args.push_back(std::to_string(c.amount));
    }
    auto r = client_->Eval(kRefund, Views(keys), Views(args));
    if (!r) return Fail(r.error().Context("refunding a counter"));
    return true;
  }

  Result<int64_t> Value(const std::string& key, int64_t now_ms) override {
    const std::string k = Key(key);
    auto r = client_->Command({"HMGET", k, "v", "e"});
    if (!r) return Fail(r.error().Context("reading a counter"));
    if (r->type != redis::Value::Type::kArray || r->elements.size() != 2) {
      return Fail(Error::Internal("reading a counter: unexpected reply from Redis"));
    }
    const auto& v = r->elements[0];
    const auto& e = r->elements[1];
    if (v.type != redis::Value::Type::kString || e.type != redis::Value::Type::kString) {
      return int64_t{0};
    }
    auto value = Whole(v.str), ends = Whole(e.str);
    if (!value) return Fail(value.error());
    if (!ends) return Fail(ends.error());
    return *ends > now_ms ? *value : int64_t{0};
  }

  std::string Describe() const override { return client_->endpoint().Describe(); }

  bool Remote() const override { return true; }

  Result<bool> Reachable() override {
    auto r = client_->Command({"PING"});
    if (!r) return Fail(r.error());
    return true;
  }

 private:
  // Whether what was just written reached a replica, where the primary has any.
  Result<void> Replicated() {
    const auto now = std::chrono::steady_clock::now();
    if (now >= next_role_check_.load()) {
      next_role_check_.store(now + std::chrono::seconds(5));
      // ["master", offset, [[host, port, offset], …]]; a replica or sentinel answers otherwise.
      if (auto role = client_->Command({"ROLE"}); role && role->elements.size() >= 3 &&
                                                  role->elements[0].str == "master") {
        replicas_.store(static_cast<int>(role->elements[2].elements.size()));
      }
    }
    if (replicas_.load() <= 0) return {};
    auto w = client_->Command({"WAIT", "1", "500"});
    if (!w) return Fail(w.error().Context("waiting for a Redis replica"));
    if (w->integer < 1) {
      return Fail(Error::Unavailable(
          "the charge reached none of the Redis primary's replicas within 500 ms (a failover "
          "could lose it)"));
    }
    return {};
  }

  static std::string Key(const std::string& key) {
    std::string k;
    k.reserve(kKeyPrefix.size() + key.size());
    return k.append(kKeyPrefix).append(key);
  }
  static std::vector<std::string_view> Views(const std::vector<std::string>& v) {
    return {v.begin(), v.end()};
  }

  const std::unique_ptr<redis::Client> client_;
  std::atomic<std::chrono::steady_clock::time_point> next_role_check_{};
  std::atomic<int> replicas_{0};
};

}  // namespace

Result<std::unique_ptr<CounterStore>> OpenRedisStore(const std::string& url) {
  return redis::OpenStore<CounterStore, RedisStore>(url);
}

}  // namespace tw::limits
