#include "transport/child_upstream.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <deque>
#include <optional>

#include <spdlog/spdlog.h>
#include <boost/asio.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>

// Boost.Process v2 as shipped in 1.81 misses includes of its own: these must come first.
// clang-format off
#define BOOST_PROCESS_USE_STD_FS 1
#include <type_traits>
#include <boost/optional.hpp>
#include <boost/type_traits.hpp>
#include <boost/process/v2.hpp>
#include <boost/process/v2/impl/environment.ipp>  // 1.81 header-only mode leaves it out
// clang-format on

#include "transport/framing.h"
#include "transport/outbox.h"

extern char** environ;

namespace tw::transport {

namespace asio = boost::asio;
namespace bp = boost::process::v2;
using namespace std::chrono_literals;
using asio::awaitable;
using asio::use_awaitable;

Result<std::string> FindExecutable(const std::string& name) {
  if (name.empty()) return Fail(Error::InvalidArgument("no upstream command given"));
  if (name.find('/') != std::string::npos) {
    if (::access(name.c_str(), X_OK) == 0) return name;
    return Fail(Error::NotFound("upstream command \"" + name + "\" is not an executable file"));
  }
  auto path = bp::environment::find_executable(name);
  if (path.empty()) {
    return Fail(Error::NotFound("upstream command \"" + name + "\" was not found on PATH"));
  }
  return path.string();
}

namespace {

// Whether this system lets a process open a pidfd (Linux 5.3 or later, and a sandbox or
// seccomp profile that allows pidfd_open). Boost.Process watches its children through one and
// has no fallback: without it the child would be started, then lost, at every attempt.
bool PidfdAvailable() {
  static const bool available = [] {
    const long fd = ::syscall(SYS_pidfd_open, ::getpid(), 0);
    if (fd < 0) return false;
    ::close(static_cast<int>(fd));
    return true;
  }();
  return available;
}

}  // namespace

struct ChildUpstream::State : std::enable_shared_from_this<ChildUpstream::State> {
  State(asio::io_context& io_, ChildOptions options_)
      : io(io_), options(std::move(options_)), restart_timer(io_) {}

  asio::io_context& io;
  ChildOptions options;
  Events events;
  // The running child, if any. A new generation is created for every (re)start so stale
  // coroutines of a dead child can tell they are stale.
  struct Child {
    explicit Child(asio::io_context& io) : stdin_pipe(io), stdout_pipe(io), stderr_pipe(io) {}
    asio::writable_pipe stdin_pipe;
    asio::readable_pipe stdout_pipe;
    asio::readable_pipe stderr_pipe;
    std::optional<bp::process> process;
    std::deque<std::string> outbox;
    bool writing = false;
    bool exited = false;
    int exit_code = -1;
  };
  std::shared_ptr<Child> child;
  asio::steady_timer restart_timer;
  std::chrono::milliseconds backoff{100};
  std::chrono::steady_clock::time_point started_at;
  bool closing = false;
  bool ever_started = false;

  void Spawn() {
    auto exe = FindExecutable(options.argv.at(0));
    if (!exe) {
      Died(exe.error());
      return;
    }
    if (!PidfdAvailable()) {
      Died(Error::Unavailable("cannot start \"" + options.argv[0] +
                              "\": this system refuses pidfd_open, which watching a stdio "
                              "server needs (Linux 5.3 or later, and a sandbox or seccomp "
                              "profile that allows it)"));
      return;
    }
    auto c = std::make_shared<Child>(io);
    std::vector<std::string> args(options.argv.begin() + 1, options.argv.end());
    try {
      if (options.env.empty() && options.inherit == ChildOptions::Inherit::kAll) {
        c->process.emplace(io.get_executor(), *exe, args,
                           bp::process_stdio{c->stdin_pipe, c->stdout_pipe, c->stderr_pipe});
      } else {
        // What it inherits of our environment, with the configured values over it.
        auto inherited = [&](std::string_view key) {
          if (options.inherit == ChildOptions::Inherit::kAll) return true;
          return std::any_of(options.inherit_names.begin(), options.inherit_names.end(),
                             [&](std::string_view n) {
                               return n.ends_with('*') ? key.starts_with(n.substr(0, n.size() - 1))
                                                       : key == n;
                             });
        };
        std::vector<std::string> env;
        for (char** e = environ; *e; ++e) {
          std::string_view kv(*e);
          const std::string key(kv.substr(0, kv.find('=')));
          const bool overridden = std::any_of(options.env.begin(), options.env.end(),
                                              [&](const auto& p) { return p.first == key; });
          if (!overridden && inherited(key)) env.emplace_back(kv);
        }
        for (const auto& [k, v] : options.env) env.push_back(k + "=" + v);
        c->process.emplace(io.get_executor(), *exe, args,
                           bp::process_stdio{c->stdin_pipe, c->stdout_pipe, c->stderr_pipe},
                           bp::process_environment{env});
      }
    } catch (const std::exception& e) {
      Died(Error::Unavailable("cannot start \"" + options.argv[0] + "\": " + e.what()));
      return;
    }
    spdlog::info("upstream process started: pid {} ({})", c->process->id(), options.argv[0]);
    child = c;
    started_at = std::chrono::steady_clock::now();
    auto self = shared_from_this();
    asio::co_spawn(io, ReadStdout(self, c), asio::detached);
    asio::co_spawn(io, ReadStderr(self, c), asio::detached);
    asio::co_spawn(io, WaitExit(self, c), asio::detached);
    if (ever_started) {
      if (events.on_reconnected) events.on_reconnected();
    }
    ever_started = true;
  }

