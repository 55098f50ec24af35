#!/usr/bin/env bash
# Instructions per allowed call (docs/benchmarks.md: a change may add at most 2 %), counted by callgrind on the gateway process — this machine has no hardware
# counters for `perf stat`. Instrumentation is switched on after start-up and warm-up, a fixed
# load runs through the gateway, and the instructions counted are divided by the calls answered.
# Deterministic enough to compare commits; the absolute figure includes the kernel's share
# only as far as user space pays for system calls.
#   bench/instructions.sh [SECONDS]
# TOOLWARDEN=path measures another build of the gateway (e.g. the commit before) with this
# build's upstream and load generator; RUN_ARGS adds flags to its `run` (e.g.
# RUN_ARGS=--audit-arguments=none).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd); root=$(cd "$here/.." && pwd); build=${BUILD_DIR:-$root/build}
duration=${1:-5}
command -v valgrind >/dev/null || { echo "valgrind is missing (apt-get install valgrind)" >&2; exit 2; }
tmp=$(mktemp -d); pids=()
# KEEP_CALLGRIND=DIR keeps the profiles (callgrind_annotate DIR/cg.allow-all.*) to see where the instructions go.
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true
  if [ -n "${KEEP_CALLGRIND:-}" ]; then cp "$tmp"/cg.* "$KEEP_CALLGRIND"/ 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
"$build/bench/fast_server" http > "$tmp/fast.out" 2>&1 & pids+=($!)
until grep -q LISTENING "$tmp/fast.out" 2>/dev/null; do sleep 0.01; done
fast=$(grep -oE '[0-9]+' "$tmp/fast.out" | head -1)
for kind in allow-all realistic; do
  port=$("$build/bench/loadgen" freeport)
  state=memory; [ $kind = realistic ] && state=sqlite:$tmp/$kind.db
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$tmp/cg.$kind" ${VALGRIND_ARGS:-} \
    "${TOOLWARDEN:-$build/toolwarden}" --log-level warn run --listen 127.0.0.1:$port -p "$here/policies/$kind.yaml" \
    --state "$state" --upstream "http://127.0.0.1:$fast/mcp" ${RUN_ARGS:-} 2> "$tmp/vg.$kind" & gw=$!; pids+=($gw)
  deadline=$((SECONDS + 60))
  until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || { echo "the gateway did not start under valgrind" >&2; exit 1; }
    sleep 0.1
  done
  "$build/bench/loadgen" http --url "http://127.0.0.1:$port/mcp" -c 2 -d 1 --warmup 0 > /dev/null
  callgrind_control -i on "$gw" > /dev/null
  calls=$("$build/bench/loadgen" http --url "http://127.0.0.1:$port/mcp" -c 2 -d "$duration" --warmup 0 \
    | sed -E 's/.*"calls":([0-9]+).*/\1/')
  callgrind_control -i off "$gw" > /dev/null
  kill "$gw"; wait "$gw" 2>/dev/null || true
  ir=$(grep -h '^totals:' "$tmp"/cg.$kind* | awk '{s += $2} END {print s + 0}')
  echo "{\"label\":\"$kind\",\"calls\":$calls,\"instructions\":$ir,\"instructions_per_call\":$((ir / calls))}"
done
