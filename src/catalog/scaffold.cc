#include "catalog/scaffold.h"

#include <algorithm>
#include <set>
#include <sstream>

namespace tw::catalog {

namespace {

struct Rule {
  std::string action;  // empty: allow
  std::string reason;
  int per_minute = 0;            // 0: no rate limit
  bool spend_cap = false;        // daily cap on args.<amount_field>
  std::string amount_field;
};

std::string Name(const json::object& tool) {
  const json::value* n = tool.if_contains("name");
  return n && n->is_string() ? std::string(n->get_string()) : std::string();
}

std::string OneLine(std::string_view text, size_t max) {
  std::string out;
  for (char c : text) out.push_back(c == '\n' || c == '\r' || c == '\t' ? ' ' : c);
  if (out.size() > max) out = out.substr(0, max - 3) + "...";
  return out;
}

// The argument a spend cap counts, if the tool has one.
std::string AmountField(const json::object& tool) {
  const json::value* schema = tool.if_contains("inputSchema");
  const json::value* props = schema && schema->is_object()
                                 ? schema->get_object().if_contains("properties")
                                 : nullptr;
  if (!props || !props->is_object()) return {};
  for (const char* candidate : {"amount", "amount_cents", "value", "total"}) {
    const json::value* p = props->get_object().if_contains(candidate);
    if (!p || !p->is_object()) continue;
    const json::value* type = p->get_object().if_contains("type");
    if (type && type->is_string() && (type->get_string() == "integer" || type->get_string() == "number")) {
      return candidate;
    }
  }
  return {};
}

Rule Recommend(const ScannedTool& t) {
  Rule r;
  switch (t.classification.category) {
    case Category::kRead:
      // A read that reveals secrets, or a look-alike of another tool's name.
      if (t.classification.risk >= Risk::kHigh) {
        r.action = "require_approval";
        r.reason = "High risk (it may reveal secrets): a human must approve each call";
      }
      break;
    case Category::kWrite:
      r.per_minute = 30;
      break;
    case Category::kExecute:
      r.per_minute = 10;
      break;
    case Category::kFinancial:
      if (t.classification.risk != Risk::kCritical) {  // reading money data
        r.per_minute = 30;
        break;
      }
      r.action = "require_approval";
      r.amount_field = AmountField(t.definition);
      r.spend_cap = !r.amount_field.empty();
      break;
    case Category::kDestructive:
      r.action = "require_approval";
      r.reason = "Destructive: a human must approve each call";
      break;
  }
  return r;
}

std::string Describe(const Rule& r) {
  std::string s;
  if (!r.action.empty()) s = r.action == "require_approval" ? "require approval" : r.action;
  if (r.spend_cap) s += (s.empty() ? "" : " + ") + std::string("daily spend cap on ") + r.amount_field;
  if (r.per_minute) s += (s.empty() ? "" : " + ") + std::string("rate limit ") + std::to_string(r.per_minute) + "/minute";
  return s.empty() ? "allow" : s;
}

std::string Quote(std::string_view s) { return json::serialize(json::string(s)); }

}  // namespace

std::vector<ScannedTool> ScanTools(const json::array& tools) {
  std::vector<ScannedTool> out;
  std::set<std::string> seen;
  for (const json::value& v : tools) {
    // Nameless tools cannot be called; a repeated name would make the policy ambiguous.
    if (!v.is_object() || Name(v.get_object()).empty()) continue;
    if (!seen.insert(Name(v.get_object())).second) continue;
    ScannedTool t{v.get_object(), Classify(v.get_object()), {}};
    t.recommendation = Describe(Recommend(t));
    out.push_back(std::move(t));
  }
  std::stable_sort(out.begin(), out.end(), [](const ScannedTool& a, const ScannedTool& b) {
    return a.classification.category < b.classification.category;
  });
  return out;
}

std::string WriteScaffold(const std::vector<ScannedTool>& tools, const ServerInfo& server,
                          ScaffoldFormat format) {
  std::ostringstream os;
  if (format == ScaffoldFormat::kYaml) {
    os << "# toolwarden policy scaffold for " << OneLine(server.name, 120)
       << (server.version.empty() ? "" : " " + OneLine(server.version, 40)) << ", written by "
       << "`toolwarden scan`.\n"
       << "# The categories are classifier version " << kClassifierVersion
       << "'s reading of each tool's definition (signals in\n"
       << "# the comments): review every rule before relying on it. Tools not listed below,\n"
       << "# including ones the server adds later, are denied.\n"
       << "version: \"1\"\ndefault: deny\ntools:\n";
    for (const ScannedTool& t : tools) {
      const std::string name = Name(t.definition);
      const Rule r = Recommend(t);
      const json::value* d = t.definition.if_contains("description");
      os << "\n  # " << OneLine(name, 80) << " — " << CategoryName(t.classification.category)
         << ", " << RiskName(t.classification.risk) << " risk: " << t.recommendation << "\n";
      if (d && d->is_string() && !d->get_string().empty()) {
        os << "  #   " << OneLine(d->get_string(), 160) << "\n";
      }
      for (const std::string& s : t.classification.signals) os << "  #   · " << OneLine(s, 160) << "\n";
      if (name.find_first_of("*?") != std::string::npos) {
        os << "  #   (this name contains * or ?, which the policy reads as a glob)\n";
      }
      os << "  " << Quote(name) << ":";
      if (r.action.empty() && !r.per_minute && !r.spend_cap) {
        os << " {}\n";
        continue;
      }
      os << "\n";
      if (!r.action.empty()) os << "    action: " << r.action << "\n";
      if (!r.reason.empty()) os << "    reason: " << Quote(r.reason) << "\n";
      if (r.per_minute || r.spend_cap) os << "    limits:\n";
      if (r.per_minute) {
        os << "      - {counter: " << Quote(name + "_rate") << ", window: minute, max: "
           << r.per_minute << "}\n";
      }
      if (r.spend_cap) {
        os << "      - {counter: " << Quote(name + "_daily_spend")
           << ", window: day, max: 100000, increment_from: args." << r.amount_field << "}\n";
      }
    }
    return os.str();
  }

  json::object policy;
  policy["_about"] = "toolwarden policy scaffold for " + server.name +
                     (server.version.empty() ? "" : " " + server.version) +
                     ". Categories are classifier version " + std::to_string(kClassifierVersion) +
                     "'s reading of each tool: review every rule.";
  policy["version"] = "1";
  policy["default"] = "deny";
  json::object rules;
  for (const ScannedTool& t : tools) {
    const std::string name = Name(t.definition);
    const Rule r = Recommend(t);
    json::object entry;
    std::string about = std::string(CategoryName(t.classification.category)) + ", " +
                        std::string(RiskName(t.classification.risk)) + " risk: " + t.recommendation;
    if (const json::value* d = t.definition.if_contains("description"); d && d->is_string()) {
      about += ". " + OneLine(d->get_string(), 160);
    }
    entry["_about"] = about;
    if (!r.action.empty()) entry["action"] = r.action;
    if (!r.reason.empty()) entry["reason"] = r.reason;
    json::array limits;
    if (r.per_minute) {
      limits.push_back({{"counter", name + "_rate"}, {"window", "minute"}, {"max", r.per_minute}});
    }
    if (r.spend_cap) {
      limits.push_back({{"counter", name + "_daily_spend"},
                        {"window", "day"},
                        {"max", 100000},
                        {"increment_from", "args." + r.amount_field}});
    }
    if (!limits.empty()) entry["limits"] = std::move(limits);
    rules[name] = std::move(entry);
  }
  policy["tools"] = std::move(rules);
  // Pretty enough: one tool per line.
  std::string text = "{\n  \"_about\": " + json::serialize(policy["_about"]) +
                     ",\n  \"version\": \"1\",\n  \"default\": \"deny\",\n  \"tools\": {";
  bool first = true;
  for (const auto& kv : policy["tools"].get_object()) {
    text += std::string(first ? "\n" : ",\n") + "    " + json::serialize(json::string(kv.key())) +
            ": " + json::serialize(kv.value());
    first = false;
  }
  text += "\n  }\n}\n";
  return text;
}

std::string SummaryTable(const std::vector<ScannedTool>& tools) {
  size_t width = 4;
  for (const auto& t : tools) width = std::max(width, Name(t.definition).size());
  width = std::min<size_t>(width, 48);
  std::ostringstream os;
  auto pad = [](std::string s, size_t w) {
    if (s.size() > w) s = s.substr(0, w - 1) + "…";
    return s + std::string(w > s.size() ? w - s.size() : 1, ' ');
  };
  os << pad("TOOL", width + 2) << pad("CATEGORY", 13) << pad("RISK", 10) << "RECOMMENDATION\n";
  for (const auto& t : tools) {
    os << pad(Name(t.definition), width + 2) << pad(std::string(CategoryName(t.classification.category)), 13)
       << pad(std::string(RiskName(t.classification.risk)), 10) << t.recommendation << "\n";
  }
  return os.str();
}

json::array SummaryJson(const std::vector<ScannedTool>& tools) {
  json::array out;
  for (const auto& t : tools) {
    json::array signals;
    for (const auto& s : t.classification.signals) signals.push_back(json::string(s));
    out.push_back({{"name", Name(t.definition)},
                   {"category", CategoryName(t.classification.category)},
                   {"risk", RiskName(t.classification.risk)},
                   {"signals", std::move(signals)},
                   {"recommendation", t.recommendation}});
  }
  return out;
}

}  // namespace tw::catalog
