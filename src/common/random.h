// Cryptographically secure random identifiers (session ids, approval ids, tokens).
#pragma once

#include <string>

namespace tw {

// Returns `bytes` bytes from a CSPRNG (OpenSSL's DRBG, seeded by the kernel; getrandom if it
// fails), hex encoded. Aborts if no randomness can be had: an id that is not random is a security bug, not a recoverable error.
std::string RandomHex(size_t bytes);

// Returns `chars` characters drawn uniformly from [0-9A-Za-z] (5.95 bits each; 43 carry 256
// bits), for tokens a human copies.
std::string RandomBase62(size_t chars);

}  // namespace tw
