// toolwarden: the composition root. Parses the command line, builds every part, owns them,
// and runs the io_context. Exit codes are documented in the README (kExit* below).
#include <csignal>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <boost/asio.hpp>
#include <spdlog/spdlog.h>

#include "app/commands.h"
#include "common/log.h"

int main(int argc, char** argv) {
  return tw::app::Main(argc, argv);
}
