#include "app/demo.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>

#include "jsonrpc/message.h"
#include "mcp/protocol.h"

extern char** environ;

namespace tw::app {

namespace {

// The demo server's tools: two harmless ones, one destructive, one that leaks secrets.
json::array DemoTools() {
  auto schema = [](json::object properties, json::array required) {
    return json::object{{"type", "object"},
                        {"properties", std::move(properties)},
                        {"required", std::move(required)}};
  };
  return json::array{
      json::object{{"name", "echo"},
                   {"description", "Echoes a message back"},
                   {"inputSchema", schema({{"message", {{"type", "string"}}}}, {"message"})},
                   {"annotations", {{"readOnlyHint", true}}}},
      json::object{{"name", "add"},
                   {"description", "Adds two numbers"},
                   {"inputSchema",
                    schema({{"a", {{"type", "number"}}}, {"b", {{"type", "number"}}}}, {"a", "b"})},
                   {"annotations", {{"readOnlyHint", true}}}},
      json::object{{"name", "delete_all_files"},
                   {"description", "Deletes every file in the workspace (pretends to)"},
                   {"inputSchema", schema({}, {})},
                   {"annotations", {{"destructiveHint", true}}}},
      json::object{{"name", "read_secrets"},
                   {"description", "Returns the server's API keys (pretends to)"},
                   {"inputSchema", schema({}, {})}},
  };
}

json::value CallDemoTool(const std::string& name, const json::object& args) {
  auto text = [](std::string t) {
    return json::object{{"content", json::array{json::object{{"type", "text"}, {"text", t}}}}};
  };
  if (name == "echo") {
    const json::value* m = args.if_contains("message");
    return text(m && m->is_string() ? std::string(m->as_string()) : "");
  }
  if (name == "add") {
    auto num = [&](const char* k) {
      const json::value* v = args.if_contains(k);
      return v && v->is_number() ? v->to_number<double>() : 0.0;
    };
    char buf[64];
    std::snprintf(buf, sizeof buf, "%g", num("a") + num("b"));
    return text(buf);
  }
  if (name == "delete_all_files")
    return text("All files deleted. (If you can read this, no policy stopped it.)");
  if (name == "read_secrets")
    return text("API_KEY=sk-demo-0000 (If you can read this, no policy stopped it.)");
  json::object r = text("Unknown tool: " + name);
  r["isError"] = true;
  return r;
}

constexpr const char* kDemoPolicy = R"(# toolwarden demo policy (written by `toolwarden demo`)
version: "1"
default: deny              # anything not listed is denied
hide:
  - read_secrets           # removed from tools/list; denied if called anyway
tools:
  echo: {}                 # allowed
  add: {}
  delete_*:
    action: deny
    reason: Deleting files is not permitted for agents
)";

// A child process speaking newline-delimited JSON-RPC on its stdin/stdout.
class Child {
 public:
  explicit Child(const std::vector<std::string>& argv) {
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) return;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    if (posix_spawn(&pid_, args[0], &fa, nullptr, args.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]);
    close(out[1]);
    to_ = fdopen(in[1], "w");
    from_ = fdopen(out[0], "r");
  }
  ~Child() {
    if (to_) fclose(to_);  // EOF: the gateway shuts the server down and exits
    if (from_) fclose(from_);
    if (pid_ > 0) waitpid(pid_, nullptr, 0);
  }
  bool ok() const { return pid_ > 0 && to_ && from_; }

  json::value Call(int id, std::string_view method, json::value params) {
    Send(jsonrpc::MakeRequest(id, std::string(method), std::move(params)));
    for (;;) {
      std::string line = ReadLine();
      if (line.empty()) return nullptr;
      json::value v = json::parse(line);
      if (v.is_object() && v.as_object().contains("id") && v.at("id") == json::value(id)) return v;
    }
  }
  void Send(const jsonrpc::Message& m) {
    std::string line = jsonrpc::Serialize(m) + "\n";
    fwrite(line.data(), 1, line.size(), to_);
    fflush(to_);
  }

 private:
  std::string ReadLine() {
    std::string line;
    int c;
    while ((c = fgetc(from_)) != EOF && c != '\n') line.push_back(static_cast<char>(c));
    return line;
  }
  pid_t pid_ = -1;
  FILE* to_ = nullptr;
  FILE* from_ = nullptr;
};

std::string ResultText(const json::value& response) {
  const json::object* r = response.is_object() ? response.as_object().if_contains("result")
                                                     ? &response.at("result").as_object()
                                                     : nullptr
                                               : nullptr;
  if (!r) return response.is_null() ? "(no answer)" : json::serialize(response);
  std::string out;
  if (const json::value* content = r->if_contains("content"); content && content->is_array()) {
    for (const auto& c : content->as_array()) {
      if (c.is_object() && c.as_object().contains("text"))
        out += std::string(c.at("text").as_string());
    }
  }
  return out;
}

}  // namespace

