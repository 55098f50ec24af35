// libFuzzer: a bearer token as an outsider sends it, verified against a key set and the claims a
// resource server expects — never a crash, a hang or a leak, and nothing accepted that was not
// signed by the key. The first byte picks the key set (empty, or one key of each type, its
// members from the input too), the rest is the token.
#include <cstddef>
#include <cstdint>
#include <string>

#include "oauth/jwt.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string input(reinterpret_cast<const char*>(data + 1), size - 1);
  const size_t split = input.find('\n');
  std::string keys = R"({"keys":[]})";
  std::string token = input;
  if ((data[0] & 1) && split != std::string::npos) {
    keys = input.substr(0, split);  // a key set as JSON, as a provider might publish it
    token = input.substr(split + 1);
  }
  auto set = tw::oauth::KeySet::Parse(keys);
  if (!set) return 0;
  tw::oauth::Expectation expect{"https://idp.example.com", {"https://gw.example.com/mcp"}, 1'700'000'000, 60};
  tw::oauth::Verified v = tw::oauth::Verify(token, *set, expect);
  // With no key, nothing can verify.
  if (set->keys.empty() && v.ok()) __builtin_trap();
  (void)tw::oauth::Base64UrlDecode(token);
  return 0;
}
