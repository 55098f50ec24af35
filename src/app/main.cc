#include <sys/resource.h>

#include "app/cli.h"

int main(int argc, char** argv) {
  // A gateway holds a socket per client connection and per upstream: use every file descriptor
  // the hard limit allows (the soft default, often 1024, caps sessions far too low).
  rlimit nofile{};
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = nofile.rlim_max;
    setrlimit(RLIMIT_NOFILE, &nofile);
  }
  return tw::app::Main(argc, argv);
}
