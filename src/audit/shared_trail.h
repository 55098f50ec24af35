// The audit trail a fleet shares: one PostgreSQL table (`toolwarden_audit`) that every replica
// ships its records to, and that any replica's console, admin API and `toolwarden audit` query.
//
// Why PostgreSQL: the trail is queried by time, grant, server, tool and decision, paged and
// counted — what a relational table with indexes does; it is durable on commit, replicated by
// tools every team already runs, and readable by their own reporting. (A Redis Stream would
// keep the trail in memory, make every query a scan, and lose what an asynchronous replica had
// not received on a failover.)
//
// Each replica still makes every record durable in its local SQLite file before a call is
// forwarded (audit.h); the Shipper copies records from there: at least once, idempotently —
// the table's key is the record id, so a record shipped twice (a replica killed between the
// shared commit and noting it locally) is one row. A record shipped while its call was still
// pending is shipped again once its outcome is known. A replica that was down ships its backlog
// when it comes back. Local records are pruned (audit.retention, audit.max_size) only once the
// shared table has them.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "audit/audit.h"
#include "common/result.h"

struct sqlite3;

namespace tw::pg {
class Connection;
}

namespace tw::audit {

Result<std::vector<Record>> QueryShared(const std::string& url, const Query& q);
Result<int64_t> CountShared(const std::string& url, const Query& q);
// Every matching record, oldest first (by time, then id), read in pages of `page` by key (no
// OFFSET: each page starts after the last record of the one before); `each` returns false to
// stop. Returns how many it read.
Result<int64_t> ScanShared(const std::string& url, const Query& q,
                           const std::function<bool(Record&)>& each, int page = 5000);
Result<std::vector<Bucket>> HistogramShared(const std::string& url, const Query& q, int64_t bucket_ms);

struct ShipperOptions {
  std::string local_path;  // the replica's audit file (SQLite)
  std::string url;         // postgresql://…
  std::string replica;     // recorded with each row ("" when unnamed: the host name)
  int batch = 500;
  int64_t interval_ms = 200;
  // A record still pending after this long belongs to a call that will never end (its gateway
  // died): it is shipped as it is and no longer waited for.
  int64_t pending_grace_ms = 15 * 60 * 1000;
};

struct ShipperStats {
  std::atomic<uint64_t> shipped{0};  // rows sent (a re-sent row counts again)
  std::atomic<uint64_t> errors{0};   // passes that failed (the shared store unreachable, …)
  std::atomic<int64_t> through{0};   // every local record up to this rowid is in the shared store
  std::atomic<int64_t> backlog{0};   // local records not yet shipped, as of the last pass
};

class Shipper {
 public:
  // `shipped_through(rowid)` is told, from the shipper's thread, how far local records may be
  // pruned (AuditLog::PruneOnlyThrough).
  Shipper(ShipperOptions options, std::function<void(int64_t)> shipped_through);
  ~Shipper();  // Stop()
  Shipper(const Shipper&) = delete;
  Shipper& operator=(const Shipper&) = delete;

  // Opens the local file and starts the thread.
  Result<bool> Start();
  // Ships what the local file holds now, on the caller's thread (one pass at a time: a pass
  // of the shipper's thread waits for it); returns how many new rows were sent.
  Result<int64_t> ShipOnce(int64_t now_ms);
  // One last pass (bounded by the shared store's timeouts), then stops the thread.
  void Stop();

  const ShipperStats& stats() const { return stats_; }

 private:
  void Loop();
  Result<bool> Connect();
  Result<bool> Upsert(const std::vector<std::vector<std::string>>& rows, const std::vector<bool>& null_args);

  const ShipperOptions options_;
  const std::function<void(int64_t)> shipped_through_;
  std::mutex pass_mu_;  // one pass at a time; guards everything down to stats_
  sqlite3* local_ = nullptr;
  std::unique_ptr<pg::Connection> shared_;
  int64_t sent_ = 0;                  // every local rowid up to here was sent at least once
  std::set<int64_t> pending_;         // rowids sent while pending
  ShipperStats stats_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // Guarded by mu_.
  std::thread thread_;
  int64_t backoff_ms_ = 0;
};

}  // namespace tw::audit
