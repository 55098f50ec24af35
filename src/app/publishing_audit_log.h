// PublishingAuditLog: an audit log that also publishes every record (event "decision") and
// outcome (event "outcome") to an EventHub — the web console's live view — then passes it on.
// Costs one check when nobody watches.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "audit/audit.h"
#include "common/event_hub.h"

namespace tw::app {

class PublishingAuditLog : public audit::AuditLog {
 public:
  PublishingAuditLog(std::unique_ptr<audit::AuditLog> inner, EventHub& hub)
      : inner_(std::move(inner)), hub_(hub) {}
  Result<bool> Write(const audit::Record& r) override {
    auto w = inner_->Write(r);
    if (w) Publish(r);
    return w;
  }
  void Submit(audit::Record r, std::function<void(audit::Record&)> in_txn,
              std::function<void(bool)> done) override {
    if (!hub_.HasSubscribers()) return inner_->Submit(std::move(r), std::move(in_txn), std::move(done));
    // Published as written (after `in_txn` may have made it a denial), on the writer thread.
    inner_->Submit(std::move(r),
                   [this, in_txn = std::move(in_txn)](audit::Record& rec) {
                     if (in_txn) in_txn(rec);
                     Publish(rec);
                   },
                   std::move(done));
  }
  void Complete(const std::string& id, const std::string& outcome, int64_t latency_ms) override {
    if (hub_.HasSubscribers()) {
      hub_.Publish("outcome", json::serialize(json::object{
                                  {"id", id}, {"outcome", outcome}, {"latency_ms", latency_ms}}));
    }
    inner_->Complete(id, outcome, latency_ms);
  }
  void Run(std::function<void()> in_txn, std::function<void(bool)> done) override {
    inner_->Run(std::move(in_txn), std::move(done));
  }
  void Flush() override { inner_->Flush(); }
  const void* Connection() const override { return inner_->Connection(); }
  std::string Unwritable() const override { return inner_->Unwritable(); }
  void PruneOnlyThrough(int64_t rowid) override { inner_->PruneOnlyThrough(rowid); }
  audit::AuditStats Stats() const override { return inner_->Stats(); }

 private:
  void Publish(const audit::Record& r) {
    if (hub_.HasSubscribers()) hub_.Publish("decision", json::serialize(audit::ToJson(r)));
  }
  std::unique_ptr<audit::AuditLog> inner_;
  EventHub& hub_;
};


}  // namespace tw::app
