#include "audit/shared_trail.h"

#include <spdlog/spdlog.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>

#include "common/sqlite_db.h"
#include "pg/pg.h"

namespace tw::audit {

namespace {

// Several replicas start at once: the schema is made under an advisory lock, so that two
// CREATE TABLE IF NOT EXISTS do not collide in the catalog.
constexpr const char* kSchema =
    "DO $$ BEGIN PERFORM pg_advisory_xact_lock(7242101); "
    "CREATE TABLE IF NOT EXISTS toolwarden_audit(id TEXT PRIMARY KEY, replica TEXT NOT NULL, "
    "ts_ms BIGINT NOT NULL, grant_name TEXT NOT NULL, session TEXT NOT NULL, "
    "server TEXT NOT NULL, tool TEXT NOT NULL, decision TEXT NOT NULL, rule TEXT NOT NULL, "
    "reason TEXT NOT NULL, arg_keys TEXT NOT NULL, args_digest TEXT NOT NULL, args TEXT, "
    "policy_version TEXT NOT NULL, outcome TEXT NOT NULL, latency_ms BIGINT NOT NULL); "
    "ALTER TABLE toolwarden_audit ADD COLUMN IF NOT EXISTS shadow TEXT, "
    "ADD COLUMN IF NOT EXISTS tool_class TEXT, ADD COLUMN IF NOT EXISTS principal TEXT; "
    "CREATE INDEX IF NOT EXISTS toolwarden_audit_ts ON toolwarden_audit(ts_ms); END $$";

constexpr const char* kLocalColumns =
    "rowid, id, ts_ms, grant_name, session, server, tool, decision, rule, reason, arg_keys, "
    "args_digest, args, policy_version, outcome, latency_ms, shadow, tool_class, principal";
// Per shipped row: the local ones less rowid, plus replica. A local NULL shadow, class or
// principal is shipped as ''.
constexpr int kColumns = 19;

// The WHERE clause of every query ($1-$6), as the local store's.
constexpr const char* kWhere =
    " WHERE ts_ms >= $1 AND ($2 = 0 OR ts_ms < $2) AND ($3 = '' OR grant_name = $3) "
    "AND ($4 = '' OR server = $4) AND ($5 = '' OR tool = $5) AND ($6 = '' OR decision = $6)";

std::vector<std::optional<std::string>> WhereParams(const Query& q) {
  return {std::to_string(q.since_ms), std::to_string(q.until_ms), q.grant, q.server, q.tool, q.decision};
}

int64_t Whole(const std::optional<std::string>& s) {
  int64_t n = 0;
  if (s) std::from_chars(s->data(), s->data() + s->size(), n);
  return n;
}

Result<std::unique_ptr<pg::Connection>> OpenShared(const std::string& url) {
  auto c = pg::Connection::Open(url);
  if (!c) return Fail(c.error());
  if (auto r = (*c)->Exec(kSchema); !r) return Fail(r.error().Context("creating the shared audit table"));
  return c;
}

std::string ThisHost() {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  return host;
}

}  // namespace

namespace {

// The columns FromRow reads, in its order.
constexpr const char* kSelectRecords =
    "SELECT id, ts_ms, grant_name, session, server, tool, decision, rule, reason, arg_keys, "
    "args_digest, args, policy_version, outcome, latency_ms, shadow, tool_class, principal "
    "FROM toolwarden_audit";

// One row of kSelectRecords into `r`.
void FromRow(const std::vector<std::optional<std::string>>& row, Record& r) {
  r.id = row[0].value_or("");
  r.ts_ms = Whole(row[1]);
  r.grant = row[2].value_or("");
  r.session = row[3].value_or("");
  r.server = row[4].value_or("");
  r.tool = row[5].value_or("");
  r.decision = row[6].value_or("");
  r.rule = row[7].value_or("");
  r.reason = row[8].value_or("");
  boost::system::error_code ec;
  json::value keys = json::parse(row[9].value_or("[]"), ec);
  if (!ec && keys.is_array()) {
    for (const auto& k : keys.get_array()) {
      if (k.is_string()) r.arg_keys.emplace_back(k.get_string());
    }
  }
  r.args_digest = row[10].value_or("");
  if (row[11]) r.args = json::parse(*row[11], ec);
  r.policy_version = row[12].value_or("");
  r.outcome = row[13].value_or("");
  r.latency_ms = Whole(row[14]);
  ReadShadowText(row[15].value_or(""), r);
  r.tool_class = row[16].value_or("");
  r.principal = row[17].value_or("");
}

}  // namespace

Result<std::vector<Record>> QueryShared(const std::string& url, const Query& q) {
  auto c = OpenShared(url);
  if (!c) return Fail(c.error());
  auto params = WhereParams(q);
  params.push_back(std::to_string(q.limit));
  params.push_back(std::to_string(q.offset));
  auto rows = (*c)->Exec(std::string(kSelectRecords) +
                             kWhere + " ORDER BY ts_ms DESC, id DESC LIMIT $7 OFFSET $8",
                         params);
  if (!rows) return Fail(rows.error());
  std::vector<Record> out;
  out.reserve(rows->size());
  for (const auto& row : *rows) {
    Record r;
    FromRow(row, r);
    out.push_back(std::move(r));
  }
  return out;
}

Result<int64_t> ScanShared(const std::string& url, const Query& q,
                           const std::function<bool(Record&)>& each, int page) {
  auto c = OpenShared(url);
  if (!c) return Fail(c.error());
  int64_t n = 0;
  std::string after_ts = "-1", after_id;  // the last record of the page before
  for (;;) {
    auto params = WhereParams(q);
    params.push_back(after_ts);
    params.push_back(after_id);
    params.push_back(std::to_string(page));
    auto rows = (*c)->Exec(std::string(kSelectRecords) + kWhere +
                               " AND (ts_ms, id) > ($7::bigint, $8) ORDER BY ts_ms, id LIMIT $9",
                           params);
    if (!rows) return Fail(rows.error());
    for (const auto& row : *rows) {
      Record r;
      FromRow(row, r);
      ++n;
      if (!each(r)) return n;
    }
    if (rows->size() < static_cast<size_t>(page)) return n;
    after_ts = rows->back()[1].value_or("0");
    after_id = rows->back()[0].value_or("");
  }
}

Result<int64_t> CountShared(const std::string& url, const Query& q) {
  auto c = OpenShared(url);
  if (!c) return Fail(c.error());
  auto rows = (*c)->Exec(std::string("SELECT COUNT(*) FROM toolwarden_audit") + kWhere, WhereParams(q));
  if (!rows) return Fail(rows.error());
  return rows->empty() ? int64_t{0} : Whole(rows->front()[0]);
}

Result<std::vector<Bucket>> HistogramShared(const std::string& url, const Query& q, int64_t bucket_ms) {
  if (bucket_ms <= 0) return Fail(Error::InvalidArgument("the bucket must be positive"));
  auto c = OpenShared(url);
  if (!c) return Fail(c.error());
  auto params = WhereParams(q);
  params.push_back(std::to_string(bucket_ms));
  auto rows = (*c)->Exec(
      std::string("SELECT (ts_ms / $7::bigint) * $7::bigint AS b, COUNT(*) FILTER (WHERE decision = 'allow'), "
                  "COUNT(*) FILTER (WHERE decision = 'deny'), COUNT(*) FILTER (WHERE decision = 'approval') "
                  "FROM toolwarden_audit") +
          kWhere + " GROUP BY b ORDER BY b",
      params);
  if (!rows) return Fail(rows.error());
  std::vector<Bucket> out;
  for (const auto& row : *rows) out.push_back({Whole(row[0]), Whole(row[1]), Whole(row[2]), Whole(row[3])});
  return out;
}

Shipper::Shipper(ShipperOptions options, std::function<void(int64_t)> shipped_through)
    : options_(std::move(options)), shipped_through_(std::move(shipped_through)) {}

Shipper::~Shipper() {
  Stop();
  if (local_) sqlite3_close_v2(local_);
}

Result<bool> Shipper::Start() {
  auto db = OpenSqliteDatabase(options_.local_path, "audit store",
                               {"CREATE TABLE IF NOT EXISTS audit_shipped(target TEXT PRIMARY KEY, "
                                "through INTEGER NOT NULL)"});
  if (!db) return Fail(db.error());
  local_ = *db;
  SqliteStmt st;
  sqlite3_prepare_v2(local_, "SELECT through FROM audit_shipped WHERE target = ?1", -1, &st.s, nullptr);
  sqlite3_bind_text(st.s, 1, options_.url.c_str(), -1, SQLITE_TRANSIENT);
  if (sqlite3_step(st.s) == SQLITE_ROW) sent_ = sqlite3_column_int64(st.s, 0);
  stats_.through.store(sent_);
  if (shipped_through_) shipped_through_(sent_);
  thread_ = std::thread([this] { Loop(); });
  return true;
}

void Shipper::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stop_) return;
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Shipper::Loop() {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait_for(lock, std::chrono::milliseconds(options_.interval_ms + backoff_ms_), [this] { return stop_; });
    const bool last = stop_;
    lock.unlock();
    const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    // Until a pass sends nothing new (a backlog goes in batches, one after another).
    for (;;) {
      auto n = ShipOnce(now);
      if (!n) {
        stats_.errors.fetch_add(1, std::memory_order_relaxed);
        if (backoff_ms_ == 0) spdlog::error("audit: shipping to the shared trail: {}", n.error().message());
        backoff_ms_ = std::min<int64_t>(5000, std::max<int64_t>(100, backoff_ms_ * 2));
        shared_.reset();
        break;
      }
      if (backoff_ms_ != 0) spdlog::info("audit: shipping to the shared trail again");
      backoff_ms_ = 0;
      if (*n < options_.batch || last) break;
    }
    lock.lock();
    if (last) return;
  }
}

