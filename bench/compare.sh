#!/usr/bin/env bash
# Side-by-side benchmark (docs/benchmarks.md): the same fast upstream, the same load,
# through each contender in turn, alternating the order every round.
#
#   bench/compare.sh [--rounds N] [--duration S] [--connections C] [--rate R] [--out FILE]
#
# Contenders, HTTP client → HTTP upstream (bench/fast_server http):
#   direct        no gateway (the physical limit)
#   nginx         a plain reverse proxy with upstream keep-alive (understands nothing of MCP)
#   tw-allow      toolwarden run --listen --upstream, allow-all policy, state in memory
#   tw-realistic  the same with bench/policies/realistic.yaml (seed + 50 regex rules, two limits
#                 charged per call) and counters + audit in a SQLite file; event loops: one
#                 per core (workers: auto)
#   tw-realistic-2026    tw-realistic driven by 2026-07-28 clients (loadgen --era 2026-07-28: no
#                 session, _meta and mirrored headers on every call)
#   tw-realistic-1loop   the same on one event loop (--workers 1)
#   tw-serve      toolwarden serve (grant token, aggregate /mcp), realistic policy, SQLite
# HTTP client → stdio upstream (bench/fast_server stdio):
#   supergateway, mcp-proxy   the passthrough bridges people use today (npm, bench/node)
#   tw-serve-stdio            toolwarden serve with the server as a shared stdio child, realistic
# stdio client → stdio upstream:
#   stdio-direct, stdio-tw-allow, stdio-tw-realistic   (the `run` wrapper)
#   stdio-seq-direct, stdio-seq-tw-realistic   one call at a time (depth 1), as an agent calls
#   stdio-everything-direct, stdio-everything-tw-realistic   the same pair in front of a real
#                 server, @modelcontextprotocol/server-everything (tests/node), its echo tool
#   stdio-seq-everything-direct, stdio-seq-everything-tw-realistic   that pair at depth 1
#
# Each contender gets a closed-loop run (C connections, flat out: throughput) and an open-loop
# run at R calls/s (latency without coordinated omission). Then 10,000 idle sessions on serve. Results: one JSON line per run in
# --out (default bench/results/compare-<time>.jsonl), then a table from bench/summarize.mjs.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build=${BUILD_DIR:-$root/build}
tw=$build/toolwarden
fast=$build/bench/fast_server
loadgen=$build/bench/loadgen
rounds=3 duration=5 connections=8 rate=1000 warmup=1
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
mkdir -p "$here/results"
out=${out:-$here/results/compare-$(date -u +%Y%m%dT%H%M%SZ).jsonl}
: > "$out"

for bin in "$tw" "$fast" "$loadgen"; do
  [ -x "$bin" ] || { echo "missing $bin: run make first" >&2; exit 2; }
done
command -v nginx >/dev/null || { echo "nginx is missing (apt-get install nginx-light)" >&2; exit 2; }
[ -x "$here/node/node_modules/.bin/mcp-proxy" ] || (cd "$here/node" && npm ci --no-audit --no-fund >/dev/null)

tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# wait_for FILE REGEX: polls (with a deadline) until FILE matches, prints the first match.
wait_for() {
  local deadline=$((SECONDS + 20))
  while [ $SECONDS -lt $deadline ]; do
    if grep -qE "$2" "$1" 2>/dev/null; then grep -oE "$2" "$1" | head -1; return 0; fi
    sleep 0.05
  done
  echo "timed out waiting for $2 in $1:" >&2; cat "$1" >&2; return 1
}
freeport() { "$loadgen" freeport; }
wait_http() {  # wait_http PORT: until something accepts connections there
  local deadline=$((SECONDS + 20))
  until (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || { echo "nothing listens on $1" >&2; return 1; }
    sleep 0.05
  done
}

declare -A url pid token era

"$fast" http > "$tmp/fast.out" 2>&1 & pids+=($!)
fast_port=$(wait_for "$tmp/fast.out" 'LISTENING [0-9]+' | cut -d' ' -f2)
url[direct]=http://127.0.0.1:$fast_port/mcp; pid[direct]=${pids[-1]}

nginx_port=$(freeport)
cat > "$tmp/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $tmp/nginx.pid;
error_log $tmp/nginx.err;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 10000000;   # the default (1000) would close the load's connections
  upstream fast { server 127.0.0.1:$fast_port; keepalive 64; keepalive_requests 10000000; }
  server {
    listen 127.0.0.1:$nginx_port;
    location / {
      proxy_pass http://fast;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }
  }
}
CONF
nginx -p "$tmp" -c "$tmp/nginx.conf" 2> "$tmp/nginx.start" & pids+=($!)
wait_http "$nginx_port"
url[nginx]=http://127.0.0.1:$nginx_port/mcp
pid[nginx]=$(pgrep -P "${pids[-1]}" | head -1)  # the worker

for kind in allow realistic realistic-1loop; do
  port=$(freeport)
  workers=auto
  if [ $kind = allow ]; then state=memory; policy=$here/policies/allow-all.yaml
  else state=sqlite:$tmp/run-$kind.db; policy=$here/policies/realistic.yaml; fi
  [ $kind = realistic-1loop ] && workers=1
  "$tw" --log-level warn run --listen 127.0.0.1:$port -p "$policy" --state "$state" --workers $workers \
    --upstream "http://127.0.0.1:$fast_port/mcp" > "$tmp/tw-$kind.log" 2>&1 & pids+=($!)
  wait_http "$port"
  url[tw-$kind]=http://127.0.0.1:$port/mcp; pid[tw-$kind]=${pids[-1]}
done
url[tw-realistic-2026]=${url[tw-realistic]}; pid[tw-realistic-2026]=${pid[tw-realistic]}
era[tw-realistic-2026]=2026-07-28

# toolwarden serve: a remote server, and the same server as a shared stdio child.
serve_port=$(freeport)
cat > "$tmp/serve.yaml" <<CONF
listen: 127.0.0.1:$serve_port
state: sqlite:$tmp/serve.db
max_sessions: 20000
max_sessions_per_grant: 20000   # one grant holds every idle session of the benchmark
servers:
  fast:
    url: http://127.0.0.1:$fast_port/mcp
    policy: $here/policies/realistic.yaml
  faststdio:
    command: $fast
    args: [stdio]
    policy: $here/policies/realistic.yaml
CONF
serve_token=$("$tw" grants create bench -c "$tmp/serve.yaml" --json | sed -E 's/.*"token":"([^"]+)".*/\1/')
"$tw" --log-level warn serve -c "$tmp/serve.yaml" > "$tmp/serve.log" 2>&1 & pids+=($!)
wait_http "$serve_port"
url[tw-serve]=http://127.0.0.1:$serve_port/mcp/fast; pid[tw-serve]=${pids[-1]}; token[tw-serve]=$serve_token
url[tw-serve-stdio]=http://127.0.0.1:$serve_port/mcp/faststdio; pid[tw-serve-stdio]=${pids[-1]}; token[tw-serve-stdio]=$serve_token

sg_port=$(freeport)
"$here/node/node_modules/.bin/supergateway" --stdio "$fast stdio" --outputTransport streamableHttp \
  --stateful --port "$sg_port" --logLevel none > "$tmp/sg.log" 2>&1 & pids+=($!)
wait_http "$sg_port"
url[supergateway]=http://127.0.0.1:$sg_port/mcp; pid[supergateway]=${pids[-1]}

mp_port=$(freeport)
"$here/node/node_modules/.bin/mcp-proxy" --host 127.0.0.1 --port "$mp_port" --server stream \
  --no-eventStore -- "$fast" stdio > "$tmp/mp.log" 2>&1 & pids+=($!)
wait_http "$mp_port"
url[mcp-proxy]=http://127.0.0.1:$mp_port/mcp; pid[mcp-proxy]=${pids[-1]}

everything=$root/tests/node/node_modules/@modelcontextprotocol/server-everything/dist/index.js
http_labels=(direct nginx tw-allow tw-realistic tw-realistic-2026 tw-realistic-1loop tw-serve supergateway mcp-proxy tw-serve-stdio)
run_http() {  # run_http LABEL
  local l=$1 args=(--url "${url[$l]}" -c "$connections" -d "$duration" --warmup "$warmup" --label "$l")
  [ -n "${token[$l]:-}" ] && args+=(--token "${token[$l]}")
  [ -n "${era[$l]:-}" ] && args+=(--era "${era[$l]}")
  [ -n "${pid[$l]:-}" ] && args+=(--pid "${pid[$l]}")
  "$loadgen" http "${args[@]}" >> "$out" || echo "{\"label\":\"$l\",\"failed\":true}" >> "$out"
  "$loadgen" http "${args[@]}" --rate "$rate" --label "$l@${rate}/s" >> "$out" \
    || echo "{\"label\":\"$l@${rate}/s\",\"failed\":true}" >> "$out"
}
run_stdio() {  # [depth=N] run_stdio LABEL CMD...   (depth: calls in flight, default C)
  local l=$1; shift
  "$loadgen" stdio -c "${depth:-$connections}" -d "$duration" --warmup "$warmup" --label "$l" -- "$@" >> "$out" \
    || echo "{\"label\":\"$l\",\"failed\":true}" >> "$out"
}

for ((round = 0; round < rounds; round++)); do
  n=${#http_labels[@]}
  for ((i = 0; i < n; i++)); do
    l=${http_labels[$(((i + round) % n))]}
    echo "round $((round + 1))/$rounds: $l" >&2
    run_http "$l"
  done
  echo "round $((round + 1))/$rounds: stdio" >&2
  run_stdio stdio-direct "$fast" stdio
  run_stdio stdio-tw-allow "$tw" --log-level warn run -p "$here/policies/allow-all.yaml" --state memory -- "$fast" stdio
  run_stdio stdio-tw-realistic "$tw" --log-level warn run -p "$here/policies/realistic.yaml" \
    --state "sqlite:$tmp/stdio-$round.db" -- "$fast" stdio
  # One call at a time (depth 1), as an agent makes them: what the wrapper adds to each call.
  depth=1 run_stdio stdio-seq-direct "$fast" stdio
  depth=1 run_stdio stdio-seq-tw-realistic "$tw" --log-level warn run -p "$here/policies/realistic.yaml" \
    --state "sqlite:$tmp/stdio-seq-$round.db" -- "$fast" stdio
  # The same pair in front of a real MCP server (@modelcontextprotocol/server-everything, its
  # echo tool): what the wrapper costs a user, where the fast server shows what it costs at all.
  if [ -f "$everything" ]; then
    run_stdio stdio-everything-direct node "$everything" stdio
    run_stdio stdio-everything-tw-realistic "$tw" --log-level warn run -p "$here/policies/realistic.yaml" \
      --state "sqlite:$tmp/stdio-everything-$round.db" -- node "$everything" stdio
    depth=1 run_stdio stdio-seq-everything-direct node "$everything" stdio
    depth=1 run_stdio stdio-seq-everything-tw-realistic "$tw" --log-level warn run -p "$here/policies/realistic.yaml" \
      --state "sqlite:$tmp/stdio-seq-everything-$round.db" -- node "$everything" stdio
  fi
done

# Scale: 10,000 idle sessions (GET streams held open) on toolwarden serve, RSS per session.
echo "idle sessions" >&2
"$loadgen" idle --url "${url[tw-serve-stdio]}" --sessions 10000 --token "$serve_token" \
  --pid "${pid[tw-serve-stdio]}" --label idle-10k >> "$out" || echo '{"label":"idle-10k","failed":true}' >> "$out"

node "$here/summarize.mjs" "$out"
echo "raw results: $out" >&2
