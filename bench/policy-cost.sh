#!/usr/bin/env bash
# What the policy and counters cost, apart from the durable state itself: `run --listen` with
# the allow-all policy and state in memory, allow-all with a SQLite state file (audit in it),
# and the realistic policy with a SQLite state file; alternating, 3 rounds, 8 connections.
#   bench/policy-cost.sh [ROUNDS]
set -euo pipefail
source "$(dirname "$0")/lib.sh"
rounds=${1:-3}
start_fast_http
for round in $(seq 1 "$rounds"); do
  for cfg in "allow-all memory" "allow-all sqlite" "realistic sqlite"; do
    set -- $cfg
    port=$("$loadgen" freeport)
    state=memory; [ "$2" = sqlite ] && state=sqlite:$tmp/$1-$round.db
    "$build/toolwarden" --log-level warn run --listen 127.0.0.1:$port -p "$here/policies/$1.yaml" \
      --state "$state" --upstream "http://127.0.0.1:$fast_port/mcp" > /dev/null 2>&1 & gw=$!
    wait_http "$port"
    "$loadgen" http --url "http://127.0.0.1:$port/mcp" -c 8 -d 4 --warmup 1 --pid $gw --label "$1-$2" |
      sed -E 's/.*"label":"([^"]+)".*"throughput":([0-9.]+).*"pid0_cpu_s_per_10k":([0-9.]+).*/\1 \2 calls\/s cpu_s_per_10k=\3/'
    kill $gw; wait $gw 2>/dev/null || true
  done
done
