#include "catalog/redact.h"

#include <algorithm>

#include "catalog/classify.h"

namespace tw::catalog {

namespace json = boost::json;

std::optional<ArgumentsKept> ParseArgumentsKept(std::string_view text) {
  if (text == "none") return ArgumentsKept::kNone;
  if (text == "redacted") return ArgumentsKept::kRedacted;
  if (text == "full") return ArgumentsKept::kFull;
  return std::nullopt;
}

namespace {

bool HasSecretWords(const std::vector<std::string>& words) {
  static constexpr std::string_view kWords[] = {
      "password", "passwords", "passwd",     "passphrase", "pwd",         "secret",
      "secrets",  "token",     "apikey",     "apikeys",    "credential",  "credentials",
      "authorization", "auth", "cookie",     "cookies",    "privatekey",  "ssn",
      "otp",      "pin",       "cvv",        "cvc"};
  for (size_t i = 0; i < words.size(); ++i) {
    const std::string& w = words[i];
    if (std::find(std::begin(kWords), std::end(kWords), w) != std::end(kWords)) return true;
    // Two words that name one secret: "api key", "private key", "access key", "client secret".
    if (w == "key" && i > 0 &&
        (words[i - 1] == "api" || words[i - 1] == "private" || words[i - 1] == "access" ||
         words[i - 1] == "secret" || words[i - 1] == "signing")) {
      return true;
    }
  }
  return false;
}

// False only when `key` cannot name a secret: ASCII and none of the secret words' stems in it
// (case aside). Allocates nothing, so the usual key of every call costs a scan, not the words.
bool MaybeSensitive(std::string_view key) {
  char lower[64];
  if (key.size() > sizeof lower) return true;
  for (size_t i = 0; i < key.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(key[i]);
    if (c >= 0x80) return true;  // look-alike letters: the full reading decides
    lower[i] = static_cast<char>(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
  }
  const std::string_view k(lower, key.size());
  static constexpr std::string_view kStems[] = {"pass", "pwd", "secret", "token", "key", "auth",
                                                "cookie", "credential", "ssn", "otp", "pin", "cvv",
                                                "cvc"};
  for (std::string_view stem : kStems) {
    if (k.find(stem) != std::string_view::npos) return true;
  }
  return false;
}

}  // namespace

bool IsSensitiveName(std::string_view key) {
  if (!MaybeSensitive(key)) return false;
  // As written (camelCase splits "clientSecret"), and with look-alike letters folded
  // ("pаssword" with a Cyrillic а is still a password).
  return HasSecretWords(NameWords(key)) || HasSecretWords(NameWords(FoldName(key)));
}

Result<ArgumentRedactor> ArgumentRedactor::Make(ArgumentsKept kept,
                                                const std::vector<std::string>& paths) {
  ArgumentRedactor r;
  r.kept_ = kept;
  for (const std::string& text : paths) {
    std::vector<std::string> segments;
    size_t start = 0;
    for (;;) {
      const size_t dot = text.find('.', start);
      segments.push_back(text.substr(start, dot == std::string::npos ? dot : dot - start));
      if (dot == std::string::npos) break;
      start = dot + 1;
    }
    const bool empty_segment = std::any_of(segments.begin(), segments.end(),
                                           [](const std::string& s) { return s.empty(); });
    if (segments.size() < 2 || segments.front() != "args" || empty_segment) {
      return Fail(Error::InvalidArgument("\"" + text +
                                         "\" is not an argument path (examples: args.password, "
                                         "args.*.token)"));
    }
    segments.erase(segments.begin());
    r.paths_.push_back(std::move(segments));
  }
  return r;
}

template <typename Object, typename At>
bool ArgumentRedactor::ForEachToRedact(Object& o, Path& path, const At& at) const {
  for (auto& [key, value] : o) {
    path.push_back(std::string_view(key.data(), key.size()));
    bool go_on = true;
    if (IsSensitiveName(path.back()) || PathListed(path)) {
      go_on = at(value);
    } else if (value.is_object() || value.is_array()) {
      using Value = std::remove_reference_t<decltype(value)>;
      std::vector<Value*> pending{&value};
      while (go_on && !pending.empty()) {
        Value* v = pending.back();
        pending.pop_back();
        if (v->is_object()) {
          go_on = ForEachToRedact(v->get_object(), path, at);
        } else if (v->is_array()) {
          for (auto& e : v->get_array()) pending.push_back(&e);
        }
      }
    }
    path.pop_back();
    if (!go_on) return false;
  }
  return true;
}

std::optional<json::value> ArgumentRedactor::Keep(const json::object& args) const {
  if (kept_ == ArgumentsKept::kNone) return std::nullopt;
  json::object copy = args;
  if (kept_ == ArgumentsKept::kRedacted) {
    Path path;
    ForEachToRedact(copy, path, [](json::value& v) {
      v = json::string(kRedacted);
      return true;
    });
  }
  return json::value(std::move(copy));
}

bool ArgumentRedactor::KeepsWhole(const json::object& args) const {
  if (kept_ == ArgumentsKept::kFull) return true;
  if (kept_ == ArgumentsKept::kNone) return false;
  Path path;
  return ForEachToRedact(args, path, [](const json::value&) { return false; });
}

bool ArgumentRedactor::PathListed(const Path& path) const {
  if (paths_.empty()) return false;
  return std::any_of(paths_.begin(), paths_.end(), [&](const std::vector<std::string>& p) {
    if (p.size() != path.size()) return false;
    for (size_t i = 0; i < p.size(); ++i) {
      if (p[i] != "*" && p[i] != path[i]) return false;
    }
    return true;
  });
}

}  // namespace tw::catalog
