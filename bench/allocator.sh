#!/usr/bin/env bash
# The allocator, side by side (docs/benchmarks.md, "Allocator"): two toolwarden binaries that
# differ only in malloc — glibc's (the default build) and jemalloc's (-DTW_JEMALLOC=ON, needs
# libjemalloc-dev) — on the same fast upstream, alternating, 3 rounds: throughput with the realistic
# policy (closed loop, 8 connections, with CPU and peak RSS), the stdio wrapper, and serve's
# RSS when idle and with 10,000 idle sessions. One JSON line per run.
#   cmake -S . -B build-jemalloc -G Ninja -DCMAKE_BUILD_TYPE=Release -DTW_JEMALLOC=ON && cmake --build build-jemalloc --target toolwarden
#   bench/allocator.sh build/toolwarden build-jemalloc/toolwarden [--rounds 3]
set -euo pipefail
source "$(dirname "$0")/lib.sh"
a=$1 b=$2 rounds=3
[ "${3:-}" = "--rounds" ] && rounds=$4
label() { ldd "$1" | grep -q jemalloc && echo jemalloc || echo glibc; }
start_fast_http
for round in $(seq 1 "$rounds"); do
  order=("$a" "$b"); [ $((round % 2)) = 0 ] && order=("$b" "$a")
  for tw in "${order[@]}"; do
    l=$(label "$tw")
    start_listen "$tw" "$here/policies/realistic.yaml" "sqlite:$tmp/$l-$round.db"
    "$loadgen" http --url "$gw_url" -c 8 -d 3 --warmup 1 --pid $gw --label "realistic-$l"
    stop_listen
    "$loadgen" stdio -c 16 -d 3 --warmup 1 --label "stdio-allow-$l" -- \
      "$tw" --log-level warn run -p "$here/policies/allow-all.yaml" --state memory -- "$fast" stdio
  done
done
for tw in "$a" "$b"; do
  "$here/idle.sh" "$tw" 10000 | sed -E "s/\"label\":\"idle-10000\"/\"label\":\"idle-10k-$(label "$tw")\"/"
done
