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
    l=$(label "$tw"); port=$("$loadgen" freeport)
    "$tw" --log-level warn run --listen 127.0.0.1:$port -p "$here/policies/realistic.yaml" \
      --state "sqlite:$tmp/$l-$round.db" --upstream "http://127.0.0.1:$fast_port/mcp" > /dev/null 2>&1 & gw=$!
    wait_http "$port"
    "$loadgen" http --url "http://127.0.0.1:$port/mcp" -c 8 -d 3 --warmup 1 --pid $gw --label "realistic-$l"
    kill $gw; wait $gw 2>/dev/null || true
    "$loadgen" stdio -c 16 -d 3 --warmup 1 --label "stdio-allow-$l" -- \
      "$tw" --log-level warn run -p "$here/policies/allow-all.yaml" --state memory -- "$fast" stdio
  done
done
for tw in "$a" "$b"; do
  "$here/idle.sh" "$tw" 10000 | sed -E "s/\"label\":\"idle-10000\"/\"label\":\"idle-10k-$(label "$tw")\"/"
done
