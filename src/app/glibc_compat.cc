// Linked into the portable binary only (TW_PORTABLE; cmake/Portable.cmake). The static
// libstdc++ of GCC 12, as Debian 12 builds it, calls arc4random (std::random_device), which
// glibc exports only since 2.36: this definition keeps the binary's oldest glibc at 2.35.
#include <sys/random.h>

#include <cstdint>

extern "C" uint32_t arc4random(void) {
  uint32_t v = 0;
  while (getrandom(&v, sizeof v, 0) != static_cast<ssize_t>(sizeof v)) {
  }
  return v;
}
