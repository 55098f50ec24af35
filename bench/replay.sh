#!/usr/bin/env bash
# Replay speed: `toolwarden replay --json` of N recorded calls (default 1,000,000) against the
# candidate policy bench/policies/replay-candidate.yaml, from a real audit store (the gateway's
# own SQLite schema, filled by SQL: 50 grants, 500 sessions, six tools over seven days, every
# record with its redacted argument values and the tool's class). Prints each run's wall time
# and the median of ROUNDS (default 3).
#   bench/replay.sh [RECORDS] [ROUNDS]
set -euo pipefail
source "$(dirname "$0")/lib.sh"
records=${1:-1000000} rounds=${2:-3}
tw=$build/toolwarden
db=$tmp/audit.db
"$tw" audit --state "sqlite:$db" --limit 1 > /dev/null  # the gateway makes the store: its schema
t0=$(( ($(date +%s) - 7 * 86400) * 1000 ))
step=$(( 7 * 86400 * 1000 / records ))
sqlite3 "$db" > /dev/null <<SQL
PRAGMA journal_mode=WAL;
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < $records - 1),
calls AS (SELECT i, CASE WHEN i % 20 < 8 THEN 'query' WHEN i % 20 < 12 THEN 'list_tables'
                         WHEN i % 20 < 15 THEN 'insert_rows' WHEN i % 20 < 17 THEN 'refund'
                         WHEN i % 20 < 19 THEN 'export' ELSE 'delete_rows' END AS tool FROM n)
INSERT INTO audit(id, ts_ms, grant_name, session, server, tool, decision, rule, reason, arg_keys,
                  args_digest, args, policy_version, outcome, latency_ms, shadow, tool_class)
SELECT printf('%032x', i), $t0 + i * $step, 'agent-' || (i * 7 % 50), 's' || (i % 500), 'db', tool,
  CASE WHEN tool = 'delete_rows' AND i % 3 = 0 THEN 'deny' WHEN tool = 'export' THEN 'approval' ELSE 'allow' END,
  'tools.' || tool, '',
  CASE tool WHEN 'query' THEN '["sql"]' WHEN 'insert_rows' THEN '["table","rows"]'
            WHEN 'refund' THEN '["amount","currency","charge","api_key"]' WHEN 'list_tables' THEN '[]'
            ELSE '["table","where"]' END,
  printf('%064x', i),
  CASE tool
    WHEN 'query' THEN json_object('sql', CASE WHEN i % 97 = 0 THEN 'DELETE FROM orders WHERE id = ' || i
                                              ELSE 'SELECT * FROM orders WHERE customer_id = ' || (i % 9973) END)
    WHEN 'insert_rows' THEN json_object('table', CASE WHEN i % 50 = 0 THEN 'audit_log' ELSE 'events' END,
                                        'rows', json_array(json_object('id', i, 'kind', 'click')))
    WHEN 'refund' THEN json_object('amount', i % 500 + 1, 'currency', 'usd', 'charge', 'ch_' || i,
                                   'api_key', '[redacted]')
    WHEN 'list_tables' THEN '{}'
    ELSE json_object('table', 'orders', 'where', 'id < ' || i) END,
  'v0', CASE WHEN tool = 'delete_rows' AND i % 3 = 0 THEN 'not_forwarded' ELSE 'ok' END, 3, NULL,
  CASE tool WHEN 'delete_rows' THEN 'Destructive/High' WHEN 'refund' THEN 'Financial/High'
            WHEN 'insert_rows' THEN 'Write/Medium' WHEN 'export' THEN 'Read/Medium' ELSE 'Read/Low' END
FROM calls;
SQL
echo "audit store: $records records, $(du -h "$db" | cut -f1)"
times=()
for round in $(seq 1 "$rounds"); do
  start=$(date +%s.%N)
  "$tw" replay --policy "$here/policies/replay-candidate.yaml" --state "sqlite:$db" --since 8d --json > "$tmp/out.json"
  end=$(date +%s.%N)
  t=$(echo "$end - $start" | bc)
  times+=("$t")
  echo "run $round: ${t}s $(node -e 'const r=require(process.argv[1]);console.log(`records=${r.records} unchanged=${r.unchanged} changed=${JSON.stringify(r.changed)} undecidable=${r.undecidable}`)' "$tmp/out.json")"
done
printf '%s\n' "${times[@]}" | sort -g | awk '{v[NR] = $1} END {printf "median of %d: %.2fs (%.2f-%.2f)\n", NR, v[int((NR + 1) / 2)], v[1], v[NR]}'
