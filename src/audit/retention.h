// Retention: keeps an audit file within its age and size limits, and stops new records before
// its disk fills up.
//
// Runs on the audit log's maintenance thread, on a connection of its own (never the one calls
// are written on): records are deleted oldest first in chunks of a few thousand, one short
// transaction each, so a batch of calls waits at most one chunk's delete for the file's write
// lock. Deleted records' pages are reused by new ones; a file with incremental auto-vacuum
// (every state file made by toolwarden since retention exists) also gives them back to the
// file system when it is over its size limit.
//
// The disk check (statvfs of the file's directory, every tick) sets a flag that the writer
// reads before each record: below `min_free_bytes` new calls are refused — denied, never
// forwarded — while outcome updates of calls already forwarded still use the reserve.
#pragma once

#include <sqlite3.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>

namespace tw::audit {

struct RetentionOptions {
  int64_t max_age_ms = 0;                 // audit.retention; 0: records are kept for ever
  // audit.arguments_retention: argument values are erased (the record stays, its keys and
  // digest too) once this old; 0: kept as long as the record.
  int64_t arguments_max_age_ms = 0;
  int64_t max_bytes = 0;                  // audit.max_size; 0: no size limit
  int64_t min_free_bytes = 64LL << 20;    // audit.min_free_bytes; 0: no check
  // How often Tick prunes (it checks the disk every time).
  int64_t prune_every_ms = 1000;
  // Records prunable from the start (Retention::PruneOnlyThrough); 0 when a shared store must
  // have them first (audit.shared): the shipper raises it as it ships.
  int64_t prunable_through = INT64_MAX;
};

struct RetentionStats {
  std::atomic<uint64_t> pruned{0};     // records deleted by age or size
  std::atomic<int64_t> file_bytes{0};  // the database file, as of the last prune
  std::atomic<int64_t> free_bytes{0};  // on its file system, as of the last tick
};

class Retention {
 public:
  // `db` is a connection of the caller's (the maintenance thread's) to `path`.
  Retention(sqlite3* db, std::string path, RetentionOptions options);

  // Checks the disk; prunes when due. `now_ms`: wall-clock time (records' ts_ms).
  void Tick(int64_t now_ms);
  // Prunes now: by age, then by size. Returns how many records went.
  uint64_t Prune(int64_t now_ms);

  // Why new records must be refused ("" while the disk has room). Thread-safe.
  std::string DiskLow() const;
  // Only records with rowid <= `rowid` may be pruned (those a shared store already has);
  // by default, all. Thread-safe.
  void PruneOnlyThrough(int64_t rowid) { prunable_.store(rowid, std::memory_order_relaxed); }

  const RetentionStats& stats() const { return stats_; }
  const RetentionOptions& options() const { return options_; }

 private:
  void CheckDisk();
  int64_t Pragma(const char* sql);
  // Runs a DELETE of at most `limit` records (?1: `cutoff`, ?2: the prunable rowid, ?3:
  // `limit`); returns how many went.
  int DeleteChunk(const char* sql, int64_t cutoff, int limit);

  sqlite3* const db_;
  const std::string path_, dir_;
  const RetentionOptions options_;
  int64_t next_prune_ms_ = 0;
  int64_t args_erased_before_ms_ = 0;  // records older than this have no argument values left
  std::atomic<bool> low_{false};
  std::atomic<int64_t> prunable_{INT64_MAX};
  RetentionStats stats_;
};

}  // namespace tw::audit
