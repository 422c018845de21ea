#!/usr/bin/env bash
# .github/workflows/contract-drift-schedule.yml, replayed on this machine step by step: install,
# `driftwarden db upgrade` on a fresh PostgreSQL database (created here, dropped at the end), the
# API via `driftwarden serve` on a free port logging to uvicorn.log, the /readyz wait, the schedule
# script, then the outbox drain. In place of the workflow's secrets it bootstraps an org with its
# schedule enabled. Everything it starts is stopped; every wait is bounded.
#
# Needs: a PostgreSQL server (PGHOST/PGPORT/PGUSER, default postgres@127.0.0.1:5432) and psql.
set -euo pipefail
cd "$(dirname "$0")/../.."

PGHOST="${PGHOST:-127.0.0.1}"
PGPORT="${PGPORT:-5432}"
PGUSER="${PGUSER:-postgres}"
export PGHOST PGPORT PGUSER
db="driftwarden_replay_$$"
workdir="$(mktemp -d)"
server_pid=""
created_db=""

psql_admin() { PGOPTIONS="-c client_min_messages=warning" psql -d postgres -v ON_ERROR_STOP=1 -qc "$1" >/dev/null; }

cleanup() {
  local status=$?
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 1 40); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.25; done
    kill -KILL "$server_pid" 2>/dev/null || true
  fi
  [[ -z "$created_db" ]] || psql_admin "DROP DATABASE IF EXISTS ${db} WITH (FORCE)" || true
  if (( status != 0 )) && [[ -f "$workdir/uvicorn.log" ]]; then
    echo "--- uvicorn.log (last 40 lines)" >&2
    tail -n 40 "$workdir/uvicorn.log" >&2
  fi
  rm -rf "$workdir"
  exit "$status"
}
trap cleanup EXIT

free_port() { .venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

echo "== Install driftwarden"
make install

echo "== Migrate the database (fresh: ${db})"
psql_admin "CREATE DATABASE ${db}"
created_db=1
export SUPABASE_DB_URL="postgresql://${PGUSER}@${PGHOST}:${PGPORT}/${db}"
unset DATABASE_URL NOTIFY_WEBHOOK_URL NOTIFY_WEBHOOK_SECRET
.venv/bin/driftwarden db upgrade

echo "== The workflow's secrets: an org with its schedule enabled, and its admin key"
eval "$(.venv/bin/driftwarden bootstrap --org-name replay --enable-schedule)"
export ORG_ID API_KEY

echo "== Start the API"
port="$(free_port)"
export BASE_URL="http://127.0.0.1:${port}" API_PREFIX=/api
nohup .venv/bin/driftwarden serve --host 127.0.0.1 --port "$port" >"$workdir/uvicorn.log" 2>&1 &
server_pid=$!

echo "== Wait for /readyz"
ready=""
for _ in $(seq 1 60); do
  if curl -fsS --max-time 2 "$BASE_URL/readyz" >/dev/null 2>&1; then ready=1; break; fi
  kill -0 "$server_pid" 2>/dev/null || { echo "the API exited before it was ready" >&2; exit 1; }
  sleep 1
done
[[ -n "$ready" ]] || { echo "API not ready after 60 s" >&2; exit 1; }

echo "== Run the schedule"
export GITHUB_STEP_SUMMARY="$workdir/summary.md" OUTPUT_FILE="$workdir/schedule-run-response.json"
PATH="$PWD/.venv/bin:$PATH" timeout 300 ./scripts/run_contract_drift_schedule.sh
grep -q "Result: schedule run ok" "$GITHUB_STEP_SUMMARY"

echo "== Drain the outbox"
timeout 120 .venv/bin/driftwarden worker --once

echo "== uvicorn.log: every line has a timestamp"
if grep -vqE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}(\.[0-9]+)?Z ' "$workdir/uvicorn.log"; then
  echo "lines without a timestamp in uvicorn.log:" >&2
  grep -vE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}(\.[0-9]+)?Z ' "$workdir/uvicorn.log" | head -n 5 >&2
  exit 1
fi
grep -q 'POST /api/system/contracts/drift/schedule-run' "$workdir/uvicorn.log"
echo "== the workflow's steps all passed"
