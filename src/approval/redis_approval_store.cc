// Approvals in Redis, shared by every gateway of a fleet: a call held by one replica is
// released by a decision taken through any other (its console, admin API, or `toolwarden
// approvals … --state redis://…`) — the replica holding the call reads the store every 250 ms
// (app/approval_waiter.h), and at once when the decision's announcement reaches it — and single use holds fleet-wide, because a decision is one script
// that moves the approval out of "pending" only if it is still there.
//
// Layout: tw:approval:<id> is a hash of the approval's fields; tw:approvals orders ids by
// creation (for listing); tw:approvals:pending is the set of pending ids. A resolved approval is
// kept for 30 days (the audit trail keeps the decision for as long as it keeps records).
#include <algorithm>
#include <charconv>

#include "approval/approval_store.h"
#include "redis/redis_client.h"

namespace tw::approval {

namespace {

constexpr std::string_view kKey = "tw:approval:";
constexpr std::string_view kIndexKey = "tw:approvals";
constexpr std::string_view kPendingKey = "tw:approvals:pending";
constexpr int64_t kKeepResolvedMs = 30LL * 24 * 3600 * 1000;

#define TW_APPROVAL_FIELDS                                                                     \
  "'id', 'created_ms', 'expires_ms', 'grant', 'session', 'server', 'tool', 'args', "          \
  "'args_digest', 'state', 'resolved_by', 'resolved_ms', 'reason', 'owner'"

// KEYS: approval:<id>, index, pending. ARGV: the fields' names and values, in pairs (id
// first, created_ms second). The record and both index entries, in one step.
const redis::Script kCreate(R"lua(
redis.call('HSET', KEYS[1], unpack(ARGV))
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[2])
redis.call('SADD', KEYS[3], ARGV[2])
return 1
)lua");

// KEYS: approval:<id>, pending. ARGV: to, by, reason, now, keep (ms), the channel resolutions
// are announced on. {'ok', fields…} after
// the move; {'missing'}; {'resolved', state, by}; {'expired'} (approving or denying too late).
const redis::Script kResolve(R"lua(
local k = KEYS[1]
local state = redis.call('HGET', k, 'state')
if not state then return {'missing'} end
if state ~= 'pending' then return {'resolved', state, redis.call('HGET', k, 'resolved_by')} end
local to, now = ARGV[1], tonumber(ARGV[4])
if (to == 'approved' or to == 'denied') and now >= tonumber(redis.call('HGET', k, 'expires_ms')) then
  return {'expired'}
end
redis.call('HSET', k, 'state', to, 'resolved_by', ARGV[2], 'reason', ARGV[3], 'resolved_ms', ARGV[4])
redis.call('SREM', KEYS[2], redis.call('HGET', k, 'id'))
redis.call('PEXPIRE', k, ARGV[5])
redis.call('PUBLISH', ARGV[6], redis.call('HGET', k, 'id'))
local f = redis.call('HMGET', k, )lua" TW_APPROVAL_FIELDS R"lua()
table.insert(f, 1, 'ok')
return f
)lua");

// KEYS: index, pending. ARGV: pending only ('1'), limit. The newest approvals' fields, newest
// first; ids whose record has expired are dropped from the index.
const redis::Script kList(R"lua(
local ids
if ARGV[1] == '1' then ids = redis.call('SMEMBERS', KEYS[2])
else ids = redis.call('ZREVRANGE', KEYS[1], 0, tonumber(ARGV[2]) - 1) end
local out = {}
for _, id in ipairs(ids) do
  local f = redis.call('HMGET', 'tw:approval:' .. id, )lua" TW_APPROVAL_FIELDS R"lua()
  if f[1] then out[#out + 1] = f else redis.call('ZREM', KEYS[1], id); redis.call('SREM', KEYS[2], id) end
end
return out
)lua");

#undef TW_APPROVAL_FIELDS

// An approval from its fields (in TW_APPROVAL_FIELDS order, from `at`); nullopt when missing.
std::optional<Approval> FromFields(const std::vector<redis::Value>& f, size_t at = 0) {
  if (f.size() < at + 14 || f[at].type != redis::Value::Type::kString) return std::nullopt;
  Approval a;
  a.id = f[at].str;
  a.created_ms = redis::WholeOf(f[at + 1]);
  a.expires_ms = redis::WholeOf(f[at + 2]);
  a.grant = f[at + 3].str;
  a.session = f[at + 4].str;
  a.server = f[at + 5].str;
  a.tool = f[at + 6].str;
  a.args = f[at + 7].str;
  a.args_digest = f[at + 8].str;
  a.state = StateFrom(f[at + 9].str);
  a.resolved_by = f[at + 10].str;
  a.resolved_ms = redis::WholeOf(f[at + 11]);
  a.reason = f[at + 12].str;
  a.owner = f[at + 13].str;
  return a;
}

std::string Key(const std::string& id) { return std::string(kKey) + id; }

class RedisApprovalStore : public ApprovalStore {
 public:
  explicit RedisApprovalStore(std::unique_ptr<redis::Client> client)
      : client_(std::move(client)),
        channel_("tw:approvals:resolved:" + std::to_string(client_->endpoint().db)) {}

  void OnResolved(std::function<void()> wake) override {
    subscriber_.reset();  // joins its thread: the old `wake` is never called again
    if (!wake) return;
    subscriber_ = std::make_unique<redis::Subscriber>(client_->endpoint(), channel_, std::move(wake),
                                                      [](bool) {});
  }

  Result<bool> Create(const Approval& a) override {
    const std::string key = Key(a.id), created = std::to_string(a.created_ms),
                      expires = std::to_string(a.expires_ms);
    // Ids are 128 random bits, never reused: a record is never overwritten.
    auto r = client_->Eval(kCreate, {key, kIndexKey, kPendingKey},
                           {"id", a.id, "created_ms", created, "expires_ms", expires, "grant",
                            a.grant, "session", a.session, "server", a.server, "tool", a.tool,
                            "args", a.args, "args_digest", a.args_digest, "state", "pending",
                            "resolved_by", "", "resolved_ms", "0", "reason", "", "owner",
                            a.owner});
    if (!r) return Fail(r.error().Context("recording an approval"));
    return true;
  }

  Result<std::optional<Approval>> Get(const std::string& id) override {
    auto r = client_->Command({"HMGET", Key(id), "id", "created_ms", "expires_ms", "grant",
                               "session", "server", "tool", "args", "args_digest", "state",
                               "resolved_by", "resolved_ms", "reason", "owner"});
    if (!r) return Fail(r.error().Context("reading an approval"));
    return FromFields(r->elements);
  }

  Result<Approval> Resolve(const std::string& id, State to, const std::string& by,
                           const std::string& reason, int64_t now_ms) override {
    auto r = client_->Eval(kResolve, {Key(id), kPendingKey},
                           {StateName(to), by, reason, std::to_string(now_ms),
                            std::to_string(kKeepResolvedMs), channel_});
    if (!r) return Fail(r.error().Context("resolving an approval"));
    const auto& f = r->elements;
    const std::string_view status = f.empty() ? "" : std::string_view(f[0].str);
    if (status == "missing") return Fail(Error::NotFound("no approval " + id));
    if (status == "expired") return Fail(Error::InvalidArgument("approval " + id + " has expired"));
    if (status == "resolved" && f.size() >= 3) {
      return Fail(Error::InvalidArgument("approval " + id + " is already " + f[1].str +
                                         (f[2].str.empty() ? "" : " (by " + f[2].str + ")")));
    }
    auto a = status == "ok" ? FromFields(f, 1) : std::nullopt;
    if (!a) return Fail(Error::Internal("resolving an approval: unexpected reply from Redis"));
    return *a;
  }

  Result<std::vector<Approval>> List(bool pending_only) override {
    auto r = client_->Eval(kList, {kIndexKey, kPendingKey}, {pending_only ? "1" : "0", "500"});
    if (!r) return Fail(r.error().Context("listing approvals"));
    std::vector<Approval> out;
    for (const auto& f : r->elements) {
      if (auto a = FromFields(f.elements)) out.push_back(std::move(*a));
    }
    std::sort(out.begin(), out.end(),
              [](const Approval& a, const Approval& b) { return a.created_ms > b.created_ms; });
    return out;
  }

  Result<int> AbandonOrphans(int64_t now_ms) override {
    auto pending = List(true);
    if (!pending) return Fail(pending.error());
    int n = 0;
    for (const auto& a : *pending) {
      if (OwnerAlive(a.owner)) continue;
      if (Resolve(a.id, State::kAbandoned, "", "the gateway holding the call stopped", now_ms)) ++n;
    }
    return n;
  }

 private:
  const std::unique_ptr<redis::Client> client_;
  const std::string channel_;
  std::unique_ptr<redis::Subscriber> subscriber_;
};

}  // namespace

Result<std::unique_ptr<ApprovalStore>> OpenRedisApprovalStore(const std::string& url) {
  return redis::OpenStore<ApprovalStore, RedisApprovalStore>(url);
}

}  // namespace tw::approval
