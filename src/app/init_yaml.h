// The toolwarden.yaml side of `toolwarden init`: each server's block, and merging new servers
// into a file that exists (its text kept as it is).
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace tw::app {

// The YAML block of one server: command, args, policy, and `env` by reference (`${NAME}`).
std::string ServerBlock(const std::string& name, const std::vector<std::string>& argv,
                        const std::string& policy, const std::vector<std::string>& env_names);

// The block of a remote server: url, policy, and each header by its variable
// (`headers: {Authorization: "${GITHUB_AUTHORIZATION}"}`).
std::string RemoteBlock(const std::string& name, const std::string& url, const std::string& policy,
                        const std::vector<std::pair<std::string, std::string>>& header_vars);

// Merges server blocks (name, block) into an existing toolwarden.yaml: the servers it names
// already stay as they are (their names go to `kept`), new ones are appended when `servers:`
// is the file's last top-level key, the text before kept byte for byte. nullopt when the file
// cannot be merged into safely (not YAML, or other keys after `servers:`).
std::optional<std::string> MergeServers(const std::string& existing,
                                        const std::vector<std::pair<std::string, std::string>>& blocks,
                                        std::vector<std::string>& kept);

}  // namespace tw::app
