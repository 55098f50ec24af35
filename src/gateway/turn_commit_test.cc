// Group commit of counters and audit records on one SQLite connection (CounterStore::
// TryChargeInTurn): charges made while deciding the calls of one event-loop turn become
// durable with the turn's audit records, in one commit; every other store writes inside the
// open turn instead of waiting on a lock its own thread holds. Real SQLite files; another
// connection plays another process.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>

#include "approval/approval_store.h"
#include "audit/audit.h"
#include "auth/grant_store.h"
#include "catalog/pin_store.h"
#include "common/random.h"
#include "common/sqlite_db.h"
#include "gateway/tool_call_guard.h"
#include "limits/counter_store.h"
#include "policy/loader.h"
#include "testing/fake_clock.h"
#include "testing/idle_approval_waiter.h"

namespace tw::gateway {
namespace {

class TurnCommitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto p = policy::CompilePolicy(
        R"({"version":"1","default":"deny","tools":{"echo":{"limits":[{"counter":"echo","window":"day","max":3}]},
            "pay":{"action":"require_approval","limits":[{"counter":"pay","window":"day","max":5}]}}})",
        "p.json", policy::FileFormat::kJson);
    ASSERT_TRUE(p.policy);
    policy_ = p.policy;
    store_ = std::move(*limits::OpenStateStore(spec_));
    audit_ = std::move(*audit::OpenAuditLog(spec_, ""));
    approvals_ = std::move(*approval::OpenApprovalStore(spec_));
    pins_ = std::move(*catalog::OpenPinStore(spec_));
    grants_ = std::move(*auth::OpenGrantStore(spec_));
    guard_ = std::make_unique<ToolCallGuard>([this] { return policy_; }, *store_, clock_);
    guard_->SetAudit(audit_.get(), "srv", false);
    guard_->SetApprovals(approvals_.get(), &waiter_);
    guard_->SetGroupCommit([this](std::function<void()> fn) { posted_.push_back(std::move(fn)); });
    ASSERT_EQ(sqlite3_open(path_.c_str(), &other_), SQLITE_OK);
  }
  void TearDown() override {
    sqlite3_close(other_);
    guard_.reset();
    grants_.reset();
    pins_.reset();
    approvals_.reset();
    audit_.reset();
    store_.reset();
    for (auto suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path_ + suffix);
  }

  GuardOutcome Call(const std::string& tool) {
    return guard_->Check(mcp::ToolCall{tool, json::object{}}, policy::Identity{"bot", "s1", {}});
  }
  // The end of the event-loop turn: what the gateway posted runs (the group commit).
  void EndTurn() {
    auto posted = std::move(posted_);
    posted_.clear();
    for (auto& fn : posted) fn();
  }
  // What another process sees: committed rows only.
  int64_t Committed(const char* sql) {
    sqlite3_stmt* st = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(other_, sql, -1, &st, nullptr), SQLITE_OK) << sqlite3_errmsg(other_);
    const int64_t v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    return v;
  }
  int64_t CommittedCharges() { return Committed("SELECT COALESCE(SUM(value), 0) FROM counters"); }
  int64_t CommittedRecords() { return Committed("SELECT COUNT(*) FROM audit"); }

  std::string path_ = (std::filesystem::temp_directory_path() / ("tw-turn-" + RandomHex(6) + ".db")).string();
  std::string spec_ = "sqlite:" + path_;
  std::shared_ptr<const policy::Policy> policy_;
  testing::FakeClock clock_{1'700'000'000'000};
  std::unique_ptr<limits::CounterStore> store_;
  std::unique_ptr<audit::AuditLog> audit_;
  std::unique_ptr<approval::ApprovalStore> approvals_;
  std::unique_ptr<catalog::PinStore> pins_;
  std::unique_ptr<auth::GrantStore> grants_;
  testing::IdleApprovalWaiter waiter_;
  std::unique_ptr<ToolCallGuard> guard_;
  std::vector<std::function<void()>> posted_;
  sqlite3* other_ = nullptr;
};

TEST_F(TurnCommitTest, TheStoresOfAFileShareOneConnection) {
  ASSERT_NE(store_->Connection(), nullptr);
  EXPECT_EQ(store_->Connection(), audit_->Connection());
  auto memory = std::move(*audit::OpenAuditLog("memory", ""));
  EXPECT_NE(memory->Connection(), audit_->Connection());  // ":memory:" is never shared
}

TEST_F(TurnCommitTest, ChargesBecomeDurableWithTheTurnsAuditRecordsInOneCommit) {
  EXPECT_EQ(Call("echo").decision.verdict, policy::Verdict::kAllow);
  EXPECT_EQ(Call("echo").decision.verdict, policy::Verdict::kAllow);
  ASSERT_EQ(posted_.size(), 1u);  // one commit scheduled for the whole turn
  // Not yet committed: another process sees neither the charges nor the records…
  EXPECT_EQ(CommittedCharges(), 0);
  EXPECT_EQ(CommittedRecords(), 0);
  // …while this one counts them already: the fourth call of the day is refused.
  EXPECT_EQ(Call("echo").decision.verdict, policy::Verdict::kAllow);
  EXPECT_EQ(Call("echo").decision.rule, "tools.echo.limits[0]");
  EndTurn();
  EXPECT_EQ(CommittedCharges(), 3);  // the refused call charged nothing, the others all stay
  EXPECT_EQ(CommittedRecords(), 4);
  // The next turn starts a new transaction.
  EXPECT_EQ(Call("echo").decision.rule, "tools.echo.limits[0]");
  EndTurn();
  EXPECT_EQ(CommittedRecords(), 5);
}

