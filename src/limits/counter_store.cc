#include "limits/counter_store.h"

#include <optional>

#include "common/sqlite_db.h"
#include "redis/redis_client.h"

#include <sqlite3.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <unordered_map>

namespace tw::limits {

std::string CounterKey(std::string_view ns, std::string_view counter, std::string_view scope_kind,
                       std::string_view scope_id, int64_t window_start_ms) {
  std::string key;
  key.reserve(ns.size() + counter.size() + scope_kind.size() + scope_id.size() + 24);
  key.append(ns).append("/").append(counter).append("/").append(scope_kind).append(":");
  key.append(scope_id).append("/").append(std::to_string(window_start_ms));
  return key;
}

namespace {

class MemoryStore : public CounterStore {
 public:
  Result<ChargeOutcome> TryCharge(const std::vector<Charge>& charges, int64_t now_ms) override {
    std::lock_guard lock(mu_);
    MaybePrune(now_ms);
    for (size_t i = 0; i < charges.size(); ++i) {
      const int64_t current = ValueLocked(charges[i].key, now_ms);
      // Earlier charges of the same counter in this call count too (a handful of charges: the
      // quadratic scan is cheaper than a map).
      const int64_t earlier = EarlierOfSameKey(charges, i);
      // Overflow-safe form of current + earlier + amount > max.
      if (charges[i].amount > charges[i].max - current - earlier) {
        return ChargeOutcome{false, i, current};
      }
    }
    for (const Charge& c : charges) {
      Entry& e = counters_[c.key];
      if (e.expires_ms <= now_ms) e.value = 0;
      e.value += c.amount;
      e.expires_ms = c.expires_ms;
    }
    return ChargeOutcome{true, 0, 0};
  }

  Result<bool> Refund(const std::vector<Charge>& charges, int64_t now_ms) override {
    std::lock_guard lock(mu_);
    for (const Charge& c : charges) {
      auto it = counters_.find(c.key);
      if (it == counters_.end() || it->second.expires_ms <= now_ms) continue;
      it->second.value = std::max<int64_t>(0, it->second.value - c.amount);
    }
    return true;
  }

  Result<int64_t> Value(const std::string& key, int64_t now_ms) override {
    std::lock_guard lock(mu_);
    return ValueLocked(key, now_ms);
  }

  std::string Describe() const override { return "memory"; }

 private:
  struct Entry {
    int64_t value = 0;
    int64_t expires_ms = 0;
  };

  static int64_t EarlierOfSameKey(const std::vector<Charge>& charges, size_t i) {
    int64_t sum = 0;
    for (size_t j = 0; j < i; ++j) {
      if (charges[j].key == charges[i].key) sum += charges[j].amount;
    }
    return sum;
  }

  int64_t ValueLocked(const std::string& key, int64_t now_ms) const {  // Requires mu_.
    auto it = counters_.find(key);
    return it == counters_.end() || it->second.expires_ms <= now_ms ? 0 : it->second.value;
  }

  void MaybePrune(int64_t now_ms) {  // Requires mu_.
    if (++charges_since_prune_ < 4096) return;
    charges_since_prune_ = 0;
    std::erase_if(counters_, [&](const auto& kv) { return kv.second.expires_ms <= now_ms; });
  }

  std::mutex mu_;
  std::unordered_map<std::string, Entry> counters_;  // Guarded by mu_.
  int charges_since_prune_ = 0;                      // Guarded by mu_.
};

// RAII for sqlite3_stmt.
class SqliteStore : public CounterStore, SqliteStoreBase {
 public:
  explicit SqliteStore(std::shared_ptr<SqliteConnection> conn)
      : SqliteStoreBase(std::move(conn), "state store") {}

  Result<ChargeOutcome> TryCharge(const std::vector<Charge>& charges, int64_t now_ms) override {
    std::lock_guard lock(mu_);
    return ChargeLocked(charges, now_ms);
  }

  const void* Connection() const override { return conn_.get(); }

  Result<bool> Refund(const std::vector<Charge>& charges, int64_t now_ms) override {
    std::lock_guard lock(mu_);
    WriteTxn txn(stmts_, db_, what_, path_);
    if (auto r = txn.Begin(); !r) return Fail(r.error());
    for (const Charge& c : charges) {
      ScopedStmt st = stmts_.Get(db_, "UPDATE counters SET value = MAX(0, value - ?2) "
                         "WHERE key = ?1 AND expires_ms > ?3");
      sqlite3_bind_text(st, 1, c.key.data(), static_cast<int>(c.key.size()), SQLITE_STATIC);
      sqlite3_bind_int64(st, 2, c.amount);
      sqlite3_bind_int64(st, 3, now_ms);
      if (sqlite3_step(st) != SQLITE_DONE) return Fail(Err("refunding a counter"));
    }
    return txn.Commit();
  }

  Result<int64_t> Value(const std::string& key, int64_t now_ms) override {
    std::lock_guard lock(mu_);
    return ValueLocked(key, now_ms);
  }

  std::string Describe() const override { return "sqlite:" + path_; }

 private:

