// loadgen: drives MCP tools/call load at a gateway (or straight at a server) and reports
// throughput and latency percentiles as one JSON line.
//
//   loadgen http --url http://127.0.0.1:P/mcp [--token T] [-c CONNECTIONS] [-d SECONDS]
//                [--rate CALLS_PER_S] [--warmup SECONDS] [--pid PID] [--label NAME]
//                [--url URL2 ...] [--threads T] [--era 2026-07-28]
//                               several --url: connection i goes to URL i mod N (one upstream
//                               each, for the scaling runs; the k-th --token goes with the k-th
//                               --url, the first with any --url after the last); --threads: the connections are
//                               spread over T threads (a single one tops out near 100k calls/s)
//   loadgen stdio [-c DEPTH] [-d SECONDS] [--warmup SECONDS] [--label NAME] -- CMD [ARGS...]
//   loadgen idle --url URL --sessions N [--token T] [--pid PID]
//                               opens N sessions, each with its GET stream held open, and
//                               reports the gateway's RSS per idle session
//   loadgen list --url URL [--token T]
//                               one session: how long initialize and a full tools/list (every
//                               page) take, and how many tools
//   loadgen freeport            prints a free loopback TCP port
//
// Every connection is its own MCP session (initialize, notifications/initialized, then
// tools/call echo) — or, with --era 2026-07-28, a client of that era: no session, every call
// with its version and capabilities in _meta and the Mcp-Method / Mcp-Name headers. Without --rate the load is closed-loop: each connection sends its next call
// when the previous one is answered (throughput). With --rate it is open-loop: call k is due at
// start + k/rate, and its latency is measured from when it was due, not from when a busy
// connection got round to sending it — so a stall shows up in the percentiles instead of
// silently lowering the load (no coordinated omission). Every answer is checked: anything but a
// result echoing the message counts as an error.
//
// --pid PID (repeatable) reports that process's CPU seconds per 10,000 calls over the measured
// interval and its peak RSS (VmHWM), from /proc.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/url/parse.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "jsonrpc/message.h"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

struct Options {
  std::string mode;
  std::string url;
  std::vector<std::string> urls;  // every --url, in order (url is the first)
  std::vector<std::string> tokens;  // every --token: the i-th goes with the i-th --url
  int threads = 1;
  std::string token;
  int connections = 8;
  double duration_s = 5;
  double warmup_s = 1;
  double rate = 0;  // 0: closed loop
  std::vector<int> pids;
  std::string label;
  std::vector<std::string> command;
  std::string era;  // "2026-07-28": stateless calls; else 2025 sessions
};

struct Stats {
  std::vector<int64_t> latencies_us;  // measured calls only
  int64_t errors = 0;
};

struct ProcSample {
  double cpu_s = 0;
  int64_t hwm_kib = 0;
};

ProcSample SampleProc(int pid) {
  ProcSample s;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), {});
  const size_t close = text.rfind(')');
  if (close != std::string::npos) {
    std::istringstream rest(text.substr(close + 2));
    std::string field;
    long utime = 0, stime = 0;
    for (int i = 3; i <= 15 && rest >> field; ++i) {
      if (i == 14) utime = std::stol(field);
      if (i == 15) stime = std::stol(field);
    }
    s.cpu_s = static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
  }
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.starts_with("VmHWM:")) s.hwm_kib = std::stoll(line.substr(6));
  }
  return s;
}

std::string CallBody(int64_t id, bool modern = false) {
  return R"({"jsonrpc":"2.0","id":)" + std::to_string(id) +
         R"(,"method":"tools/call","params":{"name":"echo","arguments":{"message":"m)" +
         std::to_string(id) + R"("})" +
         (modern ? R"(,"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28",)"
                   R"("io.modelcontextprotocol/clientCapabilities":{},)"
                   R"("io.modelcontextprotocol/clientInfo":{"name":"loadgen","version":"1"}}}})"
                 : "}}");
}

