#include "gateway/loop_bridge.h"

#include <gtest/gtest.h>

#include <deque>
#include <thread>

#include "approval/approval_store.h"
#include "testing/fake_upstream.h"

namespace tw::gateway {
namespace {

using testing::FakeUpstream;
using testing::ParseMessage;

// One event loop, run by hand: what is posted waits until RunAll.
struct Queue {
  std::mutex mu;
  std::deque<std::function<void()>> q;
  Post poster() {
    return [this](std::function<void()> fn) {
      std::lock_guard lock(mu);
      q.push_back(std::move(fn));
    };
  }
  size_t RunAll() {
    size_t n = 0;
    for (;;) {
      std::function<void()> fn;
      {
        std::lock_guard lock(mu);
        if (q.empty()) return n;
        fn = std::move(q.front());
        q.pop_front();
      }
      fn();
      ++n;
    }
  }
};

class LoopBridgedUpstreamTest : public ::testing::Test {
 protected:
  Queue session_loop, hub_loop;
  FakeUpstream* inner = nullptr;
  bool inner_destroyed = false;

  std::unique_ptr<LoopBridgedUpstream> Bridge() {
    return std::make_unique<LoopBridgedUpstream>(
        [this]() -> std::unique_ptr<Upstream> {
          struct Tracked : FakeUpstream {
            bool* destroyed;
            explicit Tracked(bool* d) : destroyed(d) {}
            ~Tracked() override { *destroyed = true; }
          };
          auto up = std::make_unique<Tracked>(&inner_destroyed);
          inner = up.get();
          return up;
        },
        hub_loop.poster(), session_loop.poster());
  }
};

TEST_F(LoopBridgedUpstreamTest, CallsRunOnTheOwnersLoopAndEventsOnTheSessions) {
  auto bridge = Bridge();
  std::vector<std::string> got;
  Upstream::Events events;
  events.on_message = [&](jsonrpc::Message msg, std::optional<json::value>) {
    got.push_back(msg.method);
  };
  bridge->Start(events);
  bridge->Send(ParseMessage(R"({"jsonrpc":"2.0","id":1,"method":"tools/list"})"));
  EXPECT_EQ(inner, nullptr) << "the real upstream is made on its own loop, not the caller's";
  EXPECT_EQ(hub_loop.RunAll(), 2u);
  ASSERT_NE(inner, nullptr);
  ASSERT_EQ(inner->sent.size(), 1u) << "Send arrives after Start, in order";
  EXPECT_EQ(inner->sent[0].method, "tools/list");

  inner->FromServer(ParseMessage(R"({"jsonrpc":"2.0","method":"notifications/tools/list_changed"})"));
  EXPECT_TRUE(got.empty()) << "an event runs on the session's loop, not the hub's";
  EXPECT_EQ(session_loop.RunAll(), 1u);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], "notifications/tools/list_changed");
}

TEST_F(LoopBridgedUpstreamTest, NoEventReachesTheSessionAfterClose) {
  auto bridge = Bridge();
  int events_seen = 0;
  Upstream::Events events;
  events.on_message = [&](jsonrpc::Message, std::optional<json::value>) { ++events_seen; };
  events.on_disconnected = [&](const Error&) { ++events_seen; };
  bridge->Start(events);
  hub_loop.RunAll();
  // The server speaks, and the session closes before that reaches its loop.
  inner->FromServer(ParseMessage(R"({"jsonrpc":"2.0","method":"notifications/message"})"));
  inner->events().on_disconnected(Error::Unavailable("gone"));
  bridge->Close();
  bridge->Send(ParseMessage(R"({"jsonrpc":"2.0","id":2,"method":"ping"})"));
  session_loop.RunAll();
  EXPECT_EQ(events_seen, 0);
  EXPECT_FALSE(inner_destroyed) << "the real upstream is closed on its own loop";
  hub_loop.RunAll();
  EXPECT_TRUE(inner_destroyed);
}

TEST_F(LoopBridgedUpstreamTest, DestroyingTheBridgeClosesTheRealUpstreamOnItsLoop) {
  auto bridge = Bridge();
  bridge->Start({});
  hub_loop.RunAll();
  bool closed_seen = false;
  FakeUpstream* real = inner;
  bridge.reset();
  EXPECT_FALSE(inner_destroyed);
  // Before its loop runs, the real upstream is still open: it is told there, then destroyed.
  closed_seen = real->closed;
  EXPECT_FALSE(closed_seen);
  hub_loop.RunAll();
  EXPECT_TRUE(inner_destroyed);
}

TEST_F(LoopBridgedUpstreamTest, ABridgeClosedBeforeItsStartReachedTheOwnerMakesNothing) {
  auto bridge = Bridge();
  bridge->Start({});
  bridge->Close();
  hub_loop.RunAll();
  // Start ran first (the queue is in order), Close then closed and destroyed what it made.
  EXPECT_TRUE(inner_destroyed);
}

