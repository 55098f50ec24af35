#include "app/init.h"

#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include <boost/json.hpp>
#include <spdlog/spdlog.h>

#include "app/cli_common.h"
#include "app/server_target.h"
#include "catalog/scaffold.h"

namespace tw::app {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kBackupSuffix = ".toolwarden-backup";

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

// The client configuration files where MCP servers are usually defined.
std::vector<fs::path> KnownConfigs() {
  const fs::path home = Env("HOME");
  std::vector<fs::path> out = {
      home / ".config" / "Claude" / "claude_desktop_config.json",                      // Linux
      home / "Library" / "Application Support" / "Claude" / "claude_desktop_config.json",  // macOS
      fs::current_path() / ".mcp.json",                                                // Claude Code, project
      home / ".claude.json",                                                           // Claude Code, user
      home / ".cursor" / "mcp.json",                                                   // Cursor, user
      fs::current_path() / ".cursor" / "mcp.json",                                     // Cursor, project
  };
  return out;
}

Result<json::value> ReadJson(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return Fail(Error::NotFound("cannot read " + p.string()));
  std::stringstream buf;
  buf << in.rdbuf();
  boost::system::error_code ec;
  json::value v = json::parse(buf.str(), ec);
  if (ec || !v.is_object()) return Fail(Error::InvalidArgument(p.string() + ": not a JSON object"));
  return v;
}

// JSON with two-space indentation, as people write client configs.
void Pretty(const json::value& v, std::string& out, int indent) {
  const std::string pad(indent * 2, ' ');
  if (v.is_object() && !v.get_object().empty()) {
    out += "{\n";
    size_t i = 0;
    for (const auto& kv : v.get_object()) {
      out += pad + "  " + json::serialize(json::string(kv.key())) + ": ";
      Pretty(kv.value(), out, indent + 1);
      out += ++i < v.get_object().size() ? ",\n" : "\n";
    }
    out += pad + "}";
  } else if (v.is_array() && !v.get_array().empty()) {
    out += "[\n";
    size_t i = 0;
    for (const auto& item : v.get_array()) {
      out += pad + "  ";
      Pretty(item, out, indent + 1);
      out += ++i < v.get_array().size() ? ",\n" : "\n";
    }
    out += pad + "]";
  } else {
    out += json::serialize(v);
  }
}

Result<bool> WriteAtomically(const fs::path& p, const std::string& text) {
  const fs::path tmp = p.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out) return Fail(Error::Unavailable("cannot write " + tmp.string()));
  }
  std::error_code ec;
  fs::permissions(tmp, fs::status(p, ec).permissions(), ec);  // keep a private file private
  fs::rename(tmp, p, ec);
  if (ec) return Fail(Error::Unavailable("cannot replace " + p.string() + ": " + ec.message()));
  return true;
}

// Every `mcpServers` object in a client config (Claude Code's ~/.claude.json also has one per
// project under `projects`).
std::vector<json::object*> ServerMaps(json::value& config) {
  std::vector<json::object*> out;
  json::object& root = config.as_object();
  if (auto* m = root.if_contains("mcpServers"); m && m->is_object()) out.push_back(&m->as_object());
  if (auto* projects = root.if_contains("projects"); projects && projects->is_object()) {
    for (auto& kv : projects->as_object()) {
      if (!kv.value().is_object()) continue;
      if (auto* m = kv.value().as_object().if_contains("mcpServers"); m && m->is_object()) {
        out.push_back(&m->as_object());
      }
    }
  }
  return out;
}

std::string Str(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->get_string()) : std::string();
}

// A name `${NAME}` can reference (and YAML can take as a plain key).
bool ValidEnvName(const std::string& name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0]))) return false;
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  }
  return true;
}

bool IsToolwarden(const std::string& command) {
  return fs::path(command).filename() == "toolwarden";
}

// A name safe as a file name.
std::string FileName(std::string name) {
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') c = '_';
  }
  return name.empty() ? "server" : name;
}

}  // namespace

