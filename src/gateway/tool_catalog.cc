#include "gateway/tool_catalog.h"

#include <spdlog/spdlog.h>

#include "catalog/classify.h"

namespace tw::gateway {

namespace {

// `rule` is a literal: a Decision's rule points into a snapshot or a literal.
policy::Decision Deny(std::string_view rule, std::string reason) {
  policy::Decision d;
  d.verdict = policy::Verdict::kDeny;
  d.rule = rule;
  d.reason = std::move(reason);
  return d;
}

bool LastPage(const json::value& result) {
  const json::object* r = result.if_object();
  const json::value* next = r ? r->if_contains("nextCursor") : nullptr;
  return !next || !next->is_string() || next->get_string().empty();
}

}  // namespace

ToolCatalog::ToolCatalog(std::string server, UnlistedTools unlisted, SchemaMode schema)
    : server_(std::move(server)), unlisted_(unlisted), schema_(schema) {}

void ToolCatalog::AddPage(Tools& tools, const json::value& result, const Tools* known) const {
  const json::object* r = result.if_object();
  const json::value* list = r ? r->if_contains("tools") : nullptr;
  if (!list || !list->is_array()) return;
  for (const json::value& t : list->get_array()) {
    const json::object* tool = t.if_object();
    const json::value* name = tool ? tool->if_contains("name") : nullptr;
    if (!name || !name->is_string()) continue;
    if (known) {
      auto it = known->find(std::string(name->get_string()));
      if (it != known->end() && it->second.definition == t) {
        tools[it->first] = it->second;
        continue;
      }
    }
    Tool entry;
    entry.definition = jsonrpc::Detached(t);
    const catalog::Classification c = catalog::Classify(*tool);
    entry.cls = {catalog::CategoryName(c.category), catalog::RiskName(c.risk)};
    if (const json::value* schema = tool->if_contains("inputSchema")) {
      entry.schema = catalog::Schema::Compile(*schema);
      for (const std::string& s : entry.schema->skipped()) {
        spdlog::debug("server {}: tool {}: not checked: {}", server_, std::string(name->get_string()), s);
      }
    }
    tools[std::string(name->get_string())] = std::move(entry);
  }
}

void ToolCatalog::Observe(const json::value& result, bool first_page) {
  // Compiled outside the lock: a listing can be long.
  std::shared_ptr<const Tools> known;
  {
    std::lock_guard lock(mu_);
    known = known_;
  }
  Tools page;
  AddPage(page, result, known.get());
  const bool last = LastPage(result);
  std::lock_guard lock(mu_);
  if (first_page) collecting_ = std::make_unique<Tools>();
  if (collecting_) {
    for (auto& [name, tool] : page) (*collecting_)[name] = std::move(tool);
    if (last) {
      known_ = std::make_shared<const Tools>(std::move(*collecting_));
      collecting_.reset();
    }
    return;
  }
  // A later page of a listing begun before this catalog watched: add to what is known.
  auto merged = known_ ? std::make_shared<Tools>(*known_) : std::make_shared<Tools>();
  for (auto& [name, tool] : page) (*merged)[name] = std::move(tool);
  known_ = std::move(merged);
}

bool ToolCatalog::HasList() const {
  std::lock_guard lock(mu_);
  return known_ != nullptr;
}

std::optional<policy::Decision> ToolCatalog::Check(const mcp::ToolCall& call,
                                                   policy::ToolClass* cls) const {
  std::shared_ptr<const Tools> known;
  {
    std::lock_guard lock(mu_);
    known = known_;
  }
  const Tool* tool = nullptr;
  if (known) {
    if (auto it = known->find(call.name); it != known->end()) tool = &it->second;
  }
  if (cls && tool) *cls = tool->cls;
  if (!tool) {
    if (unlisted_ == UnlistedTools::kAllow) return std::nullopt;
    return Deny("unknown_tool",
                known ? "Unknown tool \"" + call.name + "\": server \"" + server_ +
                            "\" does not list a tool of that exact name"
                      : "Unknown tool \"" + call.name + "\": the tool list of server \"" +
                            server_ + "\" could not be read, so no call can be checked");
  }
  if (schema_ == SchemaMode::kOff || !tool->schema) return std::nullopt;
  auto violation = tool->schema->Check(call.arguments);
  if (!violation) return std::nullopt;
  if (schema_ == SchemaMode::kWarn) {
    spdlog::warn("server {}: call to {} does not match its input schema: {}", server_, call.name,
                 *violation);
    return std::nullopt;
  }
  return Deny("schema", "The arguments do not match the input schema of \"" + call.name +
                            "\": " + *violation);
}

}  // namespace tw::gateway
