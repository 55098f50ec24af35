// `toolwarden demo` and the bundled demo MCP server (`toolwarden demo-server`).
//
// The demo runs the real pipeline: it starts `toolwarden run` as a child process in front of
// `toolwarden demo-server` (another child, over stdio) with an embedded sample policy, plays an
// MCP client against it and prints what the agent sees. Nothing needs to be installed.
#pragma once

#include <string>

namespace tw::app {

// Runs the scripted demo; `self` is the path of this executable. Returns 0 when every step
// was decided as the demo policy says.
int DemoMain(const std::string& self);

// A minimal stdio MCP server with four tools (echo, add, delete_all_files, read_secrets).
int DemoServerMain();

}  // namespace tw::app
