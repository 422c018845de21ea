#!/usr/bin/env bash
# One contract drift schedule run: POST {BASE_URL}{API_PREFIX}/system/contracts/drift/schedule-run.
# Operator's guide: docs/runbook.md. Needs bash, curl (7.71 or later) and python3.
#
# Exit codes: 0 success; 1 the API call failed (or its trigger failed); 2 bad input, before any
# request; 3 the anomaly notification failed and an escalation pattern was raised; 4 nothing ran:
# the policy is disabled (policy_disabled or promotion_disabled; DISABLED_OK=true makes that 0).
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

# A number is checked as a string (digits only, and no more of them than the largest allowed value
# has) before any arithmetic: bash integers wrap at 2^63. Without a range: at most 9 digits.
check_number() {
  local name="$1" low="${2:-}" high="${3:-}" value="${!1:-}" digits
  [[ -n "$value" ]] || return 0
  [[ "$value" =~ ^[0-9]+$ ]] || bad_input "$name must be a whole number, got '$value'"
  digits="${value#"${value%%[!0]*}"}"
  digits="${digits:-0}"
  printf -v "$name" '%s' "$digits"
  if [[ -z "$high" ]]; then
    (( ${#digits} <= 9 )) || bad_input "$name must have at most 9 digits, got '$value'"
    return 0
  fi
  { (( ${#digits} <= ${#high} )) && (( digits >= low && digits <= high )); } \
    || bad_input "$name must be $low-$high, got '$value'"
}
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
  for var in DRY_RUN FORCE FORCE_NOTIFY DISABLED_OK; do
    [[ -z "${!var:-}" ]] || is_bool "${!var}" || bad_input "$var must be true or false, got '${!var}'"
  done
  check_number WINDOW_MINUTES 5 10080
  check_number SUMMARY_WINDOW_DAYS 1 365
  check_number LIMIT 1 1000
  [[ -z "${MIN_DRIFT:-}" || "$MIN_DRIFT" =~ ^(warning|breaking|invalid)$ ]] \
    || bad_input "MIN_DRIFT must be warning, breaking or invalid, got '$MIN_DRIFT'"
  [[ -z "${SCHEDULE_NAME:-}" || "$SCHEDULE_NAME" =~ ^[a-z0-9][a-z0-9_.-]{0,63}$ ]] \
    || bad_input "SCHEDULE_NAME must match ^[a-z0-9][a-z0-9_.-]{0,63}\$, got '$SCHEDULE_NAME'"
  for var in AGENT_ID ESCALATION_AGENT_ID; do
    [[ -z "${!var:-}" ]] || is_uuid "${!var}" || bad_input "$var must be a UUID, got '${!var}'"
  done
  [[ -z "${IDEMPOTENCY_KEY:-}" || "$IDEMPOTENCY_KEY" =~ ^[[:print:]]{1,255}$ ]] \
    || bad_input "IDEMPOTENCY_KEY must be 1-255 printable characters"
  for var in MAX_RETRIES RETRY_MAX_SECONDS REQUEST_TIMEOUT_SECONDS; do
    check_number "$var"
  done
}

# The body (unset optional values left out, so the policy decides) and its deterministic key:
# sha256 of the canonical body, the current window (WINDOW_MINUTES, else the policy's window in
# KEY_WINDOW_MINUTES) and the policy's last change (KEY_POLICY_UPDATED_AT), so a re-run of the same
# job replays while a run after the policy changed does not.
body_and_key() {
  python3 - <<'PY'
import hashlib, json, os, time
env = os.environ.get
body = {"org_id": env("ORG_ID")}
for name, field, kind in [("SCHEDULE_NAME", "schedule_name", str), ("WINDOW_MINUTES", "window_minutes", int),
                          ("SUMMARY_WINDOW_DAYS", "summary_window_days", int), ("DRY_RUN", "dry_run", bool),
                          ("FORCE", "force", bool), ("FORCE_NOTIFY", "force_notify", bool),
                          ("AGENT_ID", "agent_id", str),
                          ("ESCALATION_AGENT_ID", "escalation_agent_id", str),
                          ("MIN_DRIFT", "min_drift", str), ("LIMIT", "limit", int)]:
    value = env(name) or None
    if value is not None:
        body[field] = value == "true" if kind is bool else kind(value)
canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
size = int(body.get("window_minutes") or env("KEY_WINDOW_MINUTES") or 1440) * 60
window_start = int(time.time()) // size * size
material = f"{canonical}|{window_start}|{env('KEY_POLICY_UPDATED_AT') or ''}"
key = env("IDEMPOTENCY_KEY") or "drift-schedule-" + hashlib.sha256(material.encode()).hexdigest()
print(canonical)
print(key)
PY
}

unreachable() {
  echo "$NAME: API call failed: could not reach $1 (curl exit $2 after $MAX_RETRIES retries); check the API (uvicorn.log) and BASE_URL" >&2
  exit 1
}

# The org policy's schedule_window_minutes (the window the server uses when WINDOW_MINUTES is unset)
# and updated_at (its last change), on one line.
policy_read() {
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
    print(int(doc["data"]["schedule_window_minutes"]), doc["data"].get("updated_at") or "")
    sys.exit(0)
err = (doc.get("error") or {}) if isinstance(doc, dict) else {}
print(f"{name}: API call failed: HTTP {status} {err.get('code', 'NO_ENVELOPE')}: "
      f"{err.get('message', 'unexpected response')} (reading the drift policy)", file=sys.stderr)
sys.exit(1)
PY
}

# Reads the response; prints code, signals and message separated by \x1f and writes the step summary.
signals() {
  python3 - "$1" "$2" "$3" <<'PY'
import json, os, sys
status, path, policy_url = int(sys.argv[1]), sys.argv[2], sys.argv[3]
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
elif trigger.get("outcome") in ("policy_disabled", "promotion_disabled"):
    field = "enabled" if trigger["outcome"] == "policy_disabled" else "promote_to_patterns"
    enable = json.dumps({"org_id": os.environ["ORG_ID"], field: True})
    code = 0 if os.environ.get("DISABLED_OK") == "true" else 4
    message = (f"nothing ran: the policy is disabled (trigger.outcome={trigger['outcome']}); "
               f"enable it with: curl -X POST '{policy_url}' -H \"Authorization: Bearer $API_KEY\" "
               f"-H 'Content-Type: application/json' -d '{enable}'")
summary_file = os.environ.get("GITHUB_STEP_SUMMARY")
if summary_file:
    with open(summary_file, "a") as out:
        out.write(f"### Contract drift schedule run ({data.get('schedule_name')}, dry_run={fmt(data.get('dry_run'))})\n\n")
        out.write("| signal | value |\n|---|---|\n")
        out.writelines(f"| `{k}` | {fmt(v)} |\n" for k, v in sig.items())
        out.write(f"\nResult: {message}\n")
        if message.startswith("nothing ran"):
            out.write(f"\n> [!WARNING]\n> {message}\n")
if message.startswith("nothing ran"):
    message = "warning: " + message
print(f"{code}\x1f{line}\x1f{message}")
PY
}

# POSTs, and again while the first request with this key is still running (409
# IDEMPOTENCY_IN_PROGRESS), waiting its Retry-After (else 5 s), within MAX_RETRIES and
# RETRY_MAX_SECONDS. Sets STATUS.
post() {
  local url="$1" body="$2" key="$3" workdir="$4" tries=0 wait rc
  local deadline=$((SECONDS + RETRY_MAX_SECONDS))
  while :; do
    rc=0
    STATUS="$(curl -sS -X POST "$url" -H @"$workdir/auth" -H "Content-Type: application/json" \
      -H "Idempotency-Key: $key" --data-binary "$body" \
      -o "$workdir/response.json" -D "$workdir/headers" \
      -w '%{http_code}' "${RETRY_OPTS[@]}")" || rc=$?
    (( rc == 0 )) || unreachable "$url" "$rc"
    [[ "$STATUS" == 409 ]] && in_progress "$workdir/response.json" || return 0
    tries=$((tries + 1))
    (( tries <= MAX_RETRIES && SECONDS < deadline )) || return 0
    wait="$(grep -i '^retry-after:' "$workdir/headers" | tail -n1 | tr -d '\r' \
      | sed 's/^[^:]*: *//')" || true
    [[ "$wait" =~ ^[0-9]{1,6}$ ]] || wait=5
    (( wait <= deadline - SECONDS )) || wait=$((deadline - SECONDS))
    echo "$NAME: the first request with this key is still running" \
      "(409 IDEMPOTENCY_IN_PROGRESS); retrying in ${wait}s" >&2
    sleep "$wait"
  done
}

in_progress() {
  python3 -c 'import json, sys
try:
    sys.exit(0 if json.load(open(sys.argv[1]))["error"]["code"] == "IDEMPOTENCY_IN_PROGRESS" else 1)
except Exception:
    sys.exit(1)' "$1"
}

main() {
  validate
  local lines body key url policy policy_url workdir window="" updated=""
  # curl retries every network error (refused, reset, empty reply, timeout) and 408/429/500/502/503/504
  # with exponential backoff, the same key each time.
  RETRY_OPTS=(--retry "$MAX_RETRIES" --retry-all-errors --retry-connrefused --retry-max-time "$RETRY_MAX_SECONDS"
    --max-time "$REQUEST_TIMEOUT_SECONDS")
  workdir="$(mktemp -d)"
  trap 'rm -rf "$workdir"' EXIT
  printf '%s' "$API_KEY" | sed 's/^/Authorization: Bearer /' >"$workdir/auth"
  if [[ -z "${IDEMPOTENCY_KEY:-}" ]]; then
    policy="$(policy_read "$workdir")" || exit 1
    read -r window updated <<<"$policy"
  fi
  lines="$(KEY_WINDOW_MINUTES="$window" KEY_POLICY_UPDATED_AT="$updated" body_and_key)"
  body="$(head -n1 <<<"$lines")"
  key="$(tail -n1 <<<"$lines")"
  url="${BASE_URL%/}${API_PREFIX%/}/system/contracts/drift/schedule-run"
  echo "$NAME: POST $url (Idempotency-Key: $key)" >&2
  post "$url" "$body" "$key" "$workdir"
  [[ -z "${OUTPUT_FILE:-}" ]] || cp "$workdir/response.json" "$OUTPUT_FILE"
  cat "$workdir/response.json"; echo
  grep -qi '^idempotent-replayed: *true' "$workdir/headers" && echo "$NAME: replayed the first response for this key" >&2
  local result code line message
  policy_url="${BASE_URL%/}${API_PREFIX%/}/system/contracts/drift-policy"
  result="$(signals "$STATUS" "$workdir/response.json" "$policy_url")"
  IFS=$'\x1f' read -r code line message <<<"$result"
  [[ -z "$line" ]] || echo "signals: $line"
  echo "$NAME: $message" >&2
  exit "$code"
}

main "$@"
