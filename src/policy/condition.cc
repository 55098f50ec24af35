#include "policy/condition.h"

#include <charconv>
#include <cmath>
#include <limits>

#include <re2/re2.h>

namespace tw::policy {

namespace {

struct OpEntry {
  Op op;
  std::string_view name;
};
constexpr OpEntry kOps[] = {
    {Op::kEq, "eq"},
    {Op::kNeq, "neq"},
    {Op::kIn, "in"},
    {Op::kNotIn, "not_in"},
    {Op::kLt, "lt"},
    {Op::kLte, "lte"},
    {Op::kGt, "gt"},
    {Op::kGte, "gte"},
    {Op::kRegex, "regex"},
    {Op::kNotRegex, "not_regex"},
    {Op::kContains, "contains"},
    {Op::kStartsWith, "starts_with"},
    {Op::kEndsWith, "ends_with"},
    {Op::kExists, "exists"},
};


std::string Render(const json::value& v) {
  std::string s = json::serialize(v);
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

}  // namespace

std::optional<Op> ParseOp(std::string_view name) {
  for (const auto& o : kOps) {
    if (o.name == name) return o.op;
  }
  return std::nullopt;
}

std::vector<std::string_view> OpNames() {
  std::vector<std::string_view> out;
  for (const auto& o : kOps) out.push_back(o.name);
  return out;
}

std::string_view OpName(Op op) {
  for (const auto& o : kOps) {
    if (o.op == op) return o.name;
  }
  return "?";
}

Result<ArgPath> ArgPath::Parse(std::string_view text) {
  ArgPath path;
  path.text_ = std::string(text);
  if (!text.starts_with("args.")) {
    return Fail(Error::InvalidArgument("path must start with \"args.\", got \"" +
                                       std::string(text) + "\""));
  }
  std::string_view rest = text.substr(5);
  if (rest.empty() || rest.front() == '[' || rest.front() == '.') {
    return Fail(Error::InvalidArgument("path \"" + path.text_ + "\" must name an argument after \"args.\""));
  }
  bool expect_key = true;
  while (!rest.empty()) {
    if (rest.front() == '[') {
      size_t close = rest.find(']');
      size_t index = 0;
      auto [p, ec] = std::from_chars(rest.data() + 1, rest.data() + std::min(close, rest.size()),
                                     index);
      if (close == std::string_view::npos || close == 1 || ec != std::errc() ||
          p != rest.data() + close) {
        return Fail(Error::InvalidArgument("path \"" + path.text_ +
                                           "\": an index must look like [0]"));
      }
      path.segments_.emplace_back(index);
      rest.remove_prefix(close + 1);
      expect_key = false;
      continue;
    }
    if (rest.front() == '.') {
      if (expect_key) {
        return Fail(Error::InvalidArgument("path \"" + path.text_ + "\" has an empty key"));
      }
      rest.remove_prefix(1);
      expect_key = true;
      if (rest.empty()) {
        return Fail(Error::InvalidArgument("path \"" + path.text_ + "\" ends with '.'"));
      }
      continue;
    }
    if (!expect_key) {
      return Fail(Error::InvalidArgument("path \"" + path.text_ + "\": expected '.' or '['"));
    }
    size_t end = rest.find_first_of(".[");
    path.segments_.emplace_back(std::string(rest.substr(0, end)));
    rest.remove_prefix(end == std::string_view::npos ? rest.size() : end);
    expect_key = false;
  }
  return path;
}

const json::value* ArgPath::Resolve(const json::object& args) const {
  const json::value* cur = nullptr;
  const json::object* obj = &args;
  for (size_t i = 0; i < segments_.size(); ++i) {
    if (const auto* key = std::get_if<std::string>(&segments_[i])) {
      if (!obj) return nullptr;
      cur = obj->if_contains(*key);
    } else {
      const json::array* arr = cur ? cur->if_array() : nullptr;
      const size_t index = std::get<size_t>(segments_[i]);
      if (!arr || index >= arr->size()) return nullptr;
      cur = &(*arr)[index];
    }
    if (!cur) return nullptr;
    obj = cur->if_object();
  }
  return cur;
}

Outcome Condition::Evaluate(const json::object& args) const {
  const json::value* v = path.Resolve(args);
  const bool present = v && !v->is_null();
  if (op == Op::kExists) return present == value.get_bool() ? Outcome::kTrue : Outcome::kFalse;
  if (!v) return Outcome::kAbsent;
  if (v->is_null()) return Outcome::kAbsent;
  auto truth = [](bool b) { return b ? Outcome::kTrue : Outcome::kFalse; };
  switch (op) {
    case Op::kEq:
      return truth(JsonEquals(*v, value));
    case Op::kNeq:
      return truth(!JsonEquals(*v, value));
    case Op::kIn:
    case Op::kNotIn: {
      bool found = false;
      for (const auto& candidate : value.get_array()) {
        if (JsonEquals(*v, candidate)) {
          found = true;
          break;
        }
      }
      return truth(op == Op::kIn ? found : !found);
    }
    case Op::kLt:
    case Op::kLte:
    case Op::kGt:
    case Op::kGte: {
      auto c = CompareNumbers(*v, value);
      if (!c) return Outcome::kMismatch;
      switch (op) {
        case Op::kLt:
          return truth(*c < 0);
        case Op::kLte:
          return truth(*c <= 0);
        case Op::kGt:
          return truth(*c > 0);
        default:
          return truth(*c >= 0);
      }
    }
    case Op::kRegex:
    case Op::kNotRegex: {
      if (!v->is_string()) return Outcome::kMismatch;
      const auto& s = v->get_string();
      bool match = re2::RE2::PartialMatch(re2::StringPiece(s.data(), s.size()), *regex);
      return truth(op == Op::kRegex ? match : !match);
    }
    case Op::kContains:
      if (v->is_string() && value.is_string()) {
        return truth(std::string_view(v->get_string()).find(value.get_string()) !=
                     std::string_view::npos);
      }
      if (v->is_array()) {
        for (const auto& element : v->get_array()) {
          if (JsonEquals(element, value)) return Outcome::kTrue;
        }
        return Outcome::kFalse;
      }
      return Outcome::kMismatch;
    case Op::kStartsWith:
      if (!v->is_string()) return Outcome::kMismatch;
      return truth(std::string_view(v->get_string()).starts_with(value.get_string()));
    case Op::kEndsWith:
      if (!v->is_string()) return Outcome::kMismatch;
      return truth(std::string_view(v->get_string()).ends_with(value.get_string()));
    case Op::kExists:
      break;
  }
  return Outcome::kMismatch;
}

std::string Condition::Describe() const {
  return path.text() + " " + std::string(OpName(op)) + " " + Render(value);
}

Result<Condition> MakeCondition(ArgPath path, Op op, json::value value) {
  const std::string name(OpName(op));
  switch (op) {
    case Op::kIn:
    case Op::kNotIn:
      if (!value.is_array()) {
        return Fail(Error::InvalidArgument("operator \"" + name + "\" requires a list value"));
      }
      break;
    case Op::kLt:
    case Op::kLte:
    case Op::kGt:
    case Op::kGte:
      if (!value.is_number() || (value.is_double() && !std::isfinite(value.get_double()))) {
        return Fail(Error::InvalidArgument("operator \"" + name + "\" requires a numeric value"));
      }
      break;
    case Op::kExists:
      if (!value.is_bool()) {
        return Fail(Error::InvalidArgument("operator \"exists\" requires a boolean value"));
      }
      break;
    case Op::kRegex:
    case Op::kNotRegex:
    case Op::kStartsWith:
    case Op::kEndsWith:
      if (!value.is_string()) {
        return Fail(Error::InvalidArgument("operator \"" + name + "\" requires a string value"));
      }
      break;
    case Op::kContains:
      if (value.is_object() || value.is_array() || value.is_null()) {
        return Fail(Error::InvalidArgument(
            "operator \"contains\" requires a string (substring) or a scalar (list element)"));
      }
      break;
    case Op::kEq:
    case Op::kNeq:
      break;
  }
  Condition c{std::move(path), op, std::move(value), nullptr};
  if (op == Op::kRegex || op == Op::kNotRegex) {
    const auto& pattern = c.value.get_string();
    RE2::Options options;
    options.set_log_errors(false);
    auto re = std::make_shared<re2::RE2>(re2::StringPiece(pattern.data(), pattern.size()),
                                         options);
    if (!re->ok()) {
      return Fail(Error::InvalidArgument("invalid regex \"" + std::string(pattern) +
                                         "\": " + re->error()));
    }
    c.regex = std::move(re);
  }
  return c;
}

}  // namespace tw::policy
