// Result<T>: the return type of every operation the outside world can make fail.
//
// An Error carries a category (for callers that branch) and a human message that grows context
// at each layer: Error::Context("loading \"p.yaml\"") turns `bad key` into
// `loading "p.yaml": bad key`. Denials are not errors; they are policy Decisions.
#pragma once

#include <string>
#include <tl/expected.hpp>
#include <utility>

namespace tw {

enum class ErrorCode {
  kInvalidArgument,  // the input is malformed (bad JSON, bad policy, bad flag)
  kNotFound,         // a named thing does not exist
  kUnavailable,      // a peer is down or unreachable; retrying later may work
  kTimeout,          // a deadline passed
  kLimitExceeded,    // an input is larger than allowed
  kPermissionDenied, // the caller is known but may not do this
  kInternal,         // a bug or an impossible state
};

class Error {
 public:
  Error(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Error InvalidArgument(std::string m) {
    return {ErrorCode::kInvalidArgument, std::move(m)};
  }
  static Error NotFound(std::string m) { return {ErrorCode::kNotFound, std::move(m)}; }
  static Error Unavailable(std::string m) { return {ErrorCode::kUnavailable, std::move(m)}; }
  static Error Timeout(std::string m) { return {ErrorCode::kTimeout, std::move(m)}; }
  static Error LimitExceeded(std::string m) { return {ErrorCode::kLimitExceeded, std::move(m)}; }
  static Error PermissionDenied(std::string m) {
    return {ErrorCode::kPermissionDenied, std::move(m)};
  }
  static Error Internal(std::string m) { return {ErrorCode::kInternal, std::move(m)}; }

  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // Returns a copy whose message is prefixed with `context: `.
  [[nodiscard]] Error Context(const std::string& context) const {
    return {code_, context + ": " + message_};
  }

 private:
  ErrorCode code_;
  std::string message_;
};

template <typename T>
using Result = tl::expected<T, Error>;

// Shorthand for returning an error from a function that returns Result<T>.
inline tl::unexpected<Error> Fail(Error e) { return tl::unexpected<Error>(std::move(e)); }

}  // namespace tw