Result<bool> Shipper::Connect() {
  if (shared_ && shared_->ok()) return true;
  auto c = OpenShared(options_.url);
  if (!c) return Fail(c.error());
  shared_ = std::move(*c);
  return true;
}

Result<bool> Shipper::Upsert(const std::vector<std::vector<std::string>>& rows,
                             const std::vector<bool>& null_args) {
  std::string sql =
      "INSERT INTO toolwarden_audit(id, replica, ts_ms, grant_name, session, server, tool, "
      "decision, rule, reason, arg_keys, args_digest, args, policy_version, outcome, latency_ms, "
      "shadow, tool_class, principal) VALUES ";
  std::vector<std::optional<std::string>> params;
  params.reserve(rows.size() * kColumns);
  for (size_t i = 0; i < rows.size(); ++i) {
    sql += i == 0 ? "(" : ",(";
    for (int j = 0; j < kColumns; ++j) {
      sql += (j == 0 ? "$" : ",$") + std::to_string(params.size() + 1);
      if (j == 12 && null_args[i]) {
        params.emplace_back(std::nullopt);
      } else {
        params.emplace_back(rows[i][static_cast<size_t>(j)]);
      }
    }
    sql += ")";
  }
  // A record shipped again (at least once) is the same row; an outcome that came since wins.
  sql += " ON CONFLICT (id) DO UPDATE SET outcome = EXCLUDED.outcome, latency_ms = EXCLUDED.latency_ms";
  auto r = shared_->Exec(sql, params);
  if (!r) return Fail(r.error());
  stats_.shipped.fetch_add(rows.size(), std::memory_order_relaxed);
  return true;
}

