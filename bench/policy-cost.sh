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
    state=memory; [ "$2" = sqlite ] && state=sqlite:$tmp/$1-$round.db
    start_listen "$build/toolwarden" "$here/policies/$1.yaml" "$state"
    "$loadgen" http --url "$gw_url" -c 8 -d 4 --warmup 1 --pid $gw --label "$1-$2" |
      sed -E 's/.*"label":"([^"]+)".*"throughput":([0-9.]+).*"pid0_cpu_s_per_10k":([0-9.]+).*/\1 \2 calls\/s cpu_s_per_10k=\3/'
    stop_listen
  done
done
