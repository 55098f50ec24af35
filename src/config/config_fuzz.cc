// Fuzz target: the serve config loader (YAML and strict JSON), with ${VAR} expansion.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tw::config;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const EnvLookup env = [](const std::string& name) -> std::optional<std::string> {
    if (name == "SET") return std::string("value");
    return std::nullopt;
  };
  for (const char* path : {"/tmp/toolwarden.yaml", "/tmp/toolwarden.json"}) {
    auto c = ParseConfig(text, path, env);
    if (!c && c.error().message().empty()) __builtin_trap();
  }
  return 0;
}
