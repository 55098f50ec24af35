// Counters for rate limits and spend caps, and the stores that keep them.
//
// A counter is identified by a key that includes its window's start, so a new window is a new
// counter and nothing needs resetting; each entry expires at its window's end. The one
// operation that matters, TryCharge, checks and increments every counter of a call as ONE
// atomic step: there is no moment between reading and incrementing in which another call can
// slip through, so N concurrent calls against a limit of L admit exactly L.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace tw::limits {

struct Charge {
  std::string key;         // from CounterKey()
  int64_t amount = 1;      // > 0
  int64_t max = 0;         // the counter may reach max, never exceed it
  int64_t expires_ms = 0;  // Unix ms at which the window ends
};

struct ChargeOutcome {
  bool admitted = false;
  size_t rejected = 0;  // when !admitted: index of the first charge that did not fit
  int64_t current = 0;  // when !admitted: that counter's value
};

// Thread-safe: every method may be called from any thread.
class CounterStore {
 public:
  virtual ~CounterStore() = default;

  // If every counter's value + amount <= max, adds every amount and admits; otherwise
  // changes nothing. Fails only when the store itself fails (callers deny: fail closed).
  virtual Result<ChargeOutcome> TryCharge(const std::vector<Charge>& charges, int64_t now_ms) = 0;
  // TryCharge for several calls in turn (each all or none, each at its own time, each seeing
  // the ones before): one round trip to a remote store. One result per call; an error of the
  // store itself is every call's.
  struct Call {
    std::vector<Charge> charges;
    int64_t now_ms = 0;
  };
  virtual std::vector<Result<ChargeOutcome>> TryChargeMany(const std::vector<Call>& calls) {
    std::vector<Result<ChargeOutcome>> out;
    out.reserve(calls.size());
    for (const auto& c : calls) out.push_back(TryCharge(c.charges, c.now_ms));
    return out;
  }
  // Takes back amounts TryCharge added (never below zero).
  virtual Result<bool> Refund(const std::vector<Charge>& charges, int64_t now_ms) = 0;
  // The current value of a counter (0 if none).
  virtual Result<int64_t> Value(const std::string& key, int64_t now_ms) = 0;
  // Where the counters live, for messages ("memory", "sqlite:/path").
  virtual std::string Describe() const = 0;
  // Whether the store answers now (a server that can go away is asked; a file is not).
  virtual Result<bool> Reachable() { return true; }
  // Whether a charge is a round trip to another process (Redis): the guard then charges on the
  // audit writer's thread, with the call's record, so that no event loop waits for it.
  virtual bool Remote() const { return false; }

  // The SQLite connection the counters live on (null when not SQLite). When the audit log
  // writes on the same one (AuditLog::Connection), the guard charges from inside the audit
  // writer's batch (AuditLog::Submit): TryCharge then runs as a savepoint of that transaction
  // and becomes durable with the call's record, in the batch's one commit.
  virtual const void* Connection() const { return nullptr; }
};

// ChargeBatcher: charges calls against a remote store from a thread of its own, every call
// queued meanwhile (from every event loop) in one TryChargeMany — one round trip for a batch,
// as the audit writer commits a batch of records in one transaction. `done` runs on the
// batcher's thread, in the order calls were queued; it must be quick and must not queue again.
// The destructor charges what is queued, then stops.
class ChargeBatcher {
 public:
  explicit ChargeBatcher(CounterStore& store);
  ~ChargeBatcher();
  ChargeBatcher(const ChargeBatcher&) = delete;
  ChargeBatcher& operator=(const ChargeBatcher&) = delete;

  void Charge(std::vector<Charge> charges, int64_t now_ms,
              std::function<void(Result<ChargeOutcome>)> done);

 private:
  struct Job {
    CounterStore::Call call;
    std::function<void(Result<ChargeOutcome>)> done;
  };
  void Loop();

  CounterStore& store_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Job> queue_;  // Guarded by mu_.
  bool stop_ = false;       // Guarded by mu_.
  std::thread thread_;
};

// The one place a counter key is spelled:
//   <namespace>/<counter>/<scope kind>:<scope id>/<window start ms>
// `ns` separates servers sharing a store; scope kind is grant, session or global.
std::string CounterKey(std::string_view ns, std::string_view counter, std::string_view scope_kind,
                       std::string_view scope_id, int64_t window_start_ms);

std::unique_ptr<CounterStore> MakeMemoryStore();
// Opens (creating if needed) a SQLite database file, in WAL mode. Several processes may share
// it: charges are serialized by SQLite's write lock.
Result<std::unique_ptr<CounterStore>> OpenSqliteStore(const std::string& path);
// Connects to the Redis server of "redis://HOST[:PORT][/DB]" (redis/redis_client.h: the
// credentials come from the environment). Every store on the same server and DB shares its
// counters: each TryCharge is one server-side script, so limits are exact across gateways.
Result<std::unique_ptr<CounterStore>> OpenRedisStore(const std::string& url);
// "memory", "sqlite:PATH" or "redis://HOST[:PORT][/DB]".
Result<std::unique_ptr<CounterStore>> OpenStateStore(const std::string& spec);
// The per-user default: sqlite:$XDG_STATE_HOME/toolwarden/state.db (~/.local/state/…).
std::string DefaultStateSpec();
// `spec`, or DefaultStateSpec() when it is empty (a command line or config that names none).
inline std::string StateSpecOrDefault(const std::string& spec) {
  return spec.empty() ? DefaultStateSpec() : spec;
}
// Where a gateway's audit records are made durable: `audit_store` (`audit.store`) when set;
// else the state file itself, so that a record and its call's charges commit together; or,
// when the state is on Redis (which makes nothing durable before a call is forwarded),
// sqlite:$XDG_STATE_HOME/toolwarden/audit.db beside the default state file.
std::string AuditSpecFor(const std::string& state_spec, const std::string& audit_store);

}  // namespace tw::limits
