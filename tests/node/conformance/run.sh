#!/usr/bin/env bash
# Runs the official MCP conformance suites through toolwarden.
#
# 0.1.16 (2025-11-25, server mode, active scenarios), three times:
#   1. directly against the 2025-era fixture over HTTP (the baseline),
#   2. through toolwarden, the fixture as a stdio child,
#   3. through toolwarden, the fixture as a Streamable HTTP upstream;
#   both gateway runs must pass every scenario the baseline passes.
# 0.2.0-alpha.12 (`--requirements 2026-07-28`: 37 scored scenarios and the unscored ones):
#   4. directly against the 2026-07-28 fixture (fixtures/modern-server.mjs, SDK v2),
#   5. through toolwarden in front of it: every scored scenario passes, and every unscored one
#      the fixture passes directly passes through the gateway too,
#   6. through toolwarden in front of the 2025-era fixture (HTTP): each scenario's result
#      is the one expected-2026-over-2025.txt states, with the reason.
# usage: run.sh PATH/TO/toolwarden
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
nodedir=$(cd "$here/.." && pwd)
toolwarden=${1:?usage: run.sh PATH/TO/toolwarden}
node22="$nodedir/node_modules/node/bin/node"
suite="$nodedir/node_modules/@modelcontextprotocol/conformance/dist/index.js"
suite26="$nodedir/node_modules/conformance-2026/dist/index.js"
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

# run_2026 NAME URL: runs the 2026-07-28 requirements; writes "scenario pass|fail" lines, one
# per scenario (scored and unscored), to $work/NAME.results and prints them.
run_2026() {
  local log="$work/$1.log"
  (cd "$work" && timeout 600 "$node22" "$suite26" server --url "$2" --requirements 2026-07-28 \
    >"$log" 2>&1) || true
  sed -n '/^Total:/q;p' "$log" | grep -E '^(✓|✗) ' |
    sed -E 's/^✓ ([^:]+):.*/\1 pass/; s/^✗ ([^:]+):.*/\1 fail/' | sort -u >"$work/$1.results"
  echo "== $1 (2026-07-28): $(grep -c ' pass$' "$work/$1.results") scenarios passed," \
       "$(grep -c ' fail$' "$work/$1.results") failed"
  sed 's/^/   /' "$work/$1.results"
  if [ ! -s "$work/$1.results" ]; then
    echo "conformance: the 2026-07-28 suite ran no scenario; its output:"
    cat "$log"
  fi
}
# The scored scenarios of the 2026-07-28 requirements (the package's frozen list).
scored_2026() {
  sed -n '/^server:/,/^[a-z_]*:$/p' "$nodedir/node_modules/conformance-2026/requirements/2026-07-28.yaml" |
    sed -n 's/^  - //p'
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

# The 2026-07-28 era.
node "$nodedir/fixtures/modern-server.mjs" http >"$work/modern.out" 2>"$work/modern.err" &
pids+=($!)
modern_port=$(wait_for "$work/modern.out" 'LISTENING ([0-9]+)')
run_2026 direct-2026 "http://127.0.0.1:$modern_port/mcp"

"$toolwarden" run --listen 127.0.0.1:0 -p "$here/policy.yaml" --state memory \
  --upstream "http://127.0.0.1:$modern_port/mcp" 2>"$work/gw-modern.err" &
pids+=($!)
port=$(wait_for "$work/gw-modern.err" 'listening on http://127\.0\.0\.1:([0-9]+)/mcp')
run_2026 toolwarden-2026-upstream "http://127.0.0.1:$port/mcp"
scored=$(scored_2026)
n_scored=$(echo "$scored" | wc -l)
scored_passed=0
for sc in $scored; do
  if grep -qx "$sc pass" "$work/toolwarden-2026-upstream.results"; then
    scored_passed=$((scored_passed + 1))
  else
    echo "conformance: FAILED through toolwarden (2026-07-28 upstream): $sc"
    status=1
  fi
done
while read -r sc result; do
  if [ "$result" = pass ] && ! grep -qx "$sc pass" "$work/toolwarden-2026-upstream.results"; then
    echo "conformance: FAILED through toolwarden (2026-07-28 upstream): $sc passes directly"
    status=1
  fi
done <"$work/direct-2026.results"
echo "conformance: 2026-07-28 through toolwarden in front of a 2026-07-28 server:" \
     "$scored_passed/$n_scored scored scenarios"
((n_scored >= 37)) || { echo "conformance: the requirements list only $n_scored scenarios"; status=1; }

"$toolwarden" run --listen 127.0.0.1:0 -p "$here/policy.yaml" --state memory \
  --upstream "http://127.0.0.1:$fixture_port/mcp" 2>"$work/gw-2025.err" &
pids+=($!)
port=$(wait_for "$work/gw-2025.err" 'listening on http://127\.0\.0\.1:([0-9]+)/mcp')
run_2026 toolwarden-2026-over-2025 "http://127.0.0.1:$port/mcp"
expected=$(grep -vE '^(#|$)' "$here/expected-2026-over-2025.txt" | awk '{print $1, $2}' | sort -u)
if [ "$expected" != "$(cat "$work/toolwarden-2026-over-2025.results")" ]; then
  echo "conformance: FAILED: 2026-07-28 clients in front of a 2025-era server differ from" \
       "expected-2026-over-2025.txt:"
  diff <(echo "$expected") "$work/toolwarden-2026-over-2025.results" || true
  status=1
fi
echo "conformance: 2026-07-28 through toolwarden in front of a 2025-era server:" \
     "$(grep -c ' pass$' "$work/toolwarden-2026-over-2025.results") scenarios pass, as expected"

total=$((stdio_passed + http_passed))
echo "$total passed, $((stdio_failed + http_failed)) failed"
exit $status
