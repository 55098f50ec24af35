#include "transport/http_session.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>

#include "policy/policy.h"
#include "testing/fake_clock.h"
#include "testing/fake_upstream.h"

namespace tw::transport {
namespace {

using testing::FakeUpstream;
using testing::ParseMessage;

class HttpSessionTest : public ::testing::Test {
 protected:
  void Make(HttpMcpSession::Transport transport = HttpMcpSession::Transport::kStreamableHttp) {
    auto upstream = std::make_unique<FakeUpstream>();
    upstream_ = upstream.get();
    auto* up = upstream.release();
    session_ = std::make_unique<HttpMcpSession>(
        "sid", transport,
        [&](gateway::ClientSink& sink) {
          return std::make_unique<gateway::Session>("sid", std::unique_ptr<gateway::Upstream>(up),
                                                    guard_, sink);
        },
        4);
    session_->relay().Start();
  }
  void SetUp() override { Make(); }

  std::shared_ptr<StreamWriter> Writer() {
    return std::make_shared<StreamWriter>(io_.get_executor());
  }

  // Sends a client request on a new POST stream, as the HTTP server does.
  uint64_t Post(const std::shared_ptr<StreamWriter>& w, std::string_view request) {
    jsonrpc::Message m = ParseMessage(request);
    uint64_t sid = session_->OpenStream(w);
    session_->AddRequest(sid, m.id);
    session_->relay().HandleClientMessage(std::move(m));
    return sid;
  }
  // Answers the oldest request the upstream got.
  void Answer(std::string_view result_json) {
    jsonrpc::Message req = upstream_->TakeSent();
    upstream_->FromServer(ParseMessage(R"({"jsonrpc":"2.0","id":)" + json::serialize(req.id) +
                                       R"(,"result":)" + std::string(result_json) + "}"));
  }

  // A tools/call whose progress token is 9, and progress 1..n for it from the server.
  static constexpr const char* kCallWithProgress =
      R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","_meta":{"progressToken":9}}})";
  void SendProgress(int n) {
    for (int i = 1; i <= n; ++i) {
      upstream_->FromServer(ParseMessage(
          R"({"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":9,"progress":)" +
          std::to_string(i) + "}}"));
    }
  }

