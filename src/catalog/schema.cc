#include "catalog/schema.h"

#include <re2/re2.h>

#include <boost/container/small_vector.hpp>

#include <cmath>
#include <map>

#include <fmt/format.h>

#include "common/json_compare.h"

namespace tw::catalog {

namespace {

enum TypeBit : uint8_t {
  kNull = 1,
  kBoolean = 2,
  kObject = 4,
  kArray = 8,
  kNumber = 16,
  kString = 32,
  kInteger = 64,
};

std::optional<uint8_t> TypeBitOf(std::string_view name) {
  if (name == "null") return kNull;
  if (name == "boolean") return kBoolean;
  if (name == "object") return kObject;
  if (name == "array") return kArray;
  if (name == "number") return kNumber;
  if (name == "string") return kString;
  if (name == "integer") return kInteger;
  return std::nullopt;
}

bool IsIntegral(const json::value& v) {
  if (v.is_int64() || v.is_uint64()) return true;
  if (!v.is_double()) return false;
  const double d = v.get_double();
  return std::isfinite(d) && std::floor(d) == d;
}

bool HasType(uint8_t mask, const json::value& v) {
  switch (v.kind()) {
    case json::kind::null:
      return mask & kNull;
    case json::kind::bool_:
      return mask & kBoolean;
    case json::kind::object:
      return mask & kObject;
    case json::kind::array:
      return mask & kArray;
    case json::kind::string:
      return mask & kString;
    case json::kind::int64:
    case json::kind::uint64:
    case json::kind::double_:
      return (mask & kNumber) || ((mask & kInteger) && IsIntegral(v));
  }
  return false;
}

std::string_view KindName(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null:
      return "null";
    case json::kind::bool_:
      return "a boolean";
    case json::kind::object:
      return "an object";
    case json::kind::array:
      return "an array";
    case json::kind::string:
      return "a string";
    default:
      return IsIntegral(v) ? "an integer" : "a number";
  }
}

// Numbers as long double: exact for every int64, uint64 and double on x86-64 (64-bit mantissa).
long double AsLong(const json::value& v) {
  if (v.is_int64()) return static_cast<long double>(v.get_int64());
  if (v.is_uint64()) return static_cast<long double>(v.get_uint64());
  return static_cast<long double>(v.get_double());
}

size_t CodePoints(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

std::optional<uint64_t> Count(const json::value* v) {
  if (!v) return std::nullopt;
  if (v->is_uint64()) return v->get_uint64();
  if (v->is_int64() && v->get_int64() >= 0) return static_cast<uint64_t>(v->get_int64());
  if (v->is_double() && IsIntegral(*v) && v->get_double() >= 0) {
    return static_cast<uint64_t>(std::min(v->get_double(), 1.8e19));
  }
  return std::nullopt;
}

std::string Short(const json::value& v) {
  std::string s = json::serialize(v);
  if (s.size() > 40) s = s.substr(0, 37) + "...";
  return s;
}

}  // namespace

struct Schema::Node {
  bool reject_all = false;
  uint8_t types = 0;  // 0: any
  std::optional<std::vector<json::value>> enum_values;
  std::optional<json::value> const_value;
  std::optional<json::value> minimum, maximum, exclusive_minimum, exclusive_maximum;
  std::optional<json::value> multiple_of;
  std::optional<uint64_t> min_length, max_length;
  std::unique_ptr<RE2> pattern;
  std::vector<std::pair<std::string, int>> properties;
  std::vector<std::string> required;
  int additional = -1;  // node for properties not named (also not matched by patternProperties)
  std::vector<std::pair<std::unique_ptr<RE2>, int>> pattern_properties;
  std::optional<uint64_t> min_properties, max_properties;
  int items = -1;  // every item (or, after prefix_items, every further item)
  std::vector<int> prefix_items;
  std::optional<uint64_t> min_items, max_items;
  bool unique_items = false;
  std::vector<int> all_of, any_of, one_of;
  int not_ = -1;
  int ref = -1;
};

Schema::Schema() = default;
Schema::~Schema() = default;

// Builds the nodes of one schema; references are compiled once each (a recursive schema
// refers to a node being built).
struct Compiler {
  Schema& out;
  const json::value& root;
  std::map<std::string, int> refs;

  int NewNode() {
    out.nodes_.push_back(std::make_unique<Schema::Node>());
    return static_cast<int>(out.nodes_.size() - 1);
  }

