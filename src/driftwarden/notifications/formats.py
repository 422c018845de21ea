"""Rendering an event once into the exact bytes every attempt sends (JSON or Slack)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any, Literal
from urllib.parse import urlsplit

EVENT_TYPES = (
    "contract_drift.patterns_promoted",
    "contract_drift.trigger_anomaly",
    "contract_drift.schedule_missed",
    "contract_drift.schedule_recovered",
    "contract_drift.schedule_disabled_triggered",
    "issue_pattern.status_changed",
    "webhook.test",
)
WebhookFormat = Literal["json", "slack"]  # a body shape a destination may ask for
SLACK_TEXT_MAX = 3000  # Slack rejects a section whose text is longer


def default_format(url: str) -> str:
    """The default body format of `url`: slack for Slack's incoming webhooks, else json.

    Slack's incoming webhooks reject any other body, so their URLs default to the slack format.
    """
    return "slack" if urlsplit(url).hostname == "hooks.slack.com" else "json"


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, (date, uuid.UUID)):
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"cannot encode {type(value).__name__} in a notification")


def to_json_value(data: dict[str, Any]) -> dict[str, Any]:
    """The data as plain JSON values (UUIDs and datetimes as strings), for storage and rendering."""
    return json.loads(json.dumps(data, default=_default))


def _dump(document: dict[str, Any]) -> bytes:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"), sort_keys=False).encode(
        "utf-8"
    )


def render(fmt: str, *, event_type: str, data: dict[str, Any], now: datetime) -> bytes:
    """The body for one destination format; these bytes are signed and sent unchanged."""
    if fmt == "json":
        return _dump({"type": event_type, "timestamp": iso(now), "data": data})
    if fmt == "slack":
        return _dump(slack_message(event_type, data, now))
    raise ValueError(f"unknown notification format {fmt!r}")


def _get(data: dict[str, Any], *path: str) -> Any:
    value: Any = data
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _where(data: dict[str, Any]) -> str:
    parts = [f"org `{data['org_id']}`"] if data.get("org_id") else []
    if data.get("schedule_name"):
        parts.append(f"schedule `{data['schedule_name']}`")
    return " / ".join(parts) or "driftwarden"


def _promoted(data: dict[str, Any]) -> tuple[str, str]:
    created = data.get("created_pattern_count", len(data.get("pattern_ids") or []))
    titles = [
        p.get("title")
        for p in data.get("created_patterns") or []
        if isinstance(p, dict) and p.get("title")
    ]
    listed = "".join(f"\n• {t}" for t in titles[:5]) + (
        f"\n… and {len(titles) - 5} more" if len(titles) > 5 else ""
    )
    return (
        f"Contract drift filed as {created} new issue pattern(s) in {_where(data)}.{listed}",
        "Review the new `contract_drift` patterns "
        "(GET /api/v1/patterns?primary_tag=contract_drift), "
        "then preview and apply the upgrade or re-bind the affected agents.",
    )


def _anomaly(data: dict[str, Any]) -> tuple[str, str]:
    reasons = ", ".join(data.get("reasons") or []) or "unknown reason"
    rates = data.get("summary") or {}
    return (
        f"The drift schedule in {_where(data)} looks unhealthy: {reasons} "
        f"(execution rate {rates.get('execution_rate')}, "
        f"dedupe hit rate {rates.get('dedupe_hit_rate')}).",
        "Check the scheduler's recent triggers "
        "(GET /api/v1/system/contracts/drift/trigger-summary) and its logs; "
        "a high dedupe rate means runs repeat inside one window, "
        "a low execution rate means runs are skipped or failing.",
    )


def _missed(data: dict[str, Any]) -> tuple[str, str]:
    return (
        f"The drift schedule in {_where(data)} has not run: "
        f"{data.get('missed_windows', '?')} window(s) missed, "
        f"last executed {data.get('last_executed_at') or 'never'}.",
        "Check that the scheduler "
        "(GitHub Actions workflow, CronJob or `driftwarden worker --schedule`) "
        "is enabled and running, then run it once by hand.",
    )


def _recovered(data: dict[str, Any]) -> tuple[str, str]:
    return (
        f"The drift schedule in {_where(data)} is running again "
        f"(last executed {data.get('last_executed_at') or 'just now'}).",
        "Nothing to do; review findings from the missed windows if any.",
    )


def _disabled_triggered(data: dict[str, Any]) -> tuple[str, str]:
    off = "disabled" if data.get("policy_enabled") is False else "set not to promote patterns"
    refused = data.get("last_disabled_trigger_at") or "?"
    happened = (
        f"The drift schedule in {_where(data)} is still being triggered, but its drift "
        f"policy is {off}: nothing runs (last refused trigger {refused})."
    )
    next_step = (
        "Re-enable the drift policy (POST /api/v1/system/contracts/drift-policy) if the "
        "schedule should run, or turn off the scheduler that still calls it."
    )
    return happened, next_step


def _status_changed(data: dict[str, Any]) -> tuple[str, str]:
    title = (
        data.get("title")
        or _get(data, "pattern", "title")
        or data.get("pattern_id")
        or "an issue pattern"
    )
    return (
        f"Issue pattern '{title}' moved from {data.get('from') or data.get('from_status')} "
        f"to {data.get('to') or data.get('to_status')}.",
        "Open the pattern to see its history and who owns the next step.",
    )


def _test(data: dict[str, Any]) -> tuple[str, str]:
    return (
        "This is a test notification from driftwarden.",
        "Nothing to do: if you can read this, the endpoint receives driftwarden notifications.",
    )


_SLACK_TEXT: dict[str, Callable[[dict[str, Any]], tuple[str, str]]] = {
    "contract_drift.patterns_promoted": _promoted,
    "contract_drift.trigger_anomaly": _anomaly,
    "contract_drift.schedule_missed": _missed,
    "contract_drift.schedule_recovered": _recovered,
    "contract_drift.schedule_disabled_triggered": _disabled_triggered,
    "issue_pattern.status_changed": _status_changed,
    "webhook.test": _test,
}


def slack_escape(text: str) -> str:
    """Slack's required escaping.

    A title or name from user data cannot @channel, link or mention anyone.
    """
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_message(event_type: str, data: dict[str, Any], now: datetime) -> dict[str, Any]:
    """A Slack incoming-webhook message: what happened, and what to do next."""
    happened, next_step = _SLACK_TEXT.get(
        event_type,
        lambda d: (f"driftwarden event in {_where(d)}.", "See the event data in driftwarden."),
    )(data)
    if isinstance(data.get("next_steps"), str) and data["next_steps"]:
        next_step = f"{data['next_steps']} {next_step}"
    happened, next_step = slack_escape(happened), slack_escape(next_step)
    return {
        "text": f"[driftwarden] {happened}",
        "blocks": [
            {
                "type": "header",
                "text": {"type": "plain_text", "text": f"driftwarden: {event_type}"},
            },
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": f"*What happened:* {happened}"[:SLACK_TEXT_MAX]},
            },
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": f"*What to do next:* {next_step}"[:SLACK_TEXT_MAX],
                },
            },
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": f"{event_type} at {iso(now)}"}],
            },
        ],
    }
