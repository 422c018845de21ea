"""From the trigger summary to alert delivery.

docs/reference/scheduler.md#trigger-summary to
docs/reference/scheduler.md#alert-delivery

Summary counts, every notify outcome in order, cooldown, fingerprint, escalation, audit codes.
"""

from __future__ import annotations

import json
import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from driftwarden.api.app import create_app
from driftwarden.api.models import ApiAuditLog
from driftwarden.db.engine import make_session_factory
from driftwarden.notifications.models import NotificationOutbox
from driftwarden.patterns.models import IssuePattern
from driftwarden.scheduler.models import NotifyEvent, TriggerAlertState
from driftwarden.settings import Settings
from tests.scheduler.conftest import PREFIX, ok_data, post, seed_drift, set_policy

BOTH = ["dedupe_hit_rate_high", "execution_rate_low"]
ANOMALY = NotificationOutbox.event_type == "contract_drift.trigger_anomaly"


def _rows(engine: Engine, model, *where) -> list:  # type: ignore[no-untyped-def]
    with make_session_factory(engine)() as session:
        return list(session.scalars(select(model).where(*where)))


def _anomalous_window(client: TestClient, admin, engine: Engine) -> uuid.UUID:
    """One executed and three deduped triggers: dedupe 0.75, execution 0.25."""
    agent_id = seed_drift(engine, admin.org_id)
    set_policy(client, admin, enabled=True, alert_enabled=True)
    for _ in range(4):
        ok_data(post(client, admin, "/drift/trigger", {}))
    return agent_id


def _notify(client: TestClient, admin, **body) -> dict:  # type: ignore[no-untyped-def]
    return ok_data(
        post(client, admin, "/drift/trigger-summary/notify", {"schedule_name": "daily", **body})
    )


def test_summary_counts_rates_and_items(client: TestClient, admin, engine: Engine, clock) -> None:
    empty = ok_data(client.get(f"{PREFIX}/drift/trigger-summary", headers=admin.headers))
    assert (
        empty["trigger_count"] == 0
        and empty["execution_rate"] is None
        and empty["dedupe_hit_rate"] is None
    )
    assert empty["schedule_name"] == "_all" and empty["items"] == []
    _anomalous_window(client, admin, engine)
    ok_data(post(client, admin, "/drift/trigger", {"dry_run": True}))
    ok_data(
        post(client, admin, "/drift/trigger", {"schedule_name": "hourly", "window_minutes": 60})
    )
    daily = ok_data(
        client.get(
            f"{PREFIX}/drift/trigger-summary",
            headers=admin.headers,
            params={"schedule_name": "daily", "limit": 2},
        )
    )
    assert (
        daily["trigger_count"],
        daily["executed_count"],
        daily["deduped_count"],
        daily["dry_run_count"],
    ) == (4, 1, 3, 1)
    assert daily["execution_rate"] == 0.25 and daily["dedupe_hit_rate"] == 0.75
    assert (
        daily["failed_count"]
        == daily["policy_disabled_count"]
        == daily["promotion_disabled_count"]
        == 0
    )
    assert daily["last_triggered_at"] == daily["last_executed_at"] == "2026-11-25T12:00:00Z"
    assert len(daily["items"]) == 2 and {i["schedule_name"] for i in daily["items"]} == {"daily"}
    everything = ok_data(client.get(f"{PREFIX}/drift/trigger-summary", headers=admin.headers))
    assert everything["schedule_name"] == "_all" and everything["trigger_count"] == 5
    clock.advance(days=2)
    narrow = ok_data(
        client.get(
            f"{PREFIX}/drift/trigger-summary", headers=admin.headers, params={"window_days": 1}
        )
    )
    assert narrow["trigger_count"] == 0 and narrow["last_triggered_at"] is None


def test_skipped_without_anomaly_or_with_alerts_off(
    client: TestClient, admin, engine: Engine, receiver
) -> None:
    seed_drift(engine, admin.org_id)
    set_policy(client, admin, enabled=True, alert_enabled=True)
    ok_data(post(client, admin, "/drift/trigger", {}))
    calm = _notify(client, admin, dry_run=False)
    assert (
        calm["outcome"] == "skipped" and calm["anomaly_detected"] is False and calm["reasons"] == []
    )
    assert calm["notification"] is None and calm["notified"] is False
    for _ in range(3):
        ok_data(post(client, admin, "/drift/trigger", {}))
    set_policy(client, admin, alert_enabled=False)
    muted = _notify(client, admin, dry_run=False)
    assert (
        muted["outcome"] == "skipped"
        and muted["anomaly_detected"] is True
        and muted["reasons"] == BOTH
    )
    assert muted["thresholds"]["alert_enabled"] is False
    assert receiver.received == []


