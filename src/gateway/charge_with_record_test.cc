// Group commit of counters and audit records on one SQLite connection: with a state file
// shared by the counters and the audit log, a call's charges are made by the audit writer
// inside the transaction that writes its record (AuditLog::Submit) — one commit for both, for
// every call of a batch; a charge that does not fit turns the record into a denial; a record
// that cannot be written takes its charges with it. Real SQLite files; another connection
// plays another process.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>

#include "approval/approval_store.h"
#include "audit/audit.h"
#include "common/random.h"
#include "common/sqlite_db.h"
#include "gateway/tool_call_guard.h"
#include "limits/counter_store.h"
#include "policy/loader.h"
#include "testing/fake_clock.h"
#include "testing/idle_approval_waiter.h"
#include "testing/manual_loop.h"

namespace tw::gateway {
namespace {

class ChargeWithRecordTest : public ::testing::Test {
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
    UseAudit(audit_.get());
    ASSERT_EQ(sqlite3_open(path_.c_str(), &other_), SQLITE_OK);
  }
  void TearDown() override {
    sqlite3_close(other_);
    guard_.reset();
    approvals_.reset();
    audit_.reset();
    store_.reset();
    for (auto suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path_ + suffix);
  }

  // The guard, recording through `log`.
  void UseAudit(audit::AuditLog* log) {
    guard_ = std::make_unique<ToolCallGuard>(GuardDeps{.policies = [this] { return policy_; },
                                                       .counters = store_.get(),
                                                       .clock = &clock_,
                                                       .server = "srv",
                                                       .audit = log,
                                                       .approvals = approvals_.get(),
                                                       .waiter = &waiter_,
                                                       .group_commit = loop_.Poster()});
  }
  GuardOutcome Call(const std::string& tool) {
    return guard_->Check(mcp::ToolCall{tool, json::object{}}, policy::Identity{"bot", "s1", {}});
  }
  // What a session does: waits for the record, then makes the outcome final.
  void Await(std::vector<GuardOutcome*> outcomes) {
    size_t done = 0;
    for (GuardOutcome* o : outcomes) {
      ASSERT_EQ(o->next, GuardOutcome::Next::kAwaitRecord);
      guard_->AwaitDurable(*o, [&done] { ++done; });
    }
    ASSERT_EQ(loop_.Run(outcomes.size()), outcomes.size());
    ASSERT_EQ(done, outcomes.size());
    for (GuardOutcome* o : outcomes) guard_->Finish(*o);
  }
  GuardOutcome Decide(const std::string& tool) {
    GuardOutcome o = Call(tool);
    Await({&o});
    return o;
  }
  // What another process sees: committed rows only.
  int64_t Committed(const std::string& sql) {
    sqlite3_stmt* st = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(other_, sql.c_str(), -1, &st, nullptr), SQLITE_OK) << sqlite3_errmsg(other_);
    const int64_t v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    return v;
  }
  int64_t CommittedCharges() { return Committed("SELECT COALESCE(SUM(value), 0) FROM counters"); }
  int64_t CommittedRecords() { return Committed("SELECT COUNT(*) FROM audit"); }

  std::string path_ = (std::filesystem::temp_directory_path() / ("tw-cwr-" + RandomHex(6) + ".db")).string();
  std::string spec_ = "sqlite:" + path_;
  std::shared_ptr<const policy::Policy> policy_;
  testing::FakeClock clock_{1'700'000'000'000};
  testing::ManualLoop loop_;
  std::unique_ptr<limits::CounterStore> store_;
  std::unique_ptr<audit::AuditLog> audit_;
  std::unique_ptr<approval::ApprovalStore> approvals_;
  testing::IdleApprovalWaiter waiter_;
  std::unique_ptr<ToolCallGuard> guard_;
  sqlite3* other_ = nullptr;
};

