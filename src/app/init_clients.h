// The client side of `toolwarden init`: where each MCP client keeps its servers, reading a
// client's file (JSON, comments allowed), finding its server maps, and what an entry init
// wrapped runs.
#pragma once

#include <boost/json.hpp>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"

namespace tw::app {

namespace json = boost::json;

// Whether a client configuration is TOML (Codex) rather than JSON (every other client).
bool IsToml(const std::filesystem::path& p);
// What a configuration's text says, as JSON (json_text.h or toml_text.h by the file's kind).
Result<json::value> ParseConfigText(const std::filesystem::path& p, std::string_view text);
// Replaces the server entry at `path` in the text of configuration `p` (ReplaceValue or
// SetTomlTable): comments and formatting elsewhere survive.
Result<std::string> ReplaceEntry(const std::filesystem::path& p, std::string_view text,
                                 const std::vector<std::string>& path, const json::value& entry);

// A client configuration: its text, and what it says (JSON with comments and trailing commas
// allowed, or TOML).
struct ConfigFile {
  std::string text;
  json::value value;
};
Result<ConfigFile> ReadConfig(const std::filesystem::path& p);

// Every server map in a client config — `mcpServers` (Claude, Cursor, Windsurf, Gemini CLI),
// `servers` (VS Code), `context_servers` (Zed), `mcp_servers` (Codex), and Claude Code's one per project under `projects` in ~/.claude.json —
// with its JSON pointer.
std::vector<std::pair<std::string, json::object*>> ServerMaps(json::value& config);

// The known client files: where each client keeps its MCP servers.
struct KnownClient {
  std::string client;
  std::filesystem::path path;
};
std::vector<KnownClient> KnownClients();

// What an entry `init --apply` wrote runs: its policy and the server's own command line (or
// its URL, for a remote server).
struct Wrapped {
  std::string policy;
  std::vector<std::string> argv;
  std::string url;
};
std::optional<Wrapped> Unwrap(const json::object& entry);

// An environment variable's value ("" when unset).
std::string Env(const char* name);
std::string Str(const json::object& o, std::string_view key);
// A name `${NAME}` can reference (and YAML can take as a plain key).
bool ValidEnvName(const std::string& name);
bool IsToolwarden(const std::string& command);
// A name safe as a file name.
std::string FileName(std::string name);
// The environment variable that carries header `header` of server `server` ("github",
// "Authorization" → GITHUB_AUTHORIZATION).
std::string HeaderVariable(std::string_view server, std::string_view header);

// Turns a remote server's entry (its address under `url_key`: `url`, or Windsurf's
// `serverUrl`) into one that runs `toolwarden run --upstream`: `args` gets
// `--upstream URL` and a `--header "K: ${VAR}"` per header, the header values move into the
// entry's `env` under their variables, `url` and `headers` go and `type` (if any) becomes
// stdio. `before` gets what undo needs to put back: url, type, and each header's variable
// (`${VAR}`, never its value) — and which `env` keys it added.
void WrapRemote(json::object& entry, const std::string& url_key, const std::string& url,
                const std::vector<std::pair<std::string, std::string>>& header_vars,
                json::object& before, json::array& args);
// What a wrapped remote entry's headers are, by variable (from its `--header` arguments).
std::vector<std::pair<std::string, std::string>> HeaderRefs(const json::object& entry);

}  // namespace tw::app
