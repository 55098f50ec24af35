// The audit trail: exactly one record per decided tools/call (PRODUCT.md §4).
//
// A record is written when the call is decided — durably, before the call is forwarded, so a
// `kill -9` of the gateway loses no decided call — and completed with the upstream outcome and
// the latency when the call ends. Arguments are recorded as their top-level keys and a SHA-256
// digest of their canonical JSON; values only when configured.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "audit/retention.h"
#include "common/result.h"
#include "jsonrpc/message.h"

namespace tw::audit {

// What a shadow policy would have decided of a call: never enforced.
struct ShadowDecision {
  std::string decision;  // allow | deny | approval
  std::string rule;
  std::string reason;
};

struct Record {
  std::string id;  // NewRecordId()
  int64_t ts_ms = 0;
  std::string grant;
  std::string session;
  std::string server;
  std::string tool;
  std::string decision;  // allow | deny
  std::string rule;
  std::string reason;
  std::vector<std::string> arg_keys;
  std::string args_digest;
  // Argument values, as `audit.arguments` says: absent (none), with the values of sensitive
  // paths replaced by catalog::kRedacted (redacted), or whole (full).
  std::optional<json::value> args;
  // The same as text, already serialized (the call's canonical JSON, whose SHA-256 is
  // args_digest), when the gateway kept the arguments whole: written as is, parsed only if the
  // record is shown. Used when `args` is not set.
  std::string args_text;
  std::string policy_version;       // digest of the policy text that decided
  // What a shadow policy would have decided, by which rule and why (unset when the server has
  // none). Never enforced.
  std::optional<ShadowDecision> shadow;
  // What the classifier said of the tool when the call was decided: "Destructive/High@1"
  // (category/risk@classifier version; empty when the tool was never listed). JSON: "class"
  // and "classifier".
  std::string tool_class;
  // Who the caller acts for (oauth::Principal's subject, or a grant's principal); empty for a
  // grant that names nobody. JSON: "principal".
  std::string principal;
  // pending (forwarded, no answer yet) | ok | tool_error | jsonrpc_error | transport_error |
  // not_forwarded (denied)
  std::string outcome = "pending";
  int64_t latency_ms = 0;
};

json::value ToJson(const Record& r);

// The stored form of a record's shadow decision (the `shadow` column: {"decision", "rule",
// "reason"}; "" for none), and back into `r`.
std::string ShadowText(const Record& r);
void ReadShadowText(std::string_view stored, Record& r);



// A new record id: 32 hex digits, unique across processes (a random per-process prefix and a
// counter).
std::string NewRecordId();

// What /metrics shows of an audit log.
struct AuditStats {
  uint64_t pruned = 0;        // records deleted by audit.retention / audit.max_size
  uint64_t refused = 0;       // calls refused because the disk was nearly full
  int64_t file_bytes = 0;     // the database file (0: not measured)
  int64_t free_bytes = 0;     // free on its file system (0: not measured)
  bool disk_low = false;
};

// Thread-safe.
class AuditLog {
 public:
  virtual ~AuditLog() = default;
  // Durable when it returns.
  virtual Result<bool> Write(const Record& record) = 0;
  // Group commit, off the caller's thread: `record` joins the writer thread's next batch — one
  // transaction for every record submitted meanwhile, and the outcome updates queued. Inside
  // it, just before the insert, `in_txn` (may be empty) runs on the writer thread with the
  // connection's lock held: it may write on the same connection (a call's counter charges,
  // which then commit with its record) and change the record (a charge that did not fit makes
  // it a denial). `done(ok)` runs after the batch: ok when the record is durable, false when
  // nothing of it (nor of what `in_txn` wrote) was kept. A gateway must neither forward nor
  // answer a call before its `done` said ok. Both callbacks must be quick, must not call back
  // into this log, and may run on the writer thread or — for a lone call, when nothing was
  // submitted just before it and the writer is idle — on the caller's, before Submit returns
  // (a batch of one, saving the call the two thread hops).
  virtual void Submit(Record record, std::function<void(Record&)> in_txn,
                      std::function<void(bool ok)> done) = 0;
  // Runs `in_txn` on the writer thread inside its next batch's transaction (with the
  // connection's lock held), then `done(ok)` — ok when what it wrote is durable. For the writes
  // an event loop must not make itself (refunds): the writer may wait for a state file another
  // process holds (state_timeout), a loop never does (SqliteNoWait). Same rules as Submit's
  // callbacks. Without a writer thread, runs both before returning.
  virtual void Run(std::function<void()> in_txn, std::function<void(bool ok)> done) {
    in_txn();
    if (done) done(true);
  }
  // Sets the outcome of a written record (may be batched; flushed on Flush and on close).
  virtual void Complete(const std::string& id, const std::string& outcome, int64_t latency_ms) = 0;
  // Returns once everything submitted and completed so far is written (or has failed), to the
  // state file and to the JSON lines file.
  virtual void Flush() = 0;
  // The SQLite connection records are written on (null when none): a counter store on the same
  // one can charge inside Submit's `in_txn` (CounterStore::Connection).
  virtual const void* Connection() const { return nullptr; }
  // Lets retention prune local records only up to `rowid` (those the shared trail has).
  virtual void PruneOnlyThrough(int64_t rowid) { (void)rowid; }
  // Why records cannot be written now ("" when they can), for the denial the agent sees.
  virtual std::string Unwritable() const { return {}; }
  virtual AuditStats Stats() const { return {}; }
};

struct Query {
  int64_t since_ms = 0;  // ts_ms >= since_ms
  int64_t until_ms = 0;  // ts_ms < until_ms; 0: no end
  std::string grant, server, tool, decision;  // "" matches every value
  int limit = 100;
  int64_t offset = 0;  // records to skip (paging, newest first)
};

// Calls per time bucket by decision (for charts).
struct Bucket {
  int64_t start_ms = 0;
  int64_t allow = 0, deny = 0, approval = 0;
};

// The SQLite audit store (table `audit` in the state database), optionally mirrored as JSON
// lines to a file. Submitted records and outcome updates go through one writer thread in
// batched transactions; `retention` is applied by its maintenance thread (retention.h).
Result<std::unique_ptr<AuditLog>> OpenAuditLog(const std::string& state_spec,
                                               const std::string& json_lines_path,
                                               const RetentionOptions& retention = {});

// Each of these reads the local store of a sqlite:PATH spec, or the shared trail of a
// postgresql:// one (shared_trail.h).
// Newest first. `limit` and `offset` page through the matches.
Result<std::vector<Record>> QueryAudit(const std::string& state_spec, const Query& query);
// How many records match (ignores limit and offset).
Result<int64_t> CountAudit(const std::string& state_spec, const Query& query);
// Calls `each` with every matching record, oldest first (by time, then as written; on the
// shared trail by time, then id), reading them as it goes — for replay over millions of
// records — until it returns false; ignores limit and offset. Returns how many it read.
Result<int64_t> ScanAudit(const std::string& state_spec, const Query& query,
                          const std::function<bool(Record&)>& each);
// Matching records counted per `bucket_ms` (aligned to the epoch), oldest first; buckets with
// no records are left out.
Result<std::vector<Bucket>> AuditHistogram(const std::string& state_spec, const Query& query,
                                           int64_t bucket_ms);

}  // namespace tw::audit
