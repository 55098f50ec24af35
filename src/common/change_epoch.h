// A counter that tells every process sharing a state file that something it caches changed,
// without a query: the writer of a change bumps it, a reader compares it with the value its
// cache was filled at. It is one 8-byte word in a file beside the state file, mapped shared
// into every process that opens it, so a check is one atomic load — no system call, no
// SQLite read transaction, no lock.
//
// Contract: a writer bumps before and after committing its change; a reader loads the epoch
// *before* it reads what it caches and tags the entry with that value. Then an entry read
// while a change was in flight carries an epoch the second bump has moved past. Only writers
// that go through this code bump it: a change made to the state file by other means (the
// sqlite3 shell) is not seen until the next bump or restart.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/result.h"

namespace tw {

class ChangeEpoch {
 public:
  // The epoch in the file `path` (created, 8 bytes, if missing). An empty path gives a
  // counter private to this process (a state in memory has no other process to tell).
  static Result<std::unique_ptr<ChangeEpoch>> Open(const std::string& path);
  ~ChangeEpoch();
  ChangeEpoch(const ChangeEpoch&) = delete;
  ChangeEpoch& operator=(const ChangeEpoch&) = delete;

  uint64_t Load() const;  // acquire
  void Bump();            // release; seen by every process that maps the file

 private:
  ChangeEpoch() = default;
  uint64_t* word_ = nullptr;  // in the shared mapping, or &local_
  uint64_t local_ = 0;
  void* map_ = nullptr;
};

}  // namespace tw
