#include "app/credentials_command.h"

#include <boost/json.hpp>
#include <iostream>
#include <memory>

#include "app/cli_common.h"
#include "auth/credential_store.h"
#include "common/clock.h"
#include "config/config.h"

namespace tw::app {
namespace {
namespace json = boost::json;

struct CredentialsOptions {
  std::string config;
  std::string state;
  std::string server;
  std::string principal;
  std::vector<std::string> headers;  // names; values are read from stdin, one line each
  bool json = false;
};

// A header name of RFC 9110 (a token), so that a value cannot smuggle another header.
bool ValidHeaderName(const std::string& name) {
  if (name.empty()) return false;
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos)) {
      return false;
    }
  }
  return true;
}

int Run(const std::string& action, const CredentialsOptions& o) {
  if (action == "key") {
    std::cout << auth::CredentialKey::Generate() << "\n";
    return kExitOk;
  }
  auto spec = ResolveState(o.config, o.state);
  if (!spec) {
    std::cerr << spec.error().message() << "\n";
    return kExitInvalid;
  }
  std::string key_file;
  if (!o.config.empty()) {
    auto cfg = LoadConfigForState(o.config);
    if (!cfg) {
      std::cerr << cfg.error().message() << "\n";
      return kExitInvalid;
    }
    key_file = cfg->auth.credential_key_file;
  }
  auto key = auth::CredentialKey::Load(key_file);
  if (!key) {
    std::cerr << "toolwarden credentials: " << key.error().message() << "\n";
    return kExitInvalid;
  }
  auto store = auth::OpenCredentialStore(*spec, *key);
  if (!store) {
    std::cerr << "toolwarden credentials: " << store.error().message() << "\n";
    return kExitUnavailable;
  }
  if (action == "list") {
    auto list = (*store)->List();
    if (!list) {
      std::cerr << "toolwarden credentials: " << list.error().message() << "\n";
      return kExitUnavailable;
    }
    std::vector<std::vector<std::string>> rows{{"SERVER", "PRINCIPAL", "HEADERS", "UPDATED"}};
    for (const auth::CredentialInfo& c : *list) {
      json::array names;
      std::string joined;
      for (const std::string& n : c.header_names) {
        names.emplace_back(n);
        joined += (joined.empty() ? "" : ",") + n;
      }
      if (o.json) {
        std::cout << json::serialize(json::object{{"server", c.server}, {"principal", c.principal},
                                                  {"headers", std::move(names)}, {"updated_ms", c.updated_ms}})
                  << "\n";
      }
      rows.push_back({c.server, c.principal, joined, FormatTime(c.updated_ms)});
    }
    if (!o.json) {
      if (list->empty()) {
        std::cout << "no credentials\n";
      } else {
        PrintTable(std::cout, rows);
      }
    }
    return kExitOk;
  }
  if (action == "delete") {
    auto gone = (*store)->Delete(o.server, o.principal);
    if (!gone) {
      std::cerr << "toolwarden credentials: " << gone.error().message() << "\n";
      return kExitUnavailable;
    }
    if (!*gone) {
      std::cerr << "toolwarden credentials: none stored for " << o.principal << " on " << o.server << "\n";
      return kExitInvalid;
    }
    std::cout << "Deleted the credentials of " << o.principal << " for " << o.server << ".\n";
    return kExitOk;
  }
  // set: each header's value from stdin, never from the command line (shell history, ps).
  auth::Headers headers;
  for (const std::string& name : o.headers) {
    if (!ValidHeaderName(name)) {
      std::cerr << "toolwarden credentials: \"" << name << "\" is not a header name\n";
      return kExitUsage;
    }
    std::string value;
    if (!std::getline(std::cin, value) || value.empty()) {
      std::cerr << "toolwarden credentials: expected the value of " << name << " on a line of stdin\n";
      return kExitUsage;
    }
    if (value.find_first_of("\r\n") != std::string::npos || value.find('\0') != std::string::npos) {
      std::cerr << "toolwarden credentials: the value of " << name << " has a line break\n";
      return kExitUsage;
    }
    headers.emplace_back(name, value);
  }
  auto set = (*store)->Set(o.server, o.principal, headers, SystemClock().NowMs());
  if (!set) {
    std::cerr << "toolwarden credentials: " << set.error().message() << "\n";
    return kExitUnavailable;
  }
  std::cout << "Stored " << headers.size() << " header" << (headers.size() == 1 ? "" : "s") << " for "
            << o.principal << " on " << o.server << " (encrypted; new sessions use them).\n";
  return kExitOk;
}

}  // namespace

std::function<int()> AddCredentialsCommand(CLI::App& app) {
  auto o = std::make_shared<CredentialsOptions>();
  CLI::App* cmd = app.add_subcommand(
      "credentials", "Upstream credentials per person, for servers with credentials: per_principal");
  cmd->require_subcommand(1);
  cmd->fallthrough();
  cmd->add_option("-c,--config", o->config, "Use the state (and auth.credential_key_file) of this serve config");
  cmd->add_option("--state", o->state, "State store");
  CLI::App* key = cmd->add_subcommand("key", "Print a new random key for TOOLWARDEN_CREDENTIAL_KEY");
  CLI::App* set = cmd->add_subcommand(
      "set",
      "Store a person's headers for a server, each value read from a line of stdin:\n"
      "  printf '%s\\n' \"Bearer $GITHUB_TOKEN\" | toolwarden credentials set github alice@example.com "
      "--header Authorization -c toolwarden.yaml");
  set->add_option("server", o->server, "Server name")->required();
  set->add_option("principal", o->principal, "Principal (as policies name it)")->required();
  set->add_option("--header", o->headers, "A header name; repeat for more (values from stdin, in order)")
      ->required()
      ->allow_extra_args(false);
  CLI::App* list = cmd->add_subcommand("list", "Who has credentials for which server (never the values)");
  list->add_flag("--json", o->json, "JSON lines");
  CLI::App* del = cmd->add_subcommand("delete", "Delete a person's credentials for a server");
  del->add_option("server", o->server, "Server name")->required();
  del->add_option("principal", o->principal, "Principal")->required();
  return [o, cmd, key, set, list]() -> int {
    if (!*cmd) return -1;
    return Run(*key ? "key" : *set ? "set" : *list ? "list" : "delete", *o);
  };
}

}  // namespace tw::app
