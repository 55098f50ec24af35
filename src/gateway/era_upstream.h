// EraUpstream: a server of either protocol era behind the gateway's session relay, which
// speaks the initialize-handshake (legacy) protocol.
//
// The relay sends `initialize` first. In kAuto and kModern mode the adapter asks the server
// `server/discover` instead (the 2026-07-28 era's probe, spec "Versioning: Backward
// Compatibility"): a DiscoverResult naming a version the gateway speaks makes it a modern
// server, and the adapter answers the relay's initialize itself from it (capabilities less
// per-resource subscriptions, the server's identity, instructions). From then on every request
// carries the reserved `_meta` of its era — the protocol version, and the client's
// capabilities, identity and log level where the request does not carry its own (a stateless
// client's requests do: transport/stateless_channel.h) —, `notifications/initialized` is not
// sent, `ping` and `logging/setLevel` are answered by the adapter (the level travels in each
// request's `_meta`), and list changes arrive on a `subscriptions/listen` request the adapter
// keeps open (its notifications reach the relay as the server's own, without their
// subscription id). Any other answer to the probe — an error, an HTTP refusal — makes it a
// legacy server in kAuto mode (the relay's initialize is sent as it was) and fails the
// initialize in kModern mode. In kLegacy mode nothing is probed.
//
// A 2026-07-28 server's tools may mark parameters `x-mcp-header`: the adapter reads them from
// every tools/list the server answers and gives each tools/call the Mcp-Param-* headers of its
// arguments (the values that were decided: nothing a client sent in headers is forwarded); a
// tool whose annotations are invalid is dropped from the list, as the specification asks of a
// client, so it cannot be called through the gateway.
//
// Toward a legacy server, the reserved `_meta` keys of the 2026-07-28 era are removed from
// every request: they mean nothing to it.
//
// Results cross unchanged — except an input_required result to a request of a 2025-era client
// (one that did not carry the era's `_meta` itself): that client knows no such result, so the
// adapter asks it the server's questions the 2025 way, as server requests of the call
// (elicitation/create, sampling/createMessage, roots/list, related to the call so they reach
// its stream), and when every one is answered retries the call with the answers
// (`inputResponses`) and the server's `requestState` under the same id. The retry is the
// continuation of the call that was decided, not a new call; at most kMaxRounds rounds. A
// question the client refuses ends the call with that error. A 2026-07-28 client's
// input_required results cross as they are (it retries itself, and each retry is decided).
//
// Thread: the inner upstream's.
#pragma once

#include <deque>
#include <set>
#include <unordered_map>
#include <memory>
#include <optional>
#include <string>

#include "gateway/upstream.h"
#include "mcp/modern.h"

namespace tw::gateway {

class EraUpstream : public Upstream {
 public:
  enum class Mode { kAuto, kLegacy, kModern };
  EraUpstream(std::unique_ptr<Upstream> inner, Mode mode);
  ~EraUpstream() override;

  void Start(Events events) override;
  void Send(jsonrpc::Message msg) override;
  void Close() override;

  enum class Era { kUnknown, kProbing, kLegacy, kModern };
  Era era() const { return era_; }
  static constexpr int kMaxRounds = 16;

 private:
  void OnMessage(jsonrpc::Message msg, std::optional<json::value> related);
  void OnRequestFailed(const json::value& id, const Error& error, bool sent);
  void Probe();
  void Discovered(const jsonrpc::Message& answer);
  void BecomeLegacy();
  void SendModern(jsonrpc::Message msg);
  void Listen();
  // The listen request ended (answered or failed).
  void ListenEnded();
  void Answer(const json::value& id, json::value result);
  // Adds the era's `_meta` to a request's params (what the request does not say itself).
  void AddMeta(json::value& params) const;
  // An input_required answer to a 2025-era client's request: asks the client. False when it
  // cannot (the answer then crosses as it is).
  bool AskClient(const std::string& key, const jsonrpc::Message& answer);
  // The client's answer to a question asked for a call; retries the call once all are in.
  void OnClientAnswer(jsonrpc::Message msg);
  // Sends the call `key` again with the answers of its round and the server's requestState.
  void Retry(const std::string& key);
  void Forget(const std::string& key);

  std::unique_ptr<Upstream> inner_;
  Mode mode_;
  Events events_;
  Era era_ = Era::kUnknown;
  std::optional<jsonrpc::Message> initialize_;  // the relay's, while probing
  std::deque<jsonrpc::Message> queued_;         // sent by the relay while probing
  json::value client_capabilities_ = json::object();
  json::value client_info_;
  std::optional<std::string> log_level_;
  json::value server_capabilities_;
  uint64_t next_id_ = 1;
  std::string probe_id_;
  std::string listen_id_;
  bool listen_acknowledged_ = false;
  // Requests of 2025-era clients that may be answered input_required (tools/call, prompts/get,
  // resources/read), as sent, by id key; and the questions asked for them.
  struct Call {
    jsonrpc::Message request;
    json::object responses;    // of the current round
    std::set<std::string> waiting;  // input keys not answered yet
    json::value request_state;
    int rounds = 0;
  };
  std::unordered_map<std::string, Call> calls_;
  // Each tool's x-mcp-header parameters (tools with none are absent), and the ids of the
  // tools/list requests in flight whose answers say them.
  std::unordered_map<std::string, std::vector<mcp::modern::HeaderParam>> header_params_;
  std::set<std::string> listing_;
  // Reads a tools/list result's x-mcp-header annotations; drops the tools whose are invalid.
  void ObserveTools(json::value& result);
  // Gives a tools/call the Mcp-Param-* headers of its arguments.
  void AddParamHeaders(jsonrpc::Message& call) const;
  std::unordered_map<std::string, std::pair<std::string, std::string>> asks_;  // ask id → call, key
  bool closed_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace tw::gateway
