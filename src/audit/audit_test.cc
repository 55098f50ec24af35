#include "audit/audit.h"

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include <cctype>
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <thread>

#include "common/random.h"
#include "common/sqlite_db.h"

namespace tw::audit {
namespace {

namespace fs = std::filesystem;

Record Make(std::string tool, std::string decision, int64_t ts, std::string outcome = "pending") {
  Record r;
  r.id = RandomHex(16);
  r.ts_ms = ts;
  r.grant = "local";
  r.session = "s1";
  r.server = "srv";
  r.tool = std::move(tool);
  r.decision = std::move(decision);
  r.rule = "default";
  r.arg_keys = {"amount", "reason", "a \"quoted\" k\u00e9y\n"};
  r.args_digest = "abc";
  r.policy_version = "v1";
  r.outcome = std::move(outcome);
  return r;
}

TEST(AuditTest, WritesCompletesAndQueriesRecordsThatSurviveReopening) {
  const fs::path dir = fs::temp_directory_path() / ("tw-audit-" + RandomHex(6));
  fs::create_directories(dir);
  const std::string spec = "sqlite:" + (dir / "state.db").string();
  const std::string lines = (dir / "audit.jsonl").string();
  std::string allowed_id;
  {
    auto log = OpenAuditLog(spec, lines);
    ASSERT_TRUE(log.has_value()) << log.error().message();
    Record allowed = Make("refund", "allow", 1000);
    allowed_id = allowed.id;
    ASSERT_TRUE((*log)->Write(allowed).has_value());
    ASSERT_TRUE((*log)->Write(Make("delete", "deny", 2000, "not_forwarded")).has_value());
    ASSERT_TRUE((*log)->Write(Make("refund", "allow", 3000)).has_value());
    (*log)->Complete(allowed_id, "tool_error", 42);
    (*log)->Flush();
  }
  auto all = QueryAudit(spec, Query{});
  ASSERT_TRUE(all.has_value());
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].ts_ms, 3000) << "newest first";
  EXPECT_EQ((*all)[0].outcome, "pending") << "a call that never ended stays visible as such";
  EXPECT_EQ((*all)[2].outcome, "tool_error");
  EXPECT_EQ((*all)[2].latency_ms, 42);
  EXPECT_EQ((*all)[2].arg_keys,
            (std::vector<std::string>{"amount", "reason", "a \"quoted\" k\u00e9y\n"}));
  Query denied;
  denied.decision = "deny";
  EXPECT_EQ(QueryAudit(spec, denied)->size(), 1u);
  Query since;
  since.since_ms = 1500;
  since.tool = "refund";
  EXPECT_EQ(QueryAudit(spec, since)->size(), 1u);

  // The JSON lines mirror: one line per call once it is complete (the pending one is not).
  std::ifstream in(lines);
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    json::value v = json::parse(line);
    EXPECT_NE(v.at("outcome").get_string(), "pending");
    ++n;
  }
  EXPECT_EQ(n, 2);
  fs::remove_all(dir);
}

// Submit: records written off the caller's thread in batches, whatever the file's schema —
// one made before `id` lost its index completes records just the same.
TEST(AuditTest, SubmittedRecordsAreWrittenAndCompletedInNewAndOldFiles) {
  for (const bool old_schema : {false, true}) {
    SCOPED_TRACE(old_schema ? "old schema" : "new schema");
    const fs::path dir = fs::temp_directory_path() / ("tw-audit-" + RandomHex(6));
    fs::create_directories(dir);
    const fs::path file = dir / "state.db";
    const std::string spec = "sqlite:" + file.string();
    if (old_schema) {
      sqlite3* db = nullptr;
      ASSERT_EQ(sqlite3_open(file.c_str(), &db), SQLITE_OK);
      ASSERT_EQ(sqlite3_exec(db,
                             "CREATE TABLE audit(id TEXT PRIMARY KEY, ts_ms INTEGER NOT NULL, "
                             "grant_name TEXT NOT NULL, session TEXT NOT NULL, server TEXT NOT NULL, "
                             "tool TEXT NOT NULL, decision TEXT NOT NULL, rule TEXT NOT NULL, reason "
                             "TEXT NOT NULL, arg_keys TEXT NOT NULL, args_digest TEXT NOT NULL, args "
                             "TEXT, policy_version TEXT NOT NULL, outcome TEXT NOT NULL, latency_ms "
                             "INTEGER NOT NULL)",
                             nullptr, nullptr, nullptr),
                SQLITE_OK);
      sqlite3_close(db);
    }
    {
      auto log = OpenAuditLog(spec, "");
      ASSERT_TRUE(log.has_value()) << log.error().message();
      std::mutex mu;
      std::vector<bool> done;
      std::vector<std::string> ids;
      for (int i = 0; i < 50; ++i) {
        Record r = Make(i % 2 ? "refund" : "delete", i % 2 ? "allow" : "deny", 1000 + i,
                        i % 2 ? "pending" : "not_forwarded");
        ids.push_back(r.id);
        (*log)->Submit(std::move(r),
                       [i](Record& rec) {
                         if (i == 7) rec.reason = "changed inside the transaction";
                       },
                       [&](bool ok) {
                         std::lock_guard lock(mu);
                         done.push_back(ok);
                       });
      }
      (*log)->Flush();
      {
        std::lock_guard lock(mu);
        ASSERT_EQ(done.size(), 50u);
        for (bool ok : done) EXPECT_TRUE(ok);
      }
      for (int i = 1; i < 50; i += 2) (*log)->Complete(ids[i], "ok", i);
      (*log)->Flush();
    }
    Query q;
    q.limit = 100;
    auto all = QueryAudit(spec, q);
    ASSERT_TRUE(all.has_value());
    ASSERT_EQ(all->size(), 50u);
    int completed = 0;
    for (const Record& r : *all) {
      if (r.outcome == "ok") ++completed;
      EXPECT_NE(r.outcome, "pending");
      if (r.ts_ms == 1007) {
        EXPECT_EQ(r.reason, "changed inside the transaction");
      }
    }
    EXPECT_EQ(completed, 25);
    fs::remove_all(dir);
  }
}