// True if `body` (JSON or one SSE event) is a result echoing message m<id>: the fast server
// answers "m<id>", @modelcontextprotocol/server-everything "Echo: m<id>".
bool GoodAnswer(std::string_view body, int64_t id) {
  const size_t data = body.find("data: ");
  if (data != std::string_view::npos) {
    body = body.substr(data + 6);
    body = body.substr(0, body.find('\n'));
  }
  if (body.find("\"isError\":true") != std::string_view::npos) return false;
  if (body.find("\"result\"") == std::string_view::npos) return false;
  const std::string echoed = "m" + std::to_string(id) + "\"";
  for (size_t at = body.find(echoed); at != std::string_view::npos; at = body.find(echoed, at + 1)) {
    if (at > 0 && (body[at - 1] == '"' || body[at - 1] == ' ')) return true;
  }
  return false;
}

std::string Percentiles(std::vector<int64_t>& v) {
  if (v.empty()) return R"("p50_us":null,"p90_us":null,"p99_us":null,"p999_us":null,"max_us":null)";
  std::sort(v.begin(), v.end());
  auto at = [&](double q) { return v[std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())))]; };
  std::ostringstream os;
  os << "\"p50_us\":" << at(0.5) << ",\"p90_us\":" << at(0.9) << ",\"p99_us\":" << at(0.99)
     << ",\"p999_us\":" << at(0.999) << ",\"max_us\":" << v.back();
  return os.str();
}

void Report(const Options& o, Stats& st, double seconds, const std::vector<ProcSample>& before,
            const std::vector<ProcSample>& after) {
  const size_t calls = st.latencies_us.size();
  std::ostringstream os;
  os << "{\"label\":" << json::serialize(json::string(o.label)) << ",\"transport\":\"" << o.mode
     << "\",\"connections\":" << o.connections << ",\"rate\":" << o.rate << ",\"calls\":" << calls
     << ",\"errors\":" << st.errors << ",\"seconds\":" << seconds
     << ",\"throughput\":" << static_cast<double>(calls) / seconds << "," << Percentiles(st.latencies_us);
  double cpu_total = 0;
  for (size_t i = 0; i < o.pids.size(); ++i) cpu_total += after[i].cpu_s - before[i].cpu_s;
  if (!o.pids.empty()) {
    // Every --pid together: a gateway of several processes (nginx's workers, N toolwardens).
    os << ",\"cpu_s_per_10k\":"
       << (calls ? cpu_total * 10000.0 / static_cast<double>(calls) : 0);
  }
  for (size_t i = 0; i < o.pids.size(); ++i) {
    const double cpu = after[i].cpu_s - before[i].cpu_s;
    os << ",\"pid" << i << "_cpu_s_per_10k\":" << (calls ? cpu * 10000.0 / static_cast<double>(calls) : 0)
       << ",\"pid" << i << "_peak_rss_kib\":" << after[i].hwm_kib;
  }
  os << "}";
  std::cout << os.str() << std::endl;
}

// ---- HTTP ----

struct Target {
  std::string host, port, path;
  std::string token;  // the --token given with this --url (or the first one)
};

