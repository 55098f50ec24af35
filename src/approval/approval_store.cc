#include "approval/approval_store.h"

#include <sqlite3.h>

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <mutex>

#include "common/sqlite_db.h"
#include "redis/redis_client.h"

namespace tw::approval {

std::string_view StateName(State s) {
  switch (s) {
    case State::kPending:
      return "pending";
    case State::kApproved:
      return "approved";
    case State::kDenied:
      return "denied";
    case State::kExpired:
      return "expired";
    case State::kCancelled:
      return "cancelled";
    case State::kAbandoned:
      return "abandoned";
  }
  return "?";
}

std::string ThisOwner() {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  return std::string(host) + ":" + std::to_string(getpid());
}

bool OwnerAlive(const std::string& owner) {
  const size_t colon = owner.rfind(':');
  if (colon == std::string::npos) return true;
  const std::string me = ThisOwner();
  if (owner.substr(0, colon) != me.substr(0, me.rfind(':'))) return true;  // another host
  const pid_t pid = static_cast<pid_t>(std::atoll(owner.c_str() + colon + 1));
  if (pid <= 0) return true;
  return kill(pid, 0) == 0 || errno != ESRCH;
}

State StateFrom(std::string_view s) {
  for (State st : {State::kPending, State::kApproved, State::kDenied, State::kExpired,
                   State::kCancelled, State::kAbandoned}) {
    if (StateName(st) == s) return st;
  }
  return State::kAbandoned;
}

namespace {

constexpr const char* kColumns =
    "id, created_ms, expires_ms, grant_name, session, server, tool, args, args_digest, state, "
    "resolved_by, resolved_ms, reason, owner";

class SqliteApprovalStore : public ApprovalStore, SqliteStoreBase {
 public:
  explicit SqliteApprovalStore(std::shared_ptr<SqliteConnection> conn)
      : SqliteStoreBase(std::move(conn), "approval store") {}

  const void* Connection() const override { return conn_.get(); }

  Result<bool> Create(const Approval& a) override {
    std::lock_guard lock(mu_);
    SqliteStmt st;
    sqlite3_prepare_v2(db_,
                       "INSERT INTO approvals(id, created_ms, expires_ms, grant_name, session, "
                       "server, tool, args, args_digest, state, resolved_by, resolved_ms, reason, "
                       "owner) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,'pending','',0,'',?10)",
                       -1, &st.s, nullptr);
    sqlite3_bind_text(st.s, 1, a.id.c_str(), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st.s, 2, a.created_ms);
    sqlite3_bind_int64(st.s, 3, a.expires_ms);
    int i = 4;
    for (const std::string* v :
         {&a.grant, &a.session, &a.server, &a.tool, &a.args, &a.args_digest, &a.owner}) {
      sqlite3_bind_text(st.s, i++, v->c_str(), -1, SQLITE_STATIC);
    }
    if (sqlite3_step(st.s) != SQLITE_DONE) return Fail(Err());
    return true;
  }

  Result<std::optional<Approval>> Get(const std::string& id) override {
    std::lock_guard lock(mu_);
    return GetLocked(id);
  }

  Result<Approval> Resolve(const std::string& id, State to, const std::string& by,
                           const std::string& reason, int64_t now_ms) override {
    std::lock_guard lock(mu_);
    WriteTxn txn(stmts_, db_, what_, path_);
    if (auto r = txn.Begin(); !r) return Fail(r.error());
    auto current = GetLocked(id);
    auto fail = [&](Error e) { return tl::unexpected<Error>(std::move(e)); };  // txn rolls back
    if (!current) return fail(current.error());
    if (!*current) return fail(Error::NotFound("no approval " + id));
    const Approval& a = **current;
    if (a.state != State::kPending) {
      return fail(Error::InvalidArgument("approval " + id + " is already " +
                                         std::string(StateName(a.state)) +
                                         (a.resolved_by.empty() ? "" : " (by " + a.resolved_by + ")")));
    }
    if ((to == State::kApproved || to == State::kDenied) && now_ms >= a.expires_ms) {
      return fail(Error::InvalidArgument("approval " + id + " has expired"));
    }
    SqliteStmt st;
    sqlite3_prepare_v2(db_,
                       "UPDATE approvals SET state=?2, resolved_by=?3, resolved_ms=?4, reason=?5 "
                       "WHERE id=?1",
                       -1, &st.s, nullptr);
    const std::string state(StateName(to));
    sqlite3_bind_text(st.s, 1, id.c_str(), -1, SQLITE_STATIC);
    sqlite3_bind_text(st.s, 2, state.c_str(), -1, SQLITE_STATIC);
    sqlite3_bind_text(st.s, 3, by.c_str(), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st.s, 4, now_ms);
    sqlite3_bind_text(st.s, 5, reason.c_str(), -1, SQLITE_STATIC);
    if (sqlite3_step(st.s) != SQLITE_DONE) return fail(Err());
    if (auto r = txn.Commit(); !r) return fail(r.error());
    Approval out = a;
    out.state = to;
    out.resolved_by = by;
    out.resolved_ms = now_ms;
    out.reason = reason;
    return out;
  }

