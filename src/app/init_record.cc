#include "app/init_record.h"

#include <fstream>
#include <ostream>
#include <sstream>

#include "app/init_clients.h"
#include "app/json_text.h"
#include "common/canonical_json.h"

namespace tw::app {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kBackupSuffix = ".toolwarden-backup";
constexpr std::string_view kRecordSuffix = ".toolwarden-init.json";

// An entry as it may be shown: its env and header values replaced (they are secrets).
json::value Redacted(const json::value& entry) {
  json::value out = entry;
  if (json::object* o = out.if_object()) {
    for (const char* key : {"env", "headers"}) {
      if (json::value* m = o->if_contains(key); m && m->is_object()) {
        for (auto& kv : m->as_object()) kv.value() = "…";
      }
    }
  }
  return out;
}

// A remote server's entry as it was before `init` wrapped it (init_clients.h, WrapRemote): its
// url and type back, each header's value taken back from the variable it was moved to.
void RestoreRemote(json::object& entry, const json::object& before) {
  // Worked out first, written after (erasing keys moves an object's values).
  json::object env;
  if (const json::value* e = entry.if_contains("env"); e && e->is_object()) env = e->as_object();
  json::object headers;
  if (const json::value* refs = before.if_contains("headers"); refs && refs->is_object()) {
    for (const auto& kv : refs->as_object()) {
      const std::string ref = kv.value().is_string() ? std::string(kv.value().as_string()) : "";
      const std::string var(ref.size() > 3 ? ref.substr(2, ref.size() - 3) : "");
      if (const json::value* v = env.if_contains(var)) headers[kv.key()] = *v;
    }
  }
  if (const json::value* added = before.if_contains("env_added"); added && added->is_array()) {
    for (const auto& var : added->as_array()) {
      if (var.is_string()) env.erase(var.as_string());
    }
  }
  entry.erase("command");
  entry.erase("args");
  entry.erase("env");
  const json::value* key = before.if_contains("url_key");
  entry[key && key->is_string() ? std::string(key->get_string()) : std::string("url")] = before.at("url");
  if (const json::value* type = before.if_contains("type"); type && !type->is_null()) {
    entry["type"] = *type;
  } else {
    entry.erase("type");
  }
  if (!headers.empty()) entry["headers"] = std::move(headers);
  if (!env.empty()) entry["env"] = std::move(env);
}

}  // namespace

Result<std::string> ReadText(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return Fail(Error::NotFound("cannot read " + p.string()));
  std::stringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

fs::path RecordPath(const fs::path& config) { return config.string() + std::string(kRecordSuffix); }
fs::path BackupPath(const fs::path& config) { return config.string() + std::string(kBackupSuffix); }

Result<void> WriteAtomically(const fs::path& p, const std::string& text) {
  const fs::path tmp = p.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out) return Fail(Error::Unavailable("cannot write " + tmp.string()));
  }
  std::error_code ec;
  fs::permissions(tmp, fs::status(p, ec).permissions(), ec);  // keep a private file private
  fs::rename(tmp, p, ec);
  if (ec) return Fail(Error::Unavailable("cannot replace " + p.string() + ": " + ec.message()));
  return {};
}

Result<InitRecord> ReadRecord(const fs::path& config) {
  InitRecord record;
  const fs::path p = RecordPath(config);
  if (!fs::exists(p)) return record;
  auto text = ReadText(p);
  if (!text) return Fail(text.error());
  boost::system::error_code ec;
  json::value v = json::parse(*text, ec);
  const json::object* o = ec ? nullptr : v.if_object();
  if (!o) return Fail(Error::InvalidArgument(p.string() + ": not a record of toolwarden init"));
  if (const json::value* s = o->if_contains("written_sha256"); s && s->is_string()) {
    record.written_sha256 = std::string(s->as_string());
  }
  if (const json::value* list = o->if_contains("changes"); list && list->is_array()) {
    for (const json::value& c : list->as_array()) {
      const json::object* e = c.if_object();
      if (!e || !e->contains("map") || !e->contains("name")) continue;
      record.changes.push_back({std::string(e->at("map").as_string()),
                                std::string(e->at("name").as_string()),
                                e->contains("before") ? e->at("before") : json::value(),
                                e->contains("after") ? e->at("after") : json::value()});
    }
  }
  return record;
}

Result<void> WriteRecord(const fs::path& config, const InitRecord& record) {
  json::array changes;
  for (const InitChange& c : record.changes) {
    changes.push_back(json::object{
        {"map", c.map}, {"name", c.name}, {"before", c.before}, {"after", c.after}});
  }
  const fs::path path = RecordPath(config);
  auto w = WriteAtomically(
      path,
      PrettyJson(json::object{{"written_sha256", record.written_sha256}, {"changes", changes}}) + "\n");
  if (!w) return w;
  // As private as the configuration it describes (its arguments may hold a secret).
  std::error_code ec;
  fs::permissions(path, fs::status(config, ec).permissions(), ec);
  return {};
}

