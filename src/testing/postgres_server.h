// PostgresServer: a real PostgreSQL server for a test — a cluster made by initdb in a temporary
// directory, listening on a free loopback port, no fsync (nothing here outlives the test) —
// stopped by its PID and removed when the object goes. initdb and postgres refuse to run as
// root (as CI runs), so as root both run as the `postgres` user (or `nobody`). Test-only,
// header-only.
#pragma once

#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "common/random.h"
#include "testing/redis_server.h"

namespace tw::testing {

class PostgresServer {
 public:
  // The directory of initdb and postgres, or empty when PostgreSQL is not installed.
  static std::string BinDir() {
    namespace fs = std::filesystem;
    std::vector<fs::path> found;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator("/usr/lib/postgresql", ec)) {
      if (access((e.path() / "bin" / "initdb").c_str(), X_OK) == 0) found.push_back(e.path() / "bin");
    }
    if (found.empty()) return {};
    std::sort(found.begin(), found.end());
    return found.back().string();
  }

  PostgresServer() {
    const std::string bin = BinDir();
    if (bin.empty()) return;
    dir_ = std::filesystem::temp_directory_path() / ("tw-pg-" + RandomHex(6));
    std::filesystem::create_directories(dir_ / "data");
    if (geteuid() == 0) {
      const passwd* pw = getpwnam("postgres");
      if (pw == nullptr) pw = getpwnam("nobody");
      if (pw == nullptr) return;
      uid_ = pw->pw_uid;
      gid_ = pw->pw_gid;
      for (const auto& p : {dir_, dir_ / "data"}) {
        if (chown(p.c_str(), uid_, gid_) != 0) return;
      }
    }
    if (Run({bin + "/initdb", "-D", (dir_ / "data").string(), "-U", "toolwarden", "-A", "trust",
             "-E", "UTF8", "--no-sync", "--locale=C"}) != 0) {
      return;
    }
    for (int attempt = 0; attempt < 5 && pid_ <= 0; ++attempt) {
      port_ = RedisServer::FreePortForTests();
      Start(bin);
    }
  }
  ~PostgresServer() {
    Stop();
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  bool started() const { return pid_ > 0; }
  std::string url() const {
    return "postgresql://toolwarden@127.0.0.1:" + std::to_string(port_) + "/postgres";
  }

  // Stops the server (SIGKILL: as a crash would) and waits for it.
  void Stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  // Runs argv as the server's user with output discarded; returns its exit status.
  int Run(const std::vector<std::string>& args) {
    const pid_t pid = Spawn(args);
    if (pid < 0) return -1;
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  pid_t Spawn(const std::vector<std::string>& args) {
    const pid_t pid = fork();
    if (pid == 0) {
      const int null = open("/dev/null", O_WRONLY);
      if (null >= 0) {
        dup2(null, STDOUT_FILENO);
        dup2(null, STDERR_FILENO);
      }
      if (uid_ != 0 && (setgroups(0, nullptr) != 0 || setgid(gid_) != 0 || setuid(uid_) != 0)) _exit(126);
      std::vector<std::string> copy = args;
      std::vector<char*> argv;
      for (auto& a : copy) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    return pid;
  }

  void Start(const std::string& bin) {
    const pid_t pid = Spawn({bin + "/postgres", "-D", (dir_ / "data").string(), "-p",
                             std::to_string(port_), "-k", dir_.string(), "-c",
                             "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c",
                             "max_connections=50"});
    if (pid < 0) return;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      if (waitpid(pid, nullptr, WNOHANG) == pid) return;  // the port was taken: try another
      if (RedisServer::PortAccepts(port_)) {
        pid_ = pid;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  }

  std::filesystem::path dir_;
  uid_t uid_ = 0;
  gid_t gid_ = 0;
  int port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace tw::testing
