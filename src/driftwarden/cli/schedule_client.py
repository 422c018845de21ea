"""The schedule-run HTTP client: what scripts/run_contract_drift_schedule.sh does, in Python.

Same environment variables, same validation (exit 2 before any request), same deterministic
Idempotency-Key (per window and per change of the org's policy), same retries with the same key,
same exit codes (docs/reference/operations.md, the schedule script).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import httpx
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    retry_if_result,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
)

EXIT_OK, EXIT_API_FAILED, EXIT_BAD_INPUT, EXIT_NOTIFY_FAILED, EXIT_DISABLED = 0, 1, 2, 3, 4
RETRY_STATUSES = frozenset({429}) | frozenset(range(500, 600))
IN_PROGRESS_WAIT_SECONDS = 5.0  # a 409 IDEMPOTENCY_IN_PROGRESS without Retry-After
MAX_DIGITS = 9  # numbers without a range: checked as strings before any arithmetic
DISABLED = {"policy_disabled": "enabled", "promotion_disabled": "promote_to_patterns"}
_OPTIONAL = (("SCHEDULE_NAME", "schedule_name", str), ("WINDOW_MINUTES", "window_minutes", int),
             ("SUMMARY_WINDOW_DAYS", "summary_window_days", int), ("DRY_RUN", "dry_run", bool),
             ("FORCE", "force", bool), ("FORCE_NOTIFY", "force_notify", bool),
             ("AGENT_ID", "agent_id", str), ("ESCALATION_AGENT_ID", "escalation_agent_id", str),
             ("MIN_DRIFT", "min_drift", str), ("LIMIT", "limit", int))
_RANGES = {"WINDOW_MINUTES": (5, 10080), "SUMMARY_WINDOW_DAYS": (1, 365), "LIMIT": (1, 1000)}


class InputError(ValueError):
    """Bad configuration, reported before any request is made."""


@dataclass(frozen=True)
class RunConfig:
    url: str
    api_key: str
    body: dict[str, Any]
    idempotency_key: str | None  # None: derived at call time from the policy's window and change
    max_retries: int = 4
    retry_max_seconds: float = 120.0
    timeout_seconds: float = 300.0
    disabled_ok: bool = False

    @property
    def policy_url(self) -> str:
        """Where the org's drift policy (its window and last change) is read."""
        return self.url.removesuffix("/drift/schedule-run") + "/drift-policy"


