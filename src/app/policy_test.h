// `toolwarden test POLICY CASES.yaml`: a policy's expected decisions, checked without calling
// anything — the way to keep policies in git behind a test gate.
//
// A case names a call (tool, arguments, grant) and what the policy must decide: `allow`,
// `deny` or `approval`, optionally which rule decides and words of the reason. Calls listed
// under `before` are decided and charged first (limits see them), at the same instant unless
// `wait` moves the clock on. Each case starts from empty counters.
#pragma once

#include <string>
#include <vector>

#include "catalog/scaffold.h"
#include "common/result.h"

namespace tw::app {

struct PolicyTestOptions {
  std::string policy_path;
  std::string cases_path;
  bool json = false;
  std::string junit_path;  // also write a JUnit XML report here
};

// Exit code: 0 when every case passes, 1 when one fails or a file is invalid.
int PolicyTestCommand(const PolicyTestOptions& options);

// Where scan writes the cases of the scaffold at `policy_path`: policy.yaml → policy.cases.yaml.
std::string CasesPathFor(const std::string& policy_path);

// A starter case file for `policy_path` (as `scan -o` and `init` write beside a scaffold): one
// case per tool with empty arguments, expecting what the policy decides for it now.
std::string StarterCases(const std::string& policy_path, const std::vector<std::string>& tools);

// Writes StarterCases for the scaffold at `policy_path`, listing `tools`, at CasesPathFor —
// unless a file is there already (cases someone edited are theirs). Returns the path written,
// or "" when one existed.
Result<std::string> WriteStarterCases(const std::string& policy_path,
                                      const std::vector<catalog::ScannedTool>& tools);

}  // namespace tw::app
