// `toolwarden state info|backup|restore`: the SQLite state file as a whole.
#pragma once

#include <string>

namespace tw::app {

struct StateFileOptions {
  std::string config;  // -c: the state the serve config names
  std::string state;   // resolved spec (sqlite:PATH, memory, redis://…)
  std::string file;    // backup: where to write; restore: the backup to read
  bool force = false;  // backup: replace `file`
  bool json = false;   // info
};

// `action`: info, backup or restore.
//   backup  copies the file with VACUUM INTO: one read transaction, so the copy is consistent
//           while a gateway keeps writing; written beside FILE, then renamed over it.
//   restore checks the backup (an intact SQLite file with toolwarden's tables, a schema this
//           binary knows), takes the state file's exclusive lock — refused while another process
//           has it open, which is how a running gateway is noticed — keeps the file it replaces
//           as PATH.before-restore-TIME, copies the backup in (SQLite's online backup) and
//           upgrades its schema if it is older.
int StateFileCommand(const std::string& action, const StateFileOptions& options);

}  // namespace tw::app
