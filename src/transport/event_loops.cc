#include "transport/event_loops.h"

#include <sched.h>

#include <thread>

#include "common/sqlite_db.h"

namespace tw::transport {

namespace {
thread_local boost::asio::io_context* current_loop = nullptr;
}  // namespace

size_t EventLoops::AvailableCores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return static_cast<size_t>(n);
  }
  const unsigned hw = std::thread::hardware_concurrency();
  return hw > 0 ? hw : 1;
}

EventLoops::EventLoops(size_t n) {
  if (n == 0) n = AvailableCores();
  for (size_t i = 0; i < n; ++i) {
    // Concurrency hint 1: each loop is run by exactly one thread, so Asio can skip its locks.
    loops_.push_back(std::make_unique<boost::asio::io_context>(1));
  }
  guards_.resize(n);
  for (size_t i = 1; i < n; ++i) guards_[i].emplace(loops_[i]->get_executor());
}

EventLoops::~EventLoops() = default;

void EventLoops::Run() {
  std::vector<std::thread> threads;
  for (size_t i = 1; i < loops_.size(); ++i) {
    threads.emplace_back([io = loops_[i].get()] {
      Enter here(*io);
      SqliteNoWait loop_never_waits;  // sqlite_db.h: no loop sleeps on another's lock
      io->run();
    });
  }
  {
    Enter here(home());
    SqliteNoWait loop_never_waits;
    home().run();
  }
  // Home is done (stopped, or shut down with nothing left): the others finish what they hold.
  for (auto& g : guards_) g.reset();
  for (auto& t : threads) t.join();
}

void EventLoops::Stop() {
  for (auto& io : loops_) io->stop();
}

boost::asio::io_context* EventLoops::Current() { return current_loop; }

EventLoops::Enter::Enter(boost::asio::io_context& io) : previous_(current_loop) {
  current_loop = &io;
}

EventLoops::Enter::~Enter() { current_loop = previous_; }

}  // namespace tw::transport