int DemoServerMain() {
  // Blocking stdio loop: the demo server is a child of the gateway and serves one client.
  std::string line;
  while (std::getline(std::cin, line)) {
    jsonrpc::Incoming in = jsonrpc::Parse(line);
    for (auto& item : in.items) {
      if (!item || !item->IsRequest()) continue;
      const jsonrpc::Message& m = *item;
      json::value result;
      if (m.method == mcp::method::kInitialize) {
        std::string version(mcp::kLatestVersion);
        if (m.params.is_object()) {
          if (const json::value* v = m.params.as_object().if_contains("protocolVersion");
              v && v->is_string() && mcp::IsSupportedVersion(v->as_string())) {
            version = std::string(v->as_string());
          }
        }
        result = json::object{
            {"protocolVersion", version},
            {"capabilities", {{"tools", json::object{}}}},
            {"serverInfo", {{"name", "toolwarden-demo-server"}, {"version", "1.0.0"}}}};
      } else if (m.method == mcp::method::kToolsList) {
        result = json::object{{"tools", DemoTools()}};
      } else if (m.method == mcp::method::kToolsCall) {
        auto call = mcp::ParseToolCall(m.params);
        if (!call) {
          std::cout << jsonrpc::Serialize(jsonrpc::MakeError(m.id, jsonrpc::kInvalidParams,
                                                             call.error().message()))
                    << std::endl;
          continue;
        }
        result = CallDemoTool(call->name, call->arguments);
      } else if (m.method == mcp::method::kPing) {
        result = json::object{};
      } else {
        std::cout << jsonrpc::Serialize(jsonrpc::MakeError(m.id, jsonrpc::kMethodNotFound,
                                                           "Method not found: " + m.method))
                  << std::endl;
        continue;
      }
      std::cout << jsonrpc::Serialize(jsonrpc::MakeResponse(m.id, std::move(result))) << std::endl;
    }
  }
  return 0;
}

int DemoMain(const std::string& self) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("toolwarden-demo-" + std::to_string(getpid()));
  fs::create_directories(dir);
  const fs::path policy = dir / "policy.yaml";
  std::ofstream(policy) << kDemoPolicy;

  std::cout << "toolwarden demo: the gateway in front of a bundled demo MCP server.\n\n"
            << "Policy (" << policy.string() << "):\n\n"
            << kDemoPolicy << "\n";
  int status = 0;
  {
    // Counters, pins and audit in memory: the demo leaves nothing behind.
    Child gw({self, "--log-level", "warn", "run", "-p", policy.string(), "--state", "memory",
              "--server-name", "demo", "--", self, "demo-server"});
    if (!gw.ok()) {
      std::cerr << "toolwarden demo: cannot start " << self << "\n";
      return 1;
    }
    json::value init = gw.Call(0, "initialize",
                               {{"protocolVersion", mcp::kLatestVersion},
                                {"capabilities", json::object{}},
                                {"clientInfo", {{"name", "toolwarden-demo"}, {"version", "1.0"}}}});
    gw.Send(jsonrpc::MakeNotification(std::string(mcp::method::kInitialized), nullptr));
    std::cout << "1. initialize -> "
              << (init.is_object() && init.as_object().contains("result")
                      ? std::string(init.at("result").at("serverInfo").at("name").as_string())
                      : json::serialize(init))
              << "\n";

    json::value list = gw.Call(1, "tools/list", json::object{});
    std::cout << "2. tools/list -> the agent sees:";
    if (list.is_object() && list.as_object().contains("result")) {
      for (const auto& t : list.at("result").at("tools").as_array()) {
        std::cout << " " << t.at("name").as_string().c_str();
      }
    }
    std::cout << "   (read_secrets is hidden)\n";

    struct Step {
      const char* label;
      const char* tool;
      json::object args;
    };
    const Step steps[] = {
        {"3. allowed", "echo", {{"message", "hello through the gateway"}}},
        {"4. allowed", "add", {{"a", 2}, {"b", 40}}},
        {"5. denied ", "delete_all_files", {}},
        {"6. hidden ", "read_secrets", {}},
    };
    int id = 2;
    for (const Step& s : steps) {
      json::value r = gw.Call(id++, "tools/call", {{"name", s.tool}, {"arguments", s.args}});
      std::cout << s.label << "  tools/call " << s.tool << " -> " << ResultText(r) << "\n";
      const bool denied = ResultText(r).starts_with("[POLICY DENIED]");
      const bool should_deny =
          std::string_view(s.label).starts_with("5") || std::string_view(s.label).starts_with("6");
      if (denied != should_deny) status = 1;
    }
  }
  fs::remove_all(dir);
  std::cout << R"(
What next:
  * Wrap a real server (stdio), e.g. in Claude Code's .mcp.json:
      {"mcpServers": {"everything": {"command": "toolwarden",
        "args": ["run", "-p", "/path/to/policy.yaml", "--", "npx", "-y",
                 "@modelcontextprotocol/server-everything"]}}}
  * Serve it over HTTP instead:  toolwarden run -p policy.yaml --listen 127.0.0.1:8421 -- CMD...
  * Check a policy file:          toolwarden validate policy.yaml
  * Everything else:              toolwarden --help, and README.md
)";
  return status;
}

}  // namespace tw::app
