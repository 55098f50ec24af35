// The Gateway's side facing people: config reloads, the gauges of /metrics, and the admin API
// and web console (admin::Backend) — servers, policies (read and saved), the audit trail,
// counters.
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "app/gateway.h"
#include "app/replay.h"
#include "common/canonical_json.h"
#include "redis/redis_client.h"
#include "common/random.h"
#include "console/assets.h"
#include "policy/loader.h"

namespace tw::app {

namespace {

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

std::string Join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

}  // namespace

std::string Gateway::ConfigFileHash() const { return Sha256Hex(ReadText(config_.path)); }

void Gateway::StartWatching() {
  if (config_.path.empty()) return;
  config_watcher_ = std::make_unique<FileWatcher>(io_, config_.path, [this](const char* why, bool forced) {
    if (!forced && ConfigFileHash() == config_text_hash_) {
      // Back to the config in force after a refused edit: say so, once.
      if (config_refused_) spdlog::info("config {} is valid again: the config in force is its text", config_.path);
      config_refused_ = false;
      return;
    }
    auto r = Reload();
    config_refused_ = !r;
    if (r) {
      spdlog::info("config reloaded ({}): {}", why, *r);
    } else {
      spdlog::error("config reload ({}) refused, keeping the current servers:\n{}", why,
                    r.error().message());
    }
  });
  config_watcher_->Start();
}

Result<std::string> Gateway::Reload() {
  std::lock_guard lock(mu_);
  auto loaded = config::LoadConfig(config_.path);
  if (!loaded) {
    ++config_reload_failures_;
    return Fail(loaded.error());
  }
  config::Config next = std::move(*loaded);
  std::map<std::string, std::shared_ptr<ServerRuntime>> servers;
  std::vector<std::string> added, replaced, removed, kept;
  for (const auto& [name, sc] : next.servers) {
    auto it = servers_.find(name);
    if (it != servers_.end() && it->second->config.SameUpstream(sc) &&
        it->second->config.policy_path == sc.policy_path && it->second->config.pins == sc.pins &&
        it->second->config.policy_shadow_path == sc.policy_shadow_path) {
      servers[name] = it->second;
      kept.push_back(name);
      continue;
    }
    auto rt = Build(sc);
    if (!rt) {
      ++config_reload_failures_;
      return Fail(rt.error());
    }
    servers[name] = std::move(*rt);
    (it == servers_.end() ? added : replaced).push_back(name);
  }
  for (const auto& [name, rt] : servers_) {
    if (!servers.contains(name)) removed.push_back(name);
  }
  if (next.listen != config_.listen || next.state != config_.state || next.access != config_.access) {
    spdlog::warn("config: listen, state and access take effect at the next start");
  }
  // What the running gateway can apply now; the rest waits for a restart.
  next.listen = config_.listen;
  next.state = config_.state;
  next.access = config_.access;
  config_ = std::move(next);
  servers_ = std::move(servers);  // sessions still using a replaced server keep it alive
  config_text_hash_ = ConfigFileHash();
  ++config_reloads_;
  std::string summary;
  auto part = [&](const char* what, const std::vector<std::string>& v) {
    if (v.empty()) return;
    summary += (summary.empty() ? "" : "; ") + std::string(what) + " " + Join(v);
  };
  part("added", added);
  part("replaced", replaced);
  part("removed", removed);
  part("unchanged", kept);
  return summary.empty() ? std::string("no servers") : summary;
}

transport::HttpServerOptions::AdminReply Gateway::HandleAdmin(
    const transport::HttpServerOptions::AdminCall& call) {
  const std::string_view path = std::string_view(call.target).substr(0, call.target.find('?'));
  if (path == "/ui" || path.starts_with("/ui/")) {
    console::StaticReply r = console::Serve(call.method, path, call.if_none_match);
    return {r.status, std::move(r.body), std::move(r.content_type), std::move(r.headers), nullptr};
  }
  if (as_ && oauth::AuthorizationServer::Owns(path)) {
    const size_t q = call.target.find('?');
    oauth::AsRequest req{call.method, std::string(path),
                         q == std::string::npos ? std::string() : call.target.substr(q + 1), call.body,
                         call.content_type, call.base};
    oauth::AsReply r = as_->Handle(req, ServerList());
    return {r.status, std::move(r.body), std::move(r.content_type), std::move(r.headers), nullptr};
  }
  admin::Response r = api_.Handle({call.method, call.target, call.body, call.authorization,
                                   call.content_type, call.cookie, call.csrf, call.client, call.base});
  return {r.status, std::move(r.body), std::move(r.content_type), std::move(r.headers),
          std::move(r.events)};
}

std::vector<admin::ServerInfo> Gateway::Servers() {
  std::lock_guard lock(mu_);
  std::vector<admin::ServerInfo> out;
  for (const auto& [name, rt] : servers_) {
    const config::ServerConfig& c = rt->config;
    admin::ServerInfo s;
    s.name = name;
    s.transport = c.remote() ? "http" : "stdio";
    if (c.remote()) {
      s.target = c.url;
    } else {
      for (const auto& a : c.command) s.target += (s.target.empty() ? "" : " ") + a;
      s.isolation = c.isolation == config::Isolation::kShared ? "shared" : "session";
    }
    s.policy = c.policy_path;
    s.policy_version = rt->policy->Current()->version;
    s.pins = std::string(config::PinModeName(c.pins));
    s.shadow_policy = c.policy_shadow_path;
    if (auto draft = rt->draft_shadow.Current()) s.shadow_draft = draft->version;
    if (rt->hub) {
      s.state = rt->hub->up() ? "up" : rt->hub->last_error().empty() ? "starting" : "down";
      s.last_error = rt->hub->last_error();
    } else {
      s.state = rt->state;
      s.last_error = rt->last_error;
      s.changed_ms = rt->changed_ms;
    }
    out.push_back(std::move(s));
  }
  return out;
}

std::shared_ptr<const policy::Policy> Gateway::PolicyOf(const std::string& server) {
  std::lock_guard lock(mu_);
  auto it = servers_.find(server);
  return it == servers_.end() ? nullptr : it->second->policy->Current();
}

std::vector<admin::PolicyInfo> Gateway::Policies() {
  std::lock_guard lock(mu_);
  std::vector<admin::PolicyInfo> out;
  for (const auto& [path, pf] : policies_) {
    admin::PolicyInfo p;
    p.path = path;
    p.version = pf.holder->Current()->version;
    for (const auto& [name, rt] : servers_) {
      if (rt->config.policy_path == path) p.servers.push_back(name);
    }
    p.reloads = pf.holder->reloads();
    p.failed_reloads = pf.holder->failed_reloads();
    p.text = ReadText(path);
    out.push_back(std::move(p));
  }
  return out;
}

std::string Gateway::AuditQuerySpec() const {
  return config_.audit_shared.empty() ? audit_spec_ : config_.audit_shared;
}

Result<std::vector<audit::Record>> Gateway::QueryAudit(const audit::Query& q) {
  audit_->Flush();
  return audit::QueryAudit(AuditQuerySpec(), q);
}

Result<int64_t> Gateway::CountAudit(const audit::Query& q) {
  audit_->Flush();
  return audit::CountAudit(AuditQuerySpec(), q);
}

Result<std::vector<audit::Bucket>> Gateway::AuditHistogram(const audit::Query& q,
                                                                 int64_t bucket_ms) {
  audit_->Flush();
  return audit::AuditHistogram(AuditQuerySpec(), q, bucket_ms);
}

std::shared_ptr<const policy::Policy> Gateway::PolicyForGrant(const std::string& server,
                                                                   const auth::Grant& grant) {
  std::lock_guard lock(mu_);
  auto override_path = grant.policies.find(server);
  if (override_path != grant.policies.end()) {
    auto it = policies_.find(override_path->second);
    if (it != policies_.end()) return it->second.holder->Current();
  }
  return PolicyOf(server);
}

Result<int64_t> Gateway::CounterUsed(const policy::Limit& limit, const std::string& scope_id,
                                          int64_t now_ms) {
  const policy::PlannedCharge charge{&limit, 0, limit.window.Start(now_ms), limit.window.End(now_ms)};
  return counters_->Value(gateway::CounterKeyFor(charge, policy::Identity{scope_id, scope_id, {}}),
                          now_ms);
}

Result<std::string> Gateway::ReadPolicyFile(const std::string& path) {
  return policy::ReadPolicyText(path);
}

Result<bool> Gateway::WritePolicyFile(const std::string& path, const std::string& text) {
  namespace fs = std::filesystem;
  std::lock_guard lock(mu_);
  auto it = policies_.find(path);
  if (it == policies_.end()) return Fail(Error::InvalidArgument(path + " is not a policy in force"));
  std::error_code ec;
  // A symlinked policy (a Kubernetes ConfigMap, say) is replaced where it points.
  fs::path target = fs::is_symlink(path, ec) ? fs::canonical(path, ec) : fs::path(path);
  if (ec) return Fail(Error::Unavailable("cannot resolve " + path + ": " + ec.message()));
  struct stat st{};
  const mode_t mode = ::stat(target.c_str(), &st) == 0 ? (st.st_mode & 07777) : 0644;
  const fs::path tmp = target.parent_path() / ("." + target.filename().string() + ".tw-" + RandomHex(6));
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return Fail(Error::Unavailable("cannot write beside " + target.string() + ": " + std::strerror(errno)));
  bool ok = true;
  for (size_t done = 0; ok && done < text.size();) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) done += static_cast<size_t>(n);
  }
  ok = ok && ::fchmod(fd, mode) == 0 && ::fsync(fd) == 0;
  const int saved_errno = errno;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), target.c_str()) != 0) {
    const std::string why = std::strerror(ok ? errno : saved_errno);
    ::unlink(tmp.c_str());
    return Fail(Error::Unavailable("cannot write " + target.string() + ": " + why));
  }
  if (const int dir = ::open(target.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dir >= 0) {
    ::fsync(dir);  // the rename itself survives a crash
    ::close(dir);
  }
  spdlog::info("policy {} saved from the web console", path);
  if (it->second.reloader) it->second.reloader->ReloadNow("saved from the web console");
  return true;
}