TEST_F(ChargeWithRecordTest, TheStoresOfAFileShareOneConnection) {
  ASSERT_NE(store_->Connection(), nullptr);
  EXPECT_EQ(store_->Connection(), audit_->Connection());
  auto memory = std::move(*audit::OpenAuditLog("memory", ""));
  EXPECT_NE(memory->Connection(), audit_->Connection());  // ":memory:" is never shared
}

TEST_F(ChargeWithRecordTest, ChargesAreDecidedAndCommittedWithTheirRecords) {
  // Four calls decided at once, against a limit of three a day.
  std::vector<GuardOutcome> calls;
  for (int i = 0; i < 4; ++i) calls.push_back(Call("echo"));
  for (const GuardOutcome& c : calls) {
    EXPECT_TRUE(c.charged_with_record);
    EXPECT_TRUE(c.admission.entries.empty());  // not known before the record's transaction
  }
  Await({&calls[0], &calls[1], &calls[2], &calls[3]});
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(calls[i].decision.verdict, policy::Verdict::kAllow);
    EXPECT_EQ(calls[i].admission.entries.size(), 1u);
    EXPECT_FALSE(calls[i].admission.audit_id.empty());
  }
  EXPECT_EQ(calls[3].decision.verdict, policy::Verdict::kDeny);
  EXPECT_EQ(calls[3].decision.rule, "tools.echo.limits[0]");
  EXPECT_TRUE(calls[3].decision.retry_after_s.has_value());
  EXPECT_TRUE(calls[3].admission.entries.empty());
  EXPECT_TRUE(calls[3].admission.audit_id.empty());
  // Committed: three charges, four records — the fourth a denial naming the limit.
  EXPECT_EQ(CommittedCharges(), 3);
  EXPECT_EQ(CommittedRecords(), 4);
  EXPECT_EQ(Committed("SELECT COUNT(*) FROM audit WHERE decision = 'deny' AND rule = "
                      "'tools.echo.limits[0]' AND outcome = 'not_forwarded'"),
            1);
}

TEST_F(ChargeWithRecordTest, AnotherProcessesChargesCount) {
  // Another process takes two of the three calls of the day…
  ASSERT_EQ(sqlite3_exec(other_, "PRAGMA busy_timeout = 5000", nullptr, nullptr, nullptr), SQLITE_OK);
  const GuardOutcome first = Decide("echo");
  ASSERT_EQ(first.decision.verdict, policy::Verdict::kAllow);
  ASSERT_EQ(sqlite3_exec(other_, "UPDATE counters SET value = value + 2", nullptr, nullptr, nullptr), SQLITE_OK);
  // …so this one no longer fits.
  EXPECT_EQ(Decide("echo").decision.rule, "tools.echo.limits[0]");
  EXPECT_EQ(CommittedCharges(), 3);
}

TEST_F(ChargeWithRecordTest, CallsThatNeedApprovalGetItInTheTransactionOfTheirRecord) {
  GuardOutcome held = Call("pay");
  EXPECT_TRUE(held.charged_with_record);  // charges, approval and record: one commit
  ASSERT_FALSE(held.approval_id.empty()) << held.decision.reason;
  Await({&held});
  EXPECT_EQ(held.decision.verdict, policy::Verdict::kAllow);
  EXPECT_EQ(held.next, GuardOutcome::Next::kAwaitApproval);
  EXPECT_FALSE(held.approval_id.empty());
  EXPECT_EQ(Committed("SELECT COUNT(*) FROM approvals WHERE state = 'pending' AND id = '" +
                      held.approval_id + "'"),
            1);
  EXPECT_EQ(CommittedCharges(), 1);
  EXPECT_EQ(Committed("SELECT COUNT(*) FROM audit WHERE decision = 'approval'"), 1);
  guard_->Settle(held.admission, CallOutcome::kApprovalDenied);  // refunds "pay"…
  audit_->Flush();                                               // …by the writer thread
  EXPECT_EQ(CommittedCharges(), 0);
}

