// AggregateSession: one MCP client session served by several upstream servers at once — the
// `/mcp` endpoint of `toolwarden serve`.
//
// Each server is a "leg": an ordinary Session (its own upstream connection, its own
// ToolCallGuard with that server's policy), whose client side is this object instead of a
// transport. The aggregate speaks to the client as one MCP server:
//   - initialize is answered by the gateway (its own capabilities); each leg is initialized
//     with the client's parameters. The answer waits for the legs at most `init_wait_ms`; a
//     leg that comes up later (or comes back after a restart) is announced with list_changed.
//   - tools and prompts are named `server__name`; resource URIs become `server+uri` (also in
//     tool results and resource updates), so two servers can never be confused.
//   - list requests fan out to every ready leg and merge in server order; the cursor is ours
//     and carries each leg's own cursor, so pagination works across servers.
//   - everything aimed at one item (tools/call, resources/read, prompts/get, completion) goes
//     to its leg only; a leg that is down answers with an error naming the server, and its
//     items disappear from the lists. The others keep serving.
//   - server→client requests (sampling, elicitation, roots) get ids unique across legs.
//
// Thread: single-threaded, like Session. Timers come from the Scheduler.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "gateway/session.h"

namespace tw::gateway {

// Runs `fn` after `delay_ms` on the session's thread (a timer the transport owns).
using Scheduler = std::function<void(int64_t delay_ms, std::function<void()> fn)>;

struct AggregateMember {
  std::string server;
  std::unique_ptr<Upstream> upstream;
  const ToolCallGuard* guard = nullptr;  // must outlive the session
};

struct AggregateOptions {
  int64_t init_wait_ms = 5000;
  std::string server_name = "toolwarden";
  std::string server_version;
  // Told when a leg goes down or comes up (for the gateway's view of server health).
  std::function<void(const std::string& server, bool up, const std::string& why)> on_health;
};

// Names: `server__tool` (server names never contain '_'), URIs: `server+uri` (nor '+').
std::string QualifiedName(const std::string& server, std::string_view name);
// Splits a qualified name or URI; nullopt when it has no server part.
std::optional<std::pair<std::string, std::string>> SplitQualifiedName(std::string_view name);
std::string QualifiedUri(const std::string& server, std::string_view uri);
std::optional<std::pair<std::string, std::string>> SplitQualifiedUri(std::string_view uri);

class AggregateSession : public McpSession {
 public:
  AggregateSession(std::string id, std::vector<AggregateMember> members, ClientSink& sink,
                   Caller caller, Scheduler scheduler, AggregateOptions options = {});
  ~AggregateSession() override;

  void Start() override;
  void HandleClientMessage(jsonrpc::Message msg) override;
  void Close() override;
  const std::string& protocol_version() const override { return protocol_version_; }
  size_t pending_requests() const override;

  // The servers this session aggregates, and whether each is ready (for tests and the API).
  std::vector<std::pair<std::string, bool>> LegStates() const;

 private:
  enum class LegState { kIdle, kStarting, kReady, kDown };
  struct Leg;
  class LegSink;
  struct FanOut {
    json::value client_id;  // null for the gateway's own (initialize)
    std::string method;
    size_t waiting = 0;
    bool replied = false;
    std::map<size_t, jsonrpc::Message> answers;  // by leg index
  };
  struct Routed {
    size_t leg = 0;
    std::string method;
  };

  void OnLegMessage(size_t leg, const jsonrpc::Message& msg,
                    const std::optional<json::value>& related);
  void OnLegHealth(size_t leg, bool up, const std::string& why);
  void HandleRequest(jsonrpc::Message msg);
  void HandleInitialize(jsonrpc::Message msg);
  void StartFanOut(const jsonrpc::Message& msg, const std::vector<std::pair<size_t, json::value>>& legs);
  void OnFanOutAnswer(uint64_t fanout, size_t leg, jsonrpc::Message msg);
  void FinishFanOut(uint64_t fanout);
  void ReplyInitialize(FanOut& f);
  void MergeList(FanOut& f);
  void RouteToLeg(jsonrpc::Message msg, size_t leg);
  void LegReady(size_t leg);
  void LegDown(size_t leg, const std::string& why);
  void AnnounceListsChanged();
  void Reply(jsonrpc::Message msg);
  std::optional<size_t> LegByName(const std::string& server) const;
  // The client request a leg message belongs to, translated out of the leg's namespace.
  std::optional<json::value> ClientRelated(const std::optional<json::value>& related) const;
  std::optional<std::pair<uint64_t, size_t>> ParseFanOutId(const json::value& id) const;
  json::value FanOutId(uint64_t fanout, size_t leg) const;
  void RewriteResultUris(size_t leg, json::value& result) const;

  std::string id_;
  const Caller caller_;
  ClientSink& sink_;
  Scheduler scheduler_;
  AggregateOptions options_;
  std::vector<std::unique_ptr<Leg>> legs_;
  std::string protocol_version_;
  std::string id_prefix_;  // of our own request ids inside the legs
  uint64_t next_fanout_ = 1;
  std::unordered_map<uint64_t, FanOut> fanouts_;
  std::unordered_map<std::string, Routed> routed_;  // client id key → leg it went to
  int64_t next_server_request_ = 1;
  std::unordered_map<int64_t, std::pair<size_t, json::value>> server_requests_;  // ours → leg's
  json::value initialize_params_;
  bool initialize_answered_ = false;
  bool client_initialized_ = false;
  bool closed_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace tw::gateway