asio::awaitable<void> HttpConnection(const Options& o, const Target& t, int index, Clock::time_point start,
                                     Clock::time_point measure_from, Clock::time_point end, Stats& st) {
  auto ex = co_await asio::this_coro::executor;
  tcp::resolver resolver(ex);
  beast::tcp_stream stream(ex);
  auto endpoints = co_await resolver.async_resolve(t.host, t.port, asio::use_awaitable);
  co_await stream.async_connect(endpoints, asio::use_awaitable);
  stream.socket().set_option(tcp::no_delay(true));
  beast::flat_buffer buffer;
  std::string session;
  const bool modern = o.era == "2026-07-28";
  auto exchange = [&](std::string body) -> asio::awaitable<http::response<http::string_body>> {
    http::request<http::string_body> req{http::verb::post, t.path, 11};
    req.set(http::field::host, t.host + ":" + t.port);
    req.set(http::field::content_type, "application/json");
    req.set(http::field::accept, "application/json, text/event-stream");
    if (!t.token.empty()) req.set(http::field::authorization, "Bearer " + t.token);
    if (modern) {
      req.set("MCP-Protocol-Version", "2026-07-28");
      req.set("Mcp-Method", "tools/call");
      req.set("Mcp-Name", "echo");
    } else if (!session.empty()) {
      req.set("Mcp-Session-Id", session);
      req.set("MCP-Protocol-Version", "2025-06-18");
    }
    req.keep_alive(true);
    req.body() = std::move(body);
    req.prepare_payload();
    co_await http::async_write(stream, req, asio::use_awaitable);
    http::response<http::string_body> res;
    co_await http::async_read(stream, buffer, res, asio::use_awaitable);
    co_return res;
  };
  if (!modern) {
    auto init = co_await exchange(
        R"({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"loadgen","version":"1"}}})");
    session = std::string(init["Mcp-Session-Id"]);
    if (init.result() != http::status::ok) {
      std::cerr << "loadgen: initialize answered " << init.result_int() << ": " << init.body() << "\n";
      ++st.errors;
      co_return;
    }
    co_await exchange(R"({"jsonrpc":"2.0","method":"notifications/initialized"})");
  }
  asio::steady_timer timer(ex);
  const double interval_us = o.rate > 0 ? 1e6 / o.rate : 0;
  for (int64_t k = index;; k += o.connections) {
    Clock::time_point due = Clock::now();
    if (o.rate > 0) {
      due = start + std::chrono::microseconds(static_cast<int64_t>(static_cast<double>(k) * interval_us));
      if (due >= end) break;
      if (due > Clock::now()) {
        timer.expires_at(due);
        co_await timer.async_wait(asio::use_awaitable);
      }
    } else if (due >= end) {
      break;
    }
    const int64_t id = k + 1;
    auto res = co_await exchange(CallBody(id, modern));
    const auto done = Clock::now();
    if (due < measure_from) continue;
    if (res.result() != http::status::ok || !GoodAnswer(res.body(), id)) {
      ++st.errors;
      continue;
    }
    st.latencies_us.push_back(std::chrono::duration_cast<std::chrono::microseconds>(done - due).count());
  }
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
}

int RunHttp(Options& o) {
  std::vector<Target> targets;
  for (const std::string& u : o.urls) {
    auto url = boost::urls::parse_uri(u);
    if (!url || url->scheme() != "http") {
      std::cerr << "loadgen: --url must be http://HOST:PORT/PATH\n";
      return 2;
    }
    const size_t i = targets.size();
    targets.push_back({std::string(url->host()), url->has_port() ? std::string(url->port()) : "80",
                       url->path().empty() ? "/" : std::string(url->path()),
                       i < o.tokens.size() ? o.tokens[i] : o.token});
  }
  if (targets.empty()) {
    std::cerr << "loadgen: --url is required\n";
    return 2;
  }
  // One io_context and Stats per thread; connection i runs on thread i mod T.
  const int threads = std::min(o.threads, std::max(1, o.connections));
  std::vector<std::unique_ptr<asio::io_context>> ios;
  std::vector<Stats> stats(static_cast<size_t>(threads));
  for (int t = 0; t < threads; ++t) ios.push_back(std::make_unique<asio::io_context>(1));
  const auto start = Clock::now() + std::chrono::milliseconds(200);  // sessions set up first
  const auto measure_from = start + std::chrono::microseconds(static_cast<int64_t>(o.warmup_s * 1e6));
  const auto end = measure_from + std::chrono::microseconds(static_cast<int64_t>(o.duration_s * 1e6));
  std::atomic<int> failed{0};
  for (int i = 0; i < o.connections; ++i) {
    const size_t t = static_cast<size_t>(i % threads);
    asio::co_spawn(*ios[t],
                   HttpConnection(o, targets[static_cast<size_t>(i) % targets.size()], i, start,
                                  measure_from, end, stats[t]),
                   [&](std::exception_ptr e) {
                     if (!e) return;
                     try {
                       std::rethrow_exception(e);
                     } catch (const std::exception& ex) {
                       if (++failed == 1) std::cerr << "loadgen: connection failed: " << ex.what() << "\n";
                     }
                   });
  }
  std::vector<ProcSample> before, after;
  asio::steady_timer sample(*ios[0]);
  sample.expires_at(measure_from);
  sample.async_wait([&](auto) {
    for (int pid : o.pids) before.push_back(SampleProc(pid));
  });
  std::vector<std::thread> runners;
  for (int t = 1; t < threads; ++t) runners.emplace_back([&ios, t] { ios[static_cast<size_t>(t)]->run(); });
  ios[0]->run();
  for (auto& r : runners) r.join();
  for (int pid : o.pids) after.push_back(SampleProc(pid));
  Stats st;
  for (Stats& s : stats) {
    st.latencies_us.insert(st.latencies_us.end(), s.latencies_us.begin(), s.latencies_us.end());
    st.errors += s.errors;
  }
  st.errors += failed.load();
  while (before.size() < o.pids.size()) before.push_back({});
  Report(o, st, o.duration_s, before, after);
  return st.errors ? 1 : 0;
}

