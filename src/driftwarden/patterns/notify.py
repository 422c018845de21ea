"""Pattern notifications, queued through the outbox in the caller's transaction.

docs/reference/notifications.md#outbox
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from driftwarden.notifications import outbox
from driftwarden.patterns.models import IssuePattern
from driftwarden.settings import Settings

STATUS_CHANGED = "issue_pattern.status_changed"
PATTERNS_PROMOTED = "contract_drift.patterns_promoted"
# A bulk status change names at most this many patterns in its message; the count is always exact.
MAX_LISTED = 100


def skipped(event_type: str, reason: str) -> dict[str, Any]:
    return {"event_type": event_type, "queued": False, "outbox_ids": [], "skipped_reason": reason}


def queue(
    session: Session,
    *,
    org_id: uuid.UUID,
    event_type: str,
    data: dict[str, Any],
    now: datetime,
    settings: Settings,
    request_id: str | None,
) -> dict[str, Any]:
    """Enqueue one message per destination; describe what was queued."""
    rows = outbox.enqueue(
        session,
        org_id=org_id,
        event_type=event_type,
        data=data,
        now=now,
        settings=settings,
        request_id=request_id,
    )
    if not rows:
        return skipped(event_type, "no_destination")
    return {
        "event_type": event_type,
        "queued": True,
        "outbox_ids": [row.id for row in rows],
        "skipped_reason": None,
    }


def status_changed_data(pattern: IssuePattern, entry: dict[str, Any]) -> dict[str, Any]:
    """The event data of one pattern's status change."""
    return {
        "org_id": pattern.org_id,
        "pattern_id": pattern.id,
        "agent_id": pattern.agent_id,
        "title": pattern.title,
        "primary_tag": pattern.primary_tag,
        "priority": pattern.priority,
        "dedupe_key": pattern.dedupe_key,
        "occurrence_count": pattern.occurrence_count,
        **entry,
    }


def bulk_status_changed_data(
    *, org_id: uuid.UUID, changed: list[dict[str, Any]], entry: dict[str, Any], reason: str
) -> dict[str, Any]:
    """One event for many patterns closed together (auto-resolve), not one message per pattern."""
    previous = {item["from"] for item in changed}
    return {
        "org_id": org_id,
        "reason": reason,
        "pattern_count": len(changed),
        "title": f"{len(changed)} contract drift pattern(s)",
        **entry,
        "from": previous.pop() if len(previous) == 1 else "open",
        "patterns": changed[:MAX_LISTED],
        "truncated": len(changed) > MAX_LISTED,
    }