int InitCommand(const InitOptions& o, const std::string& self) {
  std::vector<fs::path> configs;
  for (const auto& c : o.configs) configs.emplace_back(c);
  if (configs.empty()) {
    for (const auto& c : KnownConfigs()) {
      if (fs::exists(c)) configs.push_back(c);
    }
  }
  if (configs.empty()) {
    std::cerr << "toolwarden init: no MCP client configuration found (looked for Claude Desktop, "
                 "Claude Code and Cursor files); name one with --config\n";
    return kExitInvalid;
  }

  if (o.undo) {
    int restored = 0;
    for (const auto& c : configs) {
      const fs::path backup = c.string() + std::string(kBackupSuffix);
      if (!fs::exists(backup)) continue;
      std::error_code ec;
      fs::rename(backup, c, ec);
      if (ec) {
        std::cerr << "toolwarden init: cannot restore " << c << ": " << ec.message() << "\n";
        return kExitUnavailable;
      }
      std::cout << "restored " << c.string() << " from its backup\n";
      ++restored;
    }
    if (!restored) std::cout << "nothing to undo: no backups next to the configurations\n";
    return kExitOk;
  }

  const fs::path out_dir =
      o.out_dir.empty()
          ? (Env("XDG_CONFIG_HOME").empty() ? fs::path(Env("HOME")) / ".config"
                                            : fs::path(Env("XDG_CONFIG_HOME"))) /
                "toolwarden"
          : fs::path(o.out_dir);
  std::error_code ec;
  fs::create_directories(out_dir / "policies", ec);
  if (ec) {
    std::cerr << "toolwarden init: cannot create " << (out_dir / "policies") << ": " << ec.message() << "\n";
    return kExitUnavailable;
  }

  std::string toolwarden_yaml =
      "# Written by `toolwarden init`: the servers found in your MCP client configurations.\n"
      "# Environment values stay in the client configurations; they are not copied here. A\n"
      "# server that needs some gets them by reference (`env: {NAME: \"${NAME}\"}`): set them\n"
      "# in the environment of `toolwarden serve`, which gives each server nothing else of it.\n"
      "servers:\n";
  int wrapped = 0, failures = 0;
  for (const fs::path& config_path : configs) {
    auto config = ReadJson(config_path);
    if (!config) {
      std::cerr << "toolwarden init: " << config.error().message() << "\n";
      ++failures;
      continue;
    }
    std::cout << config_path.string() << ":\n";
    bool changed = false;
    for (json::object* servers : ServerMaps(*config)) {
      for (auto& kv : *servers) {
        const std::string name(kv.key());
        if (!kv.value().is_object()) continue;
        json::object& entry = kv.value().as_object();
        const std::string command = Str(entry, "command");
        if (command.empty()) {
          std::cout << "  " << name << ": remote server (" << Str(entry, "url")
                    << "), left as is; wrap it with `toolwarden run --upstream URL`\n";
          continue;
        }
        std::vector<std::string> argv{command};
        if (const json::value* args = entry.if_contains("args"); args && args->is_array()) {
          for (const auto& a : args->get_array()) {
            if (a.is_string()) argv.emplace_back(a.get_string());
          }
        }
        if (IsToolwarden(command)) {
          std::cout << "  " << name << ": already runs through toolwarden\n";
          continue;
        }
        ServerTarget target;
        target.command = argv;
        if (const json::value* env = entry.if_contains("env"); env && env->is_object()) {
          for (const auto& e : env->get_object()) {
            // Values reach the scanned server only; they are never printed or written here.
            if (e.value().is_string()) target.env.emplace_back(e.key(), e.value().get_string());
          }
        }
        auto listed = ListServerTools(
            target, std::chrono::milliseconds(static_cast<long>(o.timeout_s * 1000)));
        if (!listed) {
          std::cout << "  " << name << ": could not scan (" << listed.error().message()
                    << "); left as is\n";
          ++failures;
          continue;
        }
        const auto scanned = catalog::ScanTools(listed->tools);
        const fs::path policy = fs::absolute(out_dir / "policies" / (FileName(name) + ".yaml"));
        if (fs::exists(policy) && !o.force) {
          std::cout << "  " << name << ": " << scanned.size() << " tools; keeping the existing "
                    << policy.string() << " (--force to overwrite)\n";
        } else {
          auto w = WriteAtomically(
              policy, catalog::WriteScaffold(scanned, {listed->server.name.empty() ? name : listed->server.name,
                                                       listed->server.version},
                                             catalog::ScaffoldFormat::kYaml));
          if (!w) {
            std::cerr << "toolwarden init: " << w.error().message() << "\n";
            return kExitUnavailable;
          }
          std::cout << "  " << name << ": " << scanned.size() << " tools → " << policy.string() << "\n";
        }
        toolwarden_yaml += "  " + json::serialize(json::string(name)) + ":\n    command: " +
                           json::serialize(json::string(command)) + "\n    args: " +
                           json::serialize(json::value_from(std::vector<std::string>(argv.begin() + 1, argv.end()))) +
                           "\n    policy: " + json::serialize(json::string(policy.string())) + "\n";
        if (!target.env.empty()) {
          // By reference: `serve` starts servers with none of its own environment but what
          // `env:` and `inherit_env:` name, and secrets do not belong in this file.
          std::string names;
          toolwarden_yaml += "    env:\n";
          for (const auto& [key, value] : target.env) {
            if (!ValidEnvName(key)) continue;
            toolwarden_yaml += "      " + key + ": \"${" + key + "}\"\n";
            names += (names.empty() ? "" : ", ") + key;
          }
          std::cout << "    needs " << names << " in the environment of `toolwarden serve`\n";
        }
        if (o.apply) {
          json::array args{"run", "-p", policy.string(), "--server-name", name, "--"};
          for (const auto& a : argv) args.emplace_back(a);
          entry["command"] = self;
          entry["args"] = std::move(args);
          changed = true;
          ++wrapped;
        }
      }
    }
    if (changed) {
      const fs::path backup = config_path.string() + std::string(kBackupSuffix);
      if (!fs::exists(backup)) fs::copy_file(config_path, backup, ec);
      if (ec) {
        std::cerr << "toolwarden init: cannot back up " << config_path << ": " << ec.message() << "\n";
        return kExitUnavailable;
      }
      std::string text;
      Pretty(*config, text, 0);
      text += "\n";
      if (auto w = WriteAtomically(config_path, text); !w) {
        std::cerr << "toolwarden init: " << w.error().message() << "\n";
        return kExitUnavailable;
      }
      std::cout << "  rewritten to run every server through toolwarden (backup: " << backup.string()
                << "; undo with `toolwarden init --undo`)\n";
    }
  }
  const fs::path config_file = out_dir / "toolwarden.yaml";
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
