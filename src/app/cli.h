// The toolwarden command line. Main() returns the process exit code (app/cli_common.h).
#pragma once

namespace tw::app {

int Main(int argc, char** argv);

}  // namespace tw::app