std::string Gateway::Readiness() {
  if (std::string why = audit_->Unwritable(); !why.empty()) return why;
  auto ok = counters_->Reachable();
  return ok ? std::string() : "state store unreachable: " + ok.error().message();
}

void Gateway::AddGauges() {
  metrics_.AddGauge("toolwarden_sessions", "Open MCP sessions.",
                    [this] { return sessions_ ? sessions_() : 0.0; });
  metrics_.AddGauge("toolwarden_pending_approvals", "Calls waiting for a human's decision.",
                    [this] { return static_cast<double>(polling_->waiting()); });
  // A count summed over every policy file's holder.
  auto over_policies = [this](uint64_t (gateway::PolicyHolder::*count)() const) {
    return [this, count] {
      std::lock_guard lock(mu_);
      double n = 0;
      for (const auto& [p, pf] : policies_) n += static_cast<double>(((*pf.holder).*count)());
      return n;
    };
  };
  metrics_.AddGauge("toolwarden_policy_reloads_total", "Policy reloads applied.",
                    over_policies(&gateway::PolicyHolder::reloads), "counter");
  metrics_.AddGauge("toolwarden_policy_reload_failures_total",
                    "Policy reloads refused because the file was invalid.",
                    over_policies(&gateway::PolicyHolder::failed_reloads), "counter");
  if (!config_.path.empty()) {
    metrics_.AddGauge("toolwarden_config_reloads_total", "Config reloads applied.",
                      [this] { return static_cast<double>(config_reloads_); }, "counter");
    metrics_.AddGauge("toolwarden_config_reload_failures_total",
                      "Config reloads refused because the file was invalid.",
                      [this] { return static_cast<double>(config_reload_failures_); }, "counter");
  }
  if (config_.access == config::Access::kTokens) {
    metrics_.AddGauge("toolwarden_unauthorized_requests_total",
                      "MCP requests refused with 401 (no, wrong, revoked or expired token).",
                      [this] { return static_cast<double>(unauthorized_.load()); }, "counter");
  }
  auto audit_stat = [this](auto field) {
    return [this, field] { return static_cast<double>(audit_->Stats().*field); };
  };
  metrics_.AddGauge("toolwarden_audit_pruned_total",
                    "Audit records deleted by audit.retention or audit.max_size.",
                    audit_stat(&audit::AuditStats::pruned), "counter");
  metrics_.AddGauge("toolwarden_audit_refused_total",
                    "Calls refused because the audit disk was under audit.min_free_bytes.",
                    audit_stat(&audit::AuditStats::refused), "counter");
  metrics_.AddGauge("toolwarden_audit_disk_low",
                    "1 while the audit disk is under audit.min_free_bytes (calls are refused).",
                    audit_stat(&audit::AuditStats::disk_low));
  metrics_.AddGauge("toolwarden_audit_file_bytes", "Size of the audit database file.",
                    audit_stat(&audit::AuditStats::file_bytes));
  metrics_.AddGauge("toolwarden_audit_free_bytes", "Free space on the audit file's file system.",
                    audit_stat(&audit::AuditStats::free_bytes));
  if (shipper_) {
    const audit::ShipperStats& sh = shipper_->stats();
    metrics_.AddGauge("toolwarden_audit_shipped_total", "Audit rows sent to the shared trail.",
                      [&sh] { return static_cast<double>(sh.shipped.load()); }, "counter");
    metrics_.AddGauge("toolwarden_audit_ship_errors_total",
                      "Passes that could not ship to the shared trail (unreachable, refused).",
                      [&sh] { return static_cast<double>(sh.errors.load()); }, "counter");
    metrics_.AddGauge("toolwarden_audit_ship_backlog", "Local audit records not yet shipped.",
                      [&sh] { return static_cast<double>(sh.backlog.load()); });
  }
  if (redis::IsRedisUrl(state_spec_)) {
    const redis::Stats& st = redis::ProcessStats();
    metrics_.AddGauge("toolwarden_state_commands_total", "Commands the Redis state store answered.",
                      [&st] { return static_cast<double>(st.commands.load()); }, "counter");
    metrics_.AddGauge("toolwarden_state_errors_total",
                      "Commands to the Redis state store that got no answer (unreachable, timed out).",
                      [&st] { return static_cast<double>(st.failures.load()); }, "counter");
    metrics_.AddGauge("toolwarden_state_wait_seconds_total",
                      "Time spent waiting for the Redis state store's answers.",
                      [&st] { return static_cast<double>(st.micros.load()) / 1e6; }, "counter");
  }
  metrics_.AddGauge("toolwarden_servers_up", "Configured servers that are up.", [this] {
    double n = 0;
    for (const auto& s : Servers()) n += s.state == "up" ? 1 : 0;
    return n;
  });
}

Result<json::object> Gateway::Replay(const policy::Policy& candidate,
                                     const admin::ReplayRequest& request) {
  ReplayOptions o;
  o.audit_spec = AuditQuerySpec();  // the fleet's shared trail, else this gateway's records
  o.server = request.server;
  o.grant = request.grant;
  o.since_ms = request.since_ms;
  o.until_ms = request.until_ms;
  o.max_records = request.max_records;
  auto report = app::Replay(candidate, o);
  if (!report) return Fail(report.error());
  return ReplayJson(*report);
}

Result<bool> Gateway::SetShadowDraft(const std::string& server,
                                     std::shared_ptr<const policy::Policy> draft) {
  std::lock_guard lock(mu_);
  auto it = servers_.find(server);
  if (it == servers_.end()) return Fail(Error::NotFound("no server named \"" + server + "\""));
  // In place for the server's guards; a reload that keeps the server keeps its draft.
  it->second->draft_shadow.Replace(std::move(draft));
  return true;
}

}  // namespace tw::app
