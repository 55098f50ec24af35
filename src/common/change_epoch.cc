#include "common/change_epoch.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

namespace tw {

namespace {
constexpr size_t kSize = sizeof(uint64_t);
}  // namespace

Result<std::unique_ptr<ChangeEpoch>> ChangeEpoch::Open(const std::string& path) {
  std::unique_ptr<ChangeEpoch> e(new ChangeEpoch());
  if (path.empty()) {
    e->word_ = &e->local_;
    return e;
  }
  auto fail = [&](const char* doing) {
    return Fail(Error::Unavailable(path + ": " + doing + ": " + std::strerror(errno)));
  };
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return fail("open");
  struct stat st {};
  // Growing a fresh file to one word is idempotent across racing processes: ftruncate to the
  // same size, zero-filled, never shrinks what another has written.
  if (::fstat(fd, &st) != 0 || (st.st_size < static_cast<off_t>(kSize) && ::ftruncate(fd, kSize) != 0)) {
    const int saved = errno;
    ::close(fd);
    errno = saved;
    return fail("size");
  }
  void* map = ::mmap(nullptr, kSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  const int saved = errno;
  ::close(fd);  // the mapping keeps the file
  errno = saved;
  if (map == MAP_FAILED) return fail("mmap");
  e->map_ = map;
  e->word_ = static_cast<uint64_t*>(map);
  return e;
}

ChangeEpoch::~ChangeEpoch() {
  if (map_) ::munmap(map_, kSize);
}

uint64_t ChangeEpoch::Load() const {
  return std::atomic_ref<uint64_t>(*word_).load(std::memory_order_acquire);
}

void ChangeEpoch::Bump() {
  std::atomic_ref<uint64_t>(*word_).fetch_add(1, std::memory_order_acq_rel);
}

}  // namespace tw
