// The gateway's state: the stores `state:` names (counters, pins, approvals, grants, console
// sign-ins on Redis), the audit log and its shipper, and the approval waiters. Split from
// gateway.cc, which builds the servers on top of it.
#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>

#include "app/gateway.h"
#include "app/publishing_audit_log.h"
#include "redis/redis_client.h"
#include "transport/webhook.h"

namespace tw::app {

Result<bool> Gateway::OpenState() {
  state_spec_ = limits::StateSpecOrDefault(config_.state);
  auto counters = limits::OpenStateStore(state_spec_);
  if (!counters) return Fail(counters.error());
  counters_ = std::move(*counters);
  if (counters_->Remote()) batcher_ = std::make_unique<limits::ChargeBatcher>(*counters_);
  auto pins = catalog::OpenPinStore(state_spec_);
  if (!pins) return Fail(pins.error());
  pin_store_ = std::move(*pins);
  audit::RetentionOptions retention;
  retention.max_age_ms = config_.audit_retention_ms;
  if (config_.audit_arguments != catalog::ArgumentsKept::kNone) {
    retention.arguments_max_age_ms = config_.audit_arguments_retention_ms;
  }
  retention.max_bytes = config_.audit_max_bytes;
  retention.min_free_bytes = config_.audit_min_free_bytes;
  // With a shared trail, a local record is pruned only once the trail has it.
  if (!config_.audit_shared.empty()) retention.prunable_through = 0;
  audit_spec_ = limits::AuditSpecFor(state_spec_, config_.audit_store);
  auto audit = audit::OpenAuditLog(audit_spec_,
                                   config_.audit_log == "-" ? "/dev/stdout" : config_.audit_log,
                                   retention);
  if (!audit) return Fail(audit.error());
  audit_ = std::make_unique<PublishingAuditLog>(std::move(*audit), events_);
  if (!config_.audit_shared.empty()) {
    if (!audit_spec_.starts_with("sqlite:")) {
      return Fail(Error::InvalidArgument("audit.shared needs the local records in a file "
                                         "(state or audit.store: sqlite:PATH), not in memory"));
    }
    audit::ShipperOptions ship;
    ship.local_path = audit_spec_.substr(7);
    ship.url = config_.audit_shared;
    ship.replica = config_.replica;
    shipper_ = std::make_unique<audit::Shipper>(
        ship, [log = audit_.get()](int64_t rowid) { log->PruneOnlyThrough(rowid); });
    if (auto ok = shipper_->Start(); !ok) return Fail(ok.error());
  }
  auto approvals = approval::OpenApprovalStore(state_spec_);
  if (!approvals) return Fail(approvals.error());
  approvals_ = std::move(*approvals);
  if (auto n = approvals_->AbandonOrphans(clock_.NowMs()); n && *n > 0) {
    spdlog::warn("{} approval(s) left pending by a gateway that stopped were marked abandoned", *n);
  }
  // Held calls wait here; a decision taken anywhere that shares the store reaches them.
  polling_ = std::make_unique<PollingApprovalWaiter>(io_, *approvals_, clock_);
  polling_->SetWriter(audit_.get());
  // A decision announced anywhere (Redis) is looked at now, not at the next 250 ms poll.
  approvals_->OnResolved([this] {
    boost::asio::post(io_, [this] { polling_->PollNow(); });
  });
  waiter_ = std::make_unique<WebhookApprovalWaiter>(
      *polling_, *approvals_, [this] { return config_.approval_webhook_url; },
      [this](std::string url, std::string body) { transport::PostWebhook(io_, url, std::move(body)); });
  bridged_waiter_ = std::make_unique<gateway::LoopBridgedApprovalWaiter>(
      *waiter_, PostTo(io_), [this] { return PostTo(LoopHere(io_)); });
  auto grants = auth::OpenGrantStore(state_spec_);
  if (!grants) return Fail(grants.error());
  grants_ = std::move(*grants);
  if (redis::IsRedisUrl(state_spec_)) {
    // A fleet's console: signed in through one replica is signed in through all.
    auto shared = redis::Client::Open(state_spec_);
    if (!shared) return Fail(shared.error());
    api_.console_sessions().ShareThrough(std::move(*shared));
  }
  return OpenSignIn();
}

}  // namespace tw::app
