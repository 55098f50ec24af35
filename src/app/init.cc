#include "app/init.h"

#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>

#include <boost/json.hpp>
#include <spdlog/spdlog.h>

#include "app/cli_common.h"
#include "app/init_clients.h"
#include "app/init_record.h"
#include "app/init_yaml.h"
#include "app/json_text.h"
#include "app/policy_test.h"
#include "common/canonical_json.h"
#include "app/server_target.h"
#include "catalog/scaffold.h"

namespace tw::app {

namespace fs = std::filesystem;

int InitCommand(const InitOptions& o, const std::string& self) {
  if (o.list_clients) {
    for (const KnownClient& k : KnownClients()) {
      std::string state = "not found";
      if (fs::exists(k.path)) {
        auto config = ReadConfig(k.path);
        if (!config) {
          state = config.error().message();
        } else {
          size_t n = 0;
          for (auto& [pointer, servers] : ServerMaps(config->value)) n += servers->size();
          state = std::to_string(n) + " server" + (n == 1 ? "" : "s");
        }
      }
      std::cout << k.client << ": " << k.path.string() << ": " << state << "\n";
    }
    std::cout << "Other clients' files are read when named with --client-config FILE.\n";
    return kExitOk;
  }
  std::vector<fs::path> configs;
  for (const auto& c : o.configs) {
    if (!fs::exists(c)) {
      std::cerr << "toolwarden init: " << c << ": no such file\n";
      return kExitInvalid;
    }
    configs.emplace_back(c);
  }
  if (configs.empty()) {
    for (const auto& k : KnownClients()) {
      if (fs::exists(k.path)) configs.push_back(k.path);
    }
  }
  if (configs.empty()) {
    std::cerr << "toolwarden init: no MCP client configuration found (looked for Claude Desktop, "
                 "Claude Code and Cursor files: `toolwarden init --list-clients`); name one with "
                 "--client-config FILE\n";
    return kExitInvalid;
  }

  if (o.undo) {
    bool all = true, any = false;
    for (const auto& c : configs) {
      if (!fs::exists(RecordPath(c)) && !fs::exists(BackupPath(c))) continue;
      any = true;
      auto done = UndoChanges(c, std::cout);
      if (!done) {
        std::cerr << "toolwarden init: " << done.error().message() << "\n";
        return kExitUnavailable;
      }
      all = all && *done;
    }
    if (!any) std::cout << "nothing to undo: toolwarden init changed none of these configurations\n";
    return all ? kExitOk : kExitUnavailable;
  }

  const fs::path config_file =
      !o.config_file.empty()
          ? fs::absolute(o.config_file)
          : (o.out_dir.empty()
                 ? (Env("XDG_CONFIG_HOME").empty() ? fs::path(Env("HOME")) / ".config"
                                                   : fs::path(Env("XDG_CONFIG_HOME"))) /
                       "toolwarden"
                 : fs::path(o.out_dir)) /
                "toolwarden.yaml";
  const fs::path out_dir = config_file.parent_path();
  std::error_code ec;
  fs::create_directories(out_dir / "policies", ec);
  if (ec) {
    std::cerr << "toolwarden init: cannot create " << (out_dir / "policies") << ": " << ec.message() << "\n";
    return kExitUnavailable;
  }

  std::vector<std::pair<std::string, std::string>> blocks;  // server name → its YAML block
  std::map<std::string, ListedTools> listings;  // by command line and environment: scanned once
  int wrapped = 0, failures = 0;
  for (const fs::path& config_path : configs) {
    auto file = ReadConfig(config_path);
    if (!file) {
      std::cerr << "toolwarden init: " << file.error().message() << "\n";
      ++failures;
      continue;
    }
    json::value* config = &file->value;
    std::string text = file->text;  // edited in place: comments and formatting survive
    std::cout << config_path.string() << ":\n";
    auto record = ReadRecord(config_path);
    if (!record) {
      std::cerr << "toolwarden init: " << record.error().message() << "\n";
      return kExitUnavailable;
    }
    bool changed = false;
    for (auto& [pointer, servers] : ServerMaps(*config)) {
      for (auto& kv : *servers) {
        const std::string name(kv.key());
        if (!kv.value().is_object()) continue;
        json::object& entry = kv.value().as_object();
        const std::string command = Str(entry, "command");
        // Windsurf names a remote server's address `serverUrl`; every other client `url`.
        const std::string url_key = entry.contains("serverUrl") && !entry.contains("url") ? "serverUrl" : "url";
        const std::string url = command.empty() ? Str(entry, url_key) : std::string();
        if (command.empty() && url.empty()) {
          std::cout << "  " << name << ": neither a command nor a url; left as is\n";
          continue;
        }
        if (!url.empty() && IsToml(config_path)) {
          // Codex names its credentials differently (bearer_token_env_var, env_http_headers).
          std::cout << "  " << name << ": a remote server in Codex's configuration; left as is "
                       "(wrap it with `toolwarden run --upstream`, README \"A remote server\")\n";
          continue;
        }
        std::vector<std::string> env_names;
        if (const json::value* env = entry.if_contains("env"); env && env->is_object()) {
          for (const auto& e : env->get_object()) {
            if (ValidEnvName(std::string(e.key()))) env_names.emplace_back(e.key());
          }
        }
        if (IsToolwarden(command)) {
          // Wrapped already (an earlier --apply): still a server of toolwarden.yaml.
          if (auto w = Unwrap(entry)) {
            blocks.emplace_back(name, w->url.empty()
                                          ? ServerBlock(name, w->argv, w->policy, env_names)
                                          : RemoteBlock(name, w->url, w->policy, HeaderRefs(entry)));
          }
          std::cout << "  " << name << ": already runs through toolwarden\n";
          continue;
        }
        ServerTarget target;
        // A remote server's headers travel by environment variable: the value stays out of
        // toolwarden.yaml and off the command line (`--header "K: ${VAR}"`).
        std::vector<std::pair<std::string, std::string>> header_vars;  // header → variable
        if (url.empty()) {
          target.command.push_back(command);
          if (const json::value* args = entry.if_contains("args"); args && args->is_array()) {
            for (const auto& a : args->get_array()) {
              if (a.is_string()) target.command.emplace_back(a.get_string());
            }
          }
          if (const json::value* env = entry.if_contains("env"); env && env->is_object()) {
            for (const auto& e : env->get_object()) {
              // Values reach the scanned server only; they are never printed or written here.
              if (e.value().is_string()) target.env.emplace_back(e.key(), e.value().get_string());
            }
          }
        } else {
          target.url = url;
          if (const json::value* h = entry.if_contains("headers"); h && h->is_object()) {
            for (const auto& header : h->get_object()) {
              if (!header.value().is_string()) continue;
              target.headers.push_back(std::string(header.key()) + ": " +
                                       std::string(header.value().get_string()));
              header_vars.emplace_back(header.key(), HeaderVariable(name, header.key()));
            }
          }
        }
        const fs::path policy = fs::absolute(out_dir / "policies" / (FileName(name) + ".yaml"));
        std::string scan_key = url;
        for (const auto& a : target.command) scan_key += a + '\0';
        for (const auto& [k, v] : target.env) scan_key += k + '=' + v + '\0';
        for (const auto& h : target.headers) scan_key += h + '\0';
        const std::string key_digest = Sha256Hex(scan_key);
        const ListedTools* listing = nullptr;
        if (auto seen = listings.find(key_digest); seen != listings.end()) {
          listing = &seen->second;
          std::cout << "  " << name << ": the same server as above (" << listing->tools.size()
                    << " tools), not scanned again\n";
        } else {
          auto listed = ListServerTools(
              target, std::chrono::milliseconds(static_cast<long>(o.timeout_s * 1000)));
          if (!listed) {
            std::cout << "  " << name << ": could not scan (" << listed.error().message()
                      << "); left as is\n";
            ++failures;
            continue;
          }
          listing = &listings.emplace(key_digest, std::move(*listed)).first->second;
        }
        const auto scanned = catalog::ScanTools(listing->tools);
        if (fs::exists(policy) && !o.force) {
          std::cout << "  " << name << ": " << scanned.size() << " tools; keeping the existing "
                    << policy.string() << " (--force to overwrite)\n";
        } else {
          auto w = WriteAtomically(
              policy, catalog::WriteScaffold(scanned, {listing->server.name.empty() ? name : listing->server.name,
                                                       listing->server.version},
                                             catalog::ScaffoldFormat::kYaml));
          if (!w) {
            std::cerr << "toolwarden init: " << w.error().message() << "\n";
            return kExitUnavailable;
          }
          std::cout << "  " << name << ": " << scanned.size() << " tools → " << policy.string() << "\n";
        }
        if (auto cases = WriteStarterCases(policy.string(), scanned); !cases) {  // toolwarden test
          std::cerr << "toolwarden init: " << cases.error().message() << "\n";
          return kExitUnavailable;
        }
        if (url.empty()) {
          blocks.emplace_back(name, ServerBlock(name, target.command, policy.string(), env_names));
        } else {
          blocks.emplace_back(name, RemoteBlock(name, url, policy.string(), header_vars));
          for (const auto& [header, var] : header_vars) env_names.push_back(var);
        }
        if (!env_names.empty()) {
          std::string names;
          for (const auto& n : env_names) names += (names.empty() ? "" : ", ") + n;
          std::cout << "    needs " << names << " in the environment of `toolwarden serve`\n";
        }
        if (o.apply) {
          json::object before{{"command", entry.contains("command") ? entry["command"] : json::value()},
                              {"args", entry.contains("args") ? entry["args"] : json::value()}};
          json::array args{"run", "-p", policy.string(), "--server-name", name};
          if (url.empty()) {
            args.emplace_back("--");
            for (const auto& a : target.command) args.emplace_back(a);
          } else {
            WrapRemote(entry, url_key, url, header_vars, before, args);
          }
          entry["command"] = self;
          entry["args"] = std::move(args);
          Remember(*record, {pointer, name, std::move(before),
                             json::object{{"command", entry["command"]}, {"args", entry["args"]}}});
          std::vector<std::string> path = PointerKeys(pointer);
          path.push_back(name);
          auto edited = ReplaceEntry(config_path, text, path, entry);
          if (!edited) {
            std::cerr << "toolwarden init: " << config_path.string() << ": " << name << ": "
                      << edited.error().message() << "; the file is left as it is\n";
            return kExitUnavailable;
          }
          text = std::move(*edited);
          changed = true;
          ++wrapped;
        }
      }
    }
    if (changed) {
      const fs::path backup = BackupPath(config_path);
      if (!fs::exists(backup)) fs::copy_file(config_path, backup, ec);
      if (ec) {
        std::cerr << "toolwarden init: cannot back up " << config_path << ": " << ec.message() << "\n";
        return kExitUnavailable;
      }
      // The edits must say exactly what was meant, or nothing is written.
      if (auto check = ParseConfigText(config_path, text); !check || *check != *config) {
        std::cerr << "toolwarden init: " << config_path.string()
                  << ": the edited text does not read back as intended; the file is left as it is\n";
        return kExitUnavailable;
      }
      record->written_sha256 = Sha256Hex(text);
      if (auto w = WriteRecord(config_path, *record); !w) {
        std::cerr << "toolwarden init: " << w.error().message() << "\n";
        return kExitUnavailable;
      }
      if (auto w = WriteAtomically(config_path, text); !w) {
        std::cerr << "toolwarden init: " << w.error().message() << "\n";
        return kExitUnavailable;
      }
      std::cout << "  rewritten to run every server through toolwarden (undo with `toolwarden "
                   "init --undo`: it reverts these servers only)\n";
    }
  }
  std::string toolwarden_yaml;
  if (fs::exists(config_file)) {
    auto existing = ReadText(config_file);
    if (!existing) {
      std::cerr << "toolwarden init: " << existing.error().message() << "\n";
      return kExitUnavailable;
    }
    std::vector<std::string> kept;
    auto merged = MergeServers(*existing, blocks, kept);
    if (!merged) {
      std::cerr << "toolwarden init: " << config_file.string()
                << " exists and its servers cannot be merged into safely (servers: is not its last "
                   "key); add these by hand:\n";
      for (const auto& [name, block] : blocks) std::cerr << block;
      return kExitUnavailable;
    }
    for (const auto& name : kept) {
      std::cout << "  " << name << ": already in " << config_file.string() << ", kept as it is\n";
    }
    toolwarden_yaml = std::move(*merged);
  } else {
    toolwarden_yaml =
        "# Written by `toolwarden init`: the servers found in your MCP client configurations.\n"
        "# Environment values stay in the client configurations; they are not copied here. A\n"
        "# server that needs some gets them by reference (`env: {NAME: \"${NAME}\"}`): set them\n"
        "# in the environment of `toolwarden serve`, which gives each server nothing else of it.\n"
        "servers:\n";
    for (const auto& [name, block] : blocks) toolwarden_yaml += block;
  }
  if (auto w = WriteAtomically(config_file, toolwarden_yaml); !w) {
    std::cerr << "toolwarden init: " << w.error().message() << "\n";
    return kExitUnavailable;
  }
  std::cout << "wrote " << config_file.string() << "\n";
  if (!o.apply) {
    std::cout << "dry run: no client configuration was changed. Review the policies, then run "
                 "`toolwarden init --apply` to put toolwarden in front of these servers.\n";
  } else {
    std::cout << wrapped << " server" << (wrapped == 1 ? "" : "s")
              << " now run through toolwarden; restart your MCP clients.\n";
  }
  return failures ? kExitUnavailable : kExitOk;
}

}  // namespace tw::app