  void Skip(const std::string& where, const std::string& why) {
    if (out.skipped_.size() < 32) out.skipped_.push_back(where + ": " + why);
  }

  const json::value* Resolve(std::string_view ref) {
    if (ref.empty() || ref[0] != '#') return nullptr;
    ref.remove_prefix(1);
    const json::value* at = &root;
    while (!ref.empty()) {
      if (ref[0] != '/') return nullptr;
      ref.remove_prefix(1);
      const size_t end = std::min(ref.find('/'), ref.size());
      std::string token;
      for (size_t i = 0; i < end; ++i) {
        if (ref[i] == '~' && i + 1 < end) {
          token += ref[i + 1] == '1' ? '/' : '~';
          ++i;
        } else {
          token += ref[i];
        }
      }
      ref.remove_prefix(end);
      if (const json::object* o = at->if_object()) {
        at = o->if_contains(token);
      } else if (const json::array* a = at->if_array()) {
        char* e = nullptr;
        const unsigned long i = std::strtoul(token.c_str(), &e, 10);
        at = (e && *e == 0 && i < a->size()) ? &(*a)[i] : nullptr;
      } else {
        return nullptr;
      }
      if (!at) return nullptr;
    }
    return at;
  }

  int CompileRef(const std::string& ref, const std::string& where) {
    if (auto it = refs.find(ref); it != refs.end()) return it->second;
    const json::value* target = Resolve(ref);
    if (!target) {
      Skip(where, "reference " + ref + " is not a local definition");
      return -1;
    }
    const int n = NewNode();
    refs.emplace(ref, n);
    Fill(n, *target, where);
    return n;
  }

  std::unique_ptr<RE2> Regex(const json::value& v, const std::string& where) {
    if (!v.is_string()) return nullptr;
    RE2::Options opt;
    opt.set_log_errors(false);
    opt.set_max_mem(1 << 20);
    auto re = std::make_unique<RE2>(std::string(v.get_string()), opt);
    if (!re->ok()) {
      Skip(where, "pattern not supported (" + re->error() + ")");
      return nullptr;
    }
    return re;
  }

  int Compile(const json::value& s, const std::string& where) {
    const int n = NewNode();
    Fill(n, s, where);
    return n;
  }

