#!/usr/bin/env bash
# A self-contained benchmark bundle: bench/loops.sh with everything it runs — the Release
# toolwarden, fast_server and loadgen, nginx, every shared library they load and the dynamic
# loader they are run through — so it runs on any x86-64 Linux without installing anything.
#
#   bench/bundle.sh [OUT.tar.gz]          (default build/toolwarden-bench.tar.gz; needs `make`)
#   tar xzf toolwarden-bench.tar.gz && toolwarden-bench/run.sh [loops.sh options]
#
# run.sh writes the results (JSON lines) and prints the table when node is there to make it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd); root=$(cd "$here/.." && pwd)
build=${BUILD_DIR:-$root/build}
out=${1:-$build/toolwarden-bench.tar.gz}
for bin in "$build/toolwarden" "$build/bench/fast_server" "$build/bench/loadgen"; do
  [ -x "$bin" ] || { echo "missing $bin: run make first" >&2; exit 2; }
done
nginx_bin=$(command -v nginx || true)
[ -n "$nginx_bin" ] || nginx_bin=/usr/sbin/nginx
[ -x "$nginx_bin" ] || { echo "nginx is missing (scripts/install-deps.sh --bench)" >&2; exit 2; }

stage=$(mktemp -d); trap 'rm -rf "$stage"' EXIT
b=$stage/toolwarden-bench
mkdir -p "$b/real" "$b/lib" "$b/build/bench" "$b/bin" "$b/bench/results"
cp "$build/toolwarden" "$b/real/toolwarden"
cp "$build/bench/fast_server" "$build/bench/loadgen" "$b/real/"
cp "$nginx_bin" "$b/real/nginx"
loader=""
for exe in "$b"/real/*; do
  while read -r lib; do
    [ -f "$lib" ] || continue
    cp -L -n "$lib" "$b/lib/"
    case "$lib" in */ld-linux*) loader=$(basename "$lib") ;; esac
  done < <(ldd "$exe" | grep -oE '/[^ ]+')
done
[ -n "$loader" ] || { echo "no dynamic loader found in ldd's output" >&2; exit 2; }

# Each program runs through the bundled loader with the bundled libraries only.
wrap() {  # wrap NAME DEST PATH-FROM-DEST-TO-THE-BUNDLE
  cat > "$2" <<WRAP
#!/bin/sh
d=\$(cd "\$(dirname "\$0")/$3" && pwd)
exec "\$d/lib/$loader" --library-path "\$d/lib" "\$d/real/$1" "\$@"
WRAP
  chmod +x "$2"
}
wrap toolwarden "$b/build/toolwarden" ..
wrap fast_server "$b/build/bench/fast_server" ../..
wrap loadgen "$b/build/bench/loadgen" ../..
wrap nginx "$b/bin/nginx" ..

cp "$here/loops.sh" "$here/lib.sh" "$here/summarize.mjs" "$b/bench/"
cp -r "$here/policies" "$b/bench/"
cat > "$b/run.sh" <<'RUN'
#!/bin/sh
# Runs bench/loops.sh with the bundled programs (arguments go to it).
d=$(cd "$(dirname "$0")" && pwd)
echo "machine: $(nproc) cores available, $(uname -m), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)" >&2
PATH="$d/bin:$PATH" BUILD_DIR="$d/build" SUMMARIZE_OPTIONAL=1 exec bash "$d/bench/loops.sh" "$@"
RUN
chmod +x "$b/run.sh"
git -C "$root" rev-parse --short HEAD > "$b/COMMIT" 2>/dev/null || true
tar czf "$out" -C "$stage" toolwarden-bench
echo "$out ($(du -h "$out" | cut -f1)): tar xzf it anywhere, then toolwarden-bench/run.sh" >&2