// ---- one listing ----

int RunList(Options& o) {
  auto url = boost::urls::parse_uri(o.url);
  if (!url || url->scheme() != "http") return 2;
  Target t{std::string(url->host()), url->has_port() ? std::string(url->port()) : "80",
           std::string(url->path()), o.token};
  asio::io_context io(1);
  int rc = 0;
  asio::co_spawn(io, [&]() -> asio::awaitable<void> {
    tcp::resolver resolver(io);
    beast::tcp_stream stream(io);
    co_await stream.async_connect(co_await resolver.async_resolve(t.host, t.port, asio::use_awaitable),
                                  asio::use_awaitable);
    beast::flat_buffer buffer;
    std::string session;
    auto exchange = [&](std::string body) -> asio::awaitable<std::string> {
      http::request<http::string_body> req{http::verb::post, t.path, 11};
      req.set(http::field::host, t.host);
      req.set(http::field::content_type, "application/json");
      req.set(http::field::accept, "application/json, text/event-stream");
      if (!o.token.empty()) req.set(http::field::authorization, "Bearer " + o.token);
      if (!session.empty()) req.set("Mcp-Session-Id", session);
      req.body() = std::move(body);
      req.prepare_payload();
      co_await http::async_write(stream, req, asio::use_awaitable);
      http::response_parser<http::string_body> parser;
      parser.body_limit(256 << 20);
      co_await http::async_read(stream, buffer, parser, asio::use_awaitable);
      if (session.empty()) session = std::string(parser.get()["Mcp-Session-Id"]);
      std::string b = parser.get().body();
      const size_t data = b.find("data: ");
      if (data != std::string::npos) b = b.substr(data + 6, b.find('\n', data) - data - 6);
      co_return b;
    };
    const auto t0 = Clock::now();
    co_await exchange(R"({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"list","version":"1"}}})");
    const auto t1 = Clock::now();
    co_await exchange(R"({"jsonrpc":"2.0","method":"notifications/initialized"})");
    size_t tools = 0, pages = 0, bytes = 0;
    std::string cursor;
    const auto t2 = Clock::now();
    do {
      std::string params = cursor.empty() ? "{}" : "{\"cursor\":" + json::serialize(json::string(cursor)) + "}";
      std::string body = co_await exchange(R"({"jsonrpc":"2.0","id":)" + std::to_string(++pages) +
                                           R"(,"method":"tools/list","params":)" + params + "}");
      bytes += body.size();
      json::value v = json::parse(body);
      const json::object& r = v.at("result").as_object();
      tools += r.at("tools").as_array().size();
      const json::value* next = r.if_contains("nextCursor");
      cursor = next && next->is_string() ? std::string(next->get_string()) : "";
    } while (!cursor.empty() && pages < 10000);
    const auto t3 = Clock::now();
    auto ms = [](auto d) { return std::chrono::duration<double, std::milli>(d).count(); };
    std::cout << "{\"label\":" << json::serialize(json::string(o.label)) << ",\"initialize_ms\":" << ms(t1 - t0)
              << ",\"tools_list_ms\":" << ms(t3 - t2) << ",\"tools\":" << tools << ",\"pages\":" << pages
              << ",\"bytes\":" << bytes << "}" << std::endl;
  }, [&](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      std::cerr << "loadgen list: " << ex.what() << "\n";
      rc = 1;
    }
  });
  io.run();
  return rc;
}

// ---- idle sessions ----

int64_t RssKib(int pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.starts_with("VmRSS:")) return std::stoll(line.substr(6));
  }
  return 0;
}

