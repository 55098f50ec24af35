// FakeUpstream: a gateway::Upstream for unit tests. Records what the gateway sends; tests play
// the server by calling the events it was started with. Test-only.
#pragma once

#include <gtest/gtest.h>

#include <deque>
#include <optional>

#include "gateway/session.h"
#include "gateway/upstream.h"

namespace tw::testing {

class FakeUpstream : public gateway::Upstream {
 public:
  void Start(Events events) override { events_ = std::move(events); }
  void Send(jsonrpc::Message msg) override { sent.push_back(std::move(msg)); }
  void Close() override { closed = true; }

  // Pops the oldest message the gateway sent (fails the test if there is none).
  jsonrpc::Message TakeSent() {
    EXPECT_FALSE(sent.empty());
    if (sent.empty()) return {};
    jsonrpc::Message m = std::move(sent.front());
    sent.pop_front();
    return m;
  }
  // Plays a message from the server; `related` as an HTTP upstream would give it.
  void FromServer(jsonrpc::Message msg, std::optional<json::value> related = std::nullopt) {
    events_.on_message(std::move(msg), std::move(related));
  }
  const Events& events() const { return events_; }

  std::deque<jsonrpc::Message> sent;
  bool closed = false;

 private:
  Events events_;
};

// A ClientSink that keeps what it is given, for tests to inspect.
class RecordingSink : public gateway::ClientSink {
 public:
  void Deliver(const jsonrpc::Message& msg, const std::optional<json::value>& related) override {
    delivered.push_back({msg, related});
  }
  // Pops the oldest delivered message (fails the test if there is none).
  jsonrpc::Message Take() {
    EXPECT_FALSE(delivered.empty());
    if (delivered.empty()) return {};
    jsonrpc::Message m = delivered.front().first;
    delivered.pop_front();
    return m;
  }
  std::deque<std::pair<jsonrpc::Message, std::optional<json::value>>> delivered;
};

// Parses one message that the test knows to be valid.
inline jsonrpc::Message ParseMessage(std::string_view text) {
  auto in = jsonrpc::Parse(text);
  EXPECT_TRUE(in.items.at(0).has_value()) << text;
  return in.items.at(0).has_value() ? *in.items.at(0) : jsonrpc::Message{};
}

}  // namespace tw::testing