Result<int64_t> Shipper::ShipOnce(int64_t now_ms) {
  std::lock_guard pass(pass_mu_);
  if (local_ == nullptr) return Fail(Error::Internal("the shipper is not started"));
  if (auto c = Connect(); !c) return Fail(c.error());
  const std::string replica = options_.replica.empty() ? ThisHost() : options_.replica;
  std::vector<std::vector<std::string>> rows;
  std::vector<bool> null_args;
  std::vector<int64_t> rowids;
  auto read = [&](sqlite3_stmt* st) {
    const int64_t rowid = sqlite3_column_int64(st, 0);
    std::vector<std::string> row;
    row.reserve(kColumns);
    row.push_back(ColumnText(st, 1));  // id
    row.push_back(replica);
    for (int c = 2; c <= 18; ++c) row.push_back(ColumnText(st, c));
    null_args.push_back(sqlite3_column_type(st, 12) == SQLITE_NULL);
    rowids.push_back(rowid);
    const bool pending = row[14] == "pending";
    const int64_t ts = Whole(row[2]);
    if (pending && now_ms - ts < options_.pending_grace_ms) {
      pending_.insert(rowid);
    } else {
      pending_.erase(rowid);
    }
    rows.push_back(std::move(row));
  };
  // Records sent while pending whose outcome has come since, then records never sent.
  const std::set<int64_t> waiting = pending_;
  for (int64_t rowid : waiting) {
    SqliteStmt st;
    sqlite3_prepare_v2(local_, (std::string("SELECT ") + kLocalColumns + " FROM audit WHERE rowid = ?1").c_str(),
                       -1, &st.s, nullptr);
    sqlite3_bind_int64(st.s, 1, rowid);
    if (sqlite3_step(st.s) != SQLITE_ROW) {
      pending_.erase(rowid);  // pruned or gone: nothing left to send
      continue;
    }
    if (ColumnText(st.s, 14) == "pending" && now_ms - sqlite3_column_int64(st.s, 2) < options_.pending_grace_ms) {
      continue;
    }
    read(st.s);
  }
  const size_t resent = rows.size();
  {
    SqliteStmt st;
    sqlite3_prepare_v2(local_,
                       (std::string("SELECT ") + kLocalColumns +
                        " FROM audit WHERE rowid > ?1 ORDER BY rowid LIMIT ?2")
                           .c_str(),
                       -1, &st.s, nullptr);
    sqlite3_bind_int64(st.s, 1, sent_);
    sqlite3_bind_int(st.s, 2, options_.batch);
    int rc;
    while ((rc = sqlite3_step(st.s)) == SQLITE_ROW) read(st.s);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
      return Fail(Error::Unavailable("reading " + options_.local_path + ": " + sqlite3_errmsg(local_)));
    }
  }
  const int64_t fresh = static_cast<int64_t>(rows.size() - resent);
  if (!rows.empty()) {
    if (auto r = Upsert(rows, null_args); !r) {
      // Nothing was noted: the next pass sends the same rows again.
      for (size_t i = resent; i < rowids.size(); ++i) pending_.erase(rowids[i]);
      return Fail(r.error());
    }
  }
  if (fresh > 0) sent_ = rowids.back();
  // Everything up to the first record still waiting for its outcome is in the shared store.
  const int64_t through = pending_.empty() ? sent_ : *pending_.begin() - 1;
  if (through != stats_.through.load()) {
    SqliteStmt st;
    sqlite3_prepare_v2(local_,
                       "INSERT INTO audit_shipped(target, through) VALUES(?1, ?2) "
                       "ON CONFLICT(target) DO UPDATE SET through = excluded.through",
                       -1, &st.s, nullptr);
    sqlite3_bind_text(st.s, 1, options_.url.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st.s, 2, through);
    // Not noted (the file is busy): the rows are sent again after a restart, harmlessly.
    if (sqlite3_step(st.s) == SQLITE_DONE) {
      stats_.through.store(through);
      if (shipped_through_) shipped_through_(through);
    }
  }
  {
    // Rowids only grow (pruning takes the oldest): the backlog is a subtraction, not a count.
    SqliteStmt st;
    sqlite3_prepare_v2(local_, "SELECT MAX(rowid) FROM audit", -1, &st.s, nullptr);
    if (sqlite3_step(st.s) == SQLITE_ROW) {
      stats_.backlog.store(std::max<int64_t>(0, sqlite3_column_int64(st.s, 0) - sent_));
    }
  }
  return fresh;
}

}  // namespace tw::audit