  Result<std::vector<Approval>> List(bool pending_only) override {
    std::lock_guard lock(mu_);
    SqliteStmt st;
    const std::string sql = std::string("SELECT ") + kColumns + " FROM approvals" +
                            (pending_only ? " WHERE state = 'pending'" : "") +
                            " ORDER BY created_ms DESC LIMIT 500";
    sqlite3_prepare_v2(db_, sql.c_str(), -1, &st.s, nullptr);
    std::vector<Approval> out;
    while (sqlite3_step(st.s) == SQLITE_ROW) out.push_back(Row(st.s));
    return out;
  }

  Result<int> AbandonOrphans(int64_t now_ms) override {
    std::vector<std::string> orphans;
    {
      std::lock_guard lock(mu_);
      SqliteStmt st;
      sqlite3_prepare_v2(db_, "SELECT id, owner FROM approvals WHERE state = 'pending'", -1, &st.s,
                         nullptr);
      while (sqlite3_step(st.s) == SQLITE_ROW) {
        if (!OwnerAlive(ColumnText(st.s, 1))) orphans.push_back(ColumnText(st.s, 0));
      }
    }
    int n = 0;
    for (const auto& id : orphans) {
      if (Resolve(id, State::kAbandoned, "", "the gateway holding the call stopped", now_ms)) ++n;
    }
    return n;
  }

 private:

  static Approval Row(sqlite3_stmt* s) {
    Approval a;
    a.id = ColumnText(s, 0);
    a.created_ms = sqlite3_column_int64(s, 1);
    a.expires_ms = sqlite3_column_int64(s, 2);
    a.grant = ColumnText(s, 3);
    a.session = ColumnText(s, 4);
    a.server = ColumnText(s, 5);
    a.tool = ColumnText(s, 6);
    a.args = ColumnText(s, 7);
    a.args_digest = ColumnText(s, 8);
    a.state = StateFrom(ColumnText(s, 9));
    a.resolved_by = ColumnText(s, 10);
    a.resolved_ms = sqlite3_column_int64(s, 11);
    a.reason = ColumnText(s, 12);
    a.owner = ColumnText(s, 13);
    return a;
  }

  Result<std::optional<Approval>> GetLocked(const std::string& id) {
    SqliteStmt st;
    const std::string sql = std::string("SELECT ") + kColumns + " FROM approvals WHERE id = ?1";
    sqlite3_prepare_v2(db_, sql.c_str(), -1, &st.s, nullptr);
    sqlite3_bind_text(st.s, 1, id.c_str(), -1, SQLITE_STATIC);
    const int rc = sqlite3_step(st.s);
    if (rc == SQLITE_ROW) return std::optional<Approval>(Row(st.s));
    if (rc == SQLITE_DONE) return std::optional<Approval>();
    return Fail(Err());
  }
};

}  // namespace

Result<std::unique_ptr<ApprovalStore>> OpenApprovalStore(const std::string& spec) {
  if (redis::IsRedisUrl(spec)) return OpenRedisApprovalStore(spec);
  auto spec_path = SqlitePathForSpec(spec);
  if (!spec_path) return Fail(spec_path.error());
  const std::string& path = *spec_path;
  auto conn = OpenSharedSqlite(
      path, "approval store",
      {"CREATE TABLE IF NOT EXISTS approvals(id TEXT PRIMARY KEY, created_ms INTEGER NOT NULL, "
       "expires_ms INTEGER NOT NULL, grant_name TEXT NOT NULL, session TEXT NOT NULL, "
       "server TEXT NOT NULL, tool TEXT NOT NULL, args TEXT NOT NULL, args_digest TEXT NOT NULL, "
       "state TEXT NOT NULL, resolved_by TEXT NOT NULL, resolved_ms INTEGER NOT NULL, "
       "reason TEXT NOT NULL, owner TEXT NOT NULL DEFAULT '')"});
  if (!conn) return Fail(conn.error());  // files from before `owner`: common/state_schema.cc
  return std::unique_ptr<ApprovalStore>(std::make_unique<SqliteApprovalStore>(std::move(*conn)));
}

}  // namespace tw::approval
