// What `toolwarden init --apply` changed in one client configuration, kept beside it
// (`<file>.toolwarden-init.json`), so that `--undo` reverts exactly that: each server entry it
// rewrote goes back to what it was, every other edit made since (a server the client added,
// settings it wrote) stays, and an entry changed again since is left alone and shown.
//
// The record holds what init changed in each entry — its `command` and `args`, before and
// after (nothing else: no env value is copied into it) —, where the entry is (the server map's
// JSON pointer and the server's name), and the SHA-256 of the file as `init` wrote it: a file
// nobody touched since is restored from its byte-for-byte backup instead. It is as private as
// the configuration.
#pragma once

#include <boost/json.hpp>
#include <filesystem>
#include <string>
#include <vector>

#include "common/result.h"

namespace tw::app {

namespace json = boost::json;

struct InitChange {
  std::string map;   // JSON pointer of the server map ("/mcpServers", "/projects/~1p/mcpServers")
  std::string name;  // the server's key in it
  json::value before;  // {"command", "args"} (args absent: null)
  json::value after;
};

struct InitRecord {
  std::string written_sha256;  // of the file as init last wrote it
  std::vector<InitChange> changes;
};

std::filesystem::path RecordPath(const std::filesystem::path& config);
std::filesystem::path BackupPath(const std::filesystem::path& config);

// The record beside `config` (an empty one when there is none).
Result<InitRecord> ReadRecord(const std::filesystem::path& config);
Result<void> WriteRecord(const std::filesystem::path& config, const InitRecord& record);
// Adds `change`; a second apply to the same entry keeps the first `before`.
void Remember(InitRecord& record, InitChange change);

// Reverts what the record says in `config`; prints what it did (and a diff for an entry it
// leaves alone) to `out`. Returns whether every change was resolved (then the record and the
// backup are gone).
Result<bool> UndoChanges(const std::filesystem::path& config, std::ostream& out);

// The whole of a file.
Result<std::string> ReadText(const std::filesystem::path& p);
// Writes `text` to `p` through a temporary file and a rename, keeping `p`'s permissions.
Result<void> WriteAtomically(const std::filesystem::path& p, const std::string& text);

}  // namespace tw::app
