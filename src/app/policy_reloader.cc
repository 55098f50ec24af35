#include "app/policy_reloader.h"

#include <sys/inotify.h>
#include <unistd.h>

#include <filesystem>
#include <functional>

#include <boost/asio.hpp>
#include <spdlog/spdlog.h>

#include "policy/loader.h"

namespace tw::app {

namespace asio = boost::asio;

// Watches one file: inotify on its directory (so editors that save by renaming, and Kubernetes'
// symlink swaps, are seen), SIGHUP, and a short debounce; calls `changed(why, forced)`.
class FileWatcher::Impl : public std::enable_shared_from_this<Impl> {
 public:
  Impl(asio::io_context& io, std::string path, std::function<void(const char*, bool)> changed)
      : path_(std::move(path)), changed_(std::move(changed)), inotify_(io), hup_(io, SIGHUP), debounce_(io) {}

  void Start() {
    namespace fs = std::filesystem;
    const fs::path p = fs::absolute(path_);
    file_name_ = p.filename().string();
    const int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd >= 0 &&
        inotify_add_watch(fd, p.parent_path().c_str(),
                          IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_ATTRIB) >= 0) {
      inotify_.assign(fd);
      Read();
    } else {
      if (fd >= 0) ::close(fd);
      spdlog::warn("cannot watch {} for changes ({}); reload with SIGHUP", path_,
                   std::strerror(errno));
    }
    WaitHup();
  }

  void Stop() {
    stopped_ = true;
    boost::system::error_code ignored;
    inotify_.close(ignored);
    hup_.cancel(ignored);
    debounce_.cancel();
  }

 private:
  void Read() {
    inotify_.async_read_some(
        asio::buffer(buf_), [self = shared_from_this()](boost::system::error_code ec, size_t n) {
          if (ec || self->stopped_) return;
          bool relevant = false;
          for (size_t off = 0; off + sizeof(inotify_event) <= n;) {
            auto* ev = reinterpret_cast<const inotify_event*>(self->buf_.data() + off);
            std::string_view name(ev->len ? ev->name : "");
            name = name.substr(0, name.find('\0'));
            // Our file, or a symlink farm swap (..data) that may have changed what it points to.
            if (name == self->file_name_ || name.starts_with("..")) relevant = true;
            off += sizeof(inotify_event) + ev->len;
          }
          if (relevant) self->Schedule();
          self->Read();
        });
  }

  void WaitHup() {
    hup_.async_wait([self = shared_from_this()](boost::system::error_code ec, int) {
      if (ec || self->stopped_) return;
      self->changed_("SIGHUP", true);
      self->WaitHup();
    });
  }

  // Editors fire several events per save: act once, shortly after the last.
  void Schedule() {
    debounce_.expires_after(std::chrono::milliseconds(50));
    debounce_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (!ec && !self->stopped_) self->changed_("file changed", false);
    });
  }

  std::string path_;
  std::string file_name_;
  std::function<void(const char*, bool)> changed_;
  asio::posix::stream_descriptor inotify_;
  asio::signal_set hup_;
  asio::steady_timer debounce_;
  std::array<char, 8192> buf_{};
  bool stopped_ = false;
};

FileWatcher::FileWatcher(asio::io_context& io, std::string path,
                         std::function<void(const char* why, bool forced)> changed)
    : impl_(std::make_shared<Impl>(io, std::move(path), std::move(changed))) {}
FileWatcher::~FileWatcher() { impl_->Stop(); }
void FileWatcher::Start() { impl_->Start(); }
void FileWatcher::Stop() { impl_->Stop(); }

class PolicyReloader::Impl {
 public:
  Impl(asio::io_context& io, std::string path, gateway::PolicyHolder& holder)
      : path_(std::move(path)),
        holder_(holder),
        watcher_(io, path_, [this](const char* why, bool forced) { Reload(why, forced); }) {
    if (auto text = policy::ReadPolicyText(path_)) last_hash_ = std::hash<std::string>{}(*text);
  }

  void Start() { watcher_.Start(); }
  void Stop() { watcher_.Stop(); }

  void Reload(const char* why, bool force) {
    auto text = policy::ReadPolicyText(path_);
    if (!text) {
      // A save in progress (file briefly absent) or a real problem: keep the old policy.
      spdlog::error("policy reload ({}): {}; keeping the current policy", why,
                    text.error().message());
      holder_.CountFailedReload();
      refused_ = true;
      return;
    }
    const size_t hash = std::hash<std::string>{}(*text);
    if (!force && hash == last_hash_) {
      // The file is back to the policy in force after a refused edit: say so, once.
      if (refused_) spdlog::info("policy file {} is valid again: the policy in force is its text", path_);
      refused_ = false;
      return;
    }
    auto compiled = policy::CompilePolicy(*text, path_, policy::FormatFromName(path_));
    if (!compiled.policy) {
      spdlog::error("policy reload ({}) refused, keeping the current policy:\n{}", why,
                    policy::FormatDiagnostics(path_, compiled.diagnostics));
      holder_.CountFailedReload();
      refused_ = true;
      return;
    }
    last_hash_ = hash;
    refused_ = false;
    holder_.Replace(std::move(compiled.policy));
    spdlog::info("policy reloaded from {} ({})", path_, why);
  }

 private:
  std::string path_;
  gateway::PolicyHolder& holder_;
  FileWatcher watcher_;
  size_t last_hash_ = 0;
  bool refused_ = false;  // the last change seen was refused
};

PolicyReloader::PolicyReloader(asio::io_context& io, std::string path,
                               gateway::PolicyHolder& holder)
    : impl_(std::make_unique<Impl>(io, std::move(path), holder)) {}

PolicyReloader::~PolicyReloader() { impl_->Stop(); }

void PolicyReloader::Start() { impl_->Start(); }

void PolicyReloader::Stop() { impl_->Stop(); }

void PolicyReloader::ReloadNow(const char* why) { impl_->Reload(why, false); }

}  // namespace tw::app