// The real waiter: records what it was asked, on the loop it is called on.
class RecordingWaiter : public ApprovalWaiter {
 public:
  void Await(const std::string& id, int64_t, std::function<void()> tick,
             std::function<void(const approval::Approval&)> done) override {
    awaited.push_back(id);
    ticks[id] = std::move(tick);
    dones[id] = std::move(done);
  }
  void Cancel(const std::string& id) override { cancelled.push_back(id); }
  std::vector<std::string> awaited, cancelled;
  std::map<std::string, std::function<void()>> ticks;
  std::map<std::string, std::function<void(const approval::Approval&)>> dones;
};

TEST(LoopBridgedApprovalWaiterTest, TheAnswerRunsOnTheLoopThatAsked) {
  Queue home, session_loop;
  RecordingWaiter real;
  LoopBridgedApprovalWaiter waiter(real, home.poster(),
                                   [&session_loop] { return session_loop.poster(); });
  int ticks = 0;
  approval::State state = approval::State::kPending;
  waiter.Await("a1", 0, [&] { ++ticks; }, [&](const approval::Approval& a) { state = a.state; });
  EXPECT_TRUE(real.awaited.empty()) << "the real waiter is asked on its own loop";
  home.RunAll();
  ASSERT_EQ(real.awaited, std::vector<std::string>{"a1"});
  real.ticks["a1"]();
  approval::Approval a;
  a.id = "a1";
  a.state = approval::State::kApproved;
  real.dones["a1"](a);
  EXPECT_EQ(ticks, 0);
  EXPECT_EQ(state, approval::State::kPending);
  session_loop.RunAll();
  EXPECT_EQ(ticks, 1);
  EXPECT_EQ(state, approval::State::kApproved);
}

TEST(LoopBridgedApprovalWaiterTest, ACancelledWaitIsNotAnsweredEvenWhenTheAnswerWasOnItsWay) {
  Queue home, session_loop;
  RecordingWaiter real;
  LoopBridgedApprovalWaiter waiter(real, home.poster(),
                                   [&session_loop] { return session_loop.poster(); });
  bool answered = false;
  waiter.Await("a1", 0, {}, [&](const approval::Approval&) { answered = true; });
  home.RunAll();
  approval::Approval a;
  a.state = approval::State::kApproved;
  real.dones["a1"](a);  // the answer leaves the home loop…
  waiter.Cancel("a1");  // …and the session gives up before it arrives
  session_loop.RunAll();
  EXPECT_FALSE(answered);
  home.RunAll();
  EXPECT_EQ(real.cancelled, std::vector<std::string>{"a1"});
}

// Two real threads: the session's loop sends while the owner's loop answers (ThreadSanitizer
// checks that the bridge shares nothing unguarded between them).
TEST(LoopBridgedUpstreamThreads, MessagesCrossBothWaysWhileBothLoopsRun) {
  Queue session_loop, hub_loop;
  FakeUpstream* inner = nullptr;  // the hub thread's alone
  struct Forgotten : FakeUpstream {  // destroyed on the hub thread, which then stops using it
    FakeUpstream** slot;
    explicit Forgotten(FakeUpstream** s) : slot(s) {}
    ~Forgotten() override { *slot = nullptr; }
  };
  auto bridge = std::make_unique<LoopBridgedUpstream>(
      [&]() -> std::unique_ptr<Upstream> {
        auto up = std::make_unique<Forgotten>(&inner);
        inner = up.get();
        return up;
      },
      hub_loop.poster(), session_loop.poster());
  std::atomic<int> received{0};
  Upstream::Events events;
  events.on_message = [&](jsonrpc::Message, std::optional<json::value>) { ++received; };
  bridge->Start(events);
  std::atomic<bool> stop{false};
  constexpr int kMessages = 200;
  std::thread hub([&] {
    size_t answered = 0;
    while (!stop) {
      hub_loop.RunAll();
      // The owner's loop answers what arrived (only it touches `inner`), renumbering the
      // request as a hub does: allocating in the message's memory.
      while (inner != nullptr && answered < inner->sent.size()) {
        inner->sent[answered].params.as_object()["renumbered"] = json::string(64, 'x');
        inner->FromServer(ParseMessage(R"({"jsonrpc":"2.0","id":1,"result":{}})"));
        ++answered;
      }
      std::this_thread::yield();
    }
  });
  std::vector<jsonrpc::Message> kept;  // the session keeps its copy (sharing its arena)
  for (int i = 0; i < kMessages; ++i) {
    jsonrpc::Message msg = ParseMessage(R"({"jsonrpc":"2.0","id":1,"method":"ping","params":{}})");
    kept.push_back(msg);
    bridge->Send(std::move(msg));
    kept.back().params.as_object()["mine"] = json::string(64, 'y');  // while the owner works
    session_loop.RunAll();
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (received < kMessages && std::chrono::steady_clock::now() < deadline) {
    session_loop.RunAll();
    std::this_thread::yield();
  }
  EXPECT_EQ(received.load(), kMessages);
  bridge->Close();
  stop = true;
  hub.join();
  hub_loop.RunAll();
}

}  // namespace
}  // namespace tw::gateway