  // If every charge fits, adds them all. Each charge is ONE statement that adds only if the
  // sum fits (an upsert whose update has a WHERE; sqlite3_changes says whether it did):
  // nothing to read first. Several charges share a savepoint so that a later one that does
  // not fit takes the earlier ones back (inside the audit writer's batch when it runs there;
  // a transaction of its own otherwise). Requires mu_.
  Result<ChargeOutcome> ChargeLocked(const std::vector<Charge>& charges, int64_t now_ms) {
    std::optional<WriteTxn> txn;
    if (charges.size() > 1) {
      txn.emplace(stmts_, db_, "state store", path_);
      if (auto r = txn->Begin(); !r) return Fail(r.error());
    }
    for (size_t i = 0; i < charges.size(); ++i) {
      const Charge& c = charges[i];
      bool fits = c.amount <= c.max;
      if (fits) {
        ScopedStmt st = stmts_.Get(
            db_, "INSERT INTO counters(key, value, expires_ms) VALUES(?1, ?2, ?3) "
                 "ON CONFLICT(key) DO UPDATE SET value = CASE WHEN expires_ms <= ?4 THEN ?2 "
                 "ELSE value + ?2 END, expires_ms = ?3 "
                 "WHERE CASE WHEN expires_ms <= ?4 THEN 0 ELSE value END + ?2 <= ?5");
        sqlite3_bind_text(st, 1, c.key.data(), static_cast<int>(c.key.size()), SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, c.amount);
        sqlite3_bind_int64(st, 3, c.expires_ms);
        sqlite3_bind_int64(st, 4, now_ms);
        sqlite3_bind_int64(st, 5, c.max);
        if (sqlite3_step(st) != SQLITE_DONE) return Fail(Err("charging a counter"));
        fits = sqlite3_changes(db_) == 1;  // none: the update's WHERE said it does not fit
      }
      if (!fits) {
        auto current = ValueLocked(c.key, now_ms);  // for the denial's message
        if (!current) return Fail(current.error());
        return ChargeOutcome{false, i, *current};  // `txn` rolls the earlier ones back
      }
    }
    if (++charges_since_prune_ >= 4096) {
      charges_since_prune_ = 0;
      ScopedStmt st = stmts_.Get(db_, "DELETE FROM counters WHERE expires_ms <= ?1");
      sqlite3_bind_int64(st, 1, now_ms);
      sqlite3_step(st);
    }
    if (txn) {
      if (auto r = txn->Commit(); !r) return Fail(r.error());
    }
    return ChargeOutcome{true, 0, 0};
  }

  Result<int64_t> ValueLocked(const std::string& key, int64_t now_ms) {  // Requires mu_.
    ScopedStmt st = stmts_.Get(db_, "SELECT value FROM counters WHERE key = ?1 AND expires_ms > ?2");
    sqlite3_bind_text(st, 1, key.data(), static_cast<int>(key.size()), SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now_ms);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) return sqlite3_column_int64(st, 0);
    if (rc == SQLITE_DONE) return int64_t{0};
    return Fail(Err("reading a counter"));
  }

  int charges_since_prune_ = 0;  // Guarded by mu_.
};

}  // namespace

std::unique_ptr<CounterStore> MakeMemoryStore() { return std::make_unique<MemoryStore>(); }

Result<std::unique_ptr<CounterStore>> OpenSqliteStore(const std::string& path) {
  auto conn = OpenSharedSqlite(path, "state store",
                               {"CREATE TABLE IF NOT EXISTS counters(key TEXT PRIMARY KEY, "
                                "value INTEGER NOT NULL, expires_ms INTEGER NOT NULL) WITHOUT ROWID"});
  if (!conn) return Fail(conn.error());
  return std::unique_ptr<CounterStore>(std::make_unique<SqliteStore>(std::move(*conn)));
}

Result<std::unique_ptr<CounterStore>> OpenStateStore(const std::string& spec) {
  if (spec == "memory") return MakeMemoryStore();
  if (spec.starts_with("sqlite:") && spec.size() > 7) return OpenSqliteStore(spec.substr(7));
  if (redis::IsRedisUrl(spec)) return OpenRedisStore(spec);
  return Fail(Error::InvalidArgument("--state \"" + spec +
                                     "\": expected sqlite:PATH, redis://HOST:PORT/DB or memory"));
}

ChargeBatcher::ChargeBatcher(CounterStore& store) : store_(store) {
  thread_ = std::thread([this] { Loop(); });
}

ChargeBatcher::~ChargeBatcher() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_one();
  thread_.join();
}

void ChargeBatcher::Charge(std::vector<limits::Charge> charges, int64_t now_ms,
                           std::function<void(Result<ChargeOutcome>)> done) {
  bool wake;
  {
    std::lock_guard lock(mu_);
    wake = queue_.empty();
    queue_.push_back({{std::move(charges), now_ms}, std::move(done)});
  }
  // A batcher busy with a round trip takes this one with the next batch, without a wake-up.
  if (wake) cv_.notify_one();
}

void ChargeBatcher::Loop() {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, nothing left
    std::vector<Job> jobs;
    jobs.swap(queue_);
    lock.unlock();
    std::vector<CounterStore::Call> calls;
    calls.reserve(jobs.size());
    for (Job& j : jobs) calls.push_back(std::move(j.call));
    auto results = store_.TryChargeMany(calls);
    for (size_t i = 0; i < jobs.size(); ++i) jobs[i].done(std::move(results[i]));
    lock.lock();
  }
}

std::string AuditSpecFor(const std::string& state_spec, const std::string& audit_store) {
  if (!audit_store.empty()) return audit_store;
  if (!redis::IsRedisUrl(state_spec)) return state_spec;
  const std::string state = DefaultStateSpec();
  return state.substr(0, state.rfind('/') + 1) + "audit.db";
}

std::string DefaultStateSpec() {
  namespace fs = std::filesystem;
  fs::path base;
  if (const char* xdg = std::getenv("XDG_STATE_HOME"); xdg && *xdg) {
    base = xdg;
  } else if (const char* home = std::getenv("HOME"); home && *home) {
    base = fs::path(home) / ".local" / "state";
  } else {
    base = fs::temp_directory_path();
  }
  return "sqlite:" + (base / "toolwarden" / "state.db").string();
}

}  // namespace tw::limits
