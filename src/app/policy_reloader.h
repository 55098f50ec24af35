// PolicyReloader: hot reload of the policy file.
//
// Watches the file's directory with inotify (so editors that save by writing a temporary file
// and renaming it, and Kubernetes' symlink swaps, are seen) and reloads on SIGHUP. A valid
// change replaces the snapshot for the next call; an invalid one keeps the old policy, logs
// every problem with its position and counts a failed reload. Bursts of events are coalesced
// and unchanged content is ignored.
//
// Thread: the io_context's.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>

#include "gateway/policy_holder.h"

namespace tw::app {

// Calls `changed` when a file may have changed: inotify on its directory (editors that save by
// renaming, Kubernetes' symlink swaps), debounced, and on SIGHUP (forced = true).
class FileWatcher {
 public:
  FileWatcher(boost::asio::io_context& io, std::string path,
              std::function<void(const char* why, bool forced)> changed);
  ~FileWatcher();
  FileWatcher(const FileWatcher&) = delete;
  FileWatcher& operator=(const FileWatcher&) = delete;
  void Start();
  void Stop();

  class Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

class PolicyReloader {
 public:
  // `holder` must outlive the reloader.
  PolicyReloader(boost::asio::io_context& io, std::string path, gateway::PolicyHolder& holder);
  ~PolicyReloader();

  void Start();
  // Stops watching; the io_context no longer has work from us.
  void Stop();
  // Re-reads the file now (after the gateway itself wrote it); as a watched change would.
  void ReloadNow(const char* why);

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace tw::app
