"""Retention: which rows the worker prunes, after how long, in bounded batches.

(docs/reference/operations.md, retention.) One rule per kind of row, each tied to its setting;
`0` keeps forever. Dead letters are never pruned: they stay until replayed or deleted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, delete
from sqlalchemy.orm import Session, sessionmaker

from driftwarden.api.models import ApiAuditLog
from driftwarden.db.prune import delete_in_batches
from driftwarden.notifications.models import NotificationOutbox
from driftwarden.scheduler.models import NotifyEvent, TriggerDayCount, TriggerRun
from driftwarden.settings import Settings

log = logging.getLogger("driftwarden.worker.retention")


@dataclass(frozen=True)
class Rule:
    """Rows of `model` whose `age_column` is older than the setting `days_setting` go."""

    name: str
    model: Any
    age_column: Any
    days_setting: str
    only: tuple[ColumnElement[bool], ...] = ()


RULES = (
    Rule(
        "outbox_sent",
        NotificationOutbox,
        NotificationOutbox.sent_at,
        "retention_outbox_sent_days",
        (NotificationOutbox.status == "sent",),
    ),
    Rule("audit_logs", ApiAuditLog, ApiAuditLog.created_at, "retention_audit_days"),
    Rule("notify_events", NotifyEvent, NotifyEvent.created_at, "retention_notify_events_days"),
    Rule("trigger_runs", TriggerRun, TriggerRun.started_at, "retention_trigger_runs_days"),
)


def prune(
    session_factory: sessionmaker[Session],
    *,
    settings: Settings,
    now: datetime,
    batch_size: int = 1000,
    max_batches: int = 20,
) -> dict[str, int]:
    """Apply every rule once; returns how many rows each rule deleted.

    Kept-forever rules are absent from the result.
    """
    deleted: dict[str, int] = {}
    cutoffs: dict[str, datetime] = {}
    for rule in RULES:
        days = getattr(settings, rule.days_setting)
        if days == 0:
            continue
        cutoff = cutoffs[rule.name] = now - timedelta(days=days)
        deleted[rule.name] = delete_in_batches(
            session_factory,
            rule.model,
            *rule.only,
            rule.age_column < cutoff,
            oldest_first=rule.age_column,
            batch_size=batch_size,
            max_batches=max_batches,
        )
    if "trigger_runs" in cutoffs:
        deleted["trigger_day_counts"] = _day_counts_before(
            session_factory, cutoffs["trigger_runs"].date()
        )
    if any(deleted.values()):
        log.info("retention pruned rows", extra={"deleted": deleted})
    return deleted


def _day_counts_before(session_factory: sessionmaker[Session], day: date) -> int:
    """The trigger day counts of the days before `day`, whose triggers are all past retention
    (the ones left go in the next batches: a take-back on a missing count does nothing). No
    summary reaches them: its window is at most 365 days, retention at least 366."""
    with session_factory() as session:
        result = session.execute(
            delete(TriggerDayCount)
            .where(TriggerDayCount.day < day)
            .execution_options(synchronize_session=False)
        )
        session.commit()
    return result.rowcount or 0
