#include "catalog/classify.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <unordered_map>

namespace tw::catalog {

namespace {

// Verb lexicons. A word's category is the strongest lexicon it appears in.
constexpr std::string_view kDestructiveVerbs[] = {
    "delete", "remove", "drop", "destroy", "purge", "truncate", "terminate", "wipe", "erase",
    "kill", "revoke", "uninstall", "deprovision", "rm", "unlink", "prune", "discard", "clear",
    "reset", "nuke", "obliterate", "evict", "deactivate", "void", "rmdir", "shred",
    "overwrite", "force"};
constexpr std::string_view kExecuteVerbs[] = {
    "cancel", "generate", "wait", "emulate",
    "run", "execute", "exec", "invoke", "trigger", "retry", "start", "restart", "deploy",
    "launch", "rerun", "eval", "evaluate", "dispatch", "build", "apply", "call", "spawn",
    "shell", "command", "script", "stop", "pause", "resume", "scale", "reboot", "rollback",
    "migrate", "provision", "compile", "test", "simulate", "navigate", "cron", "schedule",
    "enqueue", "replay", "redeploy", "promote", "sync", "backup", "restore"};
constexpr std::string_view kWriteVerbs[] = {
    "click", "press", "type", "hover", "drag", "fill", "select", "scroll", "resize", "handle",
    "manage",
    "create", "update", "add", "set", "edit", "write", "post", "send", "put", "patch", "insert",
    "upload", "comment", "merge", "push", "move", "rename", "modify", "assign", "publish", "fork",
    "commit", "tag", "label", "enable", "disable", "configure", "save", "replace", "append",
    "close", "open", "reply", "submit", "approve", "invite", "import", "upsert", "store",
    "record", "mark", "link", "attach", "share", "star", "subscribe", "unsubscribe", "install",
    "change", "transfer", "convert", "draft", "duplicate", "copy", "clone", "lock",
    "unlock", "archive", "unarchive", "reopen", "resolve", "react", "pin", "unpin", "tweet",
    "message", "notify", "email", "register", "log", "track", "increment", "decrement", "new",
    "make", "init", "initialize", "mutate", "rotate", "grant", "request", "complete", "annotate",
    "rate", "vote", "follow", "unfollow", "block", "mute", "upgrade", "downgrade", "bump",
    "embed", "index", "ingest", "remember", "memorize", "learn", "cognify"};
constexpr std::string_view kReadVerbs[] = {
    "screenshot", "snapshot",
    "get", "list", "read", "search", "find", "fetch", "query", "describe", "show", "view",
    "lookup", "retrieve", "count", "check", "status", "inspect", "download", "export", "browse",
    "explain", "analyze", "analyse", "validate", "preview", "diff", "compare", "watch", "scan",
    "lint", "info", "stat", "stats", "whoami", "ping", "health", "load", "crawl",
    "scrape", "extract", "map", "summarize", "translate", "measure",
    "estimate", "calculate", "compute", "detect", "verify", "discover",
    "identify", "audit", "monitor", "trace", "profile", "aggregate", "report", "recall",
    "lookup", "tail", "logs", "metrics", "history", "details", "echo", "sum",
    "research", "ask", "answer", "chat", "think", "plan", "suggest", "recommend", "visualize",
    "decompile", "disassemble", "capture"};

// Nouns that make a changing call a money-moving one.
constexpr std::string_view kMoney[] = {
    "refund", "refunds", "charge", "charges", "payment", "payments", "pay", "payout", "payouts",
    "withdraw", "withdrawal", "deposit", "purchase", "purchases", "billing", "funds", "money",
    "invoice", "invoices", "subscription", "subscriptions", "credit", "credits", "dispute",
    "disputes", "checkout", "price", "prices",
    "coupon", "coupons", "wallet", "balance", "capture", "payment_link", "bank", "ach", "wire"};

// Phrases in a description that mark an irreversible effect; the first
// kStrongDestructivePhrases are strong enough to count on any changing call.
constexpr std::string_view kDestructivePhrases[] = {
    "permanently", "irreversib", "cannot be undone", "can't be undone", "delete", "deletes",
    "destroy", "wipe", "erase", "drop table", "terminate", "purge"};
constexpr size_t kStrongDestructivePhrases = 4;

enum class Strength { kNone, kRead, kWrite, kExecute, kDestructive };

template <size_t N>
bool In(const std::string_view (&list)[N], std::string_view w) {
  return std::find(std::begin(list), std::end(list), w) != std::end(list);
}

// Strips common English inflections so "deletes", "deleting", "deleted" are "delete".
std::vector<std::string> Stems(const std::string& w) {
  std::vector<std::string> out{w};
  auto add = [&](std::string s) {
    if (s.size() >= 2) out.push_back(std::move(s));
  };
  if (w.ends_with("ies")) add(w.substr(0, w.size() - 3) + "y");
  if (w.ends_with("es")) add(w.substr(0, w.size() - 2));
  if (w.ends_with("s")) add(w.substr(0, w.size() - 1));
  if (w.ends_with("ed")) {
    add(w.substr(0, w.size() - 2));
    add(w.substr(0, w.size() - 1));
  }
  if (w.ends_with("ing")) {
    add(w.substr(0, w.size() - 3));
    add(w.substr(0, w.size() - 3) + "e");
  }
  return out;
}

Strength VerbStrength(const std::string& word) {
  for (const std::string& s : Stems(word)) {
    if (In(kDestructiveVerbs, s)) return Strength::kDestructive;
    if (In(kExecuteVerbs, s)) return Strength::kExecute;
    if (In(kWriteVerbs, s)) return Strength::kWrite;
    if (In(kReadVerbs, s)) return Strength::kRead;
  }
  return Strength::kNone;
}

bool IsMoney(const std::string& word) {
  for (const std::string& s : Stems(word)) {
    if (In(kMoney, s)) return true;
  }
  return false;
}

// Folds confusable characters (Cyrillic, Greek, fullwidth) to ASCII. Sets `folded` if any
// non-ASCII character was seen.
std::string FoldConfusables(std::string_view in, bool& folded) {
  static const std::unordered_map<char32_t, char> kMap = {
      {U'а', 'a'}, {U'е', 'e'}, {U'о', 'o'}, {U'р', 'p'}, {U'с', 'c'}, {U'у', 'y'},
      {U'х', 'x'}, {U'і', 'i'}, {U'ј', 'j'}, {U'ѕ', 's'}, {U'ԁ', 'd'}, {U'ɡ', 'g'},
      {U'ⅼ', 'l'}, {U'ο', 'o'}, {U'α', 'a'}, {U'ε', 'e'}, {U'ι', 'i'}, {U'κ', 'k'},
      {U'ν', 'v'}, {U'ρ', 'p'}, {U'τ', 't'}, {U'υ', 'u'}, {U'χ', 'x'}, {U'ℓ', 'l'},
      {U'Е', 'E'}, {U'А', 'A'}, {U'О', 'O'}, {U'Р', 'P'}, {U'С', 'C'}, {U'Т', 'T'},
  };
  std::string out;
  folded = false;
  for (size_t i = 0; i < in.size();) {
    const unsigned char c = static_cast<unsigned char>(in[i]);
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
      ++i;
      continue;
    }
    folded = true;
    // Decode one UTF-8 sequence.
    int len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    char32_t cp = len == 1 ? c : c & (0x3F >> (len - 1));
    for (int k = 1; k < len && i + k < in.size(); ++k) {
      cp = (cp << 6) | (static_cast<unsigned char>(in[i + k]) & 0x3F);
    }
    i += len;
    if (cp >= 0xFF21 && cp <= 0xFF3A) {
      out.push_back(static_cast<char>('A' + (cp - 0xFF21)));
    } else if (cp >= 0xFF41 && cp <= 0xFF5A) {
      out.push_back(static_cast<char>('a' + (cp - 0xFF41)));
    } else if (auto it = kMap.find(cp); it != kMap.end()) {
      out.push_back(it->second);
    } else {
      out.push_back('?');
    }
  }
  return out;
}

std::vector<std::string> Words(std::string_view text) {
  std::vector<std::string> words;
  std::string cur;
  auto flush = [&] {
    if (!cur.empty()) words.push_back(std::move(cur));
    cur.clear();
  };
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (std::isalnum(static_cast<unsigned char>(c))) {
      // camelCase boundary: a lower-case letter or digit followed by an upper-case one.
      if (std::isupper(static_cast<unsigned char>(c)) && !cur.empty() &&
          (std::islower(static_cast<unsigned char>(cur.back())) ||
           std::isdigit(static_cast<unsigned char>(cur.back())))) {
        flush();
      }
      cur.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    } else {
      flush();
    }
  }
  flush();
  return words;
}

