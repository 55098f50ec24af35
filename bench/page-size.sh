#!/usr/bin/env bash
# SQLite page size of a new state file, side by side (docs/benchmarks.md, "SQLite page size"):
# `toolwarden run --listen` with the realistic policy and a fresh SQLite state file per run,
# TOOLWARDEN_SQLITE_PAGE_SIZE 4096 / 2048 / 1024, alternating, 3 rounds, closed loop with 8
# connections. One line per run: label, calls/s, p99 µs, gateway CPU seconds per 10k calls.
#   bench/page-size.sh [ROUNDS]
set -euo pipefail
source "$(dirname "$0")/lib.sh"
rounds=${1:-3}
tw=$build/toolwarden
start_fast_http
for round in $(seq 1 "$rounds"); do
  for size in 4096 2048 1024; do
    TOOLWARDEN_SQLITE_PAGE_SIZE=$size start_listen "$tw" "$here/policies/realistic.yaml" "sqlite:$tmp/r$round-$size.db"
    "$loadgen" http --url "$gw_url" -c 8 -d 4 --warmup 1 --pid $gw --label "page-$size" |
      sed -E 's/.*"label":"([^"]+)".*"throughput":([0-9.]+).*"p99_us":([0-9]+).*"pid0_cpu_s_per_10k":([0-9.]+).*/\1 \2 calls\/s p99=\3us cpu_s_per_10k=\4/'
    stop_listen
  done
done
