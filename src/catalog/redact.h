// What the audit keeps of a call's argument values (`audit.arguments`), and the redaction of
// the values it must not keep.
//
// `redacted` keeps every value but those of sensitive keys — a key whose words name a secret
// (password, token, secret, api key, credential, authorization, cookie, private key…, read in
// the key's words as the classifier reads a tool's name, look-alike letters folded) at any depth — and of the paths the configuration names
// (`audit.redact`), each replaced by kRedacted. Keys are kept, so replay can tell a
// value it cannot see from one that was never sent. Pure.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/container/small_vector.hpp>
#include <boost/json.hpp>

#include "common/result.h"

namespace tw::catalog {

enum class ArgumentsKept { kNone, kRedacted, kFull };

// What replaces an argument value that `audit.arguments: redacted` does not keep.
inline constexpr std::string_view kRedacted = "[redacted]";

// "none" | "redacted" | "full".
std::optional<ArgumentsKept> ParseArgumentsKept(std::string_view text);

// True if an argument named `key` holds a secret by its words ("api_key", "clientSecret",
// "Authorization", "db_password"; not "max_tokens" or "keyword").
bool IsSensitiveName(std::string_view key);

class ArgumentRedactor {
 public:
  ArgumentRedactor() = default;
  // `paths`: "args.a.b", with `*` for any one key ("args.*.token"); an array's elements are
  // on their array's path. InvalidArgument names a path that is not one.
  static Result<ArgumentRedactor> Make(ArgumentsKept kept, const std::vector<std::string>& paths);

  ArgumentsKept kept() const { return kept_; }
  // What the audit record keeps of `args`: nothing, the redacted copy, or all of it.
  std::optional<boost::json::value> Keep(const boost::json::object& args) const;
  // Whether `args` are kept whole: full, or redacted with nothing in them to redact — then the
  // caller may store the text it already has (no copy, no walk of a copy).
  bool KeepsWhole(const boost::json::object& args) const;

 private:
  using Path = boost::container::small_vector<std::string_view, 8>;  // no allocation, usually
  // Walks `o` (objects, and objects inside arrays on their array's path), calling `at(value)`
  // for each value to redact; stops early when it returns false. `Object` is json::object,
  // const or not. Returns false when stopped.
  template <typename Object, typename At>
  bool ForEachToRedact(Object& o, Path& path, const At& at) const;
  bool PathListed(const Path& path) const;

  ArgumentsKept kept_ = ArgumentsKept::kNone;
  std::vector<std::vector<std::string>> paths_;  // segments after "args"
};

}  // namespace tw::catalog