Category FromStrength(Strength s) {
  switch (s) {
    case Strength::kDestructive:
      return Category::kDestructive;
    case Strength::kExecute:
      return Category::kExecute;
    case Strength::kWrite:
      return Category::kWrite;
    default:
      return Category::kRead;
  }
}

Risk BaseRisk(Category c) {
  switch (c) {
    case Category::kRead:
      return Risk::kLow;
    case Category::kWrite:
      return Risk::kMedium;
    case Category::kExecute:
      return Risk::kHigh;
    case Category::kFinancial:
    case Category::kDestructive:
      return Risk::kCritical;
  }
  return Risk::kHigh;
}

Risk Raise(Risk r) { return r == Risk::kCritical ? r : static_cast<Risk>(static_cast<int>(r) + 1); }

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

const json::value* Find(const json::object& o, std::string_view key) { return o.if_contains(key); }

std::optional<bool> Hint(const json::object& tool, std::string_view name) {
  const json::value* a = Find(tool, "annotations");
  if (!a || !a->is_object()) return std::nullopt;
  const json::value* h = a->get_object().if_contains(name);
  if (!h || !h->is_bool()) return std::nullopt;
  return h->get_bool();
}

}  // namespace

std::string_view CategoryName(Category c) {
  switch (c) {
    case Category::kRead:
      return "Read";
    case Category::kWrite:
      return "Write";
    case Category::kExecute:
      return "Execute";
    case Category::kFinancial:
      return "Financial";
    case Category::kDestructive:
      return "Destructive";
  }
  return "?";
}

