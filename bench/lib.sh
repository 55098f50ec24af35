# Shared by the bench scripts (source it after `set -euo pipefail`): paths, a temporary folder
# and processes cleaned up on exit, waiting for a port, the fast upstream.
here=$(cd "$(dirname "${BASH_SOURCE[1]}")" && pwd); root=$(cd "$here/.." && pwd)
build=${BUILD_DIR:-$root/build}
loadgen=$build/bench/loadgen fast=$build/bench/fast_server
tmp=$(mktemp -d); pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

# wait_http PORT: until something accepts connections there (20 s at most).
wait_http() {
  local deadline=$((SECONDS + 20))
  until (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || { echo "nothing listens on $1" >&2; return 1; }
    sleep 0.05
  done
}

# start_fast_http: starts `fast_server http` and sets fast_port.
start_fast_http() {
  "$fast" http > "$tmp/fast.out" 2>&1 & pids+=($!)
  until grep -q LISTENING "$tmp/fast.out"; do sleep 0.01; done
  fast_port=$(grep -oE '[0-9]+' "$tmp/fast.out" | head -1)
}
