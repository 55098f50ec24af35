#include "common/event_hub.h"

#include <gtest/gtest.h>

namespace tw {
namespace {

TEST(EventHubTest, PublishesToEverySubscriberInOrder) {
  EventHub hub;
  auto a = hub.Subscribe();
  auto b = hub.Subscribe();
  int woken = 0;
  a->SetWaker([&] { ++woken; });
  hub.Publish("decision", R"({"n":1})");
  hub.Publish("outcome", R"({"n":2})");
  auto frames = a->Take();
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[0], "event: decision\ndata: {\"n\":1}\n\n");
  EXPECT_EQ(frames[1], "event: outcome\ndata: {\"n\":2}\n\n");
  EXPECT_EQ(woken, 2);
  EXPECT_TRUE(a->empty());
  EXPECT_EQ(b->Take().size(), 2u);
}

TEST(EventHubTest, ADroppedSubscriberIsForgotten) {
  EventHub hub;
  EXPECT_FALSE(hub.HasSubscribers());
  auto a = hub.Subscribe();
  EXPECT_TRUE(hub.HasSubscribers());
  a.reset();
  EXPECT_FALSE(hub.HasSubscribers());
  hub.Publish("x", "{}");  // nobody listens: nothing happens
}

TEST(EventHubTest, ASlowReaderLosesEventsAndIsToldOnce) {
  EventHub hub;
  auto a = hub.Subscribe(3);
  for (int i = 0; i < 10; ++i) hub.Publish("decision", std::to_string(i));
  auto frames = a->Take();
  ASSERT_EQ(frames.size(), 4u);
  EXPECT_EQ(frames[2], "event: decision\ndata: 2\n\n");
  EXPECT_EQ(frames[3], "event: lagged\ndata: {}\n\n");
  EXPECT_TRUE(a->Take().empty());
}

}  // namespace
}  // namespace tw