TEST_F(TurnCommitTest, EveryStoreWritesInsideAnOpenTurnWithoutWaitingForIt) {
  ASSERT_EQ(Call("echo").decision.verdict, policy::Verdict::kAllow);  // the turn is open
  // An approval in the same turn (created by the guard on the shared connection).
  auto held = Call("pay");
  ASSERT_FALSE(held.approval_id.empty()) << held.decision.reason;
  // Pins, grants and a refund, as other sessions and requests of the same turn would.
  EXPECT_TRUE(pins_->Observe("srv", "echo", "h1", R"({"name":"echo"})", clock_.NowMs()));
  auth::Grant g;
  g.name = "ci";
  EXPECT_TRUE(grants_->Create(g, clock_.NowMs()));
  guard_->Settle(held.admission, CallOutcome::kApprovalDenied);  // refunds "pay"
  EXPECT_EQ(Committed("SELECT COUNT(*) FROM approvals"), 0);
  EndTurn();
  EXPECT_EQ(Committed("SELECT COUNT(*) FROM approvals"), 1);
  EXPECT_EQ(Committed("SELECT COUNT(*) FROM pins"), 1);
  EXPECT_EQ(Committed("SELECT COUNT(*) FROM grants"), 1);
  EXPECT_EQ(CommittedCharges(), 1);  // echo; pay was refunded
  EXPECT_EQ(CommittedRecords(), 2);
}

TEST_F(TurnCommitTest, AnAuditWriteInsideATurnIsDurableWhenItReturns) {
  ASSERT_EQ(Call("echo").decision.verdict, policy::Verdict::kAllow);
  audit::Record r;
  r.id = audit::NewRecordId();
  r.ts_ms = clock_.NowMs();
  r.grant = "admin";
  r.server = "(admin)";
  r.tool = "grants.create";
  r.decision = "allow";
  ASSERT_TRUE(audit_->Write(r));
  EXPECT_EQ(CommittedRecords(), 1);  // the written one; the staged one waits for the turn
  EXPECT_EQ(CommittedCharges(), 1);  // committed with it
  EndTurn();
  EXPECT_EQ(CommittedRecords(), 2);
}

TEST_F(TurnCommitTest, AnotherProcessWaitsForTheTurnNotLonger) {
  ASSERT_EQ(Call("echo").decision.verdict, policy::Verdict::kAllow);
  // The turn holds the write lock: another writer gets SQLITE_BUSY (no busy wait here)…
  EXPECT_EQ(sqlite3_exec(other_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_BUSY);
  EndTurn();
  // …and has it once the turn has committed.
  EXPECT_EQ(sqlite3_exec(other_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  EXPECT_EQ(sqlite3_exec(other_, "ROLLBACK", nullptr, nullptr, nullptr), SQLITE_OK);
}

// The real audit log, except that the group commit can be made to fail: it then rolls the
// turn back, as a failed COMMIT does.
class FailingCommitAudit : public audit::AuditLog {
 public:
  explicit FailingCommitAudit(audit::AuditLog& inner) : inner_(inner) {}
  Result<bool> Write(const audit::Record& r) override { return inner_.Write(r); }
  void Stage(audit::Record r) override { inner_.Stage(std::move(r)); }
  Result<bool> CommitStaged() override {
    if (!fail) return inner_.CommitStaged();
    auto* conn = static_cast<SqliteConnection*>(const_cast<void*>(inner_.Connection()));
    std::lock_guard lock(conn->mu);
    sqlite3_exec(conn->db, "ROLLBACK", nullptr, nullptr, nullptr);
    return Fail(Error::Unavailable("disk full (test)"));
  }
  void Complete(const std::string& id, const std::string& outcome, int64_t latency_ms) override {
    inner_.Complete(id, outcome, latency_ms);
  }
  void Flush() override { inner_.Flush(); }
  const void* Connection() const override { return inner_.Connection(); }
  bool fail = false;

 private:
  audit::AuditLog& inner_;
};

TEST_F(TurnCommitTest, AFailedTurnCommitTakesItsChargesAwayOnceNotTwice) {
  FailingCommitAudit failing(*audit_);
  guard_->SetAudit(&failing, "srv", false);
  ASSERT_EQ(Call("echo").decision.verdict, policy::Verdict::kAllow);
  ASSERT_EQ(Call("echo").decision.verdict, policy::Verdict::kAllow);
  EndTurn();
  ASSERT_EQ(CommittedCharges(), 2);
  failing.fail = true;
  GuardOutcome lost = Call("echo");
  ASSERT_EQ(lost.decision.verdict, policy::Verdict::kAllow);
  EXPECT_TRUE(lost.charged_in_turn);
  bool ok = true;
  guard_->AwaitDurable([&](bool r) { ok = r; });
  EndTurn();
  ASSERT_FALSE(ok);
  guard_->RecordFailed(lost);  // what the session does when the commit failed
  EXPECT_EQ(lost.decision.verdict, policy::Verdict::kDeny);
  EndTurn();
  EXPECT_EQ(CommittedCharges(), 2);  // the lost turn's charge is gone, the earlier two stay
  failing.fail = false;
  EXPECT_EQ(Call("echo").decision.verdict, policy::Verdict::kAllow);  // 3rd of 3: still fits
  EndTurn();
  EXPECT_EQ(CommittedCharges(), 3);
}

}  // namespace
}  // namespace tw::gateway
