#!/usr/bin/env bash
# A fresh `toolwarden serve` (one shared stdio server, realistic policy) at idle, then with
# 10,000 idle sessions (each with its GET stream open): RSS before and after, per session.
#   bench/idle.sh [TOOLWARDEN] [SESSIONS]
set -euo pipefail
source "$(dirname "$0")/lib.sh"
tw=${1:-$build/toolwarden} sessions=${2:-10000}
port=$("$loadgen" freeport)
cat > "$tmp/serve.yaml" <<CONF
listen: 127.0.0.1:$port
state: sqlite:$tmp/serve.db
max_sessions: 20000
max_sessions_per_grant: 20000   # one grant holds every idle session of the benchmark
servers:
  fast:
    command: $fast
    args: [stdio]
    policy: $here/policies/realistic.yaml
CONF
token=$("$tw" grants create bench -c "$tmp/serve.yaml" --json | sed -E 's/.*"token":"([^"]+)".*/\1/')
"$tw" --log-level warn serve -c "$tmp/serve.yaml" > /dev/null 2>&1 & pids+=($!)
wait_http "$port"
"$loadgen" idle --url "http://127.0.0.1:$port/mcp/fast" --sessions "$sessions" --token "$token" --pid "${pids[-1]}" --label "idle-$sessions"
