// EventLoops: the gateway's event loops, one thread each (`workers` in the config).
//
// Loop 0 is the home loop: it runs on the thread that calls Run() and owns what exists once
// per gateway — signals, the config watcher, approval polling, shared server connections
// (UpstreamHub), the admin API. Loops 1..N-1 run on threads of their own and carry sessions.
// A session lives on one loop for its whole life; whatever it shares with other loops is
// either thread-safe (stores, metrics, policy snapshots, the audit log) or reached by posting
// to the loop that owns it (gateway/loop_bridge.h), so no loop ever waits on another.
//
// Thread: construct, Run and destroy on one thread; Stop and Current from any.
#pragma once

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

namespace tw::transport {

class EventLoops {
 public:
  // `n` loops (at least 1). 0 means one per core available to the process.
  explicit EventLoops(size_t n);
  ~EventLoops();
  EventLoops(const EventLoops&) = delete;
  EventLoops& operator=(const EventLoops&) = delete;

  size_t size() const { return loops_.size(); }
  boost::asio::io_context& at(size_t i) { return *loops_[i]; }
  boost::asio::io_context& home() { return *loops_[0]; }

  // Runs every loop until the home loop has no work left (or Stop), then lets the others
  // finish what they hold and joins them. Loops other than home stay up while home runs,
  // even with nothing to do yet.
  void Run();
  // Stops every loop at once (work still queued is dropped).
  void Stop();

  // The loop running on the calling thread (set by Run, or by Enter for a loop a test runs
  // itself), or nullptr off the loops.
  static boost::asio::io_context* Current();
  // Marks the calling thread as running `io` for as long as the Enter lives.
  class Enter {
   public:
    explicit Enter(boost::asio::io_context& io);
    ~Enter();
    Enter(const Enter&) = delete;
    Enter& operator=(const Enter&) = delete;

   private:
    boost::asio::io_context* previous_;
  };

  // The cores this process may run on (sched_getaffinity), at least 1.
  static size_t AvailableCores();

 private:
  using Guard = boost::asio::executor_work_guard<boost::asio::io_context::executor_type>;
  std::vector<std::unique_ptr<boost::asio::io_context>> loops_;
  std::vector<std::optional<Guard>> guards_;  // keep loops 1..N-1 up while home runs
};

}  // namespace tw::transport