  void Fill(int n, const json::value& s, const std::string& where) {
    if (s.is_bool()) {
      out.nodes_[n]->reject_all = !s.get_bool();
      return;
    }
    const json::object* o = s.if_object();
    if (!o) return;
    // Sub-schemas first: compiling them may grow nodes_, so the node is taken afterwards.
    auto sub = [&](const json::value& v, const std::string& at) { return Compile(v, where + at); };
    std::vector<std::pair<std::string, int>> properties;
    if (const json::value* p = o->if_contains("properties"); p && p->is_object()) {
      for (const auto& kv : p->get_object()) {
        properties.emplace_back(kv.key(),
                                sub(kv.value(), fmt::format(".properties.{}", std::string_view(kv.key()))));
      }
    }
    std::vector<std::pair<std::unique_ptr<RE2>, int>> pattern_properties;
    if (const json::value* p = o->if_contains("patternProperties"); p && p->is_object()) {
      for (const auto& kv : p->get_object()) {
        auto re = Regex(json::value(kv.key()), where + ".patternProperties");
        const int node = sub(kv.value(), ".patternProperties");
        if (re) pattern_properties.emplace_back(std::move(re), node);
      }
    }
    int additional = -1;
    if (const json::value* a = o->if_contains("additionalProperties")) {
      additional = sub(*a, ".additionalProperties");
    }
    int items = -1;
    std::vector<int> prefix_items;
    if (const json::value* p = o->if_contains("prefixItems"); p && p->is_array()) {
      for (const auto& v : p->get_array()) prefix_items.push_back(sub(v, ".prefixItems"));
    }
    if (const json::value* i = o->if_contains("items")) {
      if (i->is_array()) {  // draft-07 tuple form
        for (const auto& v : i->get_array()) prefix_items.push_back(sub(v, ".items"));
        if (const json::value* more = o->if_contains("additionalItems")) {
          items = sub(*more, ".additionalItems");
        }
      } else {
        items = sub(*i, ".items");
      }
    }
    auto list = [&](const char* key) {
      std::vector<int> nodes;
      if (const json::value* v = o->if_contains(key); v && v->is_array()) {
        for (const auto& e : v->get_array()) nodes.push_back(sub(e, fmt::format(".{}", key)));
      }
      return nodes;
    };
    std::vector<int> all_of = list("allOf"), any_of = list("anyOf"), one_of = list("oneOf");
    int not_ = -1;
    if (const json::value* v = o->if_contains("not")) not_ = sub(*v, ".not");
    int ref = -1;
    if (const json::value* r = o->if_contains("$ref"); r && r->is_string()) {
      ref = CompileRef(std::string(r->get_string()), where + ".$ref");
    }

    Schema::Node& node = *out.nodes_[n];
    node.properties = std::move(properties);
    node.pattern_properties = std::move(pattern_properties);
    node.additional = additional;
    node.items = items;
    node.prefix_items = std::move(prefix_items);
    node.all_of = std::move(all_of);
    node.any_of = std::move(any_of);
    node.one_of = std::move(one_of);
    node.not_ = not_;
    node.ref = ref;
    if (const json::value* t = o->if_contains("type")) {
      uint8_t mask = 0;
      bool known = true;
      auto add = [&](const json::value& name) {
        auto bit = name.is_string() ? TypeBitOf(name.get_string()) : std::nullopt;
        if (bit) mask |= *bit;
        else known = false;
      };
      if (t->is_array()) {
        for (const auto& e : t->get_array()) add(e);
      } else {
        add(*t);
      }
      if (known) node.types = mask;
      else Skip(where + ".type", "unknown type " + Short(*t));
    }
    if (const json::value* e = o->if_contains("enum"); e && e->is_array()) {
      node.enum_values.emplace(e->get_array().begin(), e->get_array().end());
    }
    if (const json::value* c = o->if_contains("const")) node.const_value = *c;
    auto number = [&](const char* key) -> std::optional<json::value> {
      const json::value* v = o->if_contains(key);
      if (v && v->is_number()) return *v;
      return std::nullopt;
    };
    node.minimum = number("minimum");
    node.maximum = number("maximum");
    node.exclusive_minimum = number("exclusiveMinimum");
    node.exclusive_maximum = number("exclusiveMaximum");
    // Draft-04: exclusiveMinimum/Maximum are booleans that make minimum/maximum exclusive.
    if (const json::value* b = o->if_contains("exclusiveMinimum"); b && b->is_bool() && b->get_bool()) {
      node.exclusive_minimum = node.minimum;
      node.minimum.reset();
    }
    if (const json::value* b = o->if_contains("exclusiveMaximum"); b && b->is_bool() && b->get_bool()) {
      node.exclusive_maximum = node.maximum;
      node.maximum.reset();
    }
    if (auto m = number("multipleOf"); m && IsIntegral(*m) && AsLong(*m) > 0) {
      node.multiple_of = m;
    } else if (m) {
      Skip(where + ".multipleOf", "only positive integers are checked");
    }
    node.min_length = Count(o->if_contains("minLength"));
    node.max_length = Count(o->if_contains("maxLength"));
    if (const json::value* p = o->if_contains("pattern")) node.pattern = Regex(*p, where + ".pattern");
    if (const json::value* r = o->if_contains("required"); r && r->is_array()) {
      for (const auto& e : r->get_array()) {
        if (e.is_string()) node.required.emplace_back(e.get_string());
      }
    }
    node.min_properties = Count(o->if_contains("minProperties"));
    node.max_properties = Count(o->if_contains("maxProperties"));
    node.min_items = Count(o->if_contains("minItems"));
    node.max_items = Count(o->if_contains("maxItems"));
    if (const json::value* u = o->if_contains("uniqueItems"); u && u->is_bool()) {
      node.unique_items = u->get_bool();
    }
  }
};

std::shared_ptr<const Schema> Schema::Compile(const json::value& schema) {
  std::shared_ptr<Schema> s(new Schema());
  Compiler c{*s, schema, {}};
  c.refs.emplace("#", 0);
  c.Compile(schema, "inputSchema");
  return s;
}

namespace {

struct Checker {
  // A path segment: a member name or an array index. The path is rendered only for a violation:
  // checking a conforming call allocates nothing for it.
  struct Part {
    std::string_view key;
    size_t index = 0;
    bool is_index = false;
  };
  const std::vector<std::unique_ptr<Schema::Node>>& nodes;
  std::string_view root;
  boost::container::small_vector<Part, 8> path;

