#!/usr/bin/env bash
# Scale figures (docs/benchmarks.md, "Scale"): a 5,000-tool server listed through the gateway
# vs directly, and the first tools/list through `serve` with 10 upstream servers.
#   bench/scale.sh [--out FILE]
set -euo pipefail
source "$(dirname "$0")/lib.sh"
tw=$build/toolwarden
out=${2:-$here/results/scale-$(date -u +%Y%m%dT%H%M%SZ).jsonl}
[ "${1:-}" = "--out" ] && out=$2
mkdir -p "$(dirname "$out")"; : > "$out"
now_ms() { date +%s%3N; }

# 1. A server with 5,000 tools: direct, through `run --listen`, through `serve`.
"$fast" http --tools 5000 > "$tmp/fast.out" 2>&1 & pids+=($!)
until grep -q LISTENING "$tmp/fast.out"; do sleep 0.01; done
fast_port=$(grep -oE '[0-9]+' "$tmp/fast.out" | head -1)
for i in 1 2 3; do "$loadgen" list --url "http://127.0.0.1:$fast_port/mcp" --label "5000-tools direct #$i" >> "$out"; done
port=$("$loadgen" freeport)
"$tw" --log-level warn run --listen 127.0.0.1:$port -p "$here/policies/allow-all.yaml" --state "sqlite:$tmp/run.db" \
  --upstream "http://127.0.0.1:$fast_port/mcp" & pids+=($!)
wait_http "$port"
for i in 1 2 3; do "$loadgen" list --url "http://127.0.0.1:$port/mcp" --label "5000-tools run #$i (first pins them)" >> "$out"; done

# 2. serve with 10 stdio servers (shared, started and initialized at gateway start): how long
# from starting the gateway until a client has the whole tools/list, and one session's cost.
serve_port=$("$loadgen" freeport)
{ echo "listen: 127.0.0.1:$serve_port"; echo "state: sqlite:$tmp/serve.db"; echo "servers:"
  for i in $(seq 1 10); do
    echo "  s$i: {command: $fast, args: [stdio, --tools, \"50\"], policy: $here/policies/allow-all.yaml}"
  done; } > "$tmp/serve.yaml"
token=$("$tw" grants create scale -c "$tmp/serve.yaml" --json | sed -E 's/.*"token":"([^"]+)".*/\1/')
start=$(now_ms)
"$tw" --log-level warn serve -c "$tmp/serve.yaml" > "$tmp/serve.log" 2>&1 & pids+=($!)
wait_http "$serve_port"
listening=$(now_ms)
"$loadgen" list --url "http://127.0.0.1:$serve_port/mcp" --token "$token" --label "10 servers, first session" >> "$out"
done_ms=$(now_ms)
echo "{\"label\":\"10 servers, gateway start to first full tools/list\",\"listening_ms\":$((listening - start)),\"first_list_done_ms\":$((done_ms - start))}" >> "$out"
for i in 1 2 3; do "$loadgen" list --url "http://127.0.0.1:$serve_port/mcp" --token "$token" --label "10 servers, session #$((i + 1))" >> "$out"; done
"$loadgen" list --url "http://127.0.0.1:$serve_port/mcp/s1" --token "$token" --label "one of them alone (/mcp/s1)" >> "$out"
cat "$out"
