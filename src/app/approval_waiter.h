// PollingApprovalWaiter: waits for approvals by reading the approval store every 250 ms, so a
// decision taken anywhere that shares the store (`toolwarden approvals approve` in another
// terminal, another gateway) reaches the call held here. Marks approvals expired at their
// deadline. Thread: the io_context's.
#pragma once

#include <map>
#include <memory>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "common/clock.h"
#include "gateway/tool_call_guard.h"

namespace tw::app {

class PollingApprovalWaiter : public gateway::ApprovalWaiter {
 public:
  // `store` and `clock` must outlive the waiter.
  PollingApprovalWaiter(boost::asio::io_context& io, approval::ApprovalStore& store,
                        const Clock& clock);
  ~PollingApprovalWaiter() override;

  void Await(const std::string& id, int64_t expires_ms, std::function<void()> tick,
             std::function<void(const approval::Approval&)> done) override;
  void Cancel(const std::string& id) override;
  // Writes cancellations through `log` (AuditLog::Run; must outlive the waiter) when it shares
  // the store's state file: the event loop never writes it itself. A deadline that passes
  // while the file is locked is marked on the next poll that can (the call waits until then).
  void SetWriter(audit::AuditLog* log) { writer_ = log; }
  // Polls now rather than at the next tick (a decision was announced). Thread: the io_context's.
  void PollNow();
  // Stops polling (for shutdown).
  void Stop();
  // How many calls are waiting for a decision.
  size_t waiting() const { return waiting_.size(); }

 private:
  struct Waiting {
    int64_t expires_ms;
    int64_t next_tick_ms;
    std::function<void()> tick;
    std::function<void(const approval::Approval&)> done;
  };
  void Schedule();
  void Poll();

  approval::ApprovalStore& store_;
  const Clock& clock_;
  audit::AuditLog* writer_ = nullptr;
  boost::asio::steady_timer timer_;
  std::map<std::string, Waiting> waiting_;
  bool scheduled_ = false;
  bool stopped_ = false;
};

// Also tells a webhook of every approval as it is created, when one is configured (`url`
// returns the current one, "" for none; `post` sends without waiting), then waits through
// `inner`. `inner` and `store` must outlive it.
class WebhookApprovalWaiter : public gateway::ApprovalWaiter {
 public:
  WebhookApprovalWaiter(gateway::ApprovalWaiter& inner, approval::ApprovalStore& store,
                        std::function<std::string()> url,
                        std::function<void(std::string url, std::string body)> post)
      : inner_(inner), store_(store), url_(std::move(url)), post_(std::move(post)) {}
  void Await(const std::string& id, int64_t expires_ms, std::function<void()> tick,
             std::function<void(const approval::Approval&)> done) override;
  void Cancel(const std::string& id) override { inner_.Cancel(id); }

 private:
  gateway::ApprovalWaiter& inner_;
  approval::ApprovalStore& store_;
  std::function<std::string()> url_;
  std::function<void(std::string, std::string)> post_;
};

}  // namespace tw::app
