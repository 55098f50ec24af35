#include "common/event_hub.h"

#include <algorithm>

namespace tw {

std::vector<std::string> EventQueue::Take() {
  std::vector<std::string> out(std::make_move_iterator(frames_.begin()),
                               std::make_move_iterator(frames_.end()));
  frames_.clear();
  if (lagged_) {
    out.emplace_back("event: lagged\ndata: {}\n\n");
    lagged_ = false;
  }
  return out;
}

void EventQueue::Push(const std::string& frame) {
  if (frames_.size() >= capacity_) {
    lagged_ = true;
  } else {
    frames_.push_back(frame);
  }
  if (waker_) waker_();
}

std::shared_ptr<EventQueue> EventHub::Subscribe(size_t capacity) {
  auto q = std::make_shared<EventQueue>(capacity);
  subscribers_.push_back(q);
  return q;
}

bool EventHub::HasSubscribers() {
  std::erase_if(subscribers_, [](const std::weak_ptr<EventQueue>& w) { return w.expired(); });
  return !subscribers_.empty();
}

void EventHub::Publish(std::string_view event, std::string_view data) {
  if (!HasSubscribers()) return;
  std::string frame;
  frame.reserve(event.size() + data.size() + 16);
  frame.append("event: ").append(event).append("\ndata: ").append(data).append("\n\n");
  // A waker may subscribe or unsubscribe; iterate over a copy.
  auto subscribers = subscribers_;
  for (auto& w : subscribers) {
    if (auto q = w.lock()) q->Push(frame);
  }
}

}  // namespace tw
