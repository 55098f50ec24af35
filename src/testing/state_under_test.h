// StateUnderTest: the state a store test runs against, by kind — "memory", "sqlite" (a fresh
// file, removed afterwards) or "redis" (a real redis-server started for the test, stopped
// afterwards). Stores opened on spec() share it as the gateways of one host (SQLite) or of a
// fleet (Redis) do. Test-only, header-only.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "common/random.h"
#include "testing/redis_server.h"

namespace tw::testing {

class StateUnderTest {
 public:
  explicit StateUnderTest(const std::string& kind) {
    if (kind == "redis") {
      if (RedisServer::Binary().empty()) {
        skip_ = "redis-server is not installed";
        return;
      }
      redis_ = std::make_unique<RedisServer>();
      if (!redis_->started()) {
        skip_ = "redis-server did not start";
        return;
      }
      spec_ = redis_->url();
    } else if (kind == "sqlite") {
      path_ = (std::filesystem::temp_directory_path() / ("tw-state-" + RandomHex(8) + ".db"))
                  .string();
      spec_ = "sqlite:" + path_;
    } else {
      spec_ = "memory";
    }
  }
  ~StateUnderTest() {
    if (path_.empty()) return;
    for (const char* suffix : {"", "-wal", "-shm", "-grants-epoch"}) {
      std::filesystem::remove(path_ + suffix);
    }
  }
  StateUnderTest(const StateUnderTest&) = delete;
  StateUnderTest& operator=(const StateUnderTest&) = delete;

  // Why the test cannot run here ("" when it can): say it with GTEST_SKIP.
  const std::string& skip() const { return skip_; }
  const std::string& spec() const { return spec_; }
  RedisServer* redis() { return redis_.get(); }

 private:
  std::string skip_, spec_, path_;
  std::unique_ptr<RedisServer> redis_;
};

}  // namespace tw::testing
