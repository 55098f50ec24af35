#!/usr/bin/env bash
# SQLite page size of a new state file, side by side (docs/benchmarks.md, "SQLite page size"):
# `toolwarden run --listen` with the realistic policy and a fresh SQLite state file per run,
# TOOLWARDEN_SQLITE_PAGE_SIZE 4096 / 2048 / 1024, alternating, 3 rounds, closed loop with 8
# connections. One line per run: label, calls/s, p99 µs, gateway CPU seconds per 10k calls.
#   bench/page-size.sh [ROUNDS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd); root=$(cd "$here/.." && pwd); build=${BUILD_DIR:-$root/build}
rounds=${1:-3}
loadgen=$build/bench/loadgen fast=$build/bench/fast_server tw=$build/toolwarden
tmp=$(mktemp -d); pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
"$fast" http > "$tmp/fast.out" 2>&1 & pids+=($!)
until grep -q LISTENING "$tmp/fast.out"; do sleep 0.01; done
fast_port=$(grep -oE '[0-9]+' "$tmp/fast.out" | head -1)
for round in $(seq 1 "$rounds"); do
  for size in 4096 2048 1024; do
    port=$("$loadgen" freeport)
    TOOLWARDEN_SQLITE_PAGE_SIZE=$size "$tw" --log-level warn run --listen 127.0.0.1:$port \
      -p "$here/policies/realistic.yaml" --state "sqlite:$tmp/r$round-$size.db" \
      --upstream "http://127.0.0.1:$fast_port/mcp" > /dev/null 2>&1 & gw=$!
    until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do sleep 0.05; done
    "$loadgen" http --url "http://127.0.0.1:$port/mcp" -c 8 -d 4 --warmup 1 --pid $gw --label "page-$size" |
      sed -E 's/.*"label":"([^"]+)".*"throughput":([0-9.]+).*"p99_us":([0-9]+).*"pid0_cpu_s_per_10k":([0-9.]+).*/\1 \2 calls\/s p99=\3us cpu_s_per_10k=\4/'
    kill $gw; wait $gw 2>/dev/null || true
  done
done
