#include "app/serve.h"

#include <iostream>

#include "app/cli_common.h"
#include "app/launch.h"
#include "config/config.h"

namespace tw::app {

int ServeCommand(const ServeOptions& o) {
  auto loaded = config::LoadConfig(o.config_path);
  if (!loaded) {
    std::cerr << loaded.error().message() << "\n";
    return kExitInvalid;
  }
  config::Config cfg = std::move(*loaded);
  if (!o.listen.empty()) cfg.listen = o.listen;
  if (!o.state.empty()) cfg.state = o.state;
  if (!o.audit_log.empty()) cfg.audit_log = o.audit_log;
  if (!o.replica.empty()) cfg.replica = o.replica;
  if (auto ok = config::CheckConfig(cfg); !ok) {
    std::cerr << "toolwarden serve: " << ok.error().message() << "\n";
    return kExitUsage;
  }
  return Launch(cfg, "serve");
}

}  // namespace tw::app