  static std::string Member(std::string_view key) {
    bool plain = !key.empty();
    for (char c : key) {
      plain = plain && (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-');
    }
    return plain ? fmt::format(".{}", key) : fmt::format("[{}]", json::serialize(json::string(key)));
  }

  std::optional<std::string> Fail(std::string what) const {
    std::string out(root);
    for (const Part& p : path) out += p.is_index ? fmt::format("[{}]", p.index) : Member(p.key);
    return out + ": " + std::move(what);
  }

  // Appends a path segment for the duration of one check.
  template <typename F>
  std::optional<std::string> At(Part part, F&& f) {
    path.push_back(part);
    auto r = f();
    path.pop_back();
    return r;
  }
  static Part Key(std::string_view key) { return Part{key, 0, false}; }
  static Part Index(size_t i) { return Part{{}, i, true}; }

  // The object keywords of node `s` (required, properties, additionalProperties…).
  std::optional<std::string> CheckObject(const Schema::Node& s, const json::object& o, int depth) {
    for (const std::string& r : s.required) {
      if (!o.contains(r)) return Fail("lacks the required property \"" + r + "\"");
    }
    if (s.min_properties && o.size() < *s.min_properties) {
      return Fail(fmt::format("must have at least {} properties", *s.min_properties));
    }
    if (s.max_properties && o.size() > *s.max_properties) {
      return Fail(fmt::format("must have at most {} properties", *s.max_properties));
    }
    for (const auto& kv : o) {
      bool matched = false;
      for (const auto& property : s.properties) {
        if (property.first != kv.key()) continue;
        matched = true;
        const int node = property.second;
        if (auto r = At(Key(kv.key()), [&] { return Check(node, kv.value(), depth + 1); })) {
          return r;
        }
      }
      for (const auto& pattern : s.pattern_properties) {
        const std::string_view key = kv.key();
        if (!RE2::PartialMatch(re2::StringPiece(key.data(), key.size()), *pattern.first)) continue;
        matched = true;
        const int node = pattern.second;
        if (auto r = At(Key(key), [&] { return Check(node, kv.value(), depth + 1); })) return r;
      }
      if (!matched && s.additional >= 0) {
        if (nodes[s.additional]->reject_all) {
          return Fail("has the property \"" + std::string(kv.key()) +
                      "\", which the tool does not take");
        }
        if (auto r = At(Key(kv.key()),
                        [&] { return Check(s.additional, kv.value(), depth + 1); })) {
          return r;
        }
      }
    }
  
    return std::nullopt;
  }

  // The root of a call's arguments, an object: checked without copying it into a json::value,
  // unless the root schema has keywords that need the whole value (enum, const, combinators,
  // references — rare at the root of a tool's schema).
  std::optional<std::string> CheckRoot(const json::object& o) {
    const Schema::Node& s = *nodes[0];
    if (s.enum_values || s.const_value || !s.all_of.empty() || !s.any_of.empty() ||
        !s.one_of.empty() || s.not_ >= 0 || s.ref >= 0) {
      return Check(0, json::value(o), 0);
    }
    if (s.reject_all) return Fail("no value is allowed here");
    if (s.types && !(s.types & kObject)) return Check(0, json::value(o), 0);
    return CheckObject(s, o, 0);
  }

  std::optional<std::string> Check(int n, const json::value& v, int depth) {
    if (n < 0) return std::nullopt;
    if (depth > 64) return Fail("nested too deeply to check");
    const Schema::Node& s = *nodes[n];
    if (s.reject_all) return Fail("no value is allowed here");
    if (s.types && !HasType(s.types, v)) {
      std::string want;
      for (auto [bit, name] : {std::pair{kNull, "null"}, {kBoolean, "boolean"}, {kObject, "object"},
                               {kArray, "array"}, {kNumber, "number"}, {kString, "string"},
                               {kInteger, "integer"}}) {
        if (s.types & bit) want += fmt::format("{}{}", want.empty() ? "" : " or ", name);
      }
      return Fail("must be " + want + ", not " + std::string(KindName(v)));
    }
    if (s.enum_values) {
      bool found = false;
      for (const auto& e : *s.enum_values) found = found || JsonEquals(e, v);
      if (!found) return Fail("must be one of the listed values (enum), not " + Short(v));
    }
    if (s.const_value && !JsonEquals(*s.const_value, v)) {
      return Fail("must be " + Short(*s.const_value));
    }
    if (v.is_number()) {
      auto cmp = [&v](const json::value& bound) { return CompareNumbers(v, bound).value_or(0); };
      if (s.minimum && cmp(*s.minimum) < 0) return Fail("must be at least " + Short(*s.minimum));
      if (s.maximum && cmp(*s.maximum) > 0) return Fail("must be at most " + Short(*s.maximum));
      if (s.exclusive_minimum && cmp(*s.exclusive_minimum) <= 0) {
        return Fail("must be greater than " + Short(*s.exclusive_minimum));
      }
      if (s.exclusive_maximum && cmp(*s.exclusive_maximum) >= 0) {
        return Fail("must be less than " + Short(*s.exclusive_maximum));
      }
      if (s.multiple_of && (!IsIntegral(v) || std::fmod(AsLong(v), AsLong(*s.multiple_of)) != 0)) {
        return Fail("must be a multiple of " + Short(*s.multiple_of));
      }
    }
    if (v.is_string()) {
      const std::string_view str = v.get_string();
      if (s.min_length || s.max_length) {
        const size_t len = CodePoints(str);
        if (s.min_length && len < *s.min_length) {
          return Fail(fmt::format("must be at least {} characters long", *s.min_length));
        }
        if (s.max_length && len > *s.max_length) {
          return Fail(fmt::format("must be at most {} characters long", *s.max_length));
        }
      }
      if (s.pattern && !RE2::PartialMatch(re2::StringPiece(str.data(), str.size()), *s.pattern)) {
        return Fail("must match the pattern " + json::serialize(json::string(s.pattern->pattern())));
      }
    }
    if (const json::object* o = v.if_object()) {
      if (auto r = CheckObject(s, *o, depth)) return r;
    }
    if (const json::array* a = v.if_array()) {
      if (s.min_items && a->size() < *s.min_items) {
        return Fail(fmt::format("must have at least {} items", *s.min_items));
      }
      if (s.max_items && a->size() > *s.max_items) {
        return Fail(fmt::format("must have at most {} items", *s.max_items));
      }
      for (size_t i = 0; i < a->size(); ++i) {
        const int node = i < s.prefix_items.size() ? s.prefix_items[i] : s.items;
        if (node < 0) continue;
        if (auto r = At(Index(i), [&] { return Check(node, (*a)[i], depth + 1); })) {
          return r;
        }
      }
      if (s.unique_items) {
        for (size_t i = 0; i < a->size(); ++i) {
          for (size_t j = i + 1; j < a->size(); ++j) {
            if (JsonEquals((*a)[i], (*a)[j])) {
              return Fail(fmt::format("items {} and {} are equal (uniqueItems)", i, j));
            }
          }
        }
      }
    }
    for (int node : s.all_of) {
      if (auto r = Check(node, v, depth + 1)) return r;
    }
    if (!s.any_of.empty()) {
      bool any = false;
      std::optional<std::string> first;
      for (int node : s.any_of) {
        auto r = Check(node, v, depth + 1);
        if (!r) {
          any = true;
          break;
        }
        if (!first) first = std::move(r);
      }
      if (!any) return Fail("matches none of the allowed forms (anyOf; the first says: " + *first + ")");
    }
    if (!s.one_of.empty()) {
      int matches = 0;
      for (int node : s.one_of) matches += !Check(node, v, depth + 1);
      if (matches != 1) {
        return Fail(fmt::format("must match exactly one of the allowed forms (oneOf), matches {}",
                                matches));
      }
    }
    if (s.not_ >= 0 && !Check(s.not_, v, depth + 1)) return Fail("matches a form that is not allowed");
    if (s.ref >= 0) return Check(s.ref, v, depth + 1);
    return std::nullopt;
  }
};

}  // namespace

std::optional<std::string> Schema::Check(const json::value& value, std::string_view root) const {
  Checker c{nodes_, root, {}};
  return c.Check(0, value, 0);
}

std::optional<std::string> Schema::Check(const json::object& value, std::string_view root) const {
  Checker c{nodes_, root, {}};
  return c.CheckRoot(value);
}

}  // namespace tw::catalog
