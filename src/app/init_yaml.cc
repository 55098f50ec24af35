#include "app/init_yaml.h"

#include <yaml-cpp/yaml.h>

#include <boost/json.hpp>
#include <set>
#include <sstream>

namespace tw::app {

namespace json = boost::json;

std::string ServerBlock(const std::string& name, const std::vector<std::string>& argv,
                        const std::string& policy, const std::vector<std::string>& env_names) {
  std::string out = "  " + json::serialize(json::string(name)) + ":\n    command: " +
                    json::serialize(json::string(argv.at(0))) + "\n    args: " +
                    json::serialize(json::value_from(std::vector<std::string>(argv.begin() + 1, argv.end()))) +
                    "\n    policy: " + json::serialize(json::string(policy)) + "\n";
  if (!env_names.empty()) {
    // By reference: `serve` starts servers with none of its own environment but what `env:`
    // and `inherit_env:` name, and secrets do not belong in this file.
    out += "    env:\n";
    for (const auto& key : env_names) out += "      " + key + ": \"${" + key + "}\"\n";
  }
  return out;
}

std::optional<std::string> MergeServers(const std::string& existing,
                                        const std::vector<std::pair<std::string, std::string>>& blocks,
                                        std::vector<std::string>& kept) {
  YAML::Node root;
  try {
    root = YAML::Load(existing);
  } catch (const YAML::Exception&) {
    return std::nullopt;
  }
  std::set<std::string> present;
  if (root.IsMap() && root["servers"] && root["servers"].IsMap()) {
    for (auto it = root["servers"].begin(); it != root["servers"].end(); ++it) {
      present.insert(it->first.Scalar());
    }
  }
  std::string last_key;
  std::istringstream lines(existing);
  for (std::string line; std::getline(lines, line);) {
    if (!line.empty() && line[0] != ' ' && line[0] != '#' && line.find(':') != std::string::npos) {
      last_key = line.substr(0, line.find(':'));
    }
  }
  std::string out = existing;
  bool added = false;
  for (const auto& [name, block] : blocks) {
    if (present.contains(name)) {
      kept.push_back(name);
      continue;
    }
    if (last_key != "servers") return std::nullopt;
    if (!out.empty() && out.back() != '\n') out += '\n';
    if (present.empty() && !added && root["servers"] && !root["servers"].IsMap()) return std::nullopt;
    out += block;
    added = true;
  }
  return out;
}

std::string RemoteBlock(const std::string& name, const std::string& url, const std::string& policy,
                        const std::vector<std::pair<std::string, std::string>>& header_vars) {
  std::string out = "  " + json::serialize(json::string(name)) + ":\n    url: " +
                    json::serialize(json::string(url)) + "\n    policy: " +
                    json::serialize(json::string(policy)) + "\n";
  if (!header_vars.empty()) {
    out += "    headers:\n";
    for (const auto& [header, var] : header_vars) {
      out += "      " + json::serialize(json::string(header)) + ": \"${" + var + "}\"\n";
    }
  }
  return out;
}

}  // namespace tw::app
