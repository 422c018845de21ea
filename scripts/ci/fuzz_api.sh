#!/usr/bin/env bash
# Fuzz the published OpenAPI document with schemathesis against a live `driftwarden serve` on
# 127.0.0.1: no 5xx, every response matches its documented schema, every error is an envelope.
#
# Environment:
#   FUZZ_DATABASE_URL   database to serve (default: a fresh SQLite file in a temp dir). A Postgres
#                       URL must name an empty, dedicated database: it is migrated first.
#   FUZZ_MAX_EXAMPLES   test cases per operation and phase (default 30), FUZZ_SEED (default 20261125)
#   FUZZ_PORT           port to serve on (default: a free one)
#   FUZZ_REPORT_DIR     where the JUnit report and server log go (default: the temp dir)
set -euo pipefail
cd "$(dirname "$0")/../.."

work="$(mktemp -d -t driftwarden-fuzz.XXXXXX)"
report_dir="${FUZZ_REPORT_DIR:-$work}"
mkdir -p "$report_dir"
report_dir="$(cd "$report_dir" && pwd)"
export DATABASE_URL="${FUZZ_DATABASE_URL:-sqlite:///${work}/fuzz.db}"
unset SUPABASE_DB_URL
port="${FUZZ_PORT:-$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
server_pid=""

cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid"
    wait "$server_pid" 2>/dev/null || true
  fi
  [ -n "${FUZZ_REPORT_DIR:-}" ] || rm -rf "$work"
}
trap cleanup EXIT

.venv/bin/driftwarden db upgrade >/dev/null
# An org-scoped admin key: every route is reachable without naming org_id.
credentials="$(.venv/bin/driftwarden bootstrap --org-name fuzz)"
api_key="$(printf '%s\n' "$credentials" | sed -n 's/^API_KEY=//p')"
export FUZZ_ORG_ID="$(printf '%s\n' "$credentials" | sed -n 's/^ORG_ID=//p')"
[ -n "$api_key" ] || { echo "fuzz_api.sh: bootstrap printed no API_KEY" >&2; exit 1; }

.venv/bin/driftwarden serve --host 127.0.0.1 --port "$port" >"$report_dir/serve.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:${port}/readyz" >/dev/null 2>&1 && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$report_dir/serve.log" >&2; exit 1; }
  sleep 0.2
done

# Excluded checks, and why (docs/deployment.md, "Fuzzing"):
#  positive_data_acceptance: schema-valid input is legitimately refused by business rules the
#    schema cannot express (ids that do not exist -> 404, duplicates -> 409, wrong org -> 403).
# Added check: driftwarden_envelope (scripts/ci/fuzz_hooks.py) - the envelope on every response.
status=0
repo="$PWD"
# Run from the temp dir: schemathesis keeps a cache (.schemathesis/) in its working directory.
(cd "$work" && PYTHONPATH="$repo:$repo/scripts/ci" SCHEMATHESIS_HOOKS=fuzz_hooks "$repo/.venv/bin/schemathesis" --no-color run "http://127.0.0.1:${port}/openapi.json" \
  --checks all --exclude-checks "${FUZZ_EXCLUDE_CHECKS:-positive_data_acceptance}" \
  -H "Authorization: Bearer ${api_key}" \
  --max-examples "${FUZZ_MAX_EXAMPLES:-30}" --seed "${FUZZ_SEED:-20261125}" \
  --request-timeout 20 --workers 2 --generation-database none \
  --report junit --report-junit-path "$report_dir/schemathesis-junit.xml") || status=$?
if grep -q "Traceback" "$report_dir/serve.log"; then
  echo "fuzz_api.sh: the server logged tracebacks:" >&2
  grep -B2 -A30 "Traceback" "$report_dir/serve.log" | head -200 >&2
  status=1
fi
exit "$status"
