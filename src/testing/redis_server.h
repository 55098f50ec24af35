// RedisServer: a real redis-server for a test, on a free loopback port, with no persistence;
// stopped (by its PID) when the object goes. Test-only, header-only (no link dependencies).
//
// Redis takes no port 0, so the port is one the OS just gave out and released; if another
// process takes it first, redis-server fails to bind and the start is tried again on another.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

namespace tw::testing {

class RedisServer {
 public:
  // The redis-server binary, or empty when it is not installed (tests skip, saying so).
  static std::string Binary() {
    for (const char* p : {"/usr/bin/redis-server", "/usr/local/bin/redis-server"}) {
      if (access(p, X_OK) == 0) return p;
    }
    return {};
  }

  // Starts a server; `extra` are more "--name value" arguments (e.g. {"--requirepass", "pw"}).
  // started() says whether it answers.
  explicit RedisServer(std::vector<std::string> extra = {}) {
    const std::string bin = Binary();
    if (bin.empty()) return;
    for (int attempt = 0; attempt < 5 && !started(); ++attempt) {
      port_ = FreePort();
      Start(bin, extra);
    }
  }
  // Starts a server on `port` (one a stopped server had: a restart).
  RedisServer(std::vector<std::string> extra, int port) {
    const std::string bin = Binary();
    if (bin.empty()) return;
    port_ = port;
    Start(bin, extra);
  }
  // A Sentinel watching the primary on `primary_port` as master set `master`, on a free port;
  // it judges the primary down after `down_after_ms` and fails over on its own (quorum 1).
  static std::unique_ptr<RedisServer> Sentinel(int primary_port, const std::string& master,
                                               int down_after_ms) {
    auto s = std::unique_ptr<RedisServer>(new RedisServer(Tag{}));
    const std::string bin = Binary();
    if (bin.empty()) return s;
    for (int attempt = 0; attempt < 5 && !s->started(); ++attempt) {
      s->port_ = FreePort();
      s->config_ = "/tmp/tw-sentinel-" + std::to_string(getpid()) + "-" + std::to_string(s->port_) + ".conf";
      FILE* f = fopen(s->config_.c_str(), "w");
      if (f == nullptr) return s;
      fprintf(f,
              "port %d\nbind 127.0.0.1\ndir /tmp\nsentinel monitor %s 127.0.0.1 %d 1\n"
              "sentinel down-after-milliseconds %s %d\nsentinel failover-timeout %s 3000\n",
              s->port_, master.c_str(), primary_port, master.c_str(), down_after_ms, master.c_str());
      fclose(f);
      s->StartArgs(bin, {bin, s->config_, "--sentinel"});
    }
    return s;
  }
  ~RedisServer() {
    Stop();
    if (!config_.empty()) unlink(config_.c_str());
  }
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  bool started() const { return pid_ > 0; }
  // Freezes or thaws the server (SIGSTOP / SIGCONT): a server that stops answering.
  void Pause(bool paused) {
    if (pid_ > 0) kill(pid_, paused ? SIGSTOP : SIGCONT);
  }
  int port() const { return port_; }
  std::string url(int db = 0) const {
    return "redis://127.0.0.1:" + std::to_string(port_) + "/" + std::to_string(db);
  }

  // Kills the server (SIGKILL: as a crash would) and waits for it.
  void Stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 public:
  // A port the OS just gave out and took back (for servers that take no port 0).
  static int FreePortForTests() { return FreePort(); }
  // Whether something accepts a TCP connection on loopback `port`.
  static bool PortAccepts(int port) {
    const int fd = ConnectLoopback(port);
    if (fd >= 0) close(fd);
    return fd >= 0;
  }

 private:
  struct Tag {};
  explicit RedisServer(Tag) {}

  static int FreePort() {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    socklen_t len = sizeof a;
    int port = 0;
    if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
        getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
      port = ntohs(a.sin_port);
    }
    close(fd);
    return port;
  }

  // A TCP connection to loopback `port` (a 1 s receive timeout), or -1.
  static int ConnectLoopback(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port));
    timeval tv{1, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) return fd;
    close(fd);
    return -1;
  }

  static bool Answers(int port) {
    const int fd = ConnectLoopback(port);
    bool ok = fd >= 0;
    if (ok) {
      const char ping[] = "PING\r\n";
      char buf[64] = {};
      ok = write(fd, ping, sizeof ping - 1) == static_cast<ssize_t>(sizeof ping - 1) &&
           read(fd, buf, sizeof buf - 1) > 0 && (buf[0] == '+' || buf[0] == '-');
      close(fd);
    }
    return ok;
  }

  void Start(const std::string& bin, const std::vector<std::string>& extra) {
    if (port_ == 0) return;
    std::vector<std::string> args = {bin,
                                     "--port",
                                     std::to_string(port_),
                                     "--bind",
                                     "127.0.0.1",
                                     "--save",
                                     "",
                                     "--appendonly",
                                     "no",
                                     "--daemonize",
                                     "no",
                                     "--loglevel",
                                     "warning",
                                     "--dir",
                                     "/tmp"};
    args.insert(args.end(), extra.begin(), extra.end());
    StartArgs(bin, args);
  }

  void StartArgs(const std::string& bin, std::vector<std::string> args) {
    const pid_t pid = fork();
    if (pid == 0) {
      // Its start-up banner and warnings would bury the test's own output.
      const int null = open("/dev/null", O_WRONLY);
      if (null >= 0) {
        dup2(null, STDOUT_FILENO);
        dup2(null, STDERR_FILENO);
      }
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(bin.c_str(), argv.data());
      _exit(127);
    }
    if (pid < 0) return;
    // Polls with a deadline until it answers or exits (a port taken meanwhile: it exits).
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      if (waitpid(pid, nullptr, WNOHANG) == pid) return;
      if (Answers(port_)) {
        pid_ = pid;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  }

  int port_ = 0;
  pid_t pid_ = -1;
  std::string config_;  // a sentinel's config file (it rewrites it), removed at the end
};

}  // namespace tw::testing