def test_dry_run_is_the_default_and_writes_only_the_event(
    client: TestClient, admin, engine: Engine, receiver
) -> None:
    _anomalous_window(client, admin, engine)
    dry = _notify(client, admin)
    assert (
        dry["outcome"] == "dry_run"
        and dry["would_outcome"] == "send"
        and dry["anomaly_detected"] is True
    )
    assert (
        dry["notification"] is None
        and dry["escalation_pattern"] is None
        and dry["notified"] is False
    )
    assert receiver.received == [] and _rows(engine, NotificationOutbox, ANOMALY) == []
    assert _rows(engine, TriggerAlertState) == []
    assert [e.outcome for e in _rows(engine, NotifyEvent)] == ["dry_run"]


def test_sent_then_suppressed_then_sent_after_cooldown(
    client: TestClient, admin, engine: Engine, receiver, clock
) -> None:
    _anomalous_window(client, admin, engine)
    sent = _notify(client, admin, dry_run=False)
    assert (
        sent["outcome"] == "sent"
        and sent["notified"] is True
        and sent["notification"]["sent"] is True
    )
    assert sent["notification"]["status_code"] == 200 and sent["notification"]["attempt_count"] == 1
    assert sent["cooldown_until"] == "2026-11-25T13:00:00Z" and sent["reasons"] == BOTH
    assert len(receiver.received) == 1
    delivered = json.loads(receiver.received[0].body)
    assert delivered["type"] == "contract_drift.trigger_anomaly"
    assert (
        delivered["data"]["fingerprint"] == sent["fingerprint"]
        and delivered["data"]["reasons"] == BOTH
    )
    state = _rows(engine, TriggerAlertState)[0]
    assert (state.alert_fingerprint, state.schedule_name) == (sent["fingerprint"], "daily")
    clock.advance(minutes=59)
    held = _notify(client, admin, dry_run=False)
    assert (
        held["outcome"] == "suppressed" and held["suppressed"] is True and held["notified"] is False
    )
    assert (
        held["cooldown_until"] == "2026-11-25T13:00:00Z"
        and held["fingerprint"] == sent["fingerprint"]
    )
    clock.advance(minutes=1)
    again = _notify(client, admin, dry_run=False)
    assert again["outcome"] == "sent" and len(receiver.received) == 2
    assert again["cooldown_until"] == "2026-11-25T14:00:00Z"


def test_new_fingerprint_breaks_the_cooldown_and_force_notify_overrides(
    client: TestClient, admin, engine: Engine, receiver
) -> None:
    _anomalous_window(client, admin, engine)
    first = _notify(client, admin, dry_run=False)
    set_policy(client, admin, alert_max_dedupe_hit_rate=0.9)  # only execution_rate_low remains
    changed = _notify(client, admin, dry_run=False)
    assert (
        changed["reasons"] == ["execution_rate_low"]
        and changed["fingerprint"] != first["fingerprint"]
    )
    assert changed["outcome"] == "sent"
    assert _notify(client, admin, dry_run=False)["outcome"] == "suppressed"
    forced = _notify(client, admin, dry_run=False, force_notify=True)
    assert forced["outcome"] == "sent" and forced["suppressed"] is False
    set_policy(client, admin, alert_enabled=False)
    forced_quiet = _notify(client, admin, dry_run=False, force_notify=True)
    assert forced_quiet["outcome"] == "sent" and len(receiver.received) == 4


def test_failed_delivery_escalates_once_and_reuses(
    client: TestClient, admin, engine: Engine, receiver
) -> None:
    agent_id = _anomalous_window(client, admin, engine)
    receiver.default = (500, {}, 0.0)
    failed = _notify(client, admin, dry_run=False, agent_id=str(agent_id))
    assert failed["outcome"] == "failed" and failed["notified"] is False
    assert failed["notification"]["sent"] is False and failed["notification"]["status_code"] == 500
    escalation = failed["escalation_pattern"]
    assert escalation["created"] is True and escalation["reused"] is False
    assert (escalation["primary_tag"], escalation["priority"]) == (
        "contract_drift_alert_delivery",
        "high",
    )
    assert _rows(engine, TriggerAlertState) == []  # only `sent` starts a cooldown
    again = _notify(client, admin, dry_run=False, agent_id=str(agent_id))
    assert again["outcome"] == "failed"  # no cooldown after a failure
    assert (
        again["escalation_pattern"]["id"] == escalation["id"]
        and again["escalation_pattern"]["reused"] is True
    )
    [pattern] = _rows(
        engine, IssuePattern, IssuePattern.primary_tag == "contract_drift_alert_delivery"
    )
    assert (
        pattern.agent_id == agent_id
        and pattern.occurrence_count == 2
        and pattern.status == "detected"
    )
    assert pattern.dedupe_key == f"contract_drift_alert_delivery:{admin.org_id}:daily"
    assert pattern.evidence["status_code"] == 500
    outbox = _rows(engine, NotificationOutbox, ANOMALY)
    assert len(outbox) == 2 and {row.status for row in outbox} == {
        "pending"
    }  # kept for the worker's retries


