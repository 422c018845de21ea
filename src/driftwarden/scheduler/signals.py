"""The runbook's six signals of a schedule run, read from its response data by their exact paths.

(docs/reference/scheduler.md, the six signals.) The script, `driftwarden schedule-run`, the demo
and the console's Run now all report these.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SIGNAL_PATHS = (
    "data.trigger.executed",
    "data.trigger.deduped",
    "data.notify.anomaly_detected",
    "data.notify.notified",
    "data.notify.notification.sent",
    "data.notify.escalation_pattern",
)


def signals(data: Mapping[str, Any]) -> dict[str, Any]:
    """The runbook's six signals, by their exact paths."""
    found: dict[str, Any] = {}
    for path in SIGNAL_PATHS:
        value: Any = {"data": data}
        for part in path.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        found[path] = value
    return found


def signal_line(data: Mapping[str, Any]) -> str:
    def fmt(value: Any) -> str:
        if isinstance(value, Mapping):
            return str(value.get("id", "set"))
        if value is None:
            return "null"
        return str(value).lower() if isinstance(value, bool) else str(value)

    parts = [f"{path.removeprefix('data.')}={fmt(value)}" for path, value in signals(data).items()]
    parts += [
        f"trigger.outcome={(data.get('trigger') or {}).get('outcome')}",
        f"notify.outcome={(data.get('notify') or {}).get('outcome')}",
    ]
    return " ".join(parts)
