#include "app/toml_text.h"

#define TOML_EXCEPTIONS 0
#include <toml++/toml.h>

#include <algorithm>
#include <sstream>

namespace tw::app {
namespace {

json::value ToJson(const toml::node& node) {
  if (const auto* t = node.as_table()) {
    json::object o;
    for (const auto& [k, v] : *t) o[std::string(k.str())] = ToJson(v);
    return o;
  }
  if (const auto* a = node.as_array()) {
    json::array out;
    for (const auto& v : *a) out.push_back(ToJson(v));
    return out;
  }
  if (const auto* s = node.as_string()) return json::value(s->get());
  if (const auto* i = node.as_integer()) return json::value(i->get());
  if (const auto* f = node.as_floating_point()) return json::value(f->get());
  if (const auto* b = node.as_boolean()) return json::value(b->get());
  std::ostringstream text;  // dates and times
  node.visit([&](const auto& v) { text << v; });
  return json::value(text.str());
}

// A TOML basic string.
std::string Quote(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04X", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

// A key as TOML writes it: bare when it can be.
std::string Key(std::string_view k) {
  const bool bare = !k.empty() && std::all_of(k.begin(), k.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '_' || c == '-';
  });
  return bare ? std::string(k) : Quote(k);
}

Result<std::string> Literal(const json::value& v) {
  if (v.is_string()) return Quote(v.get_string());
  if (v.is_array()) {
    std::string out = "[";
    for (const auto& e : v.get_array()) {
      if (!e.is_string()) return Fail(Error::InvalidArgument("only strings in arrays"));
      out += (out.size() > 1 ? ", " : "") + Quote(e.get_string());
    }
    return out + "]";
  }
  if (v.is_object()) {
    std::string out = "{";
    for (const auto& [k, e] : v.get_object()) {
      if (!e.is_string()) return Fail(Error::InvalidArgument("only strings in tables"));
      out += std::string(out.size() > 1 ? ", " : " ") + Key(k) + " = " + Quote(e.get_string());
    }
    return out + (out.size() > 1 ? " }" : "}");
  }
  return Fail(Error::InvalidArgument("only strings, arrays and tables of strings"));
}

// Byte offsets of each line's start (lines are 1-based in toml++'s positions).
std::vector<size_t> LineStarts(std::string_view text) {
  std::vector<size_t> starts{0, 0};
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\n') starts.push_back(i + 1);
  }
  return starts;
}

// The byte offset of a (line, column) position, columns counted in code points.
size_t Offset(std::string_view text, const std::vector<size_t>& starts, toml::source_position p) {
  if (p.line >= starts.size()) return text.size();
  size_t i = starts[p.line];
  for (uint32_t col = 1; col < p.column && i < text.size() && text[i] != '\n'; ++col) {
    ++i;
    while (i < text.size() && (static_cast<unsigned char>(text[i]) & 0xC0) == 0x80) ++i;
  }
  return i;
}

struct Edit {
  size_t begin, end;
  std::string text;
};

}  // namespace

Result<json::value> ParseTomlText(std::string_view text) {
  toml::parse_result r = toml::parse(text);
  if (!r) {
    const auto& e = r.error();
    std::ostringstream m;
    m << "line " << e.source().begin.line << ", column " << e.source().begin.column << ": "
      << e.description();
    return Fail(Error::InvalidArgument(m.str()));
  }
  return ToJson(r.table());
}

Result<std::string> SetTomlTable(std::string_view text, const std::vector<std::string>& table,
                                 const json::object& entry) {
  toml::parse_result r = toml::parse(text);
  if (!r) return Fail(Error::InvalidArgument("not TOML"));
  toml::node* node = &r.table();
  for (const auto& k : table) {
    toml::table* t = node->as_table();
    node = t ? t->get(k) : nullptr;
    if (node == nullptr) return Fail(Error::NotFound("no table " + k));
  }
  toml::table* target = node->as_table();
  if (target == nullptr) return Fail(Error::InvalidArgument("not a table"));
  const bool inline_table = target->is_inline();
  const auto starts = LineStarts(text);
  std::vector<Edit> edits;
  size_t last_line_end = 0;  // after the table's last key's line
  for (const auto& [k, v] : *target) {
    const size_t b = Offset(text, starts, v.source().begin);
    const size_t e = Offset(text, starts, v.source().end);
    // A sub-table with a header of its own (`[mcp_servers.x.env]`) is not on the table's lines.
    const bool own_section = (v.is_table() && !v.as_table()->is_inline()) || v.is_array_of_tables();
    if (!own_section) {
      const size_t nl = text.find('\n', e);
      last_line_end = std::max(last_line_end, nl == std::string_view::npos ? text.size() : nl + 1);
    }
    const json::value* want = entry.if_contains(k.str());
    if (own_section) {
      if (want == nullptr || ToJson(v) != *want) {
        return Fail(Error::InvalidArgument(std::string(k.str()) + " has a section of its own"));
      }
      continue;
    }
    if (want == nullptr) {
      if (inline_table)
        return Fail(Error::InvalidArgument("cannot remove a key of an inline table"));
      // The whole line of this key (key = value, its comment): `key` starts the line.
      const size_t line = Offset(text, starts, k.source().begin);
      const size_t line_start = text.rfind('\n', line == 0 ? 0 : line - 1);
      const size_t from = line_start == std::string_view::npos || line == 0 ? 0 : line_start + 1;
      const size_t nl = text.find('\n', e);
      edits.push_back({from, nl == std::string_view::npos ? text.size() : nl + 1, ""});
      continue;
    }
    if (ToJson(v) == *want) continue;
    auto lit = Literal(*want);
    if (!lit)
      return Fail(Error::InvalidArgument(std::string(k.str()) + ": " + lit.error().message()));
    edits.push_back({b, e, *lit});
  }
  std::string added;
  for (const auto& [k, v] : entry) {
    if (target->contains(k)) continue;
    if (inline_table) return Fail(Error::InvalidArgument("cannot add a key to an inline table"));
    auto lit = Literal(v);
    if (!lit) return Fail(Error::InvalidArgument(std::string(k) + ": " + lit.error().message()));
    added += Key(k) + " = " + *lit + "\n";
  }
  if (!added.empty()) {
    if (last_line_end == 0) {  // an empty table: after its header line
      const size_t h = Offset(text, starts, target->source().begin);
      const size_t nl = text.find('\n', h);
      last_line_end = nl == std::string_view::npos ? text.size() : nl + 1;
    }
    if (last_line_end == text.size() && !text.empty() && text.back() != '\n') added = "\n" + added;
    edits.push_back({last_line_end, last_line_end, added});
  }
  std::sort(edits.begin(), edits.end(),
            [](const Edit& a, const Edit& b) { return a.begin > b.begin; });
  std::string out(text);
  for (const Edit& e : edits) out.replace(e.begin, e.end - e.begin, e.text);
  return out;
}

}  // namespace tw::app
