#!/usr/bin/env bash
# Scaling with event loops (docs/benchmarks.md, "Every core"): for each N, N fast upstreams and
# the same closed-loop load (8 connections per N, spread over the N upstreams) through
#   nginx-Nw        nginx with N worker processes, an upstream block of the N servers
#   tw-Nloops       one toolwarden serve with workers: N and the N servers (realistic policy,
#                   counters and audit in one SQLite file: limits exact across loops)
#   tw-Nprocs       N toolwarden serve processes, one loop (workers: 1) and one server each, a
#                   state file and a grant token each (independent: no limit is shared)
# CPU seconds per 10,000 calls of each gateway (every process, every thread) come from /proc.
#
#   bench/loops.sh [--loops "1 2 4 8"] [--duration S] [--rounds N] [--out FILE]
# Counts above the cores available are skipped (their figures would measure the scheduler).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
tw=$build/toolwarden
loops_list="1 2 4 8" duration=5 rounds=3 out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --loops) loops_list=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
command -v nginx >/dev/null || { echo "nginx is missing (scripts/install-deps.sh --bench)" >&2; exit 2; }
mkdir -p "$here/results"
out=${out:-$here/results/loops-$(date -u +%Y%m%dT%H%M%SZ).jsonl}
: > "$out"
cores=$(nproc)

load() {  # load LABEL "PIDS" URL... : one closed-loop run, one JSON line
  local label=$1 pidlist=$2; shift 2
  local args=(-c $((8 * n)) -d "$duration" --warmup 1 --threads "$n" --label "$label")
  for p in $pidlist; do args+=(--pid "$p"); done
  for u in "$@"; do args+=(--url "$u"); done
  for t in ${tok:-}; do args+=(--token "$t"); done
  "$loadgen" http "${args[@]}" >> "$out" || echo "{\"label\":\"$label\",\"failed\":true}" >> "$out"
}

for n in $loops_list; do
  if [ "$n" -gt "$cores" ]; then echo "skipping $n loops: $cores cores" >&2; continue; fi
  run_pids=()
  ports=()
  for ((i = 1; i <= n; i++)); do
    "$fast" http > "$tmp/fast-$n-$i.out" 2>&1 & pids+=($!); run_pids+=($!)
    until grep -q LISTENING "$tmp/fast-$n-$i.out"; do sleep 0.01; done
    ports+=("$(grep -oE '[0-9]+' "$tmp/fast-$n-$i.out" | head -1)")
  done

  # nginx, N workers over the N upstreams.
  nginx_port=$("$loadgen" freeport)
  { echo "worker_processes $n; daemon off; pid $tmp/nginx-$n.pid; error_log $tmp/nginx-$n.err;"
    echo "events { worker_connections 4096; }"
    echo "http { access_log off; keepalive_requests 10000000;"
    echo "  upstream fast { keepalive 64; keepalive_requests 10000000;"
    for p in "${ports[@]}"; do echo "    server 127.0.0.1:$p;"; done
    echo "  }"
    echo "  server { listen 127.0.0.1:$nginx_port; location / { proxy_pass http://fast;"
    echo "    proxy_http_version 1.1; proxy_set_header Connection \"\"; proxy_buffering off; } } }"
  } > "$tmp/nginx-$n.conf"
  nginx -p "$tmp" -c "$tmp/nginx-$n.conf" 2> "$tmp/nginx-$n.start" & pids+=($!); run_pids+=($!)
  nginx_master=$!
  wait_http "$nginx_port"
  nginx_workers=$(pgrep -P "$nginx_master" | tr '\n' ' ')

  # One toolwarden, N loops, N servers, one state file.
  serve_port=$("$loadgen" freeport)
  { echo "listen: 127.0.0.1:$serve_port"; echo "workers: $n"; echo "state: sqlite:$tmp/serve-$n.db"
    echo "max_sessions: 20000"; echo "servers:"
    for ((i = 1; i <= n; i++)); do
      echo "  fast$i: {url: \"http://127.0.0.1:${ports[$((i - 1))]}/mcp\", policy: $here/policies/realistic.yaml}"
    done; } > "$tmp/serve-$n.yaml"
  serve_token=$("$tw" grants create bench -c "$tmp/serve-$n.yaml" --json | sed -E 's/.*"token":"([^"]+)".*/\1/')
  "$tw" --log-level warn serve -c "$tmp/serve-$n.yaml" > "$tmp/serve-$n.log" 2>&1 & pids+=($!); run_pids+=($!)
  serve_pid=$!
  wait_http "$serve_port"
  serve_urls=()
  for ((i = 1; i <= n; i++)); do serve_urls+=("http://127.0.0.1:$serve_port/mcp/fast$i"); done

  # N independent toolwarden processes: the same serve, one loop and one server each.
  proc_urls=() proc_pids="" proc_tokens=""
  for ((i = 1; i <= n; i++)); do
    port=$("$loadgen" freeport)
    { echo "listen: 127.0.0.1:$port"; echo "workers: 1"; echo "state: sqlite:$tmp/proc-$n-$i.db"
      echo "servers:"
      echo "  fast1: {url: \"http://127.0.0.1:${ports[$((i - 1))]}/mcp\", policy: $here/policies/realistic.yaml}"
    } > "$tmp/proc-$n-$i.yaml"
    proc_tokens+="$("$tw" grants create bench -c "$tmp/proc-$n-$i.yaml" --json | sed -E 's/.*"token":"([^"]+)".*/\1/') "
    "$tw" --log-level warn serve -c "$tmp/proc-$n-$i.yaml" > "$tmp/proc-$n-$i.log" 2>&1 & pids+=($!); run_pids+=($!)
    proc_pids+="$! "
    wait_http "$port"
    proc_urls+=("http://127.0.0.1:$port/mcp/fast1")
  done

  for ((round = 0; round < rounds; round++)); do
    for k in 0 1 2; do
      case $(((k + round) % 3)) in
        0) echo "$n: nginx (round $((round + 1)))" >&2
           tok="" load "nginx-${n}w" "$nginx_workers" $(for p in "${ports[@]}"; do echo "http://127.0.0.1:$nginx_port/mcp"; done) ;;
        1) echo "$n: toolwarden, $n loops (round $((round + 1)))" >&2
           tok=$serve_token load "tw-${n}loops" "$serve_pid" "${serve_urls[@]}" ;;
        2) echo "$n: toolwarden, $n processes (round $((round + 1)))" >&2
           tok=$proc_tokens load "tw-${n}procs" "$proc_pids" "${proc_urls[@]}" ;;
      esac
    done
  done
  for p in "${run_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait "${run_pids[@]}" 2>/dev/null || true
done
if command -v node >/dev/null; then node "$here/summarize.mjs" "$out"
elif [ -z "${SUMMARIZE_OPTIONAL:-}" ]; then echo "node is missing: no table" >&2; fi
echo "raw results: $out" >&2
