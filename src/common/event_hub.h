// EventHub: a fan-out of server-sent events to live subscribers (the console's decision
// stream). Publishers format nothing unless someone listens (HasSubscribers); each subscriber
// has a bounded queue, so a slow reader loses events (and is told so with one `lagged` event)
// instead of growing memory without bound.
//
// Thread: one thread (the gateway's io thread) publishes, subscribes and takes. Not locked.
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace tw {

class EventQueue {
 public:
  explicit EventQueue(size_t capacity) : capacity_(capacity) {}
  // Every frame waiting, oldest first (complete SSE frames: "event: x\ndata: …\n\n"); empties
  // the queue. Ends with a `lagged` frame when frames were dropped since the last Take.
  std::vector<std::string> Take();
  bool empty() const { return frames_.empty() && !lagged_; }
  // Called (synchronously, inside Publish) when a frame arrives; the reader's wake-up.
  void SetWaker(std::function<void()> waker) { waker_ = std::move(waker); }

 private:
  friend class EventHub;
  void Push(const std::string& frame);

  size_t capacity_;
  std::deque<std::string> frames_;
  bool lagged_ = false;
  std::function<void()> waker_;
};

class EventHub {
 public:
  // A new subscriber; it stays subscribed while the returned pointer lives.
  std::shared_ptr<EventQueue> Subscribe(size_t capacity = 2048);
  bool HasSubscribers();
  // Sends `data` (one line of JSON) as event `event` to every subscriber.
  void Publish(std::string_view event, std::string_view data);

 private:
  std::vector<std::weak_ptr<EventQueue>> subscribers_;
};

}  // namespace tw
