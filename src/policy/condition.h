// Conditions on tool-call arguments: paths, operators, and their evaluation. Pure.
//
// A path is `args.` followed by object keys and array indexes: `args.a.b[0].c`. Values compare
// by JSON type: numbers as numbers (int64, uint64 and double mixed exactly: 2^63 + 1 is not
// 2^63), strings as strings (byte-wise; UTF-8 is compared as its bytes). A comparison whose
// types do not fit the operator is a mismatch, which policy evaluation treats as a denial —
// a type mismatch never silently allows.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <boost/json.hpp>

#include "common/json_compare.h"
#include "common/result.h"
#include "jsonrpc/message.h"

namespace re2 {
class RE2;
}

namespace tw::policy {

enum class Op {
  kEq,
  kNeq,
  kIn,
  kNotIn,
  kLt,
  kLte,
  kGt,
  kGte,
  kRegex,
  kNotRegex,
  kContains,
  kStartsWith,
  kEndsWith,
  kExists,
};

// The operator a name denotes ("lte" → kLte), or nullopt.
std::optional<Op> ParseOp(std::string_view name);
std::string_view OpName(Op op);
// Every operator's name, for messages.
std::vector<std::string_view> OpNames();

// A compiled `args.` path.
class ArgPath {
 public:
  using Segment = std::variant<std::string, size_t>;  // object key or array index

  // Parses `args.a.b[0]`. Keys may contain any character but `.` and `[`.
  static Result<ArgPath> Parse(std::string_view text);

  // The value at this path inside `args`, or nullptr when any step is absent.
  const json::value* Resolve(const json::object& args) const;
  const std::string& text() const { return text_; }

 private:
  std::string text_;
  std::vector<Segment> segments_;
};

enum class Outcome { kTrue, kFalse, kAbsent, kMismatch };

struct Condition {
  ArgPath path;
  Op op = Op::kEq;
  json::value value;                // the operand from the policy
  std::shared_ptr<re2::RE2> regex;  // for kRegex / kNotRegex, compiled at load

  // Evaluates against the call's arguments. kAbsent: the path does not exist (or is null),
  // except for kExists, which answers kTrue / kFalse.
  Outcome Evaluate(const json::object& args) const;
  // "args.amount gt 10000", for messages.
  std::string Describe() const;
};

// Checks that `value` suits `op` (a list for in/not_in, a number for lt…gte, a boolean for
// exists, a string for the string operators; a valid RE2 pattern for regex) and compiles the
// regex. The error message is the one `validate` prints.
Result<Condition> MakeCondition(ArgPath path, Op op, json::value value);

}  // namespace tw::policy
