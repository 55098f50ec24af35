// Tool input schemas, compiled once and checked against every call's arguments.
//
// A tool's `inputSchema` is JSON Schema. The gateway checks the subset that tool schemas use,
// written on Boost.JSON with RE2 for `pattern` (linear time: a hostile pattern cannot stall
// the gateway, as a backtracking engine could):
//   type (one or a list; "integer" accepts integral doubles), enum, const,
//   minimum / maximum / exclusiveMinimum / exclusiveMaximum (both the draft-04 boolean and the
//   later numeric forms), multipleOf (integers), minLength / maxLength (in code points),
//   pattern, properties, required, additionalProperties (boolean or schema),
//   patternProperties, minProperties / maxProperties, items (a schema, or draft-07's list),
//   prefixItems, minItems / maxItems, uniqueItems, allOf / anyOf / oneOf / not,
//   and local references ($ref "#", "#/$defs/…", "#/definitions/…").
// Everything else (format, titles, descriptions, remote references, if/then/else,
// dependencies…) is not checked: an unknown keyword never denies a call. A keyword that cannot
// be compiled (a pattern RE2 rejects, a reference that leads nowhere) is left out and named in
// `Schema::skipped`, so an operator can see what is not enforced.
//
// Compiled schemas are immutable and thread-safe.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "jsonrpc/message.h"

namespace tw::catalog {

class Schema {
 public:
  struct Node;
  ~Schema();
  Schema(const Schema&) = delete;
  Schema& operator=(const Schema&) = delete;

  // Compiles `schema` (a tool's inputSchema). A schema that is not an object (or `true`)
  // accepts everything.
  static std::shared_ptr<const Schema> Compile(const json::value& schema);

  // The first violation of `value`, as "PATH: what" (PATH like `arguments.items[2].name`,
  // rooted at `root`), or nullopt when the value conforms.
  std::optional<std::string> Check(const json::value& value,
                                   std::string_view root = "arguments") const;
  // The same for an object (a call's arguments), without copying it.
  std::optional<std::string> Check(const json::object& value,
                                   std::string_view root = "arguments") const;

  // What could not be compiled and is therefore not checked ("properties.x.pattern: …").
  const std::vector<std::string>& skipped() const { return skipped_; }

 private:
  Schema();
  std::vector<std::unique_ptr<Node>> nodes_;  // nodes_[0] is the root
  std::vector<std::string> skipped_;
  friend struct Compiler;
};

}  // namespace tw::catalog