  boost::asio::io_context io_;
  std::shared_ptr<const policy::Policy> policy_ = policy::AllowAllPolicy();
  std::unique_ptr<limits::CounterStore> store_ = limits::MakeMemoryStore();
  testing::FakeClock clock_;
  gateway::ToolCallGuard guard_{[this] { return policy_; }, *store_, clock_};
  FakeUpstream* upstream_ = nullptr;
  std::unique_ptr<HttpMcpSession> session_;
};

TEST(EventIdTest, RoundTrips) {
  uint64_t stream = 0, seq = 0;
  ASSERT_TRUE(ParseEventId(FormatEventId(12, 345), stream, seq));
  EXPECT_EQ(stream, 12u);
  EXPECT_EQ(seq, 345u);
  for (const char* bad : {"", "12", "_3", "1_", "a_1", "1_2_3", "1_-2"}) {
    SCOPED_TRACE(bad);
    EXPECT_FALSE(ParseEventId(bad, stream, seq));
  }
}

TEST_F(HttpSessionTest, AnswersGoToTheStreamOfTheirRequestWhichThenEnds) {
  auto a = Writer(), b = Writer();
  uint64_t sa = Post(a, R"({"jsonrpc":"2.0","id":1,"method":"ping"})");
  uint64_t sb = Post(b, R"({"jsonrpc":"2.0","id":2,"method":"ping"})");
  EXPECT_NE(sa, sb);
  Answer("{}");  // answers id 1
  ASSERT_EQ(a->queue.size(), 1u);
  EXPECT_TRUE(a->queue.front().is_response);
  EXPECT_EQ(a->queue.front().event_id, FormatEventId(sa, 1));
  EXPECT_TRUE(a->done);
  EXPECT_TRUE(b->queue.empty());
  EXPECT_FALSE(b->done);
  EXPECT_TRUE(session_->Busy());
  Answer("{}");
  EXPECT_TRUE(b->done);
  EXPECT_FALSE(session_->Busy());
}

TEST_F(HttpSessionTest, RelatedNotificationsShareTheRequestStream) {
  auto w = Writer();
  Post(
      w,
      R"({"jsonrpc":"2.0","id":"c","method":"tools/call","params":{"name":"t","_meta":{"progressToken":"p"}}})");
  upstream_->FromServer(ParseMessage(
      R"({"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"p","progress":1}})"));
  Answer(R"({"content":[]})");
  ASSERT_EQ(w->queue.size(), 2u);
  EXPECT_FALSE(w->queue[0].is_response);
  EXPECT_TRUE(w->queue[1].is_response);
  EXPECT_TRUE(w->done);
}

TEST_F(HttpSessionTest, UnrelatedMessagesWaitForTheGetStreamAndAreReplayed) {
  upstream_->FromServer(
      ParseMessage(R"({"jsonrpc":"2.0","method":"notifications/tools/list_changed"})"));
  auto get = Writer();
  ASSERT_EQ(session_->AttachWriter(0, 0, get), HttpMcpSession::Attach::kOk);
  ASSERT_EQ(get->queue.size(), 1u);
  EXPECT_NE(get->queue[0].data.find("list_changed"), std::string::npos);
  // A second GET stream is refused while the first is attached.
  EXPECT_EQ(session_->AttachWriter(0, 0, Writer()), HttpMcpSession::Attach::kBusy);
  upstream_->FromServer(
      ParseMessage(R"({"jsonrpc":"2.0","method":"notifications/resources/list_changed"})"));
  EXPECT_EQ(get->queue.size(), 2u);
}

TEST_F(HttpSessionTest, ResumingReplaysOnlyLaterEventsAndTakesTheStreamOver) {
  auto first = Writer();
  uint64_t sid = Post(first, kCallWithProgress);
  SendProgress(3);
  auto resumed = Writer();
  ASSERT_EQ(session_->AttachWriter(sid, 1, resumed, HttpMcpSession::Mode::kTakeOver),
            HttpMcpSession::Attach::kOk);
  EXPECT_TRUE(first->done) << "the abandoned connection is ended";
  ASSERT_EQ(resumed->queue.size(), 2u);  // progress 2 and 3
  EXPECT_EQ(resumed->queue[0].event_id, FormatEventId(sid, 2));
  Answer(R"({"content":[]})");
  EXPECT_EQ(resumed->queue.size(), 3u);
  EXPECT_TRUE(resumed->done);
  EXPECT_EQ(session_->AttachWriter(99, 0, Writer()), HttpMcpSession::Attach::kUnknown);
}

TEST_F(HttpSessionTest, KeepsOnlyTheLastEventsOfAStream) {
  uint64_t sid = Post(Writer(), kCallWithProgress);
  SendProgress(10);
  auto resumed = Writer();
  ASSERT_EQ(session_->AttachWriter(sid, 0, resumed, HttpMcpSession::Mode::kTakeOver),
            HttpMcpSession::Attach::kOk);
  EXPECT_EQ(resumed->queue.size(), 4u);  // max_events
  EXPECT_EQ(resumed->queue.front().seq, 7u);
}

// The lone answer of a single-request POST goes out as a JSON body, which has no event id:
// neither it nor its stream is kept. A batch, or a stream already sent as SSE, keeps its events.
TEST_F(HttpSessionTest, AJsonBodyAnswerIsNotKeptButResumableStreamsAre) {
  auto single = Writer();
  single->single = true;
  const uint64_t s1 = Post(single, R"({"jsonrpc":"2.0","id":1,"method":"ping"})");
  Answer("{}");
  ASSERT_EQ(single->queue.size(), 1u);
  EXPECT_TRUE(single->done);
  EXPECT_EQ(session_->AttachWriter(s1, 0, Writer()), HttpMcpSession::Attach::kUnknown);

  auto batch = Writer();  // single stays false
  const uint64_t s2 = Post(batch, R"({"jsonrpc":"2.0","id":2,"method":"ping"})");
  Answer("{}");
  auto replay = Writer();
  ASSERT_EQ(session_->AttachWriter(s2, 0, replay), HttpMcpSession::Attach::kOk);
  EXPECT_EQ(replay->queue.size(), 1u);

  auto streamed = Writer();
  streamed->single = true;
  streamed->sse = true;  // the keep-alive interval passed: the response is an SSE stream
  const uint64_t s3 = Post(streamed, R"({"jsonrpc":"2.0","id":3,"method":"ping"})");
  Answer("{}");
  replay = Writer();
  ASSERT_EQ(session_->AttachWriter(s3, 0, replay), HttpMcpSession::Attach::kOk);
  EXPECT_EQ(replay->queue.size(), 1u);

  auto with_progress = Writer();  // progress first: the answer is the second event of an SSE
  with_progress->single = true;
  const uint64_t s4 = Post(with_progress, kCallWithProgress);
  SendProgress(1);
  Answer(R"({"content":[]})");
  replay = Writer();
  ASSERT_EQ(session_->AttachWriter(s4, 0, replay), HttpMcpSession::Attach::kOk);
  EXPECT_EQ(replay->queue.size(), 2u);
  EXPECT_FALSE(session_->Busy());
}

TEST_F(HttpSessionTest, LegacySessionsPutEverythingOnOneNamedStreamWithoutIds) {
  Make(HttpMcpSession::Transport::kLegacySse);
  auto get = Writer();
  ASSERT_EQ(session_->AttachWriter(0, 0, get), HttpMcpSession::Attach::kOk);
  session_->relay().HandleClientMessage(
      ParseMessage(R"({"jsonrpc":"2.0","id":1,"method":"ping"})"));
  Answer("{}");
  ASSERT_EQ(get->queue.size(), 1u);
  EXPECT_EQ(get->queue[0].event_name, "message");
  EXPECT_TRUE(get->queue[0].event_id.empty());
  EXPECT_FALSE(get->done);
}

TEST_F(HttpSessionTest, CloseEndsEveryAttachedConnectionAndTheUpstream) {
  auto post = Writer(), get = Writer();
  Post(post, R"({"jsonrpc":"2.0","id":1,"method":"ping"})");
  ASSERT_EQ(session_->AttachWriter(0, 0, get), HttpMcpSession::Attach::kOk);
  session_->Close();
  EXPECT_TRUE(post->done);
  EXPECT_TRUE(get->done);
  EXPECT_TRUE(upstream_->closed);
}

}  // namespace
}  // namespace tw::transport