TEST_F(ChargeWithRecordTest, AClosedSessionsApprovalIsWithdrawnAfterItIsCreated) {
  GuardOutcome held = Call("pay");
  const std::string id = held.approval_id;
  // The session closes before the record's transaction ran (Session::Close).
  guard_->Drop(held, CallOutcome::kCancelled, "the client session closed");
  EXPECT_EQ(held.next, GuardOutcome::Next::kAnswer);
  ASSERT_EQ(loop_.Run(1), 1u);
  audit_->Flush();
  EXPECT_EQ(
      Committed("SELECT COUNT(*) FROM approvals WHERE state = 'cancelled' AND id = '" + id + "'"),
      1);
  EXPECT_EQ(CommittedCharges(), 0);
}

TEST_F(ChargeWithRecordTest, AnEventLoopNeverWaitsForALockedStateFile) {
  const auto saved = SqliteBusyTimeout();
  SetSqliteBusyTimeout(std::chrono::minutes(10));  // a loop that waited would hang the test
  ASSERT_EQ(sqlite3_exec(other_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  GuardOutcome first, held;
  {
    SqliteNoWait loop;
    first = Call("echo");
    held = Call("pay");
    guard_->Settle(Admission{{{limits::Charge{"k", 1, 3, 0}, policy::RefundOn::kNever}}, "", 0},
                   CallOutcome::kNotSent);
  }
  EXPECT_EQ(first.next, GuardOutcome::Next::kAwaitRecord);
  EXPECT_EQ(held.next, GuardOutcome::Next::kAwaitRecord);
  ASSERT_EQ(sqlite3_exec(other_, "ROLLBACK", nullptr, nullptr, nullptr), SQLITE_OK);
  Await({&first, &held});
  SetSqliteBusyTimeout(saved);
  EXPECT_EQ(first.decision.verdict, policy::Verdict::kAllow);
  EXPECT_EQ(held.decision.verdict, policy::Verdict::kAllow);
  EXPECT_FALSE(held.approval_id.empty());
  EXPECT_EQ(CommittedRecords(), 2);
  EXPECT_EQ(Committed("SELECT COUNT(*) FROM approvals"), 1);
}

// The real audit log, except that it can be made to fail a record the real way: inside the
// record's transaction its table goes away, so the insert fails and SQLite rolls the record
// back — with the charges made before it (and the table).
class FailingRecordAudit : public audit::AuditLog {
 public:
  explicit FailingRecordAudit(audit::AuditLog& inner) : inner_(inner) {}
  Result<bool> Write(const audit::Record& r) override { return inner_.Write(r); }
  void Submit(audit::Record r, std::function<void(audit::Record&)> in_txn,
              std::function<void(bool)> done) override {
    auto* conn = static_cast<SqliteConnection*>(const_cast<void*>(inner_.Connection()));
    if (fail) {
      in_txn = [in_txn = std::move(in_txn), conn](audit::Record& rec) {
        if (in_txn) in_txn(rec);
        EXPECT_EQ(sqlite3_exec(conn->db, "DROP TABLE audit", nullptr, nullptr, nullptr), SQLITE_OK);
      };
    } else if (!drop_before.empty()) {
      in_txn = [in_txn = std::move(in_txn), conn, table = drop_before](audit::Record& rec) {
        EXPECT_EQ(
            sqlite3_exec(conn->db, ("DROP TABLE " + table).c_str(), nullptr, nullptr, nullptr),
            SQLITE_OK);
        if (in_txn) in_txn(rec);
      };
    }
    inner_.Submit(std::move(r), std::move(in_txn), std::move(done));
  }
  void Run(std::function<void()> in_txn, std::function<void(bool)> done) override {
    inner_.Run(std::move(in_txn), std::move(done));
  }
  void Complete(const std::string& id, const std::string& outcome, int64_t latency_ms) override {
    inner_.Complete(id, outcome, latency_ms);
  }
  void Flush() override { inner_.Flush(); }
  const void* Connection() const override { return inner_.Connection(); }
  bool fail = false;        // the record's insert fails
  std::string drop_before;  // this table goes away before the guard's writes

 private:
  audit::AuditLog& inner_;
};

TEST_F(ChargeWithRecordTest, AnApprovalThatCannotBeCreatedDeniesTheCallAndKeepsNoCharge) {
  FailingRecordAudit failing(*audit_);
  UseAudit(&failing);
  failing.drop_before = "approvals";  // the approval's insert fails inside the transaction
  GuardOutcome held = Call("pay");
  Await({&held});
  EXPECT_EQ(held.decision.verdict, policy::Verdict::kDeny);
  EXPECT_NE(held.decision.reason.find("approvals cannot be recorded"), std::string::npos)
      << held.decision.reason;
  EXPECT_TRUE(held.approval_id.empty());
  EXPECT_TRUE(held.admission.entries.empty());
  EXPECT_EQ(CommittedCharges(), 0);
  EXPECT_EQ(
      Committed("SELECT COUNT(*) FROM audit WHERE decision = 'deny' AND outcome = 'not_forwarded'"),
      1);
}

TEST_F(ChargeWithRecordTest, ARecordThatCannotBeWrittenTakesItsChargesAwayOnceNotTwice) {
  FailingRecordAudit failing(*audit_);
  UseAudit(&failing);
  ASSERT_EQ(Decide("echo").decision.verdict, policy::Verdict::kAllow);
  GuardOutcome second = Call("echo");
  failing.fail = true;
  GuardOutcome lost = Call("echo");
  failing.fail = false;
  Await({&second, &lost});
  EXPECT_EQ(second.decision.verdict, policy::Verdict::kAllow);  // its batch neighbour stays
  EXPECT_EQ(lost.decision.verdict, policy::Verdict::kDeny);
  EXPECT_EQ(lost.decision.rule, "audit");
  EXPECT_TRUE(lost.admission.entries.empty());  // nothing to refund: the rollback took it
  EXPECT_EQ(CommittedCharges(), 2);
  EXPECT_EQ(CommittedRecords(), 2);
  EXPECT_EQ(Decide("echo").decision.verdict, policy::Verdict::kAllow);  // 3rd of 3: still fits
  EXPECT_EQ(CommittedCharges(), 3);
}

TEST_F(ChargeWithRecordTest, AStateFileLockedPastTheWaitDeniesTheCallAndChargesNothing) {
  // Another process holds the write lock longer than a writer waits for it (state_timeout).
  const auto saved = SqliteBusyTimeout();
  SetSqliteBusyTimeout(std::chrono::milliseconds(200));
  ASSERT_EQ(sqlite3_exec(other_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  GuardOutcome blocked = Call("echo");
  Await({&blocked});
  SetSqliteBusyTimeout(saved);
  EXPECT_EQ(blocked.decision.verdict, policy::Verdict::kDeny);
  EXPECT_EQ(blocked.decision.rule, "audit");  // fail closed: not recorded, not forwarded
  EXPECT_TRUE(blocked.admission.entries.empty());
  ASSERT_EQ(sqlite3_exec(other_, "ROLLBACK", nullptr, nullptr, nullptr), SQLITE_OK);
  EXPECT_EQ(CommittedCharges(), 0);
  EXPECT_EQ(CommittedRecords(), 0);
  EXPECT_EQ(Decide("echo").decision.verdict, policy::Verdict::kAllow);  // and then it recovers
  EXPECT_EQ(CommittedCharges(), 1);
}

TEST_F(ChargeWithRecordTest, AnAbandonedCallGivesItsChargeBackWhenItsRecordIsWritten) {
  GuardOutcome gone = Call("echo");
  guard_->Drop(gone, CallOutcome::kCancelled, "the client session closed");  // before the record was written
  ASSERT_EQ(loop_.Run(1), 1u);
  audit_->Flush();
  EXPECT_EQ(CommittedCharges(), 0);
  EXPECT_EQ(Committed("SELECT COUNT(*) FROM audit WHERE outcome = 'cancelled'"), 1);
}

}  // namespace
}  // namespace tw::gateway
