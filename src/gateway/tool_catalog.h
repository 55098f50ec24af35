// ToolCatalog: what one server says its tools are, so that a call names exactly one of them
// and its arguments match that tool's inputSchema.
//
// The catalog observes every tools/list answer the gateway relays or asks for itself. A
// listing that starts with a first page (no cursor) is collected page by page and replaces the
// known list when its last page arrives; a page of a listing the catalog did not see start is
// added to the list being collected, or to the known one. Each tool's inputSchema is compiled
// once per listing.
//
// Check, a stage of a call's decision before the policy (whatever its default), after the
// guard refused names with control, whitespace or invisible characters (mcp::ToolNameProblem):
//   - with `unlisted: kDeny` (the default) a name that is not byte-equal to a listed tool is
//     refused as an unknown tool — a case variant, a trailing space or a look-alike of a
//     hidden tool never reaches a server that folds or trims names;
//   - with `schema: kEnforce` (the default) arguments that do not match the tool's schema are
//     refused, naming the path that failed; kWarn logs and lets the policy decide; kOff skips.
//
// Thread-safe: the known list is an immutable snapshot behind a mutex.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "catalog/schema.h"
#include "mcp/protocol.h"
#include "policy/policy.h"

namespace tw::gateway {

enum class UnlistedTools { kDeny, kAllow };
enum class SchemaMode { kEnforce, kWarn, kOff };

class ToolCatalog {
 public:
  ToolCatalog(std::string server, UnlistedTools unlisted = UnlistedTools::kDeny,
              SchemaMode schema = SchemaMode::kEnforce);

  // Records one page of a tools/list result. `first_page`: the request had no cursor.
  void Observe(const json::value& tools_list_result, bool first_page);
  // Whether a complete listing has been seen (calls wait for one when names must be listed).
  bool HasList() const;
  // Whether calls need a listing to be decided.
  bool NeedsList() const { return unlisted_ == UnlistedTools::kDeny || schema_ != SchemaMode::kOff; }
  // The denial for `call`, or nullopt when it names a listed tool with conforming arguments.
  // `cls`, when given, is set to what the classifier says of the listed tool (empty when it is
  // not listed).
  std::optional<policy::Decision> Check(const mcp::ToolCall& call,
                                        policy::ToolClass* cls = nullptr) const;

  const std::string& server() const { return server_; }

 private:
  struct Tool {
    std::shared_ptr<const catalog::Schema> schema;  // null: no inputSchema given
    json::value definition;  // the tool as listed, which `schema` and `cls` were made from
    policy::ToolClass cls;   // catalog::Classify of the definition (static names)
  };
  using Tools = std::unordered_map<std::string, Tool>;
  // Adds one page's tools to `tools`; a tool listed exactly as `known` has it keeps its
  // compiled schema and class, not made again (every session's tools/list passes through here).
  void AddPage(Tools& tools, const json::value& result, const Tools* known) const;

  std::string server_;
  UnlistedTools unlisted_;
  SchemaMode schema_;
  mutable std::mutex mu_;
  std::shared_ptr<const Tools> known_;  // Guarded by mu_; null before the first listing
  std::unique_ptr<Tools> collecting_;   // Guarded by mu_; a listing not yet complete
};

}  // namespace tw::gateway
