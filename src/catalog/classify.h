// Risk classification of an MCP tool from its definition. Pure.
//
// Signals, strongest first: the verbs of the tool's name (split at _, -, ., camelCase), the
// nouns that mark money (refund, payment, transfer of funds…), the description's wording
// ("permanently deletes", "cannot be undone"), the input schema's fields (amount + currency),
// and the MCP annotations. Annotations are hints the server makes about itself, so they are
// weighed, not trusted: a tool named delete_repository that claims readOnlyHint is flagged and
// classified by what it is called, and its risk is raised. Names with look-alike characters
// (Cyrillic "е" in "dеlete") are flagged and classified after folding them.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <boost/json.hpp>

#include "jsonrpc/message.h"

namespace tw::catalog {

// The classifier's version: raised whenever Classify would put some tool in another class.
// Recorded with every class the gateway records (audit "classifier") and in scaffolds, so a
// class selector's past decisions can be read against the classifier that made them.
inline constexpr int kClassifierVersion = 1;

enum class Category { kRead, kWrite, kExecute, kFinancial, kDestructive };
enum class Risk { kLow, kMedium, kHigh, kCritical };

std::string_view CategoryName(Category c);  // "Read", …
std::string_view RiskName(Risk r);          // "Low", …

struct Classification {
  Category category = Category::kRead;
  Risk risk = Risk::kLow;
  std::vector<std::string> signals;  // why, for humans: "name verb \"delete\" → Destructive"
};

// Classifies a tool object as it appears in tools/list ({name, title, description,
// inputSchema, annotations}). Missing fields are fine.
Classification Classify(const json::object& tool);

// Convenience for tables of (name, description).
Classification Classify(std::string_view name, std::string_view description);

// A name with confusable characters (Cyrillic, Greek, fullwidth) folded to ASCII and lower-cased:
// two names with the same fold look alike to a human.
std::string FoldName(std::string_view name);

// The words of a tool name, lower-cased: "createPullRequest" → create, pull, request.
std::vector<std::string> NameWords(std::string_view name);

}  // namespace tw::catalog
