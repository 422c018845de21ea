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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from driftwarden.cli.schedule_input import (
    InputError,
    boolean,
    request_body,
    whole_number,
)
from driftwarden.cli.schedule_retry import retrying

EXIT_OK, EXIT_API_FAILED, EXIT_BAD_INPUT, EXIT_NOTIFY_FAILED, EXIT_DISABLED = (
    0,
    1,
    2,
    3,
    4,
)
DISABLED = {"policy_disabled": "enabled", "promotion_disabled": "promote_to_patterns"}


@dataclass(frozen=True)
class RunConfig:
    url: str
    api_key: str
    body: dict[str, Any]
    # None: derived at call time from the policy's window and last change
    idempotency_key: str | None
    max_retries: int = 4
    retry_max_seconds: float = 120.0
    timeout_seconds: float = 300.0
    disabled_ok: bool = False

    @property
    def policy_url(self) -> str:
        """Where the org's drift policy (its window and last change) is read."""
        return self.url.removesuffix("/drift/schedule-run") + "/drift-policy"


def idempotency_key(
    body: Mapping[str, Any],
    *,
    now: float,
    window_minutes: int | None = None,
    policy_updated_at: str | None = None,
) -> str:
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
    disabled_ok = bool(env.get("DISABLED_OK")) and boolean("DISABLED_OK", env["DISABLED_OK"])
    key = env.get("IDEMPOTENCY_KEY") or None
    if key is not None and not re.fullmatch(r"[ -~]{1,255}", key):
        raise InputError("IDEMPOTENCY_KEY must be 1-255 printable characters")
    bounds = {
        name: whole_number(name, env.get(name) or default)
        for name, default in (
            ("MAX_RETRIES", "4"),
            ("RETRY_MAX_SECONDS", "120"),
            ("REQUEST_TIMEOUT_SECONDS", "300"),
        )
    }
    url = f"{base_url.rstrip('/')}{prefix.rstrip('/')}/system/contracts/drift/schedule-run"
    return RunConfig(
        url=url,
        api_key=api_key,
        body=body,
        idempotency_key=key,
        max_retries=bounds["MAX_RETRIES"],
        retry_max_seconds=bounds["RETRY_MAX_SECONDS"],
        timeout_seconds=bounds["REQUEST_TIMEOUT_SECONDS"],
        disabled_ok=disabled_ok,
    )


@dataclass(frozen=True)
class RunResult:
    status: int | None
    document: Any
    replayed: bool
    error: str | None = None


def _read_policy(
    http: httpx.Client, config: RunConfig, sleep: Callable[[float], None]
) -> tuple[int, str | None] | RunResult:
    """The policy's window (the one the server uses) and last change, or the failed read."""
    response = retrying(config, sleep)(
        http.get,
        config.policy_url,
        params={"org_id": config.body["org_id"]},
        headers={"Authorization": f"Bearer {config.api_key}"},
    )
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
    return RunResult(
        status=response.status_code,
        document=document,
        replayed=response.headers.get("idempotent-replayed") == "true",
    )


def call(
    config: RunConfig,
    *,
    transport: httpx.BaseTransport | None = None,
    sleep: Callable[[float], None] = time.sleep,
    now: float | None = None,
    announce: Callable[[str, str], None] | None = None,
) -> RunResult:
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
                key = idempotency_key(
                    config.body,
                    now=time.time() if now is None else now,
                    window_minutes=policy[0],
                    policy_updated_at=policy[1],
                )
            if announce is not None:
                announce(config.url, key)
            headers = {
                "Authorization": f"Bearer {config.api_key}",
                "Idempotency-Key": key,
            }
            response = retrying(config, sleep)(
                http.post, config.url, json=config.body, headers=headers
            )
        except httpx.TransportError as exc:
            return RunResult(
                status=None,
                document=None,
                replayed=False,
                error=f"could not reach {config.url} ({type(exc).__name__}) after "
                f"{config.max_retries} retries; check the API (uvicorn.log) "
                "and BASE_URL",
            )
    return _result(response)


def is_success(result: RunResult) -> bool:
    """A 2xx with an ok envelope: the signals can be read."""
    doc = result.document
    return (
        result.status is not None
        and 200 <= result.status < 300
        and isinstance(doc, dict)
        and bool(doc.get("ok"))
    )


def disabled_warning(trigger_outcome: str, policy_url: str, org_id: str) -> str:
    """What an operator reads when nothing ran: why, and the command that enables it."""
    body = json.dumps({"org_id": org_id, DISABLED[trigger_outcome]: True})
    return (
        f"nothing ran: the policy is disabled (trigger.outcome={trigger_outcome}); enable it "
        f"with: curl -X POST '{policy_url}' -H \"Authorization: Bearer $API_KEY\" "
        f"-H 'Content-Type: application/json' -d '{body}'"
    )


def outcome(result: RunResult, config: RunConfig | None = None) -> tuple[int, str]:
    """Exit code and a one-line message, as the script decides them."""
    if result.status is None:
        return EXIT_API_FAILED, f"API call failed: {result.error}"
    doc = result.document if isinstance(result.document, dict) else {}
    if not 200 <= result.status < 300 or not doc.get("ok"):
        error = doc.get("error") or {}
        return EXIT_API_FAILED, (
            f"API call failed: HTTP {result.status} "
            f"{error.get('code', 'NO_ENVELOPE')}: "
            f"{error.get('message', 'unexpected response')}"
        )
    data = doc["data"]
    notification = (data.get("notify") or {}).get("notification") or {}
    escalation = (data.get("notify") or {}).get("escalation_pattern")
    trigger = data.get("trigger") or {}
    if notification and notification.get("sent") is False and escalation:
        return EXIT_NOTIFY_FAILED, (
            f"notification failed ({notification.get('error')}); "
            f"escalation pattern {escalation.get('id')}"
        )
    if trigger.get("outcome") == "failed":
        return EXIT_API_FAILED, f"trigger failed: {trigger.get('error')}"
    if trigger.get("outcome") in DISABLED:
        policy_url, org_id = (
            (config.policy_url, config.body["org_id"])
            if config is not None
            else (
                "<BASE_URL><API_PREFIX>/system/contracts/drift-policy",
                str(data.get("org_id")),
            )
        )
        message = disabled_warning(trigger["outcome"], policy_url, org_id)
        return (EXIT_OK if config is not None and config.disabled_ok else EXIT_DISABLED), message
    return EXIT_OK, "schedule run ok"
