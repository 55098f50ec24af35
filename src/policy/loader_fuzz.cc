// Fuzz target: policy files in both formats (native JSON and YAML; Intercept's YAML is told
// apart by the loader) — every input must compile or produce diagnostics, never crash.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "policy/loader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tw::policy;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  for (FileFormat f : {FileFormat::kJson, FileFormat::kYaml}) {
    CompileResult r = CompilePolicy(text, f == FileFormat::kJson ? "p.json" : "p.yaml", f);
    if (!r.policy && r.diagnostics.empty()) __builtin_trap();  // a refusal always says why
    (void)FormatDiagnostics("p", r.diagnostics);
  }
  return 0;
}