def test_no_destination_is_failed_and_escalates_at_org_level(
    settings: Settings, engine: Engine, clock, admin
) -> None:
    bare = Settings(DATABASE_URL=settings.db_url)
    with TestClient(
        create_app(bare, engine=engine, clock=clock), raise_server_exceptions=False
    ) as client:
        _anomalous_window(client, admin, engine)
        result = _notify(client, admin, dry_run=False)
    assert result["outcome"] == "failed"
    assert result["notification"]["error"] == "NOTIFY_DESTINATION_MISSING"
    assert (
        result["notification"]["outbox_id"] is None and result["notification"]["deliveries"] == []
    )
    [pattern] = _rows(
        engine, IssuePattern, IssuePattern.primary_tag == "contract_drift_alert_delivery"
    )
    assert pattern.agent_id is None and pattern.priority == "high"


def test_audit_codes_and_alert_delivery_counts(
    client: TestClient, admin, engine: Engine, receiver
) -> None:
    _anomalous_window(client, admin, engine)
    outcomes = [
        _notify(client, admin)["outcome"],
        _notify(client, admin, dry_run=False)["outcome"],
        _notify(client, admin, dry_run=False)["outcome"],
    ]
    receiver.default = (503, {}, 0.0)
    outcomes.append(_notify(client, admin, dry_run=False, force_notify=True)["outcome"])
    set_policy(client, admin, alert_enabled=False)
    outcomes.append(_notify(client, admin, dry_run=False)["outcome"])
    assert outcomes == ["dry_run", "sent", "suppressed", "failed", "skipped"]
    with make_session_factory(engine)() as session:
        codes = session.scalars(
            select(ApiAuditLog.error_code)
            .where(ApiAuditLog.path.contains("/notify"))
            .order_by(ApiAuditLog.created_at)
        ).all()
    assert sorted(codes) == sorted(f"CONTRACT_DRIFT_ANOMALY_NOTIFY_{o.upper()}" for o in outcomes)
    delivery = ok_data(
        client.get(
            f"{PREFIX}/drift/trigger-alert-delivery",
            headers=admin.headers,
            params={"schedule_name": "daily"},
        )
    )
    assert delivery["total_notify_events"] == 5
    assert [
        delivery[f"{o}_count"] for o in ("sent", "failed", "suppressed", "skipped", "dry_run")
    ] == [1] * 5
    assert (
        delivery["last_sent_at"]
        == delivery["last_failed_at"]
        == delivery["last_event_at"]
        == "2026-11-25T12:00:00Z"
    )
    state = _rows(engine, TriggerAlertState)[0]
    assert delivery["alert_fingerprint"] == state.alert_fingerprint and delivery["last_notified_at"]
    # docs/reference/scheduler.md#alert-delivery with `schedule_name` omitted reads like
    # docs/reference/scheduler.md#trigger-summary: every schedule, reported as `_all`.
    _notify(client, admin, schedule_name="hourly")  # a dry run of another schedule
    everything = ok_data(
        client.get(f"{PREFIX}/drift/trigger-alert-delivery", headers=admin.headers)
    )
    assert everything["schedule_name"] == "_all"
    assert (
        everything["total_notify_events"],
        everything["sent_count"],
        everything["dry_run_count"],
    ) == (6, 1, 2)
    assert everything["last_notified_at"] == delivery["last_notified_at"]
    assert everything["alert_fingerprint"] == state.alert_fingerprint
    hourly = ok_data(
        client.get(
            f"{PREFIX}/drift/trigger-alert-delivery",
            headers=admin.headers,
            params={"schedule_name": "hourly"},
        )
    )
    assert (hourly["total_notify_events"], hourly["sent_count"], hourly["last_notified_at"]) == (
        1,
        0,
        None,
    )


@pytest.mark.parametrize("path", ["/drift/trigger-summary/notify", "/drift/schedule-run"])
def test_notify_and_schedule_run_need_admin(
    client: TestClient, admin, engine: Engine, path: str
) -> None:
    from tests.support import make_tenant

    viewer = make_tenant(engine, role="viewer", org_id=admin.org_id)
    response = post(client, viewer, path, {"org_id": str(admin.org_id)})
    assert response.status_code == 403
    assert _rows(engine, NotifyEvent) == []