int RunIdle(Options& o, int sessions) {
  auto url = boost::urls::parse_uri(o.url);
  if (!url || url->scheme() != "http") return 2;
  Target t{std::string(url->host()), url->has_port() ? std::string(url->port()) : "80",
           std::string(url->path()), o.token};
  rlimit nofile{};
  getrlimit(RLIMIT_NOFILE, &nofile);
  nofile.rlim_cur = nofile.rlim_max;
  setrlimit(RLIMIT_NOFILE, &nofile);
  asio::io_context io(1);
  std::vector<std::unique_ptr<beast::tcp_stream>> held;
  int opened = 0, failed = 0;
  const int64_t rss_before = o.pids.empty() ? 0 : RssKib(o.pids[0]);
  const auto start = Clock::now();
  constexpr int kWorkers = 32;
  for (int w = 0; w < kWorkers; ++w) {
    asio::co_spawn(io, [&, w]() -> asio::awaitable<void> {
      tcp::resolver resolver(io);
      auto endpoints = co_await resolver.async_resolve(t.host, t.port, asio::use_awaitable);
      for (int i = w; i < sessions; i += kWorkers) {
        try {
          auto post = std::make_unique<beast::tcp_stream>(io);
          co_await post->async_connect(endpoints, asio::use_awaitable);
          beast::flat_buffer buffer;
          http::request<http::string_body> req{http::verb::post, t.path, 11};
          req.set(http::field::host, t.host);
          req.set(http::field::content_type, "application/json");
          req.set(http::field::accept, "application/json, text/event-stream");
          if (!o.token.empty()) req.set(http::field::authorization, "Bearer " + o.token);
          req.body() = R"({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"idle","version":"1"}}})";
          req.prepare_payload();
          co_await http::async_write(*post, req, asio::use_awaitable);
          http::response<http::string_body> res;
          co_await http::async_read(*post, buffer, res, asio::use_awaitable);
          const std::string session(res["Mcp-Session-Id"]);
          if (res.result() != http::status::ok || session.empty()) throw std::runtime_error("initialize: " + std::to_string(res.result_int()));
          req.body() = R"({"jsonrpc":"2.0","method":"notifications/initialized"})";
          req.set("Mcp-Session-Id", session);
          req.prepare_payload();
          co_await http::async_write(*post, req, asio::use_awaitable);
          http::response<http::string_body> accepted;
          co_await http::async_read(*post, buffer, accepted, asio::use_awaitable);
          // The GET stream, on the same connection: held open from now on.
          http::request<http::empty_body> get{http::verb::get, t.path, 11};
          get.set(http::field::host, t.host);
          get.set(http::field::accept, "text/event-stream");
          get.set("Mcp-Session-Id", session);
          if (!o.token.empty()) get.set(http::field::authorization, "Bearer " + o.token);
          co_await http::async_write(*post, get, asio::use_awaitable);
          http::response_parser<http::empty_body> header;
          co_await http::async_read_header(*post, buffer, header, asio::use_awaitable);
          if (header.get().result() != http::status::ok) throw std::runtime_error("GET: " + std::to_string(header.get().result_int()));
          held.push_back(std::move(post));
          ++opened;
        } catch (const std::exception& e) {
          if (++failed == 1) std::cerr << "loadgen idle: " << e.what() << "\n";
        }
      }
    }, asio::detached);
  }
  io.run();
  const double setup_s = std::chrono::duration<double>(Clock::now() - start).count();
  // Hold them a moment, then measure (the gateway has settled its buffers).
  asio::steady_timer hold(io, std::chrono::seconds(1));
  hold.wait();
  const int64_t rss_after = o.pids.empty() ? 0 : RssKib(o.pids[0]);
  std::cout << "{\"label\":" << json::serialize(json::string(o.label)) << ",\"sessions\":" << sessions
            << ",\"opened\":" << opened << ",\"failed\":" << failed << ",\"setup_s\":" << setup_s
            << ",\"rss_before_kib\":" << rss_before << ",\"rss_after_kib\":" << rss_after
            << ",\"kib_per_session\":"
            << (opened ? static_cast<double>(rss_after - rss_before) / opened : 0) << "}" << std::endl;
  return failed ? 1 : 0;
}

// ---- stdio ----

