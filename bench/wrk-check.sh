#!/usr/bin/env bash
# Cross-checks loadgen's closed-loop HTTP figures with wrk (bench/wrk-mcp.lua): direct to the
# fast server, and through `toolwarden run --listen` (allow-all), same connections and duration.
#   bench/wrk-check.sh [SECONDS] [CONNECTIONS]
set -euo pipefail
command -v wrk >/dev/null || { echo "wrk is missing (scripts/install-deps.sh --bench)" >&2; exit 2; }
source "$(dirname "$0")/lib.sh"
duration=${1:-3}; connections=${2:-8}
start_fast_http
start_listen "$build/toolwarden" "$here/policies/allow-all.yaml" memory
pids+=("$gw")
for target in "direct http://127.0.0.1:$fast_port/mcp" "tw-allow $gw_url"; do
  set -- $target
  printf '%-9s wrk     ' "$1"; wrk -t2 -c"$connections" -d"${duration}s" -s "$here/wrk-mcp.lua" "$2" | tail -1
  printf '%-9s loadgen ' "$1"; "$build/bench/loadgen" http --url "$2" -c "$connections" -d "$duration" --warmup 0.5 --label "$1" \
    | sed -E 's/.*"throughput":([0-9.]+).*"p50_us":([0-9]+).*"p99_us":([0-9]+).*/requests\/s \1  p50 \2 us  p99 \3 us/'
done