void Remember(InitRecord& record, InitChange change) {
  for (InitChange& c : record.changes) {
    if (c.map == change.map && c.name == change.name) {
      c.after = std::move(change.after);  // the first `before` is the original
      return;
    }
  }
  record.changes.push_back(std::move(change));
}

Result<bool> UndoChanges(const fs::path& config, std::ostream& out) {
  auto record = ReadRecord(config);
  if (!record) return Fail(record.error());
  const fs::path backup = BackupPath(config);
  auto text = ReadText(config);
  if (!text) return Fail(text.error());
  std::error_code ec;
  if (!record->written_sha256.empty() && Sha256Hex(*text) == record->written_sha256 &&
      fs::exists(backup)) {
    // Nothing changed since init wrote it: the original, byte for byte.
    fs::rename(backup, config, ec);
    if (ec) return Fail(Error::Unavailable("cannot restore " + config.string() + ": " + ec.message()));
    fs::remove(RecordPath(config), ec);
    out << "restored " << config.string() << " from its backup\n";
    return true;
  }
  if (record->changes.empty()) {
    if (!fs::exists(backup)) return true;
    // A backup without a record (an older init): nothing says what it changed.
    out << config.string() << ": changed since toolwarden init wrote it, and there is no record of "
           "what init changed; its backup is " << backup.string() << "\n";
    return false;
  }
  auto parsed = ParseConfigText(config, *text);
  if (!parsed || !parsed->is_object()) {
    return Fail(Error::InvalidArgument(config.string() + (IsToml(config) ? ": not TOML" : ": not a JSON object")));
  }
  json::value current = std::move(*parsed);
  std::string edited = *text;  // reverted entry by entry: comments and formatting elsewhere stay
  std::vector<InitChange> left;
  size_t reverted = 0;
  for (InitChange& c : record->changes) {
    boost::system::error_code jec;
    json::value* map = current.find_pointer(c.map, jec);
    json::object* servers = map ? map->if_object() : nullptr;
    json::value* entry = servers ? servers->if_contains(c.name) : nullptr;
    if (!entry) {
      out << "  " << c.name << ": removed since; nothing to undo\n";
      continue;
    }
    json::object* e = entry->if_object();
    auto field = [](const json::object* o, std::string_view k) {
      const json::value* v = o ? o->if_contains(k) : nullptr;
      return v ? *v : json::value();
    };
    const json::object* after = c.after.if_object();
    if (!e || field(e, "command") != field(after, "command") ||
        field(e, "args") != field(after, "args")) {
      out << "  " << c.name << ": changed since toolwarden init rewrote it; left as it is\n"
          << "    init wrote: " << json::serialize(Redacted(c.after)) << "\n"
          << "    now:        " << json::serialize(Redacted(*entry)) << "\n"
          << "    before:     " << json::serialize(Redacted(c.before)) << "\n";
      left.push_back(std::move(c));
      continue;
    }
    // What init changed — the command and its arguments — goes back; the rest of the entry
    // (its env, whatever the client added) stays as it is now.
    const json::object* before = c.before.if_object();
    if (json::value url = field(before, "url"); url.is_string()) {
      RestoreRemote(*e, *before);
    } else {
      (*e)["command"] = field(before, "command");
      if (json::value args = field(before, "args"); args.is_null()) {
        e->erase("args");
      } else {
        (*e)["args"] = std::move(args);
      }
    }
    std::vector<std::string> path = PointerKeys(c.map);
    path.push_back(c.name);
    auto next = ReplaceEntry(config, edited, path, *entry);
    if (!next) return Fail(Error::Unavailable(config.string() + ": " + next.error().message()));
    edited = std::move(*next);
    ++reverted;
    out << "  " << c.name << ": restored\n";
  }
  if (reverted) {
    if (auto check = ParseConfigText(config, edited); !check || *check != current) {
      return Fail(Error::Unavailable(config.string() +
                                     ": the reverted text does not read back as intended; left as it is"));
    }
    if (auto w = WriteAtomically(config, edited); !w) return Fail(w.error());
    out << "reverted " << reverted << " server" << (reverted == 1 ? "" : "s") << " in "
        << config.string() << "; every other edit is kept\n";
  }
  if (left.empty()) {
    fs::remove(RecordPath(config), ec);
    fs::remove(backup, ec);
    return true;
  }
  record->changes = std::move(left);
  record->written_sha256.clear();
  if (auto w = WriteRecord(config, *record); !w) return Fail(w.error());
  return false;
}

}  // namespace tw::app
