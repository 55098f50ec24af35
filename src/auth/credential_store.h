// Upstream credentials per person (docs/oauth.md, "Upstream credentials per person"): for a
// `url` server with `credentials: per_principal` — one that must act as the user, such as a
// GitHub server with each person's own token — the headers a principal's sessions send to it.
//
// Stored encrypted at rest (AES-256-GCM, a fresh 96-bit nonce per write, the server and the
// principal bound as additional data so that a row copied to another person does not
// decrypt), with a key that is never stored beside them: from the environment
// (TOOLWARDEN_CREDENTIAL_KEY) or a key file readable by its owner only. The state file alone
// gives away nothing but who has credentials for what.
//
// Table `upstream_credentials` of the state database. Thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/result.h"

namespace tw::auth {

using Headers = std::vector<std::pair<std::string, std::string>>;

// 32 bytes, written as 64 hex digits.
class CredentialKey {
 public:
  // `text` as above (surrounding whitespace ignored).
  static Result<CredentialKey> Parse(std::string_view text);
  // TOOLWARDEN_CREDENTIAL_KEY when set, else `file` (when not empty): refused when others than
  // its owner may read it. NotFound when neither is given.
  static Result<CredentialKey> Load(const std::string& file);
  // A new random key, as 64 hex digits (`toolwarden credentials key`).
  static std::string Generate();
  const std::array<unsigned char, 32>& bytes() const { return bytes_; }

 private:
  std::array<unsigned char, 32> bytes_{};
};

struct CredentialInfo {
  std::string server;
  std::string principal;
  std::vector<std::string> header_names;  // never the values
  int64_t updated_ms = 0;
};

class CredentialStore {
 public:
  virtual ~CredentialStore() = default;
  virtual Result<bool> Set(const std::string& server, const std::string& principal,
                           const Headers& headers, int64_t now_ms) = 0;
  // The principal's headers for `server`; nullopt when none are stored. InvalidArgument when
  // they do not decrypt (another key, or a row that was moved).
  virtual Result<std::optional<Headers>> Get(const std::string& server, const std::string& principal) = 0;
  virtual Result<std::vector<CredentialInfo>> List() = 0;
  // Whether there was something to delete.
  virtual Result<bool> Delete(const std::string& server, const std::string& principal) = 0;
};

// "sqlite:PATH" or "memory"; the key encrypts and decrypts.
Result<std::unique_ptr<CredentialStore>> OpenCredentialStore(const std::string& spec, CredentialKey key);

}  // namespace tw::auth
