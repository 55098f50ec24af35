// Loads policy files (JSON or YAML, one schema) into a compiled Policy.
//
// Every problem is reported with its position, as `FILE:LINE:COLUMN: message`, and all problems
// are reported, not just the first. Unknown keys are errors: a typo must never loosen a policy.
// The loader reads the file; everything after that (Compile) is pure.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "policy/policy.h"

namespace tw::policy {

struct Diagnostic {
  int line = 0;    // 1-based; 0 when unknown
  int column = 0;  // 1-based
  std::string message;
};

enum class FileFormat { kJson, kYaml };

// The format a file name implies: .json is JSON, everything else YAML (a superset).
FileFormat FormatFromName(std::string_view file_name);

// Compiles policy text. On failure returns every diagnostic found.
struct CompileResult {
  std::shared_ptr<const Policy> policy;  // null when diagnostics is non-empty
  std::vector<Diagnostic> diagnostics;
};
CompileResult CompilePolicy(std::string_view text, std::string_view file_name,
                            FileFormat format);

// The version a policy's text gets (Policy::version): the first 16 hex digits of its SHA-256.
std::string PolicyVersion(std::string_view text);

// Reads a policy file's text.
Result<std::string> ReadPolicyText(const std::string& path);

// Reads and compiles a file. The error message lists each problem as FILE:LINE:COLUMN: message,
// one per line.
Result<std::shared_ptr<const Policy>> LoadPolicyFile(const std::string& path);

// Formats diagnostics as `file:line:column: message` lines.
std::string FormatDiagnostics(std::string_view file_name, const std::vector<Diagnostic>& diags);

}  // namespace tw::policy
