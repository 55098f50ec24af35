#include "app/init_clients.h"

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "app/init_record.h"
#include "app/json_text.h"
#include "app/toml_text.h"

namespace tw::app {

namespace fs = std::filesystem;

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

bool IsToml(const fs::path& p) { return p.extension() == ".toml"; }

Result<json::value> ParseConfigText(const fs::path& p, std::string_view text) {
  return IsToml(p) ? ParseTomlText(text) : ParseJsonText(text);
}

Result<std::string> ReplaceEntry(const fs::path& p, std::string_view text,
                                 const std::vector<std::string>& path, const json::value& entry) {
  if (!IsToml(p)) {
    // When the entry keeps the same keys (a local server's command and args), only the values
    // that differ are rewritten: a comment beside another key of the entry stays.
    auto span = FindValue(text, path);
    auto now = span ? ParseJsonText(text.substr(span->begin, span->end - span->begin))
                    : Result<json::value>(Fail(Error::NotFound("entry")));
    const json::object* before = now ? now->if_object() : nullptr;
    const json::object* after = entry.if_object();
    bool same_keys = before && after && before->size() == after->size();
    for (const auto& kv : same_keys ? *after : json::object()) same_keys = same_keys && before->contains(kv.key());
    if (!same_keys) return ReplaceValue(text, path, entry);
    std::string out(text);
    for (const auto& kv : *after) {
      if (before->at(kv.key()) == kv.value()) continue;
      std::vector<std::string> key_path = path;
      key_path.emplace_back(kv.key());
      auto next = ReplaceValue(out, key_path, kv.value());
      if (!next) return next;
      out = std::move(*next);
    }
    return out;
  }
  if (!entry.is_object()) return Fail(Error::InvalidArgument("a server entry is a table"));
  return SetTomlTable(text, path, entry.get_object());
}

Result<ConfigFile> ReadConfig(const fs::path& p) {
  auto text = ReadText(p);
  if (!text) return Fail(text.error());
  auto v = ParseConfigText(p, *text);
  if (!v || !v->is_object()) {
    return Fail(Error::InvalidArgument(p.string() + (IsToml(p) ? ": not TOML" : ": not a JSON object") +
                                       (v ? std::string() : " (" + v.error().message() + ")")));
  }
  return ConfigFile{std::move(*text), std::move(*v)};
}

namespace {

std::string PointerToken(std::string_view key) {
  std::string out;
  for (char c : key) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

std::vector<std::pair<std::string, json::object*>> ServerMaps(json::value& config) {
  std::vector<std::pair<std::string, json::object*>> out;
  json::object& root = config.as_object();
  for (const char* key : {"mcpServers", "servers", "context_servers", "mcp_servers"}) {
    if (auto* m = root.if_contains(key); m && m->is_object()) {
      out.emplace_back(std::string("/") + key, &m->as_object());
    }
  }
  if (auto* projects = root.if_contains("projects"); projects && projects->is_object()) {
    for (auto& kv : projects->as_object()) {
      if (!kv.value().is_object()) continue;
      if (auto* m = kv.value().as_object().if_contains("mcpServers"); m && m->is_object()) {
        out.emplace_back("/projects/" + PointerToken(kv.key()) + "/mcpServers", &m->as_object());
      }
    }
  }
  return out;
}

std::string Str(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->get_string()) : std::string();
}

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

std::string FileName(std::string name) {
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') c = '_';
  }
  return name.empty() ? "server" : name;
}

std::vector<KnownClient> KnownClients() {
  const fs::path home = Env("HOME");
  return {
      {"Claude Desktop (Linux)", home / ".config" / "Claude" / "claude_desktop_config.json"},
      {"Claude Desktop (macOS)",
       home / "Library" / "Application Support" / "Claude" / "claude_desktop_config.json"},
      {"Claude Code (project)", fs::current_path() / ".mcp.json"},
      {"Claude Code (user and local)", home / ".claude.json"},
      {"Cursor (global)", home / ".cursor" / "mcp.json"},
      {"Cursor (project)", fs::current_path() / ".cursor" / "mcp.json"},
      {"VS Code (workspace)", fs::current_path() / ".vscode" / "mcp.json"},
      {"VS Code (user)", home / ".config" / "Code" / "User" / "mcp.json"},
      {"Windsurf", home / ".codeium" / "windsurf" / "mcp_config.json"},
      {"Gemini CLI (user)", home / ".gemini" / "settings.json"},
      {"Gemini CLI (project)", fs::current_path() / ".gemini" / "settings.json"},
      {"Zed (user)", home / ".config" / "zed" / "settings.json"},
      {"Zed (project)", fs::current_path() / ".zed" / "settings.json"},
      {"Codex", (Env("CODEX_HOME").empty() ? home / ".codex" : fs::path(Env("CODEX_HOME"))) /
                    "config.toml"},
  };
}

std::optional<Wrapped> Unwrap(const json::object& entry) {
  const json::value* args = entry.if_contains("args");
  if (!args || !args->is_array()) return std::nullopt;
  std::vector<std::string> a;
  for (const auto& v : args->get_array()) a.push_back(v.is_string() ? std::string(v.get_string()) : "");
  Wrapped w;
  for (size_t i = 0; i + 1 < a.size(); ++i) {
    if (a[i] == "-p" || a[i] == "--policy") w.policy = a[i + 1];
    if (a[i] == "--upstream") w.url = a[i + 1];
    if (a[i] == "--") {
      w.argv.assign(a.begin() + static_cast<long>(i) + 1, a.end());
      break;
    }
  }
  if (w.policy.empty() || (w.argv.empty() && w.url.empty())) return std::nullopt;
  return w;
}


void WrapRemote(json::object& entry, const std::string& url_key, const std::string& url,
                const std::vector<std::pair<std::string, std::string>>& header_vars,
                json::object& before, json::array& args) {
  before["url"] = url;
  if (url_key != "url") before["url_key"] = url_key;
  before["type"] = entry.contains("type") ? entry["type"] : json::value();
  // Worked out first, written after: erasing keys moves an object's values, so no reference
  // into `entry` is held across a change.
  json::object env;
  if (const json::value* e = entry.if_contains("env"); e && e->is_object()) env = e->as_object();
  json::object headers;
  if (const json::value* h = entry.if_contains("headers"); h && h->is_object()) headers = h->as_object();
  json::object refs;
  json::array added;
  args.emplace_back("--upstream");
  args.emplace_back(url);
  for (const auto& [header, var] : header_vars) {
    args.emplace_back("--header");
    args.emplace_back(header + ": ${" + var + "}");
    refs[header] = "${" + var + "}";
    if (const json::value* v = headers.if_contains(header)) env[var] = *v;
    added.emplace_back(var);
  }
  before["headers"] = std::move(refs);
  before["env_added"] = std::move(added);
  entry.erase(url_key);
  entry.erase("headers");
  if (entry.contains("type")) entry["type"] = "stdio";
  if (env.empty()) {
    entry.erase("env");
  } else {
    entry["env"] = std::move(env);
  }
}

std::vector<std::pair<std::string, std::string>> HeaderRefs(const json::object& entry) {
  std::vector<std::pair<std::string, std::string>> out;
  const json::value* args = entry.if_contains("args");
  if (!args || !args->is_array()) return out;
  const json::array& a = args->as_array();
  for (size_t i = 0; i + 1 < a.size(); ++i) {
    if (a[i] != "--header" || !a[i + 1].is_string()) continue;
    const std::string_view h = a[i + 1].as_string();
    const size_t colon = h.find(": ${");
    if (colon == std::string_view::npos || !h.ends_with("}")) continue;
    out.emplace_back(std::string(h.substr(0, colon)),
                     std::string(h.substr(colon + 4, h.size() - colon - 5)));
  }
  return out;
}

std::string HeaderVariable(std::string_view server, std::string_view header) {
  std::string out;
  for (std::string_view part : {server, std::string_view("_"), header}) {
    for (char c : part) {
      out += std::isalnum(static_cast<unsigned char>(c))
                 ? static_cast<char>(std::toupper(static_cast<unsigned char>(c)))
                 : '_';
    }
  }
  if (!out.empty() && std::isdigit(static_cast<unsigned char>(out[0]))) out = "_" + out;
  return out;
}

}  // namespace tw::app
