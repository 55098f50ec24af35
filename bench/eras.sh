#!/usr/bin/env bash
# What a 2026-07-28 call costs against a 2025-era call (docs/benchmarks.md, "Protocol eras"):
# one toolwarden (run --listen, the realistic policy, counters and audit in SQLite) in front of
# bench/fast_server, driven in turn by 2025-era sessions and by 2026-07-28 stateless clients
# (loadgen --era 2026-07-28), alternating every round; CPU seconds of the gateway per 10,000
# calls from /proc, throughput, and the ratio of the medians.
#
#   bench/eras.sh [--rounds N] [--duration S] [--connections C]
set -euo pipefail

source "$(dirname "$0")/lib.sh"
tw=$build/toolwarden
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

start_fast_http
start_listen "$tw" "$here/policies/realistic.yaml" "sqlite:$tmp/state.db"
pids+=("$gw")
tw_pid=$gw url=$gw_url

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
