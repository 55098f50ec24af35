// Fuzz target: condition evaluation. The input's first line is a policy (JSON), the rest a
// tools/call's arguments; the call is decided by every tool the policy names.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "policy/loader.h"
#include "policy/policy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tw;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const size_t nl = text.find('\n');
  if (nl == std::string_view::npos) return 0;
  policy::CompileResult r = policy::CompilePolicy(text.substr(0, nl), "p.json", policy::FileFormat::kJson);
  if (!r.policy) return 0;
  boost::system::error_code ec;
  json::value args = json::parse(text.substr(nl + 1), ec);
  if (ec || !args.is_object()) return 0;
  std::vector<std::string> names{"unlisted"};
  for (const auto& [name, rule] : r.policy->exact) names.push_back(name);
  for (const auto& rule : r.policy->globs) names.push_back(rule.pattern.text());
  for (const std::string& name : names) {
    mcp::ToolCall call{name, args.as_object()};
    policy::Decision d = policy::Evaluate(*r.policy, call, policy::Identity{"g", "s", "srv"}, 1'700'000'000'000);
    if (d.verdict == policy::Verdict::kDeny && d.reason.empty()) __builtin_trap();  // say why
  }
  return 0;
}
