// Tool pins in Redis, shared by every gateway of a fleet: the first replica to list a tool
// pins it for all, a change seen by any replica is pending for all, and an administrator's
// acceptance through any replica (or `toolwarden pins accept … --state redis://…`) is what
// every replica enforces from then on.
//
// Layout: tw:pins:<server> is a hash from tool name to the pin as JSON (its numbers as strings,
// so that the scripts' JSON library, which knows only doubles, never rounds them);
// tw:pin-servers is the set of servers with pins. Observe and Accept are scripts: two replicas
// seeing a tool at once record one pin.
#include <charconv>

#include "catalog/pin_store.h"
#include "redis/redis_client.h"

namespace tw::catalog {

namespace {

constexpr std::string_view kServerKey = "tw:pins:";
constexpr std::string_view kServersKey = "tw:pin-servers";

// KEYS: pins:<server>, pin-servers. ARGV: server, tool, hash, definition, now, note.
// 'pinned', 'unchanged' or 'changed', as MemoryPinStore decides.
const redis::Script kObserve(R"lua(
local tool, hash, def, now, note = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local raw = redis.call('HGET', KEYS[1], tool)
local p
if not raw then
  redis.call('SADD', KEYS[2], ARGV[1])
  if note == '' then
    p = {hash = hash, definition = def, pinned_ms = now, pending_note = '', changed_ms = '0'}
    redis.call('HSET', KEYS[1], tool, cjson.encode(p))
    return 'pinned'
  end
  p = {hash = '', definition = '', pinned_ms = '0', pending_hash = hash,
       pending_definition = def, pending_note = note, changed_ms = now}
  redis.call('HSET', KEYS[1], tool, cjson.encode(p))
  return 'changed'
end
p = cjson.decode(raw)
if p.hash == hash and hash ~= '' then return 'unchanged' end
if p.pending_hash == hash then return 'changed' end
p.pending_hash, p.pending_definition, p.pending_note, p.changed_ms = hash, def, note, now
redis.call('HSET', KEYS[1], tool, cjson.encode(p))
return 'changed'
)lua");

// KEYS: pins:<server>. ARGV: tool ('' for every tool), now. How many pending changes became pins.
const redis::Script kAccept(R"lua(
local tools
if ARGV[1] == '' then tools = redis.call('HKEYS', KEYS[1]) else tools = {ARGV[1]} end
local n = 0
for _, tool in ipairs(tools) do
  local raw = redis.call('HGET', KEYS[1], tool)
  if raw then
    local p = cjson.decode(raw)
    if p.pending_hash then
      p.hash, p.definition, p.pinned_ms = p.pending_hash, p.pending_definition, ARGV[2]
      p.pending_hash, p.pending_definition, p.pending_note = nil, nil, ''
      redis.call('HSET', KEYS[1], tool, cjson.encode(p))
      n = n + 1
    end
  end
end
return n
)lua");

// KEYS: pin-servers. ARGV: server ('' for all). {server, {tool, pin, tool, pin…}} pairs.
const redis::Script kList(R"lua(
local servers
if ARGV[1] == '' then servers = redis.call('SMEMBERS', KEYS[1]) else servers = {ARGV[1]} end
local out = {}
for _, s in ipairs(servers) do
  out[#out + 1] = s
  out[#out + 1] = redis.call('HGETALL', 'tw:pins:' .. s)
end
return out
)lua");

int64_t Whole(const json::value* v) {
  int64_t n = 0;
  if (v && v->is_string()) std::from_chars(v->get_string().data(), v->get_string().data() + v->get_string().size(), n);
  return n;
}

std::string Text(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->get_string()) : std::string();
}

Result<Pin> Decode(const std::string& server, const std::string& tool, const std::string& raw) {
  boost::system::error_code ec;
  json::value v = json::parse(raw, ec);
  if (ec || !v.is_object()) {
    return Fail(Error::Internal("the pin of " + server + "/" + tool + " in Redis is not JSON"));
  }
  const json::object& o = v.get_object();
  Pin p;
  p.server = server;
  p.tool = tool;
  p.hash = Text(o, "hash");
  p.definition = Text(o, "definition");
  p.pinned_ms = Whole(o.if_contains("pinned_ms"));
  if (o.contains("pending_hash")) {
    p.pending_hash = Text(o, "pending_hash");
    p.pending_definition = Text(o, "pending_definition");
  }
  p.pending_note = Text(o, "pending_note");
  p.changed_ms = Whole(o.if_contains("changed_ms"));
  return p;
}

class RedisPinStore : public PinStore {
 public:
  explicit RedisPinStore(std::unique_ptr<redis::Client> client) : client_(std::move(client)) {}

  Result<Observation> Observe(const std::string& server, const std::string& tool,
                              const std::string& hash, const std::string& definition,
                              int64_t now_ms, const std::string& note) override {
    auto r = client_->Eval(kObserve, {Key(server), kServersKey},
                           {server, tool, hash, definition, std::to_string(now_ms), note});
    if (!r) return Fail(r.error().Context("pinning a tool"));
    if (r->str == "pinned") return Observation::kPinned;
    if (r->str == "unchanged") return Observation::kUnchanged;
    return Observation::kChanged;
  }

  Result<std::optional<Pin>> Get(const std::string& server, const std::string& tool) override {
    auto r = client_->Command({"HGET", Key(server), tool});
    if (!r) return Fail(r.error().Context("reading a pin"));
    if (r->type != redis::Value::Type::kString) return std::optional<Pin>();
    auto p = Decode(server, tool, r->str);
    if (!p) return Fail(p.error());
    return std::optional<Pin>(std::move(*p));
  }

  Result<std::vector<Pin>> List(const std::string& server) override {
    auto r = client_->Eval(kList, {kServersKey}, {server});
    if (!r) return Fail(r.error().Context("listing pins"));
    std::vector<Pin> out;
    const auto& e = r->elements;
    for (size_t i = 0; i + 1 < e.size(); i += 2) {
      const auto& fields = e[i + 1].elements;
      for (size_t j = 0; j + 1 < fields.size(); j += 2) {
        auto p = Decode(e[i].str, fields[j].str, fields[j + 1].str);
        if (!p) return Fail(p.error());
        out.push_back(std::move(*p));
      }
    }
    std::sort(out.begin(), out.end(), [](const Pin& a, const Pin& b) {
      return std::tie(a.server, a.tool) < std::tie(b.server, b.tool);
    });
    return out;
  }

  Result<int> Accept(const std::string& server, const std::string& tool, int64_t now_ms) override {
    auto r = client_->Eval(kAccept, {Key(server)}, {tool, std::to_string(now_ms)});
    if (!r) return Fail(r.error().Context("accepting a pin"));
    return static_cast<int>(r->integer);
  }

 private:
  static std::string Key(const std::string& server) { return std::string(kServerKey) + server; }

  const std::unique_ptr<redis::Client> client_;
};

}  // namespace

Result<std::unique_ptr<PinStore>> OpenRedisPinStore(const std::string& url) {
  return redis::OpenStore<PinStore, RedisPinStore>(url);
}

}  // namespace tw::catalog
