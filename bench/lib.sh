# Shared by the bench scripts (source it after `set -euo pipefail`): paths, a temporary folder
# and processes cleaned up on exit, waiting for a port, the fast upstream.
here=$(cd "$(dirname "${BASH_SOURCE[1]}")" && pwd); root=$(cd "$here/.." && pwd)
build=${BUILD_DIR:-$root/build}
loadgen=$build/bench/loadgen fast=$build/bench/fast_server
tmp=$(mktemp -d); pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

# wait_http PORT: until something accepts connections there (30 s at most; polled every 10 ms,
# fine enough for scale.sh's start-up times).
wait_http() {
  local deadline=$((SECONDS + 30))
  until (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || { echo "nothing listens on $1" >&2; return 1; }
    sleep 0.01
  done
}

# start_fast_http: starts `fast_server http` and sets fast_port.
start_fast_http() {
  "$fast" http > "$tmp/fast.out" 2>&1 & pids+=($!)
  until grep -q LISTENING "$tmp/fast.out"; do sleep 0.01; done
  fast_port=$(grep -oE '[0-9]+' "$tmp/fast.out" | head -1)
}

# start_listen TOOLWARDEN POLICY STATE: `run --listen` on a free port in front of the fast
# upstream (start_fast_http first); sets gw (its pid) and gw_url, and waits until it listens.
# Environment variables set on the call reach the gateway.
start_listen() {
  local port; port=$("$loadgen" freeport)
  "$1" --log-level warn run --listen 127.0.0.1:$port -p "$2" --state "$3" \
    --upstream "http://127.0.0.1:$fast_port/mcp" > /dev/null 2>&1 & gw=$!
  gw_url=http://127.0.0.1:$port/mcp
  wait_http "$port"
}

# stop_listen: stops the gateway start_listen started.
stop_listen() { kill "$gw"; wait "$gw" 2>/dev/null || true; }