std::string_view RiskName(Risk r) {
  switch (r) {
    case Risk::kLow:
      return "Low";
    case Risk::kMedium:
      return "Medium";
    case Risk::kHigh:
      return "High";
    case Risk::kCritical:
      return "Critical";
  }
  return "?";
}

std::vector<std::string> NameWords(std::string_view name) { return Words(name); }

std::string FoldName(std::string_view name) {
  bool folded = false;
  std::string out = FoldConfusables(name, folded);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

Classification Classify(const json::object& tool) {
  Classification out;
  auto str = [&](std::string_view key) -> std::string {
    const json::value* v = Find(tool, key);
    return v && v->is_string() ? std::string(v->get_string()) : std::string();
  };
  bool lookalike = false;
  const std::string name = FoldConfusables(str("name"), lookalike);
  const std::string description = Lower(str("description"));
  const std::string title = Lower(str("title"));
  if (lookalike) {
    out.signals.push_back("name \"" + str("name") + "\" has non-ASCII characters (read as \"" +
                          name + "\"): a look-alike of another tool?");
  }

  // 1. The name's verb: the first word that is one; a destructive word anywhere in the name
  //    (delete in "bulk_delete_items") wins over a leading write verb.
  const std::vector<std::string> words = Words(name);
  Strength verb = Strength::kNone;
  std::string verb_word;
  for (const std::string& w : words) {
    Strength s = VerbStrength(w);
    if (s == Strength::kNone) continue;
    if (verb == Strength::kNone) {
      verb = s;
      verb_word = w;
    } else if (s == Strength::kDestructive && verb != Strength::kRead) {
      verb = s;
      verb_word = w;
    }
  }
  std::string source = "name";
  // 2. No verb in the name: the description's first verb ("Retry a failed session…").
  if (verb == Strength::kNone) {
    for (const std::string& w : Words(description.empty() ? title : description)) {
      Strength s = VerbStrength(w);
      if (s != Strength::kNone) {
        verb = s;
        verb_word = w;
        source = "description";
        break;
      }
    }
  }
  Category category = FromStrength(verb);
  if (verb != Strength::kNone) {
    out.signals.push_back(source + " verb \"" + verb_word + "\" → " +
                          std::string(CategoryName(category)));
  }

  // 3. Money: a changing call on money is Financial.
  bool money = std::any_of(words.begin(), words.end(), IsMoney);
  const json::value* schema = Find(tool, "inputSchema");
  const json::object* props = nullptr;
  if (schema && schema->is_object()) {
    if (const json::value* p = schema->get_object().if_contains("properties"); p && p->is_object()) {
      props = &p->get_object();
    }
  }
  const bool amount_field = props && (props->contains("amount") || props->contains("amount_cents"));
  if (amount_field && props->contains("currency")) money = true;
  // Any call about money objects is Financial (reading them too, as the field labels it);
  // only the ones that change something are Critical (below).
  const bool money_read = money && category == Category::kRead && verb != Strength::kNone;
  if (money) {
    category = Category::kFinancial;
    out.signals.push_back(std::string("about money (") +
                          (amount_field ? "amount field" : "money noun in the name") +
                          ") → Financial");
  }

  // 4. The description's wording of irreversible effects: strong phrases ("permanently",
  //    "cannot be undone") on any changing call; plain verbs ("deletes") on writes.
  const bool changing = category == Category::kWrite || category == Category::kExecute ||
                        (category == Category::kRead && verb == Strength::kNone);
  for (size_t i = 0; changing && i < std::size(kDestructivePhrases); ++i) {
    const std::string_view phrase = kDestructivePhrases[i];
    const bool strong = i < kStrongDestructivePhrases;
    if ((strong || category == Category::kWrite) && description.find(phrase) != std::string::npos) {
      category = Category::kDestructive;
      out.signals.push_back("description says \"" + std::string(phrase) + "\" → Destructive");
      break;
    }
  }

  // 5. Annotations: hints, weighed against what the tool is called.
  Risk bump = Risk::kLow;
  const auto read_only = Hint(tool, "readOnlyHint");
  const auto destructive = Hint(tool, "destructiveHint");
  if (read_only && *read_only) {
    if (category == Category::kRead) {
      out.signals.push_back("annotation readOnlyHint agrees");
    } else {
      out.signals.push_back("annotation readOnlyHint claims read-only, but the tool looks " +
                            std::string(CategoryName(category)) + ": not trusted");
      bump = Risk::kMedium;
    }
  } else if (destructive && *destructive && !(read_only && *read_only)) {
    if (category == Category::kRead || category == Category::kWrite ||
        category == Category::kExecute) {
      out.signals.push_back("annotation destructiveHint → Destructive");
      category = Category::kDestructive;
    }
  } else if (read_only && !*read_only && category == Category::kRead && verb == Strength::kNone) {
    out.signals.push_back("annotation readOnlyHint false → Write");
    category = Category::kWrite;
  }
  if (verb == Strength::kNone && out.signals.empty()) {
    out.signals.push_back("no verb recognized; assumed Read");
  }

  // 6. Secrets: a tool that hands out environment variables, credentials or keys is never a
  //    harmless read, whatever else it is.
  static constexpr std::string_view kSecretWords[] = {
      "env",         "environ",  "environment", "secret",   "secrets", "credential",
      "credentials", "password", "passwords",   "passwd",   "token",   "tokens",
      "apikey",      "apikeys"};
  static constexpr std::string_view kSecretPhrases[] = {
      "environment variable", "credential", "secret", "api key", "password", "access token",
      "private key"};
  std::string secret;
  for (const std::string& w : words) {
    if (std::find(std::begin(kSecretWords), std::end(kSecretWords), w) != std::end(kSecretWords)) {
      secret = "name word \"" + w + "\"";
      break;
    }
  }
  for (size_t i = 0; secret.empty() && i < std::size(kSecretPhrases); ++i) {
    if (description.find(kSecretPhrases[i]) != std::string::npos) {
      secret = "description says \"" + std::string(kSecretPhrases[i]) + "\"";
    }
  }

  out.category = category;
  out.risk = money_read ? Risk::kMedium : BaseRisk(category);
  if (!secret.empty()) {
    out.risk = std::max(out.risk, Risk::kHigh);
    out.signals.push_back("reveals secrets (" + secret + ") → High");
  }
  if (category == Category::kWrite && Hint(tool, "openWorldHint").value_or(false)) {
    out.risk = Risk::kHigh;
    out.signals.push_back("annotation openWorldHint: reaches outside systems → High");
  }
  if (bump != Risk::kLow) out.risk = Raise(out.risk);
  if (lookalike) out.risk = std::max(Raise(out.risk), Risk::kHigh);
  return out;
}

Classification Classify(std::string_view name, std::string_view description) {
  json::object tool;
  tool["name"] = name;
  tool["description"] = description;
  return Classify(tool);
}

}  // namespace tw::catalog
