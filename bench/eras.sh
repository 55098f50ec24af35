#!/usr/bin/env bash
# What a 2026-07-28 call costs against a 2025-era call (docs/benchmarks.md, "Protocol eras"):
# one toolwarden (run --listen, the realistic policy, counters and audit in SQLite) in front of
# bench/fast_server, driven in turn by 2025-era sessions and by 2026-07-28 stateless clients
# (loadgen --era 2026-07-28), alternating every round; CPU seconds of the gateway per 10,000
# calls from /proc, throughput, and the ratio of the medians.
#
#   bench/eras.sh [--rounds N] [--duration S] [--connections C]
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build=${BUILD_DIR:-$root/build}
tw=$build/toolwarden
fast=$build/bench/fast_server
loadgen=$build/bench/loadgen
rounds=5 duration=3 connections=8
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
for bin in "$tw" "$fast" "$loadgen"; do
  [ -x "$bin" ] || { echo "missing $bin: run make first" >&2; exit 2; }
done

tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
wait_for() {  # wait_for FILE REGEX: polls until FILE matches, prints the first match
  local deadline=$((SECONDS + 20))
  while [ $SECONDS -lt $deadline ]; do
    if grep -qaE "$2" "$1" 2>/dev/null; then grep -aoE "$2" "$1" | head -1; return 0; fi
    sleep 0.05
  done
  echo "timed out waiting for $2 in $1" >&2; return 1
}

"$fast" http > "$tmp/fast.out" 2>&1 & pids+=($!)
fast_port=$(wait_for "$tmp/fast.out" 'LISTENING [0-9]+' | cut -d' ' -f2)
"$tw" run --listen 127.0.0.1:0 -p "$here/policies/realistic.yaml" --state "sqlite:$tmp/state.db" \
  --upstream "http://127.0.0.1:$fast_port/mcp" > "$tmp/tw.log" 2>&1 & pids+=($!)
tw_pid=${pids[-1]}
port=$(wait_for "$tmp/tw.log" 'listening on http://127\.0\.0\.1:[0-9]+' | sed -E 's/.*:([0-9]+)$/\1/')
url=http://127.0.0.1:$port/mcp

out=$tmp/runs.jsonl
for ((round = 0; round < rounds; round++)); do
  for era in 2025 2026; do
    [ $((round % 2)) = 1 ] && era=$([ $era = 2025 ] && echo 2026 || echo 2025)
    args=(--url "$url" -c "$connections" -d "$duration" --warmup 1 --pid "$tw_pid" --label "$era")
    [ $era = 2026 ] && args+=(--era 2026-07-28)
    "$loadgen" http "${args[@]}" >> "$out"
  done
done
node - "$out" <<'JS'
const fs = require('fs');
const runs = fs.readFileSync(process.argv[2], 'utf8').trim().split('\n').map((l) => JSON.parse(l));
const med = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
const of = (label, key) => med(runs.filter((r) => r.label === label).map((r) => r[key]));
const errors = runs.reduce((n, r) => n + (r.errors ?? 0), 0);
console.log('| client era | calls/s (median) | gateway CPU s / 10k calls (median) |');
console.log('|---|---:|---:|');
for (const l of ['2025', '2026']) {
  console.log(`| ${l === '2025' ? '2025-era session' : '2026-07-28 stateless'} | ${Math.round(of(l, 'throughput'))} | ${of(l, 'cpu_s_per_10k').toFixed(3)} |`);
}
console.log(`\n2026-07-28 / 2025-era CPU per call: ${(of('2026', 'cpu_s_per_10k') / of('2025', 'cpu_s_per_10k')).toFixed(3)} (target ≤ 1.1); runs: ${runs.length}, errors: ${errors}`);
JS
