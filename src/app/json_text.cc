#include "app/json_text.h"

namespace tw::app {

namespace {

// A scanner over JSON text that knows where each value starts and ends. It trusts the text
// to be valid (ParseJsonText checked it); on anything else it gives up (nullopt).
class Scanner {
 public:
  explicit Scanner(std::string_view text) : t_(text) {}

  std::optional<TextSpan> Find(const std::vector<std::string>& path) {
    Skip();
    size_t depth = 0;
    for (;;) {
      if (depth == path.size()) {
        const size_t begin = i_;
        if (!SkipValue()) return std::nullopt;
        return TextSpan{begin, i_};
      }
      if (!Eat('{')) return std::nullopt;
      bool found = false;
      for (;;) {
        Skip();
        if (Eat('}')) return std::nullopt;
        auto key = ReadString();
        if (!key) return std::nullopt;
        Skip();
        if (!Eat(':')) return std::nullopt;
        Skip();
        if (*key == path[depth]) {
          found = true;
          break;
        }
        if (!SkipValue()) return std::nullopt;
        Skip();
        Eat(',');
      }
      if (!found) return std::nullopt;
      ++depth;
    }
  }

 private:
  bool Eat(char c) {
    if (i_ < t_.size() && t_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  // Whitespace and comments.
  void Skip() {
    for (;;) {
      while (i_ < t_.size() && (t_[i_] == ' ' || t_[i_] == '\t' || t_[i_] == '\n' || t_[i_] == '\r')) ++i_;
      if (t_.substr(i_).starts_with("//")) {
        const size_t nl = t_.find('\n', i_);
        i_ = nl == std::string_view::npos ? t_.size() : nl;
      } else if (t_.substr(i_).starts_with("/*")) {
        const size_t end = t_.find("*/", i_ + 2);
        i_ = end == std::string_view::npos ? t_.size() : end + 2;
      } else {
        return;
      }
    }
  }
  // A string token, decoded.
  std::optional<std::string> ReadString() {
    const size_t begin = i_;
    if (!Eat('"')) return std::nullopt;
    while (i_ < t_.size() && t_[i_] != '"') i_ += t_[i_] == '\\' ? 2 : 1;
    if (!Eat('"')) return std::nullopt;
    boost::system::error_code ec;
    json::value v = json::parse(t_.substr(begin, i_ - begin), ec);
    if (ec || !v.is_string()) return std::nullopt;
    return std::string(v.as_string());
  }
  bool SkipValue() {
    if (i_ >= t_.size()) return false;
    const char c = t_[i_];
    if (c == '"') return ReadString().has_value();
    if (c == '{' || c == '[') {
      const char close = c == '{' ? '}' : ']';
      ++i_;
      for (;;) {
        Skip();
        if (Eat(close)) return true;
        if (c == '{') {
          if (!ReadString()) return false;
          Skip();
          if (!Eat(':')) return false;
          Skip();
        }
        if (!SkipValue()) return false;
        Skip();
        Eat(',');
      }
    }
    // A number, true, false or null.
    const size_t begin = i_;
    while (i_ < t_.size() && t_[i_] != ',' && t_[i_] != '}' && t_[i_] != ']' && t_[i_] != ' ' &&
           t_[i_] != '\n' && t_[i_] != '\r' && t_[i_] != '\t' && t_[i_] != '/') {
      ++i_;
    }
    return i_ > begin;
  }

  std::string_view t_;
  size_t i_ = 0;
};

void Pretty(const json::value& v, std::string& out, const std::string& pad) {
  if (v.is_object() && !v.get_object().empty()) {
    out += "{\n";
    size_t i = 0;
    for (const auto& kv : v.get_object()) {
      out += pad + "  " + json::serialize(json::string(kv.key())) + ": ";
      Pretty(kv.value(), out, pad + "  ");
      out += ++i < v.get_object().size() ? ",\n" : "\n";
    }
    out += pad + "}";
  } else if (v.is_array() && !v.get_array().empty()) {
    out += "[\n";
    size_t i = 0;
    for (const auto& item : v.get_array()) {
      out += pad + "  ";
      Pretty(item, out, pad + "  ");
      out += ++i < v.get_array().size() ? ",\n" : "\n";
    }
    out += pad + "]";
  } else {
    out += json::serialize(v);
  }
}

}  // namespace

Result<json::value> ParseJsonText(std::string_view text) {
  json::parse_options opts;
  opts.allow_comments = true;
  opts.allow_trailing_commas = true;
  boost::system::error_code ec;
  json::value v = json::parse(text, ec, {}, opts);
  if (ec) return Fail(Error::InvalidArgument("not JSON: " + ec.message()));
  return v;
}

std::optional<TextSpan> FindValue(std::string_view text, const std::vector<std::string>& path) {
  return Scanner(text).Find(path);
}

Result<std::string> ReplaceValue(std::string_view text, const std::vector<std::string>& path,
                                 const json::value& value) {
  auto span = FindValue(text, path);
  if (!span) return Fail(Error::NotFound("the entry is not where the file's structure says"));
  // The indentation of the line the value is on.
  const size_t line_start = text.rfind('\n', span->begin == 0 ? 0 : span->begin - 1);
  const size_t from = line_start == std::string_view::npos ? 0 : line_start + 1;
  std::string pad;
  for (size_t i = from; i < text.size() && (text[i] == ' ' || text[i] == '\t'); ++i) pad += text[i];
  std::string rendered;
  Pretty(value, rendered, pad);
  std::string out(text.substr(0, span->begin));
  out += rendered;
  out += text.substr(span->end);
  return out;
}

std::string PrettyJson(const json::value& v, const std::string& pad) {
  std::string out;
  Pretty(v, out, pad);
  return out;
}

std::vector<std::string> PointerKeys(std::string_view pointer) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < pointer.size() && pointer[i] == '/') {
    const size_t next = pointer.find('/', i + 1);
    std::string_view raw = pointer.substr(i + 1, next == std::string_view::npos ? std::string_view::npos
                                                                                 : next - i - 1);
    std::string key;
    for (size_t j = 0; j < raw.size(); ++j) {
      if (raw[j] == '~' && j + 1 < raw.size()) {
        key += raw[j + 1] == '1' ? '/' : '~';
        ++j;
      } else {
        key += raw[j];
      }
    }
    out.push_back(std::move(key));
    if (next == std::string_view::npos) break;
    i = next;
  }
  return out;
}

}  // namespace tw::app
