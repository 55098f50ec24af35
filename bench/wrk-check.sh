#!/usr/bin/env bash
# Cross-checks loadgen's closed-loop HTTP figures with wrk (bench/wrk-mcp.lua): direct to the
# fast server, and through `toolwarden run --listen` (allow-all), same connections and duration.
#   bench/wrk-check.sh [SECONDS] [CONNECTIONS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd); root=$(cd "$here/.." && pwd); build=${BUILD_DIR:-$root/build}
duration=${1:-3}; connections=${2:-8}
command -v wrk >/dev/null || { echo "wrk is missing (scripts/install-deps.sh --bench)" >&2; exit 2; }
tmp=$(mktemp -d); pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
"$build/bench/fast_server" http > "$tmp/fast.out" 2>&1 & pids+=($!)
until grep -q LISTENING "$tmp/fast.out"; do sleep 0.01; done
fast=$(grep -oE '[0-9]+' "$tmp/fast.out" | head -1)
port=$("$build/bench/loadgen" freeport)
"$build/toolwarden" --log-level warn run --listen 127.0.0.1:$port -p "$here/policies/allow-all.yaml" \
  --state memory --upstream "http://127.0.0.1:$fast/mcp" & pids+=($!)
until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do sleep 0.01; done
for target in "direct http://127.0.0.1:$fast/mcp" "tw-allow http://127.0.0.1:$port/mcp"; do
  set -- $target
  printf '%-9s wrk     ' "$1"; wrk -t2 -c"$connections" -d"${duration}s" -s "$here/wrk-mcp.lua" "$2" | tail -1
  printf '%-9s loadgen ' "$1"; "$build/bench/loadgen" http --url "$2" -c "$connections" -d "$duration" --warmup 0.5 --label "$1" \
    | sed -E 's/.*"throughput":([0-9.]+).*"p50_us":([0-9]+).*"p99_us":([0-9]+).*/requests\/s \1  p50 \2 us  p99 \3 us/'
done
