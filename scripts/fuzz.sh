#!/usr/bin/env bash
# Runs every libFuzzer target for a bounded time, from the seed corpora in fuzz/seeds/ plus
# what earlier runs found (build-fuzz/corpus/, kept between runs), and prints one line per
# target: seconds, executions, executions per second, result. Exits 1 on any finding; the
# input that crashed is left in build-fuzz/findings/ (make it a unit test, then fix it).
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [FORKS_PER_TARGET]
# `make fuzz` runs it for 10 minutes a target, CI (`make fuzz-ci`) for 15 seconds. With FORKS
# > 1 each target runs that many processes at once (libFuzzer -fork), all targets together.
set -uo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
forks=${2:-1}
build=build-fuzz
targets=(message_fuzz loader_fuzz condition_fuzz config_fuzz schema_fuzz framing_fuzz http_request_fuzz
         http_router_fuzz jwt_fuzz)
mkdir -p "$build/findings" "$build/logs"
status=0
pids=()
for t in "${targets[@]}"; do
  bin=$(find "$build" -name "$t" -type f -perm -u+x | head -1)
  if [ -z "$bin" ]; then echo "fuzz: $t is not built (make fuzz-build)" >&2; exit 2; fi
  mkdir -p "$build/corpus/$t"
  cp -n fuzz/seeds/"$t"/* "$build/corpus/$t/" 2>/dev/null || true
  args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
        -artifact_prefix="$build/findings/$t-" "$build/corpus/$t")
  if [ "$forks" -gt 1 ]; then args=(-fork="$forks" -ignore_crashes=0 "${args[@]}"); fi
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    "$bin" "${args[@]}" >"$build/logs/$t.log" 2>&1 &
  pids+=($!)
  # One target at a time unless forking: the machine's cores are the budget.
  if [ "$forks" -le 1 ]; then wait "${pids[-1]}" || true; fi
done
wait
printf '%-18s %8s %12s %10s  %s\n' target seconds executions exec/s result
for t in "${targets[@]}"; do
  log="$build/logs/$t.log"
  runs=$(grep -ho 'stat::number_of_executed_units: [0-9]*' "$log" | awk '{s+=$2} END {print s+0}')
  if [ "$runs" = 0 ]; then
    runs=$(grep -ho '#[0-9]*' "$log" | tr -d '#' | sort -n | tail -1)
  fi
  took=$(grep -ho 'Done [0-9]* runs in [0-9]* second' "$log" | awk '{s+=$5} END {print s+0}')
  [ "$took" = 0 ] && took=$seconds
  result=ok
  if grep -qE 'ERROR: (AddressSanitizer|UndefinedBehaviorSanitizer|libFuzzer)|runtime error:|deadly signal' "$log"; then
    result="FINDING (see $log)"
    status=1
  fi
  printf '%-18s %8s %12s %10s  %s\n' "$t" "$took" "${runs:-0}" "$(( ${runs:-0} / (took > 0 ? took : 1) ))" "$result"
done
exit $status
