// Fuzz target: tool input schemas. The first line is a schema (as a server lists it), the rest
// a call's arguments; compiling and checking must terminate and never crash, whatever either
// holds (recursive references, hostile patterns, deep nesting).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "catalog/schema.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tw;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const size_t nl = text.find('\n');
  if (nl == std::string_view::npos) return 0;
  boost::system::error_code ec;
  json::value schema = json::parse(text.substr(0, nl), ec);
  if (ec) return 0;
  json::value value = json::parse(text.substr(nl + 1), ec);
  if (ec) return 0;
  auto compiled = catalog::Schema::Compile(schema);
  auto violation = compiled->Check(value);
  if (violation && violation->empty()) __builtin_trap();  // a refusal names its path
  return 0;
}
