"""What each page shows, read through the same service functions as the API (no second query)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from driftwarden.console import charts
from driftwarden.contracts import service as contracts_service
from driftwarden.contracts.drift import DRIFT_LEVELS
from driftwarden.notifications import endpoints as endpoints_service
from driftwarden.notifications import service as notifications_service
from driftwarden.notifications.outbox import origin
from driftwarden.patterns import service as patterns_service
from driftwarden.scheduler import policy as policy_service
from driftwarden.scheduler import status_reads
from driftwarden.scheduler import summary as summary_service

CHART_DAYS = 30
OUTCOMES = summary_service.TRIGGER_OUTCOMES
LEVELS = tuple(DRIFT_LEVELS)


def _charts(session: Session, *, org_id: uuid.UUID, now: datetime) -> dict[str, Any]:
    history = summary_service.trigger_history(
        session, org_id=org_id, since=now - timedelta(days=CHART_DAYS)
    )
    return {
        "drift_chart": charts.stacked_bars(
            charts.drift_bars(history),
            LEVELS,
            title="Bindings per drift level at each executed trigger (30 days)",
            testid="chart-drift",
        ),
        "outcome_chart": charts.stacked_bars(
            charts.outcome_bars(history, now=now, days=CHART_DAYS),
            OUTCOMES,
            title="Trigger outcomes per day (30 days)",
            testid="chart-outcomes",
        ),
    }


def overview(session: Session, *, org_id: uuid.UUID, now: datetime) -> dict[str, Any]:
    """A fixed number of statements whatever the org's size: counts only, no drift items."""
    scan = contracts_service.scan_drift(session, org_id=org_id, limit=0)
    policy = policy_service.effective_policy(session, org_id=org_id)
    statuses = status_reads.schedule_statuses(session, org_id=org_id, policy=policy, now=now)
    return {
        "scan": scan,
        "policy": policy,
        "schedules": [s for s in statuses if s.watched or s.last_executed_at is not None],
        "patterns_open": patterns_service.count_open_by_priority(session, org_id=org_id),
        "outbox": notifications_service.count_by_status(session, org_id=org_id),
        "last_notify": next(
            iter(summary_service.recent_notify_events(session, org_id=org_id, limit=1)), None
        ),
        **_charts(session, org_id=org_id, now=now),
    }


def schedule(session: Session, *, org_id: uuid.UUID, now: datetime) -> dict[str, Any]:
    policy = policy_service.effective_policy(session, org_id=org_id)
    return {
        "policy": policy,
        "summary": summary_service.trigger_summary(
            session, org_id=org_id, schedule_name=None, window_days=CHART_DAYS, now=now, limit=20
        ),
        "delivery": summary_service.alert_delivery(
            session, org_id=org_id, schedule_name=None, window_days=CHART_DAYS, now=now
        ),
        "events": summary_service.recent_notify_events(session, org_id=org_id, limit=20),
        "statuses": status_reads.schedule_statuses(session, org_id=org_id, policy=policy, now=now),
        **_charts(session, org_id=org_id, now=now),
    }


def notifications(
    session: Session,
    *,
    org_id: uuid.UUID,
    now: datetime,
    status: str | None,
    limit: int,
    offset: int,
) -> dict[str, Any]:
    endpoints, endpoint_total = endpoints_service.list_endpoints(
        session, org_id=org_id, limit=50, offset=0
    )
    rows, total = notifications_service.list_outbox(
        session, org_id=org_id, status=status, event_type=None, limit=limit, offset=offset
    )
    return {
        "endpoints": [
            {
                "host": origin(e.url),
                "format": e.format,
                "event_types": e.event_types or [],
                "enabled": e.enabled,
                "description": e.description,
                "disabled_reason": e.disabled_reason,
            }
            for e in endpoints
        ],
        "endpoint_total": endpoint_total,
        "outbox": [notifications_service.read(row) for row in rows],
        "total": total,
        "dead": notifications_service.dead_letter_summary(session, org_id=org_id, now=now),
    }
