#include "app/approval_waiter.h"

#include "admin/api.h"

#include <spdlog/spdlog.h>

namespace tw::app {

PollingApprovalWaiter::PollingApprovalWaiter(boost::asio::io_context& io,
                                             approval::ApprovalStore& store, const Clock& clock)
    : store_(store), clock_(clock), timer_(io) {}

PollingApprovalWaiter::~PollingApprovalWaiter() { Stop(); }

void PollingApprovalWaiter::Await(const std::string& id, int64_t expires_ms,
                                  std::function<void()> tick,
                                  std::function<void(const approval::Approval&)> done) {
  waiting_[id] = Waiting{expires_ms, clock_.NowMs() + 15'000, std::move(tick), std::move(done)};
  Schedule();
}

void PollingApprovalWaiter::Cancel(const std::string& id) {
  if (waiting_.erase(id) == 0) return;
  auto cancel = [store = &store_, id, now = clock_.NowMs()] {
    if (auto r =
            store->Resolve(id, approval::State::kCancelled, "", "the client gave up waiting", now);
        !r) {
      spdlog::debug("approvals: cancel {}: {}", id, r.error().message());
    }
  };
  if (writer_ && store_.Connection() && store_.Connection() == writer_->Connection()) {
    writer_->Run(std::move(cancel), {});
  } else {
    cancel();
  }
}

void PollingApprovalWaiter::Stop() {
  stopped_ = true;
  timer_.cancel();
}

void PollingApprovalWaiter::Schedule() {
  if (scheduled_ || stopped_ || waiting_.empty()) return;
  scheduled_ = true;
  timer_.expires_after(std::chrono::milliseconds(250));
  timer_.async_wait([this](boost::system::error_code ec) {
    scheduled_ = false;
    if (ec || stopped_) return;
    Poll();
    Schedule();
  });
}

void PollingApprovalWaiter::PollNow() {
  if (stopped_ || waiting_.empty()) return;
  Poll();
  Schedule();
}

void PollingApprovalWaiter::Poll() {
  const int64_t now = clock_.NowMs();
  // Callbacks may add or cancel waits: work on a snapshot of the ids.
  std::vector<std::string> ids;
  for (const auto& [id, w] : waiting_) ids.push_back(id);
  for (const std::string& id : ids) {
    auto it = waiting_.find(id);
    if (it == waiting_.end()) continue;
    auto got = store_.Get(id);
    if (!got) {
      spdlog::error("approvals: {}", got.error().message());
      continue;  // the store may come back; the deadline still applies below
    }
    std::optional<approval::Approval> resolved;
    if (*got && (*got)->state != approval::State::kPending) {
      resolved = **got;
    } else if (now >= it->second.expires_ms) {
      auto expired = store_.Resolve(id, approval::State::kExpired, "", "timed out", now);
      if (expired) {
        resolved = *expired;
      } else if (auto again = store_.Get(id); again && *again) {
        resolved = **again;  // resolved by someone at the last moment
      }
    } else if (now >= it->second.next_tick_ms) {
      it->second.next_tick_ms = now + 15'000;
      it->second.tick();
      continue;
    }
    if (resolved) {
      auto done = std::move(it->second.done);
      waiting_.erase(it);
      done(*resolved);
    }
  }
}

void WebhookApprovalWaiter::Await(const std::string& id, int64_t expires_ms,
                                  std::function<void()> tick,
                                  std::function<void(const approval::Approval&)> done) {
  if (const std::string url = url_(); !url.empty()) {
    if (auto a = store_.Get(id); a && *a) post_(url, json::serialize(admin::ApprovalJson(**a)));
  }
  inner_.Await(id, expires_ms, std::move(tick), std::move(done));
}

}  // namespace tw::app