  void Died(const Error& error) {
    child.reset();
    if (closing) return;
    spdlog::warn("upstream: {}; restarting in {} ms", error.message(), backoff.count());
    if (events.on_disconnected) events.on_disconnected(error);
    restart_timer.expires_after(backoff);
    restart_timer.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (!ec && !self->closing) self->Spawn();
    });
    backoff = std::min<std::chrono::milliseconds>(backoff * 2, 30s);
  }

  static awaitable<void> ReadStdout(std::shared_ptr<State> self, std::shared_ptr<Child> c) {
    LineFramer framer(
        self->options.max_message_bytes,
        [&](std::string_view line) {
          jsonrpc::Incoming in = jsonrpc::Parse(line);
          for (auto& item : in.items) {
            if (!item) {
              spdlog::warn("upstream wrote an invalid message on stdout ({}): {:.200}",
                           item.error().message, line);
              continue;
            }
            if (self->child == c && self->events.on_message) {
              self->events.on_message(std::move(*item), std::nullopt);
            }
          }
        },
        [&](size_t bytes) {
          spdlog::warn("upstream wrote a message over the {} byte limit ({} bytes); dropped",
                       self->options.max_message_bytes, bytes);
        },
        [&](std::string_view head, std::string_view tail) {
          // An answer nobody will see: its request fails now instead of waiting forever.
          std::optional<json::value> id = OversizedAnswerId(head, tail);
          if (id && self->child == c && self->events.on_request_failed) {
            self->events.on_request_failed(
                *id,
                Error::Unavailable("the server's answer is over the " +
                                   std::to_string(self->options.max_message_bytes) +
                                   "-byte message limit"),
                true);
          }
        });
    std::vector<char> buf(64 * 1024);
    for (;;) {
      auto [ec, n] =
          co_await c->stdout_pipe.async_read_some(asio::buffer(buf), asio::as_tuple(use_awaitable));
      if (ec) break;
      framer.Append(std::string_view(buf.data(), n));
    }
  }

  static awaitable<void> ReadStderr(std::shared_ptr<State> self, std::shared_ptr<Child> c) {
    LineFramer framer(
        64 * 1024, [&](std::string_view line) { spdlog::info("[upstream] {}", line); },
        [](size_t) {});
    std::vector<char> buf(8192);
    for (;;) {
      auto [ec, n] =
          co_await c->stderr_pipe.async_read_some(asio::buffer(buf), asio::as_tuple(use_awaitable));
      if (ec) break;
      framer.Append(std::string_view(buf.data(), n));
    }
    (void)self;
  }

  static awaitable<void> WaitExit(std::shared_ptr<State> self, std::shared_ptr<Child> c) {
    auto [ec, code] = co_await c->process->async_wait(asio::as_tuple(use_awaitable));
    c->exited = true;
    c->exit_code = ec ? -1 : code;
    if (self->child != c) co_return;  // shut down on purpose
    if (std::chrono::steady_clock::now() - self->started_at > 30s) self->backoff = 100ms;
    self->Died(
        Error::Unavailable("upstream process exited with status " + std::to_string(c->exit_code)));
  }

  static awaitable<void> Write(std::shared_ptr<State> self, std::shared_ptr<Child> c) {
    c->writing = true;
    (void)co_await WriteOutbox(c->stdin_pipe, c->outbox);  // an error: WaitExit reports the exit
    c->writing = false;
    (void)self;
  }

  static awaitable<void> Shutdown(std::shared_ptr<State> self, std::shared_ptr<Child> c) {
    using namespace asio::experimental::awaitable_operators;
    boost::system::error_code ignored;
    c->stdin_pipe.close(ignored);
    auto wait_for_exit = [&](std::chrono::milliseconds d) -> awaitable<bool> {
      asio::steady_timer t(self->io);
      for (auto deadline = std::chrono::steady_clock::now() + d;
           !c->exited && std::chrono::steady_clock::now() < deadline;) {
        t.expires_after(20ms);
        co_await t.async_wait(asio::as_tuple(use_awaitable));
      }
      co_return c->exited;
    };
    if (co_await wait_for_exit(self->options.shutdown_grace)) co_return;
    spdlog::info("upstream process did not exit after stdin closed; sending SIGTERM");
    c->process->request_exit(ignored);
    if (co_await wait_for_exit(self->options.shutdown_grace)) co_return;
    spdlog::warn("upstream process ignored SIGTERM; sending SIGKILL");
    c->process->terminate(ignored);
  }
};

ChildUpstream::ChildUpstream(asio::io_context& io, ChildOptions options)
    : state_(std::make_shared<State>(io, std::move(options))) {}

ChildUpstream::~ChildUpstream() { Close(); }

void ChildUpstream::Start(Events events) {
  state_->events = std::move(events);
  state_->Spawn();
}

void ChildUpstream::Send(jsonrpc::Message msg) {
  auto& c = state_->child;
  if (!c || state_->closing) {
    if (msg.IsRequest() && state_->events.on_request_failed) {
      // Answer on a later turn: callers do not expect re-entrant events from Send().
      asio::post(state_->io, [s = state_, id = msg.id] {
        if (!s->closing && s->events.on_request_failed) {
          s->events.on_request_failed(id, Error::Unavailable("upstream process is not running"),
                                      false);
        }
      });
    }
    return;
  }
  std::string line = jsonrpc::Serialize(msg);
  line.push_back('\n');
  c->outbox.push_back(std::move(line));
  if (!c->writing) asio::co_spawn(state_->io, State::Write(state_, c), asio::detached);
}

void ChildUpstream::Close() {
  if (state_->closing) return;
  state_->closing = true;
  state_->events = Events{};
  state_->restart_timer.cancel();
  if (auto c = std::move(state_->child)) {
    if (!c->exited) asio::co_spawn(state_->io, State::Shutdown(state_, c), asio::detached);
  }
}

}  // namespace tw::transport
