#!/usr/bin/env bash
# One contract drift schedule run: POST {BASE_URL}{API_PREFIX}/system/contracts/drift/schedule-run.
# Operator's guide: docs/runbook.md. Needs bash, curl (7.71 or later) and python3.
#
# Exit codes: 0 success; 1 the API call failed (or its trigger failed); 2 bad input, before any
# request; 3 the anomaly notification failed and an escalation pattern was raised.
set -euo pipefail

NAME="run_contract_drift_schedule"
BASE_URL="${BASE_URL:-}"
API_PREFIX="${API_PREFIX:-/api}"
API_KEY="${API_KEY:-}"
ORG_ID="${ORG_ID:-}"
MAX_RETRIES="${MAX_RETRIES:-4}"
RETRY_MAX_SECONDS="${RETRY_MAX_SECONDS:-120}"
REQUEST_TIMEOUT_SECONDS="${REQUEST_TIMEOUT_SECONDS:-300}"

bad_input() { echo "$NAME: $*" >&2; exit 2; }
is_bool() { [[ "$1" == "true" || "$1" == "false" ]]; }
is_uint() { [[ "$1" =~ ^[0-9]+$ ]]; }
is_uuid() { [[ "$1" =~ ^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$ ]]; }

validate() {
  command -v curl >/dev/null || bad_input "curl is required"
  command -v python3 >/dev/null || bad_input "python3 is required"
  [[ -n "$BASE_URL" ]] || bad_input "BASE_URL is required (e.g. http://127.0.0.1:8001)"
  [[ "$BASE_URL" =~ ^https?://[^[:space:]]+$ ]] || bad_input "BASE_URL must be an http(s) URL, got '$BASE_URL'"
  [[ "$API_PREFIX" =~ ^/[A-Za-z0-9/_.-]*$ ]] || bad_input "API_PREFIX must start with '/', got '$API_PREFIX'"
  [[ -n "$API_KEY" ]] || bad_input "API_KEY is required (an admin API key)"
  [[ -n "$ORG_ID" ]] || bad_input "ORG_ID is required"
  is_uuid "$ORG_ID" || bad_input "ORG_ID must be a UUID, got '$ORG_ID'"
  local var
  for var in DRY_RUN FORCE FORCE_NOTIFY; do
    [[ -z "${!var:-}" ]] || is_bool "${!var}" || bad_input "$var must be true or false, got '${!var}'"
  done
  for var in WINDOW_MINUTES SUMMARY_WINDOW_DAYS LIMIT MAX_RETRIES RETRY_MAX_SECONDS REQUEST_TIMEOUT_SECONDS; do
    [[ -z "${!var:-}" ]] || is_uint "${!var}" || bad_input "$var must be a whole number, got '${!var}'"
  done
  [[ -z "${WINDOW_MINUTES:-}" ]] || (( 10#$WINDOW_MINUTES >= 5 && 10#$WINDOW_MINUTES <= 10080 )) \
    || bad_input "WINDOW_MINUTES must be 5-10080, got '$WINDOW_MINUTES'"
  [[ -z "${SUMMARY_WINDOW_DAYS:-}" ]] || (( 10#$SUMMARY_WINDOW_DAYS >= 1 && 10#$SUMMARY_WINDOW_DAYS <= 365 )) \
    || bad_input "SUMMARY_WINDOW_DAYS must be 1-365, got '$SUMMARY_WINDOW_DAYS'"
  [[ -z "${LIMIT:-}" ]] || (( 10#$LIMIT >= 1 && 10#$LIMIT <= 1000 )) || bad_input "LIMIT must be 1-1000, got '$LIMIT'"
  [[ -z "${MIN_DRIFT:-}" || "$MIN_DRIFT" =~ ^(warning|breaking|invalid)$ ]] \
    || bad_input "MIN_DRIFT must be warning, breaking or invalid, got '$MIN_DRIFT'"
  [[ -z "${SCHEDULE_NAME:-}" || "$SCHEDULE_NAME" =~ ^[a-z0-9][a-z0-9_.-]{0,63}$ ]] \
    || bad_input "SCHEDULE_NAME must match ^[a-z0-9][a-z0-9_.-]{0,63}\$, got '$SCHEDULE_NAME'"
  [[ -z "${AGENT_ID:-}" ]] || is_uuid "$AGENT_ID" || bad_input "AGENT_ID must be a UUID, got '$AGENT_ID'"
  [[ -z "${IDEMPOTENCY_KEY:-}" || "$IDEMPOTENCY_KEY" =~ ^[[:print:]]{1,255}$ ]] \
    || bad_input "IDEMPOTENCY_KEY must be 1-255 printable characters"
}

# The body (unset optional values left out, so the policy decides) and its deterministic key:
# sha256 of the canonical body and the current window (WINDOW_MINUTES, else the policy's window in
# KEY_WINDOW_MINUTES), so a re-run of the same job replays.
body_and_key() {
  python3 - <<'PY'
import hashlib, json, os, time
env = os.environ.get
body = {"org_id": env("ORG_ID")}
for name, field, kind in [("SCHEDULE_NAME", "schedule_name", str), ("WINDOW_MINUTES", "window_minutes", int),
                          ("SUMMARY_WINDOW_DAYS", "summary_window_days", int), ("DRY_RUN", "dry_run", bool),
                          ("FORCE", "force", bool), ("FORCE_NOTIFY", "force_notify", bool),
                          ("AGENT_ID", "agent_id", str), ("MIN_DRIFT", "min_drift", str), ("LIMIT", "limit", int)]:
    value = env(name) or None
    if value is not None:
        body[field] = value == "true" if kind is bool else kind(value)
canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
size = int(body.get("window_minutes") or env("KEY_WINDOW_MINUTES") or 1440) * 60
window_start = int(time.time()) // size * size
key = env("IDEMPOTENCY_KEY") or "drift-schedule-" + hashlib.sha256(f"{canonical}|{window_start}".encode()).hexdigest()
print(canonical)
print(key)
PY
}

unreachable() {
  echo "$NAME: API call failed: could not reach $1 (curl exit $2 after $MAX_RETRIES retries); check the API (uvicorn.log) and BASE_URL" >&2
  exit 1
}

# The window the server will use when WINDOW_MINUTES is unset: the org policy's schedule_window_minutes.
policy_window() {
  local workdir="$1" url status rc=0
  url="${BASE_URL%/}${API_PREFIX%/}/system/contracts/drift-policy"
  status="$(curl -sS -G "$url" --data-urlencode "org_id=$ORG_ID" -H @"$workdir/auth" -o "$workdir/policy.json" \
    -w '%{http_code}' "${RETRY_OPTS[@]}")" || rc=$?
  (( rc == 0 )) || unreachable "$url" "$rc"
  python3 - "$status" "$workdir/policy.json" "$NAME" <<'PY'
import json, sys
status, path, name = int(sys.argv[1]), sys.argv[2], sys.argv[3]
try:
    doc = json.load(open(path))
except (OSError, ValueError):
    doc = None
if 200 <= status < 300 and isinstance(doc, dict) and doc.get("ok"):
    print(int(doc["data"]["schedule_window_minutes"]))
    sys.exit(0)
err = (doc.get("error") or {}) if isinstance(doc, dict) else {}
print(f"{name}: API call failed: HTTP {status} {err.get('code', 'NO_ENVELOPE')}: "
      f"{err.get('message', 'unexpected response')} (reading the drift policy's window)", file=sys.stderr)
sys.exit(1)
PY
}

# Reads the response; prints code, signals and message separated by \x1f and writes the step summary.
signals() {
  python3 - "$1" "$2" <<'PY'
import json, os, sys
status, path = int(sys.argv[1]), sys.argv[2]
try:
    doc = json.load(open(path))
except (OSError, ValueError):
    doc = None
def fmt(v):
    return "null" if v is None else (str(v).lower() if isinstance(v, bool) else (v.get("id", "set") if isinstance(v, dict) else str(v)))
if not (200 <= status < 300) or not isinstance(doc, dict) or not doc.get("ok"):
    err = (doc or {}).get("error") or {} if isinstance(doc, dict) else {}
    print(f"1\x1f\x1fAPI call failed: HTTP {status} {err.get('code', 'NO_ENVELOPE')}: {err.get('message', 'unexpected response')}")
    sys.exit(0)
data = doc["data"]
trigger, notify = data.get("trigger") or {}, data.get("notify") or {}
notification = notify.get("notification") or {}
sig = {"data.trigger.executed": trigger.get("executed"), "data.trigger.deduped": trigger.get("deduped"),
       "data.notify.anomaly_detected": notify.get("anomaly_detected"), "data.notify.notified": notify.get("notified"),
       "data.notify.notification.sent": notification.get("sent") if notify.get("notification") else None,
       "data.notify.escalation_pattern": notify.get("escalation_pattern")}
line = " ".join(f"{k.removeprefix('data.')}={fmt(v)}" for k, v in sig.items())
line += f" trigger.outcome={trigger.get('outcome')} notify.outcome={notify.get('outcome')}"
code, message = 0, "schedule run ok"
if notification and notification.get("sent") is False and notify.get("escalation_pattern"):
    code, message = 3, f"notification failed ({notification.get('error')}); escalation pattern {notify['escalation_pattern'].get('id')}"
elif trigger.get("outcome") == "failed":
    code, message = 1, f"trigger failed: {trigger.get('error')}"
summary_file = os.environ.get("GITHUB_STEP_SUMMARY")
if summary_file:
    with open(summary_file, "a") as out:
        out.write(f"### Contract drift schedule run ({data.get('schedule_name')}, dry_run={fmt(data.get('dry_run'))})\n\n")
        out.write("| signal | value |\n|---|---|\n")
        out.writelines(f"| `{k}` | {fmt(v)} |\n" for k, v in sig.items())
        out.write(f"\nResult: {message}\n")
print(f"{code}\x1f{line}\x1f{message}")
PY
}

main() {
  validate
  local lines body key url workdir status window="" rc=0
  # curl retries every network error (refused, reset, empty reply, timeout) and 408/429/500/502/503/504
  # with exponential backoff, the same key each time.
  RETRY_OPTS=(--retry "$MAX_RETRIES" --retry-all-errors --retry-connrefused --retry-max-time "$RETRY_MAX_SECONDS"
    --max-time "$REQUEST_TIMEOUT_SECONDS")
  workdir="$(mktemp -d)"
  trap 'rm -rf "$workdir"' EXIT
  printf '%s' "$API_KEY" | sed 's/^/Authorization: Bearer /' >"$workdir/auth"
  if [[ -z "${IDEMPOTENCY_KEY:-}" && -z "${WINDOW_MINUTES:-}" ]]; then
    window="$(policy_window "$workdir")" || exit 1
  fi
  lines="$(KEY_WINDOW_MINUTES="$window" body_and_key)"
  body="$(head -n1 <<<"$lines")"
  key="$(tail -n1 <<<"$lines")"
  url="${BASE_URL%/}${API_PREFIX%/}/system/contracts/drift/schedule-run"
  echo "$NAME: POST $url (Idempotency-Key: $key)" >&2
  status="$(curl -sS -X POST "$url" -H @"$workdir/auth" -H "Content-Type: application/json" \
    -H "Idempotency-Key: $key" --data-binary "$body" -o "$workdir/response.json" -D "$workdir/headers" \
    -w '%{http_code}' "${RETRY_OPTS[@]}")" || rc=$?
  (( rc == 0 )) || unreachable "$url" "$rc"
  [[ -z "${OUTPUT_FILE:-}" ]] || cp "$workdir/response.json" "$OUTPUT_FILE"
  cat "$workdir/response.json"; echo
  grep -qi '^idempotent-replayed: *true' "$workdir/headers" && echo "$NAME: replayed the first response for this key" >&2
  local result code line message
  result="$(signals "$status" "$workdir/response.json")"
  IFS=$'\x1f' read -r code line message <<<"$result"
  [[ -z "$line" ]] || echo "signals: $line"
  echo "$NAME: $message" >&2
  exit "$code"
}

main "$@"
