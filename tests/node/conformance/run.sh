#!/usr/bin/env bash
# Runs the official MCP conformance suite (server mode, active scenarios) three times:
#   1. directly against our fixture server over HTTP (the baseline),
#   2. through toolwarden, the fixture as a stdio child,
#   3. through toolwarden, the fixture as a Streamable HTTP upstream.
# Passes when both gateway runs pass every scenario the baseline passes (and at least as many).
# usage: run.sh PATH/TO/toolwarden
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
nodedir=$(cd "$here/.." && pwd)
toolwarden=${1:?usage: run.sh PATH/TO/toolwarden}
node22="$nodedir/node_modules/node/bin/node"
suite="$nodedir/node_modules/@modelcontextprotocol/conformance/dist/index.js"
[ -x "$node22" ] || { echo "conformance: $node22 missing (run scripts/install-deps.sh)"; exit 1; }
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# wait_for FILE REGEX: prints the first capture group once FILE matches, within 20 s.
wait_for() {
  local deadline=$((SECONDS + 20))
  while ((SECONDS < deadline)); do
    if [[ -f "$1" ]] && [[ $(cat "$1") =~ $2 ]]; then
      echo "${BASH_REMATCH[1]}"
      return 0
    fi
    sleep 0.05
  done
  echo "conformance: timed out waiting for $2 in $1:" >&2
  cat "$1" >&2 || true
  return 1
}

# run_suite NAME URL: runs the suite, prints its summary, sets PASSED / FAILED (scenarios).
run_suite() {
  local log="$work/$1.log"
  (cd "$work" && timeout 600 "$node22" "$suite" server --url "$2" >"$log" 2>&1) || true
  PASSED=$(grep -c '^✓' "$log" || true)
  FAILED=$(grep -c '^✗' "$log" || true)
  echo "== $1: $PASSED scenarios passed, $FAILED failed"
  grep -E '^(✓|✗)' "$log" | sed 's/^/   /'
  if ((PASSED + FAILED == 0)); then
    echo "conformance: the suite ran no scenario; its output:"
    cat "$log"
  fi
}

node "$nodedir/fixtures/serve-http.mjs" conformance >"$work/fixture.out" 2>"$work/fixture.err" &
pids+=($!)
fixture_port=$(wait_for "$work/fixture.out" 'LISTENING ([0-9]+)')

run_suite direct "http://127.0.0.1:$fixture_port/mcp"
base_passed=$PASSED
((base_passed > 0)) || { echo "conformance: the baseline passed nothing"; exit 1; }

"$toolwarden" run --listen 127.0.0.1:0 -p "$here/policy.yaml" -- \
  node "$nodedir/fixtures/conformance-server.mjs" 2>"$work/gw-stdio.err" &
pids+=($!)
port=$(wait_for "$work/gw-stdio.err" 'listening on http://127\.0\.0\.1:([0-9]+)/mcp')
run_suite toolwarden-stdio-upstream "http://127.0.0.1:$port/mcp"
stdio_passed=$PASSED stdio_failed=$FAILED

"$toolwarden" run --listen 127.0.0.1:0 -p "$here/policy.yaml" \
  --upstream "http://127.0.0.1:$fixture_port/mcp" 2>"$work/gw-http.err" &
pids+=($!)
port=$(wait_for "$work/gw-http.err" 'listening on http://127\.0\.0\.1:([0-9]+)/mcp')
run_suite toolwarden-http-upstream "http://127.0.0.1:$port/mcp"
http_passed=$PASSED http_failed=$FAILED

echo "conformance: direct $base_passed, through toolwarden (stdio child) $stdio_passed," \
     "through toolwarden (HTTP upstream) $http_passed"
status=0
for run in stdio http; do
  passed_var=${run}_passed failed_var=${run}_failed
  if ((${!passed_var} < base_passed || ${!failed_var} > 0)); then
    echo "conformance: FAILED through toolwarden ($run upstream)"
    status=1
  fi
done
total=$((stdio_passed + http_passed))
echo "$total passed, $((stdio_failed + http_failed)) failed"
exit $status