def _uuid(name: str, value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError as exc:
        raise InputError(f"{name} must be a UUID, got {value!r}") from exc


def whole_number(name: str, value: str, bounds: tuple[int, int] | None = None) -> int:
    """ASCII digits, their count checked before int() (as the script must, against overflow)."""
    if not re.fullmatch(r"[0-9]+", value):
        raise InputError(f"{name} must be a whole number, got {value!r}")
    digits = value.lstrip("0") or "0"
    if bounds is None:
        if len(digits) > MAX_DIGITS:
            raise InputError(f"{name} must have at most {MAX_DIGITS} digits, got {value!r}")
        return int(digits)
    low, high = bounds
    if len(digits) > len(str(high)) or not low <= int(digits) <= high:
        raise InputError(f"{name} must be {low}-{high}, got {value!r}")
    return int(digits)


def _boolean(name: str, value: str) -> bool:
    if value not in ("true", "false"):
        raise InputError(f"{name} must be true or false, got {value!r}")
    return value == "true"


def _optional(name: str, value: str, kind: type) -> Any:
    if kind is bool:
        return _boolean(name, value)
    if kind is int:
        return whole_number(name, value, _RANGES[name])
    if name == "MIN_DRIFT" and value not in ("warning", "breaking", "invalid"):
        raise InputError(f"MIN_DRIFT must be warning, breaking or invalid, got {value!r}")
    if name == "SCHEDULE_NAME" and not re.fullmatch(r"[a-z0-9][a-z0-9_.-]{0,63}", value):
        raise InputError(f"SCHEDULE_NAME must match ^[a-z0-9][a-z0-9_.-]{{0,63}}$, got {value!r}")
    if name.endswith("AGENT_ID"):
        _uuid(name, value)
    return value


def request_body(env: Mapping[str, str]) -> dict[str, Any]:
    """The JSON body: ORG_ID and every optional variable that is set (the policy has the rest)."""
    org_id = env.get("ORG_ID") or ""
    if not org_id:
        raise InputError("ORG_ID is required")
    _uuid("ORG_ID", org_id)
    body: dict[str, Any] = {"org_id": org_id}
    for name, field, kind in _OPTIONAL:
        if env.get(name):
            body[field] = _optional(name, env[name], kind)
    return body


def idempotency_key(body: Mapping[str, Any], *, now: float, window_minutes: int | None = None,
                    policy_updated_at: str | None = None) -> str:
    """sha256 of the canonical body, the current window and the policy's last change.

    A re-run replays; another request, or the same one after the policy changed, does not. The
    window is the body's `window_minutes`, else `window_minutes` (the policy's, which the server
    uses).
    """
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    size = int(body.get("window_minutes") or window_minutes or 1440) * 60
    window_start = int(now) // size * size
    material = f"{canonical}|{window_start}|{policy_updated_at or ''}"
    return "drift-schedule-" + hashlib.sha256(material.encode()).hexdigest()


def config_from_env(env: Mapping[str, str]) -> RunConfig:
    """Validate the runbook's variables; raises InputError naming the bad one."""
    base_url, prefix = env.get("BASE_URL") or "", env.get("API_PREFIX") or "/api"
    api_key = env.get("API_KEY") or ""
    if not base_url:
        raise InputError("BASE_URL is required (e.g. http://127.0.0.1:8001)")
    if not re.fullmatch(r"https?://\S+", base_url):
        raise InputError(f"BASE_URL must be an http(s) URL, got {base_url!r}")
    if not re.fullmatch(r"/[A-Za-z0-9/_.-]*", prefix):
        raise InputError(f"API_PREFIX must start with '/', got {prefix!r}")
    if not api_key:
        raise InputError("API_KEY is required (an admin API key)")
    body = request_body(env)
    disabled_ok = bool(env.get("DISABLED_OK")) and _boolean("DISABLED_OK", env["DISABLED_OK"])
    key = env.get("IDEMPOTENCY_KEY") or None
    if key is not None and not re.fullmatch(r"[ -~]{1,255}", key):
        raise InputError("IDEMPOTENCY_KEY must be 1-255 printable characters")
    bounds = {name: whole_number(name, env.get(name) or default)
              for name, default in (("MAX_RETRIES", "4"), ("RETRY_MAX_SECONDS", "120"),
                                    ("REQUEST_TIMEOUT_SECONDS", "300"))}
    url = f"{base_url.rstrip('/')}{prefix.rstrip('/')}/system/contracts/drift/schedule-run"
    return RunConfig(url=url, api_key=api_key, body=body, idempotency_key=key,
                     max_retries=bounds["MAX_RETRIES"],
                     retry_max_seconds=bounds["RETRY_MAX_SECONDS"],
                     timeout_seconds=bounds["REQUEST_TIMEOUT_SECONDS"], disabled_ok=disabled_ok)


@dataclass(frozen=True)
class RunResult:
    status: int | None
    document: Any
    replayed: bool
    error: str | None = None


def _error_code(response: httpx.Response) -> str | None:
    try:
        return (response.json().get("error") or {}).get("code")
    except (ValueError, AttributeError):
        return None


def _retry_status(response: httpx.Response) -> bool:
    """5xx and 429, and a 409 whose first request with this key is still running."""
    if response.status_code == 409:
        return _error_code(response) == "IDEMPOTENCY_IN_PROGRESS"
    return response.status_code in RETRY_STATUSES


def _last(state: RetryCallState) -> Any:
    """After the last attempt: the last response, or the last network error re-raised."""
    return state.outcome.result() if state.outcome else None  # type: ignore[union-attr]


def _waiter(config: RunConfig) -> Callable[[RetryCallState], float]:
    """Retry-After when the server sends it (else 5 s for a 409, else backoff), within the budget."""
    backoff = wait_exponential(multiplier=1, max=30)

    def wait(state: RetryCallState) -> float:
        outcome = state.outcome
        response = None if outcome is None or outcome.failed else outcome.result()
        hinted: float | None = None
        if isinstance(response, httpx.Response):
            header = response.headers.get("retry-after", "")
            if re.fullmatch(r"[0-9]{1,6}", header):
                hinted = float(header)
            elif response.status_code == 409:
                hinted = IN_PROGRESS_WAIT_SECONDS
        if hinted is None:
            return backoff(state)
        left = config.retry_max_seconds - (state.seconds_since_start or 0.0)
        return max(0.0, min(hinted, left))

    return wait


def _retrying(config: RunConfig, sleep: Callable[[float], None]) -> Retrying:
    return Retrying(
        retry=retry_if_exception_type(httpx.TransportError) | retry_if_result(_retry_status),
        stop=(stop_after_attempt(config.max_retries + 1)
              | stop_after_delay(config.retry_max_seconds)),
        wait=_waiter(config), retry_error_callback=_last, sleep=sleep)


def _read_policy(http: httpx.Client, config: RunConfig,
                 sleep: Callable[[float], None]) -> tuple[int, str | None] | RunResult:
    """The policy's window (the one the server uses) and last change, or the failed read."""
    response = _retrying(config, sleep)(http.get, config.policy_url,
                                        params={"org_id": config.body["org_id"]},
                                        headers={"Authorization": f"Bearer {config.api_key}"})
    result = _result(response)
    if not is_success(result):
        return result
    data = result.document["data"]
    return int(data["schedule_window_minutes"]), data.get("updated_at")


def _result(response: httpx.Response) -> RunResult:
    try:
        document = response.json()
    except ValueError:
        document = None
    return RunResult(status=response.status_code, document=document,
                     replayed=response.headers.get("idempotent-replayed") == "true")


def call(config: RunConfig, *, transport: httpx.BaseTransport | None = None,
         sleep: Callable[[float], None] = time.sleep, now: float | None = None,
         announce: Callable[[str, str], None] | None = None) -> RunResult:
    """POST once, retrying (network errors, 5xx, 429, 409 in progress) with the same key.

    Without a key, it is derived first from the policy (read with the same retries).
    """
    with httpx.Client(timeout=config.timeout_seconds, transport=transport) as http:
        try:
            key = config.idempotency_key
            if key is None:
                policy = _read_policy(http, config, sleep)
                if isinstance(policy, RunResult):
                    return policy
                key = idempotency_key(config.body, now=time.time() if now is None else now,
                                      window_minutes=policy[0], policy_updated_at=policy[1])
            if announce is not None:
                announce(config.url, key)
            headers = {"Authorization": f"Bearer {config.api_key}", "Idempotency-Key": key}
            response = _retrying(config, sleep)(http.post, config.url, json=config.body,
                                                headers=headers)
        except httpx.TransportError as exc:
            return RunResult(status=None, document=None, replayed=False,
                             error=f"could not reach {config.url} ({type(exc).__name__}) after "
                                   f"{config.max_retries} retries; check the API (uvicorn.log) "
                                   "and BASE_URL")
    return _result(response)


def is_success(result: RunResult) -> bool:
    """A 2xx with an ok envelope: the signals can be read."""
    doc = result.document
    return (result.status is not None and 200 <= result.status < 300 and isinstance(doc, dict)
            and bool(doc.get("ok")))


def disabled_warning(trigger_outcome: str, policy_url: str, org_id: str) -> str:
    """What an operator reads when nothing ran: why, and the command that enables it."""
    body = json.dumps({"org_id": org_id, DISABLED[trigger_outcome]: True})
    return (f"nothing ran: the policy is disabled (trigger.outcome={trigger_outcome}); enable it "
            f"with: curl -X POST '{policy_url}' -H \"Authorization: Bearer $API_KEY\" "
            f"-H 'Content-Type: application/json' -d '{body}'")


def outcome(result: RunResult, config: RunConfig | None = None) -> tuple[int, str]:
    """Exit code and a one-line message, as the script decides them."""
    if result.status is None:
        return EXIT_API_FAILED, f"API call failed: {result.error}"
    doc = result.document if isinstance(result.document, dict) else {}
    if not 200 <= result.status < 300 or not doc.get("ok"):
        error = doc.get("error") or {}
        return EXIT_API_FAILED, (f"API call failed: HTTP {result.status} "
                                 f"{error.get('code', 'NO_ENVELOPE')}: "
                                 f"{error.get('message', 'unexpected response')}")
    data = doc["data"]
    notification = (data.get("notify") or {}).get("notification") or {}
    escalation = (data.get("notify") or {}).get("escalation_pattern")
    trigger = data.get("trigger") or {}
    if notification and notification.get("sent") is False and escalation:
        return EXIT_NOTIFY_FAILED, (f"notification failed ({notification.get('error')}); "
                                    f"escalation pattern {escalation.get('id')}")
    if trigger.get("outcome") == "failed":
        return EXIT_API_FAILED, f"trigger failed: {trigger.get('error')}"
    if trigger.get("outcome") in DISABLED:
        policy_url, org_id = ((config.policy_url, config.body["org_id"]) if config is not None
                              else ("<BASE_URL><API_PREFIX>/system/contracts/drift-policy",
                                    str(data.get("org_id"))))
        message = disabled_warning(trigger["outcome"], policy_url, org_id)
        return (EXIT_OK if config is not None and config.disabled_ok else EXIT_DISABLED), message
    return EXIT_OK, "schedule run ok"
