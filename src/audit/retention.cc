#include "audit/retention.h"

#include <spdlog/spdlog.h>
#include "common/sqlite_db.h"
#include <sys/statvfs.h>

#include <algorithm>
#include <filesystem>

namespace tw::audit {

namespace {

constexpr int kChunk = 5000;

std::string Mib(int64_t bytes) { return std::to_string(bytes >> 20) + " MiB"; }

}  // namespace

Retention::Retention(sqlite3* db, std::string path, RetentionOptions options)
    : db_(db),
      path_(std::move(path)),
      dir_(std::filesystem::absolute(path_).parent_path().string()),
      options_(options),
      prunable_(options.prunable_through) {}

void Retention::Tick(int64_t now_ms) {
  CheckDisk();
  if (now_ms < next_prune_ms_) return;
  next_prune_ms_ = now_ms + options_.prune_every_ms;
  if (options_.max_age_ms > 0 || options_.max_bytes > 0 || options_.arguments_max_age_ms > 0) {
    Prune(now_ms);
  } else {
    stats_.file_bytes.store(Pragma("PRAGMA page_count") * Pragma("PRAGMA page_size"),
                            std::memory_order_relaxed);
  }
}

void Retention::CheckDisk() {
  if (options_.min_free_bytes <= 0) return;
  struct statvfs fs {};
  if (statvfs(dir_.c_str(), &fs) != 0) return;
  const int64_t free = static_cast<int64_t>(fs.f_bavail) * static_cast<int64_t>(fs.f_frsize);
  stats_.free_bytes.store(free, std::memory_order_relaxed);
  const bool low = free < options_.min_free_bytes;
  if (low != low_.exchange(low)) {
    if (low) {
      spdlog::error("audit: {} has {} free, under audit.min_free_bytes ({}): new calls are refused "
                    "until there is room",
                    dir_, Mib(free), Mib(options_.min_free_bytes));
    } else {
      spdlog::info("audit: {} has room again ({} free): calls are accepted", dir_, Mib(free));
    }
  }
}

std::string Retention::DiskLow() const {
  if (!low_.load(std::memory_order_relaxed)) return {};
  return "the audit disk is nearly full (" + Mib(stats_.free_bytes.load()) +
         " free, audit.min_free_bytes " + Mib(options_.min_free_bytes) + ")";
}

int64_t Retention::Pragma(const char* sql) {
  sqlite3_stmt* st = nullptr;
  int64_t v = 0;
  if (sqlite3_prepare_v2(db_, sql, -1, &st, nullptr) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
    v = sqlite3_column_int64(st, 0);
  }
  sqlite3_finalize(st);
  return v;
}

int Retention::DeleteChunk(const char* sql, int64_t cutoff, int limit) {
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db_, sql, -1, &st, nullptr) != SQLITE_OK) {
    sqlite3_finalize(st);
    return 0;
  }
  sqlite3_bind_int64(st, 1, cutoff);
  sqlite3_bind_int64(st, 2, prunable_.load(std::memory_order_relaxed));
  sqlite3_bind_int(st, 3, limit);
  const int rc = sqlite3_step(st);
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) {
    // Busy past the connection's wait (another process holds the file): next time.
    spdlog::warn("audit: pruning {}: {}", path_, sqlite3_errmsg(db_));
    return 0;
  }
  return sqlite3_changes(db_);
}

