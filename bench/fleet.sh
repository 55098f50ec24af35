#!/usr/bin/env bash
# Shared state and the fleet (docs/benchmarks.md, "A fleet"): closed-loop load from the same
# load generator, rounds interleaved, through
#   tw-sqlite       one toolwarden serve, realistic policy, state in a SQLite file
#   tw-redis        the same gateway with its state on Redis (a local redis-server), the audit
#                   records in a local SQLite file
#   lb-1replica     nginx in front of one replica on Redis (deploy/nginx-fleet.conf's routing)
#   lb-3replicas    nginx in front of three replicas on one Redis (limits shared by all three)
# in front of one fast upstream. CPU seconds per 10,000 calls come from /proc (every process of
# the gateway; for the lb rows, the replicas', not nginx's nor Redis's).
#
#   bench/fleet.sh [--duration S] [--rounds N] [--connections C] [--out FILE]
# FLEET_WORKERS=N gives each replica (the lb rows) N event loops instead of one per core.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
tw=$build/toolwarden
duration=5 rounds=3 conns=16 out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --connections) conns=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
command -v nginx >/dev/null || { echo "nginx is missing (scripts/install-deps.sh)" >&2; exit 2; }
command -v redis-server >/dev/null || { echo "redis-server is missing (scripts/install-deps.sh)" >&2; exit 2; }
mkdir -p "$here/results"
out=${out:-$here/results/fleet-$(date -u +%Y%m%dT%H%M%SZ).jsonl}
: > "$out"

load() {  # load LABEL "PIDS" TOKEN URL : one closed-loop run, one JSON line
  local args=(-c "$conns" -d "$duration" --warmup 1 --threads 2 --label "$1" --token "$3" --url "$4")
  for p in $2; do args+=(--pid "$p"); done
  "$loadgen" http "${args[@]}" >> "$out" || echo "{\"label\":\"$1\",\"failed\":true}" >> "$out"
}

start_fast_http
redis_port=$("$loadgen" freeport)
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --daemonize no \
  --loglevel warning > "$tmp/redis.log" 2>&1 & pids+=($!)
wait_http "$redis_port"
redis="redis://127.0.0.1:$redis_port/0"

serve() {  # serve NAME STATE [REPLICA] : starts a replica; sets port_NAME and pid_NAME
  local name=$1 port; port=$("$loadgen" freeport)
  { echo "listen: 127.0.0.1:$port"; echo "state: $2"; echo "max_sessions: 20000"
    # Replicas sharing the machine's cores: FLEET_WORKERS event loops each (default: auto).
    [ -n "${3:-}" ] && [ -n "${FLEET_WORKERS:-}" ] && echo "workers: $FLEET_WORKERS"
    echo "trusted_proxies: [127.0.0.1]"; echo "servers:"
    echo "  fast: {url: \"http://127.0.0.1:$fast_port/mcp\", policy: $here/policies/realistic.yaml}"
  } > "$tmp/$name.yaml"
  XDG_STATE_HOME=$tmp/$name "$tw" --log-level warn serve -c "$tmp/$name.yaml" ${3:+--replica $3} \
    > "$tmp/$name.log" 2>&1 & pids+=($!)
  wait_http "$port"
  printf -v "port_$name" %s "$port"
  printf -v "pid_$name" %s "$!"
}

serve sqlite "sqlite:$tmp/state.db"
sqlite_token=$("$tw" grants create bench -c "$tmp/sqlite.yaml" --json | sed -E 's/.*"token":"([^"]+)".*/\1/')
serve solo "$redis"
redis_token=$("$tw" grants create bench --state "$redis" --json | sed -E 's/.*"token":"([^"]+)".*/\1/')
serve r1 "$redis" r1
serve r2 "$redis" r2
serve r3 "$redis" r3

# nginx: the fleet's configuration (deploy/nginx-fleet.conf) with these ports, once with the
# three replicas and once with r1 alone.
nginx_conf() {  # nginx_conf NAME PORT UPSTREAM_PORTS...
  local name=$1 port=$2; shift 2
  sed -e "s|# pid|pid $tmp/nginx-$name.pid;|" \
      -e "s|# temp|client_body_temp_path $tmp/nb-$name; proxy_temp_path $tmp/np-$name;|" \
      -e "s|worker_processes auto;|worker_processes 1;|" \
      -e "s|listen 127.0.0.1:8420;|listen 127.0.0.1:$port;|" \
      -e "s|127.0.0.1:8421|127.0.0.1:$1|g" -e "s|127.0.0.1:8422|127.0.0.1:${2:-$1}|g" \
      -e "s|127.0.0.1:8423|127.0.0.1:${3:-$1}|g" "$root/deploy/nginx-fleet.conf" > "$tmp/nginx-$name.conf"
  nginx -p "$tmp" -c "$tmp/nginx-$name.conf" -g "daemon off; error_log $tmp/nginx-$name.err;" \
    2> "$tmp/nginx-$name.start" & pids+=($!)
  wait_http "$port"
}
lb1_port=$("$loadgen" freeport); nginx_conf one "$lb1_port" "$port_r1"
lb3_port=$("$loadgen" freeport); nginx_conf three "$lb3_port" "$port_r1" "$port_r2" "$port_r3"

for ((round = 0; round < rounds; round++)); do
  for k in 0 1 2 3; do
    case $(((k + round) % 4)) in
      0) echo "tw-sqlite (round $((round + 1)))" >&2
         load tw-sqlite "$pid_sqlite" "$sqlite_token" "http://127.0.0.1:$port_sqlite/mcp/fast" ;;
      1) echo "tw-redis (round $((round + 1)))" >&2
         load tw-redis "$pid_solo" "$redis_token" "http://127.0.0.1:$port_solo/mcp/fast" ;;
      2) echo "lb-1replica (round $((round + 1)))" >&2
         load lb-1replica "$pid_r1" "$redis_token" "http://127.0.0.1:$lb1_port/mcp/fast" ;;
      3) echo "lb-3replicas (round $((round + 1)))" >&2
         load lb-3replicas "$pid_r1 $pid_r2 $pid_r3" "$redis_token" "http://127.0.0.1:$lb3_port/mcp/fast" ;;
    esac
  done
done
if command -v node >/dev/null; then node "$here/summarize.mjs" "$out"
elif [ -z "${SUMMARIZE_OPTIONAL:-}" ]; then echo "node is missing: no table" >&2; fi
echo "raw results: $out" >&2