// What an event loop sees when another process holds the state file: Submit hands the record
// to the writer thread instead of waiting for the lock on the caller's thread, and the writer
// gives up after the state timeout, failing the record (its call is then denied).
TEST(AuditTest, ALockedStateFileIsWaitedForByTheWriterNeverByALoop) {
  const fs::path dir = fs::temp_directory_path() / ("tw-audit-" + RandomHex(6));
  fs::create_directories(dir);
  const std::string file = (dir / "state.db").string();
  const auto saved = SqliteBusyTimeout();
  SetSqliteBusyTimeout(std::chrono::minutes(10));  // a loop that waited would hang the test
  {
    auto log = OpenAuditLog("sqlite:" + file, "");
    ASSERT_TRUE(log.has_value()) << log.error().message();
    sqlite3* other = nullptr;
    ASSERT_EQ(sqlite3_open(file.c_str(), &other), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
    std::atomic<int> written{0}, failed{0};
    std::atomic<bool> ran_here{false};
    const auto loop_thread = std::this_thread::get_id();
    {
      SqliteNoWait loop;
      // Alone after a quiet spell: the record would be written on this thread, were the file
      // not locked.
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      (*log)->Submit(Make("echo", "allow", 1), {}, [&](bool ok) {
        if (std::this_thread::get_id() == loop_thread) ran_here = true;
        ++(ok ? written : failed);
      });
      (*log)->Run([] {}, [&](bool ok) { ++(ok ? written : failed); });
    }
    EXPECT_EQ(written + failed, 0);  // waiting for the lock, on the writer thread
    ASSERT_EQ(sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr), SQLITE_OK);
    (*log)->Flush();
    EXPECT_EQ(written, 2);
    EXPECT_FALSE(ran_here);
    // Past the state timeout the writer gives up: the record fails, nothing is kept.
    SetSqliteBusyTimeout(std::chrono::milliseconds(50));
    ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
    (*log)->Submit(Make("echo", "allow", 2), {}, [&](bool ok) { ++(ok ? written : failed); });
    (*log)->Flush();
    EXPECT_EQ(failed, 1);
    ASSERT_EQ(sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(other);
  }
  SetSqliteBusyTimeout(saved);
  Query q;
  auto all = QueryAudit("sqlite:" + file, q);
  ASSERT_TRUE(all.has_value());
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ(all->front().ts_ms, 1);
  fs::remove_all(dir);
}

TEST(AuditTest, AConnectionInAnotherThreadsHandsIsNotWaitedForByALoop) {
  const fs::path dir = fs::temp_directory_path() / ("tw-audit-" + RandomHex(6));
  fs::create_directories(dir);
  const std::string file = (dir / "state.db").string();
  {
    auto log = OpenAuditLog("sqlite:" + file, "");
    ASSERT_TRUE(log.has_value()) << log.error().message();
    // The connection every store of this process shares, held by another thread — as the
    // writer holds it while it commits a batch, or another loop while it reads.
    auto conn = OpenSharedSqlite(file, "test", {});
    ASSERT_TRUE(conn.has_value());
    std::promise<void> held, release;
    std::thread holder([&, c = *conn] {
      std::lock_guard lock(c->mu);
      held.set_value();
      release.get_future().wait();
    });
    held.get_future().wait();
    std::atomic<int> written{0};
    std::atomic<bool> ran_on_loop{false};
    auto loop = std::async(std::launch::async, [&] {
      SqliteNoWait no_wait;
      const auto me = std::this_thread::get_id();
      // Alone after a quiet spell: a record the loop would write itself, were the connection free.
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      (*log)->Submit(Make("echo", "allow", 1), {}, [&, me](bool ok) {
        if (std::this_thread::get_id() == me) ran_on_loop = true;
        if (ok) ++written;
      });
    });
    const bool returned = loop.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
    release.set_value();
    holder.join();
    loop.wait();
    EXPECT_TRUE(returned) << "Submit on a loop waited for the connection";
    (*log)->Flush();
    EXPECT_EQ(written, 1);
    EXPECT_FALSE(ran_on_loop);
  }
  fs::remove_all(dir);
}

TEST(AuditTest, CallsMadeOneAtATimeAreWrittenOnTheCallersThreadHoweverCloseTogether) {
  const fs::path dir = fs::temp_directory_path() / ("tw-audit-" + RandomHex(6));
  fs::create_directories(dir);
  {
    auto log = OpenAuditLog("sqlite:" + (dir / "state.db").string(), "");
    ASSERT_TRUE(log.has_value()) << log.error().message();
    const auto caller = std::this_thread::get_id();
    std::atomic<int> on_caller{0}, written{0};
    // Each call answered before the next is made, well within 250 µs of each other: nothing
    // to batch with, so no hop to the writer thread and back. (Flush: the writer has written
    // the outcome and is idle again when the next call comes, as it is after an upstream's
    // round trip.)
    for (int i = 0; i <= 20; ++i) {  // the first (i == 0) only starts the writer
      Record r = Make("echo", "allow", i);
      const std::string id = r.id;
      std::promise<void> durable;
      (*log)->Submit(std::move(r), {}, [&, i](bool ok) {
        written += ok && i > 0 ? 1 : 0;
        on_caller += std::this_thread::get_id() == caller && i > 0 ? 1 : 0;
        durable.set_value();
      });
      // Forwarded once durable, answered, then the next call.
      ASSERT_EQ(durable.get_future().wait_for(std::chrono::seconds(10)), std::future_status::ready);
      (*log)->Complete(id, "succeeded", 1);
      (*log)->Flush();
    }
    EXPECT_EQ(written, 20);
    EXPECT_EQ(on_caller, 20);
  }
  fs::remove_all(dir);
}

TEST(AuditTest, AJsonLinesReaderThatStopsReadingHoldsUpNoCall) {
  const fs::path dir = fs::temp_directory_path() / ("tw-audit-" + RandomHex(6));
  fs::create_directories(dir);
  const std::string pipe = (dir / "audit.pipe").string();
  ASSERT_EQ(mkfifo(pipe.c_str(), 0600), 0);
  // `--audit-log` into a shipper that has stopped reading: a reader that never reads.
  const int reader = open(pipe.c_str(), O_RDONLY | O_NONBLOCK);
  ASSERT_GE(reader, 0);
  constexpr int kCalls = 3000;  // far more lines than a pipe holds (64 KiB)
  std::atomic<int> written{0};
  std::string text;
  {
    auto log = OpenAuditLog("sqlite:" + (dir / "state.db").string(), pipe);
    ASSERT_TRUE(log.has_value()) << log.error().message();
    auto calls = std::async(std::launch::async, [&] {
      for (int i = 0; i < kCalls; ++i) {
        Record r = Make("echo", "deny", i, "not_forwarded");
        (*log)->Submit(std::move(r), {}, [&](bool ok) { written += ok ? 1 : 0; });
      }
    });
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (written < kCalls && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    EXPECT_EQ(written, kCalls) << "a record waited for the JSON lines reader";
    // Now the shipper reads again, and gets every line.
    fcntl(reader, F_SETFL, 0);
    auto drain = std::async(std::launch::async, [&] {
      char buf[65536];
      ssize_t n;
      while ((n = read(reader, buf, sizeof buf)) > 0) text.append(buf, static_cast<size_t>(n));
    });
    calls.wait();
    (*log)->Flush();
    log->reset();  // closes the file: the reader sees its end
    drain.wait();
  }
  close(reader);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), kCalls);
  fs::remove_all(dir);
}

TEST(AuditTest, RejectsAnUnwritableJsonLinesFile) {
  auto log = OpenAuditLog("memory", "/proc/nope/audit.jsonl");
  ASSERT_FALSE(log.has_value());
  EXPECT_NE(log.error().message().find("/proc/nope/audit.jsonl"), std::string::npos);
}

TEST(AuditTest, RecordIdsAre32HexDigitsAPrefixAndACounter) {
  const std::string a = NewRecordId(), b = NewRecordId();
  ASSERT_EQ(a.size(), 32u);
  ASSERT_EQ(b.size(), 32u);
  for (char c : a + b) EXPECT_TRUE(std::isdigit(c) || (c >= 'a' && c <= 'f')) << a << " " << b;
  EXPECT_EQ(a.substr(0, 16), b.substr(0, 16)) << "one random prefix per process";
  EXPECT_EQ(std::stoull(b.substr(16), nullptr, 16), std::stoull(a.substr(16), nullptr, 16) + 1);
}

}  // namespace
}  // namespace tw::audit