uint64_t Retention::Prune(int64_t now_ms) {
  uint64_t gone = 0;
  if (options_.max_age_ms > 0) {
    const int64_t cutoff = now_ms - options_.max_age_ms;
    for (int n; (n = DeleteChunk("DELETE FROM audit WHERE rowid IN (SELECT rowid FROM audit "
                                 "WHERE ts_ms < ?1 AND rowid <= ?2 LIMIT ?3)",
                                 cutoff, kChunk)) > 0;) {
      gone += static_cast<uint64_t>(n);
    }
  }
  if (options_.arguments_max_age_ms > 0) {
    // From where the last pass stopped, in chunks like the deletes: each pass reads only the
    // records that aged since.
    const int64_t cutoff = now_ms - options_.arguments_max_age_ms;
    const int64_t prunable = prunable_.load(std::memory_order_relaxed);
    bool ok = true;
    for (;;) {
      SqliteStmt st;
      sqlite3_prepare_v2(db_,
                         "UPDATE audit SET args = NULL WHERE rowid IN (SELECT rowid FROM audit "
                         "WHERE ts_ms >= ?1 AND ts_ms < ?2 AND args IS NOT NULL AND rowid <= ?3 "
                         "LIMIT ?4)",
                         -1, &st.s, nullptr);
      sqlite3_bind_int64(st.s, 1, args_erased_before_ms_);
      sqlite3_bind_int64(st.s, 2, cutoff);
      sqlite3_bind_int64(st.s, 3, prunable);
      sqlite3_bind_int(st.s, 4, kChunk);
      if (sqlite3_step(st.s) != SQLITE_DONE) {
        spdlog::warn("audit: erasing old argument values in {}: {}", path_, sqlite3_errmsg(db_));
        ok = false;
        break;
      }
      if (sqlite3_changes(db_) < kChunk) break;
    }
    // Records the shared trail does not have yet keep theirs until a later pass (the rowid
    // bound): the next starts at the oldest of them.
    if (ok) {
      int64_t next = cutoff;
      if (prunable != INT64_MAX) {
        SqliteStmt st;
        sqlite3_prepare_v2(db_, "SELECT MIN(ts_ms) FROM audit WHERE rowid > ?1", -1, &st.s, nullptr);
        sqlite3_bind_int64(st.s, 1, prunable);
        if (sqlite3_step(st.s) == SQLITE_ROW && sqlite3_column_type(st.s, 0) != SQLITE_NULL) {
          next = std::min<int64_t>(next, sqlite3_column_int64(st.s, 0));
        }
      }
      args_erased_before_ms_ = std::max(args_erased_before_ms_, next);
    }
  }
  const int64_t page = Pragma("PRAGMA page_size");
  auto used = [&] { return (Pragma("PRAGMA page_count") - Pragma("PRAGMA freelist_count")) * page; };
  if (options_.max_bytes > 0 && used() > options_.max_bytes) {
    // Down to 90 % of the limit, so that the next prune is not due at the next record.
    const int64_t target = options_.max_bytes / 10 * 9;
    // The first chunk is small; its freed bytes per record size the next ones, so that a
    // file just over its limit does not lose thousands of records more than it must.
    int64_t now_used = used();
    int chunk = 500;
    while (now_used > target) {
      const int n = DeleteChunk("DELETE FROM audit WHERE rowid IN (SELECT rowid FROM audit "
                                "WHERE rowid <= ?2 AND ?1 = ?1 ORDER BY rowid LIMIT ?3)",
                                0, chunk);
      if (n == 0) break;
      gone += static_cast<uint64_t>(n);
      const int64_t after = used();
      const int64_t per_record = std::max<int64_t>(1, (now_used - after) / n);
      now_used = after;
      chunk = static_cast<int>(std::clamp<int64_t>((now_used - target) / per_record + 1, 1, kChunk));
    }
  }
  // Free pages go back to the file system only while the file is over its limit; below it
  // they are kept for the records to come.
  if (options_.max_bytes > 0 && Pragma("PRAGMA page_count") * page > options_.max_bytes &&
      Pragma("PRAGMA auto_vacuum") == 2) {
    sqlite3_exec(db_, "PRAGMA incremental_vacuum", nullptr, nullptr, nullptr);
  }
  stats_.file_bytes.store(Pragma("PRAGMA page_count") * page, std::memory_order_relaxed);
  if (gone > 0) {
    stats_.pruned.fetch_add(gone, std::memory_order_relaxed);
    spdlog::info("audit: pruned {} record(s) from {} (audit.retention / audit.max_size)", gone, path_);
  }
  return gone;
}

}  // namespace tw::audit
