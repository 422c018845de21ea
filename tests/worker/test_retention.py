"""Retention: old rows go in bounded batches, recent stay.

docs/reference/operations.md, retention
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError
from sqlalchemy import Engine, func, select

from driftwarden.api.models import ApiAuditLog
from driftwarden.db.engine import make_session_factory
from driftwarden.notifications.models import NotificationOutbox
from driftwarden.scheduler.models import NotifyEvent, TriggerRun
from driftwarden.scheduler.summary import trigger_summary
from driftwarden.settings import Settings
from driftwarden.worker import retention
from tests.support import make_tenant, trigger_run

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def _outbox(org_id: uuid.UUID, age_days: float, status: str) -> NotificationOutbox:
    at = NOW - timedelta(days=age_days)
    return NotificationOutbox(
        org_id=org_id,
        event_type="contract_drift.trigger_anomaly",
        message_id=f"msg_{uuid.uuid4().hex}",
        destination="env",
        url="http://127.0.0.1:9/hook",
        format="json",
        payload={},
        body=b"{}",
        status=status,
        attempt_count=1,
        max_attempts=3,
        next_attempt_at=at,
        sent_at=at if status == "sent" else None,
        dead_at=at if status == "dead" else None,
        created_at=at,
        updated_at=at,
    )


def _audit(age_days: float) -> ApiAuditLog:
    return ApiAuditLog(
        request_id=uuid.uuid4().hex,
        method="POST",
        path="/api/v1/agents",
        status_code=201,
        latency_ms=1.0,
        idempotent_replayed=False,
        created_at=NOW - timedelta(days=age_days),
    )


def _event(org_id: uuid.UUID, age_days: float) -> NotifyEvent:
    return NotifyEvent(
        org_id=org_id,
        schedule_name="daily",
        outcome="skipped",
        event_type="contract_drift.trigger_anomaly",
        anomaly_detected=False,
        reasons=[],
        fingerprint="f" * 64,
        created_at=NOW - timedelta(days=age_days),
    )


def _run(org_id: uuid.UUID, age_days: float, outcome: str = "executed") -> TriggerRun:
    return trigger_run(org_id, NOW - timedelta(days=age_days), outcome)


def _count(session_factory, model, *where) -> int:  # type: ignore[no-untyped-def]
    with session_factory() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def test_prune_removes_old_rows_of_each_kind_and_keeps_recent_ones_and_dead_letters(
    engine: Engine, settings: Settings
) -> None:
    org_id = make_tenant(engine).org_id
    factory = make_session_factory(engine)
    with factory() as session:
        session.add_all(
            [
                _outbox(org_id, 31, "sent"),
                _outbox(org_id, 29, "sent"),
                _outbox(org_id, 500, "dead"),
                _outbox(org_id, 500, "pending"),
                _audit(91),
                _audit(89),
                _event(org_id, 401),
                _event(org_id, 399),
                _run(org_id, 401),
                _run(org_id, 399),
            ]
        )
        session.commit()
    deleted = retention.prune(factory, settings=settings, now=NOW)
    assert deleted == {
        "outbox_sent": 1,
        "audit_logs": 1,
        "notify_events": 1,
        "trigger_runs": 1,
        "trigger_day_counts": 1,  # the old trigger's day
    }
    assert _count(factory, NotificationOutbox, NotificationOutbox.status == "sent") == 1
    assert (
        _count(factory, NotificationOutbox, NotificationOutbox.status.in_(("dead", "pending"))) == 2
    )
    assert _count(factory, ApiAuditLog) == 1
    assert _count(factory, NotifyEvent) == 1 and _count(factory, TriggerRun) == 1


def test_prune_works_in_bounded_batches_across_runs(engine: Engine, settings: Settings) -> None:
    factory = make_session_factory(engine)
    with factory() as session:
        session.add_all([_audit(100 + n) for n in range(7)] + [_audit(1)])
        session.commit()
    first = retention.prune(factory, settings=settings, now=NOW, batch_size=2, max_batches=2)
    assert first["audit_logs"] == 4 and _count(factory, ApiAuditLog) == 4
    second = retention.prune(factory, settings=settings, now=NOW, batch_size=2, max_batches=2)
    assert second["audit_logs"] == 3 and _count(factory, ApiAuditLog) == 1


def test_zero_keeps_forever(engine: Engine, settings: Settings) -> None:
    factory = make_session_factory(engine)
    with factory() as session:
        session.add(_audit(10_000))
        session.commit()
    forever = settings.model_copy(update={"retention_audit_days": 0})
    assert "audit_logs" not in retention.prune(factory, settings=forever, now=NOW)
    assert _count(factory, ApiAuditLog) == 1


def test_a_365_day_summary_is_unchanged_by_pruning(engine: Engine, settings: Settings) -> None:
    org_id = make_tenant(engine).org_id
    factory = make_session_factory(engine)
    with factory() as session:
        session.add_all(
            [_run(org_id, day, "executed" if day % 3 else "deduped") for day in range(0, 420, 2)]
        )
        session.commit()
    with factory() as session:
        before = trigger_summary(
            session, org_id=org_id, schedule_name="daily", window_days=365, now=NOW, limit=None
        )
    deleted = retention.prune(factory, settings=settings, now=NOW)
    assert deleted["trigger_runs"] == 9  # days 402..418; day 400 is exactly at the cutoff and stays
    assert deleted["trigger_day_counts"] == 9  # their days' counts; day 400's stays
    with factory() as session:
        after = trigger_summary(
            session, org_id=org_id, schedule_name="daily", window_days=365, now=NOW, limit=None
        )
    assert after == before and before.trigger_count == 183


@pytest.mark.parametrize("days", ["1", "365"])
def test_trigger_runs_are_kept_at_least_a_year(days: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(RETENTION_TRIGGER_RUNS_DAYS=days)
    assert "RETENTION_TRIGGER_RUNS_DAYS" in str(refused.value)