int RunStdio(Options& o) {
  int to_child[2], from_child[2];
  if (pipe(to_child) != 0 || pipe(from_child) != 0) return 3;
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(to_child[0], 0);
    dup2(from_child[1], 1);
    close(to_child[1]);
    close(from_child[0]);
    std::vector<char*> argv;
    for (auto& a : o.command) argv.push_back(a.data());
    argv.push_back(nullptr);
    execvp(argv[0], argv.data());
    _exit(127);
  }
  close(to_child[0]);
  close(from_child[1]);
  FILE* out = fdopen(to_child[1], "w");
  FILE* in = fdopen(from_child[0], "r");
  auto send = [&](const std::string& s) {
    std::fwrite(s.data(), 1, s.size(), out);
    std::fputc('\n', out);
    std::fflush(out);
  };
  char* line = nullptr;
  size_t cap = 0;
  send(R"({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"loadgen","version":"1"}}})");
  if (getline(&line, &cap, in) < 0) {
    std::cerr << "loadgen: the server closed its output\n";
    return 3;
  }
  send(R"({"jsonrpc":"2.0","method":"notifications/initialized"})");
  o.pids.insert(o.pids.begin(), pid);
  Stats st;
  const auto measure_from = Clock::now() + std::chrono::microseconds(static_cast<int64_t>(o.warmup_s * 1e6));
  const auto end = measure_from + std::chrono::microseconds(static_cast<int64_t>(o.duration_s * 1e6));
  std::unordered_map<int64_t, Clock::time_point> sent;
  int64_t next = 1;
  for (int i = 0; i < o.connections; ++i) {
    sent[next] = Clock::now();
    send(CallBody(next++));
  }
  std::vector<ProcSample> before, after;
  bool sampled = false;
  while (!sent.empty()) {
    if (getline(&line, &cap, in) < 0) break;
    const auto now = Clock::now();
    auto msg = tw::jsonrpc::Parse(line);
    if (msg.is_batch || !msg.items[0] || !msg.items[0]->id.is_int64()) continue;
    const int64_t id = msg.items[0]->id.as_int64();
    auto it = sent.find(id);
    if (it == sent.end()) continue;
    if (it->second >= measure_from) {
      if (!sampled) {
        for (int p : o.pids) before.push_back(SampleProc(p));
        sampled = true;
      }
      if (GoodAnswer(line, id)) {
        st.latencies_us.push_back(std::chrono::duration_cast<std::chrono::microseconds>(now - it->second).count());
      } else {
        ++st.errors;
      }
    }
    sent.erase(it);
    if (now < end) {
      sent[next] = Clock::now();
      send(CallBody(next++));
    }
  }
  for (int p : o.pids) after.push_back(SampleProc(p));
  while (before.size() < o.pids.size()) before.push_back({});
  std::fclose(out);
  int status = 0;
  waitpid(pid, &status, 0);
  Report(o, st, o.duration_s, before, after);
  return st.errors ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (argc < 2) {
    std::cerr << "usage: loadgen http|stdio|freeport ...\n";
    return 2;
  }
  o.mode = argv[1];
  if (o.mode == "freeport") {
    asio::io_context io;
    tcp::acceptor a(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    std::cout << a.local_endpoint().port() << "\n";
    return 0;
  }
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << "loadgen: " << a << " needs a value\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--url") {
      o.urls.push_back(value());
      if (o.url.empty()) o.url = o.urls.back();
    }
    else if (a == "--threads") o.threads = std::max(1, std::stoi(value()));
    else if (a == "--token") {
      o.tokens.push_back(value());
      if (o.token.empty()) o.token = o.tokens.back();
    }
    else if (a == "-c" || a == "--sessions") o.connections = std::stoi(value());
    else if (a == "-d") o.duration_s = std::stod(value());
    else if (a == "--rate") o.rate = std::stod(value());
    else if (a == "--warmup") o.warmup_s = std::stod(value());
    else if (a == "--pid") o.pids.push_back(std::stoi(value()));
    else if (a == "--label") o.label = value();
    else if (a == "--era") o.era = value();
    else if (a == "--") {
      for (++i; i < argc; ++i) o.command.emplace_back(argv[i]);
    } else {
      std::cerr << "loadgen: unknown option " << a << "\n";
      return 2;
    }
  }
  if (o.label.empty()) o.label = o.mode;
  if (o.mode == "http") return RunHttp(o);
  if (o.mode == "idle") return RunIdle(o, o.connections);
  if (o.mode == "list") return RunList(o);
  if (o.mode == "stdio" && !o.command.empty()) return RunStdio(o);
  std::cerr << "usage: loadgen http --url URL ... | loadgen stdio ... -- CMD [ARGS...]\n";
  return 2;
}
