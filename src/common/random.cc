#include "common/random.h"

#include "common/hex.h"

#include <openssl/rand.h>
#include <sys/random.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace tw {

namespace {

void FillRandom(std::vector<unsigned char>& buf) {
  // OpenSSL's DRBG (seeded and reseeded from the kernel): cryptographically secure, and no
  // system call per id — an audit record id is drawn for every call.
  if (RAND_bytes(buf.data(), static_cast<int>(buf.size())) == 1) return;
  const size_t bytes = buf.size();
  size_t got = 0;
  while (got < bytes) {
    ssize_t n = getrandom(buf.data() + got, bytes - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      std::perror("getrandom");
      std::abort();
    }
    got += static_cast<size_t>(n);
  }
}

}  // namespace

std::string RandomHex(size_t bytes) {
  std::vector<unsigned char> buf(bytes);
  FillRandom(buf);
  std::string out;
  out.reserve(bytes * 2);
  AppendHex(out, buf.data(), buf.size());
  return out;
}

std::string RandomBase62(size_t chars) {
  static constexpr char kAlphabet[] =
      "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  std::string out;
  out.reserve(chars);
  std::vector<unsigned char> buf(chars + 16);
  while (out.size() < chars) {
    FillRandom(buf);
    for (unsigned char c : buf) {
      // 248 = 4 * 62: rejecting the rest keeps every character equally likely.
      if (c < 248 && out.size() < chars) out.push_back(kAlphabet[c % 62]);
    }
  }
  return out;
}

}  // namespace tw
