#!/usr/bin/env bash
# Two toolwarden binaries side by side (before/after a change), alternating, same fast upstream:
# the realistic policy with a fresh SQLite state file per run, over HTTP (`run --listen`,
# closed loop, 8 connections, with the gateway's CPU) and as a stdio wrapper (depth 16), and
# the realistic policy at 1,000 calls/s for latency. One line per run.
#   git worktree add /tmp/before HEAD~1 && cmake -S /tmp/before -B /tmp/before/build -G Ninja -DCMAKE_BUILD_TYPE=Release \
#     && cmake --build /tmp/before/build --target toolwarden
#   bench/ab.sh /tmp/before/build/toolwarden build/toolwarden [ROUNDS]
set -euo pipefail
source "$(dirname "$0")/lib.sh"
a=$1 b=$2 rounds=${3:-3}
start_fast_http
summary() { sed -E 's/.*"label":"([^"]+)".*"throughput":([0-9.]+).*"p50_us":([0-9]+).*"p99_us":([0-9]+).*/\1 \2 calls\/s p50=\3us p99=\4us/' | tee -a "$tmp/lines"; }
for round in $(seq 1 "$rounds"); do
  order=("A $a" "B $b"); [ $((round % 2)) = 0 ] && order=("B $b" "A $a")
  for entry in "${order[@]}"; do
    set -- $entry; label=$1 tw=$2
    start_listen "$tw" "$here/policies/realistic.yaml" "sqlite:$tmp/$label-$round.db"
    "$loadgen" http --url "$gw_url" -c 8 -d 4 --warmup 1 --pid $gw --label "$label-http" |
      sed -E 's/.*"label":"([^"]+)".*"throughput":([0-9.]+).*"p50_us":([0-9]+).*"p99_us":([0-9]+).*"pid0_cpu_s_per_10k":([0-9.]+).*/\1 \2 calls\/s p50=\3us p99=\4us cpu_s_per_10k=\5/' |
      tee -a "$tmp/lines"
    "$loadgen" http --url "$gw_url" -c 8 -d 4 --warmup 1 --rate 1000 --label "$label-http@1000/s" | summary
    stop_listen
    "$loadgen" stdio -c 16 -d 4 --warmup 1 --label "$label-stdio" -- \
      "$tw" --log-level warn run -p "$here/policies/realistic.yaml" --state "sqlite:$tmp/$label-$round-stdio.db" -- "$fast" stdio | summary
  done
done

# Medians over the rounds, with the range, for each line above.
median() { sort -g | awk '{v[NR] = $1} END {if (NR) printf "%s (%s-%s)", v[int((NR + 1) / 2)], v[1], v[NR]}'; }
echo "medians of $rounds rounds (min-max):"
for label in A-http B-http A-http@1000/s B-http@1000/s A-stdio B-stdio; do
  lines=$(grep "^$label " "$tmp/lines" || true)
  [ -n "$lines" ] || continue
  line="$label: $(sed -E 's/^[^ ]+ ([0-9.]+) calls.*/\1/' <<< "$lines" | median) calls/s"
  for key in p50 p99 cpu_s_per_10k; do
    values=$(grep -oE "$key=[0-9.]+" <<< "$lines" | cut -d= -f2 || true)
    [ -n "$values" ] && line="$line $key=$(median <<< "$values")"
  done
  echo "$line"
done
