#!/usr/bin/env bash
# Installs what building and testing toolwarden needs, and nothing that is already there.
#   - Debian packages (apt) for the C++ toolchain and libraries;
#   - npm packages for the end-to-end tests into tests/node/node_modules (never globally),
#     among them playwright-core, which drives Debian's chromium (no browser download);
#   - with --bench: wrk (apt) and the MCP bridges compared in bench/ (npm, into
#     bench/node/node_modules).
# Safe to run repeatedly; `make test` calls it.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  build-essential cmake ninja-build pkg-config ccache
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev libssl-dev
  libyaml-cpp-dev libre2-dev libsqlite3-dev libspdlog-dev libfmt-dev libcli11-dev
  libgtest-dev libgmock-dev libbenchmark-dev libexpected-dev curl
  libtomlplusplus-dev  # Codex's config.toml, read and edited by `init`
  sqlite3  # the end-to-end tests lock the state file the way another process would
  libhiredis-dev redis-server  # shared state on Redis; the tests start a real server
  nginx-light  # the fleet test's load balancer (and the benchmarks' baseline)
  libpq-dev postgresql  # the fleet's shared audit trail; the tests start a real server
  clang libclang-rt-14-dev
  # make package and its test: the man page, a minimal Debian to install into, the unit's
  # check, the shells whose completions are tested
  help2man debootstrap systemd binutils zsh fish
)
# The web console's end-to-end tests drive Debian's chromium with playwright-core.
if [ -z "${1:-}" ]; then APT_PACKAGES+=(chromium); fi

if [ "${1:-}" = "--bench" ]; then APT_PACKAGES+=(wrk); fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ "${1:-}" = "--bench" ]; then
  stamp=bench/node/node_modules/.installed-stamp
  if [ ! -f "$stamp" ] || [ bench/node/package-lock.json -nt "$stamp" ]; then
    echo "install-deps: installing the benchmark's MCP bridges into bench/node/node_modules"
    (cd bench/node && npm ci --no-audit --no-fund --loglevel=error)
    touch "$stamp"
  fi
  exit 0
fi

if [ "${1:-}" != "--no-npm" ]; then
  if ! command -v npm >/dev/null; then
    echo "install-deps: npm is required for the end-to-end tests (Node.js 20 or newer)" >&2
    exit 1
  fi
  stamp=tests/node/node_modules/.installed-stamp
  if [ ! -f "$stamp" ] || [ tests/node/package-lock.json -nt "$stamp" ]; then
    echo "install-deps: installing npm test tools into tests/node/node_modules"
    (cd tests/node && npm ci --no-audit --no-fund --loglevel=error)
    touch "$stamp"
  fi
fi
