"""The one call a scheduler makes, with the runbook's six signals at their exact paths.

docs/reference/scheduler.md#schedule-run
"""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select, update
from sqlalchemy.exc import OperationalError

from driftwarden.api import idempotency_records
from driftwarden.db.engine import make_session_factory
from driftwarden.patterns.models import IssuePattern
from driftwarden.scheduler.models import DriftPolicy, NotifyEvent, TriggerRun
from tests.scheduler.conftest import ok_data, post, seed_drift, set_policy
from tests.support import make_tenant

SIGNALS = [
    ("trigger", "executed"),
    ("trigger", "deduped"),
    ("notify", "anomaly_detected"),
    ("notify", "notified"),
    ("notify", "notification", "sent"),
    ("notify", "escalation_pattern"),
]


def _signal(data: dict, path: tuple[str, ...]):  # type: ignore[no-untyped-def]
    for part in path:
        data = data[part] if data is not None else None
    return data


def _count(engine: Engine, model, *where) -> int:  # type: ignore[no-untyped-def]
    with make_session_factory(engine)() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def test_schedule_run_shape_and_signals(client: TestClient, admin, engine: Engine) -> None:
    agent_id = seed_drift(engine, admin.org_id)
    set_policy(client, admin, enabled=True, alert_enabled=True)
    response = post(
        client,
        admin,
        "/drift/schedule-run",
        {"org_id": str(admin.org_id), "agent_id": str(agent_id)},
    )
    data = ok_data(response)
    assert {
        k: data[k]
        for k in ("org_id", "schedule_name", "window_minutes", "summary_window_days", "dry_run")
    } == {
        "org_id": str(admin.org_id),
        "schedule_name": "daily",
        "window_minutes": 1440,
        "summary_window_days": 30,
        "dry_run": False,
    }
    assert [_signal(data, s) for s in SIGNALS] == [True, False, False, False, None, None]
    assert (
        data["trigger"]["promote"]["created_pattern_count"] == 2
    )  # the policy min_drift: breaking only
    assert (
        data["notify"]["outcome"] == "skipped" and data["notify"]["summary"]["trigger_count"] == 1
    )
    assert "items" not in data["notify"]["summary"]


def test_replay_and_new_key_dedupes_then_alerts(
    client: TestClient, admin, engine: Engine, receiver
) -> None:
    seed_drift(engine, admin.org_id)
    set_policy(
        client,
        admin,
        enabled=True,
        alert_enabled=True,
        alert_max_dedupe_hit_rate=0.5,
        alert_min_execution_rate=0.0,
    )
    body = {"org_id": str(admin.org_id)}
    first = post(client, admin, "/drift/schedule-run", body, key="nightly-2026-11-25")
    replay = post(client, admin, "/drift/schedule-run", body, key="nightly-2026-11-25")
    assert replay.headers["idempotent-replayed"] == "true" and replay.json() == first.json()
    assert _count(engine, TriggerRun) == 1
    second = ok_data(
        post(client, admin, "/drift/schedule-run", body, key="nightly-2026-11-25-retry")
    )
    assert second["trigger"]["deduped"] is True
    assert (
        second["trigger"]["deduped_from_trigger_id"]
        == first.json()["data"]["trigger"]["trigger_id"]
    )
    assert second["notify"]["anomaly_detected"] is True and second["notify"]["notified"] is True
    assert (
        second["notify"]["notification"]["sent"] is True
        and second["notify"]["escalation_pattern"] is None
    )
    assert len(receiver.received) == 1
    third = ok_data(post(client, admin, "/drift/schedule-run", body))
    assert third["trigger"]["deduped"] is True and third["notify"]["outcome"] == "suppressed"


def test_failed_notification_escalates_to_the_agent(
    client: TestClient, admin, engine: Engine, receiver
) -> None:
    agent_id = seed_drift(engine, admin.org_id)
    set_policy(client, admin, enabled=True, alert_enabled=True)
    receiver.default = (502, {}, 0.0)
    body = {"org_id": str(admin.org_id), "agent_id": str(agent_id), "force_notify": True}
    data = ok_data(post(client, admin, "/drift/schedule-run", body))
    assert data["notify"]["notification"]["sent"] is False and data["notify"]["notified"] is False
    escalation = data["notify"]["escalation_pattern"]
    assert escalation["created"] is True and escalation["priority"] == "high"
    with make_session_factory(engine)() as session:
        pattern = session.scalars(
            select(IssuePattern).where(IssuePattern.primary_tag == "contract_drift_alert_delivery")
        ).one()
    assert pattern.agent_id == agent_id


def test_dry_run_writes_nothing_but_its_records(
    client: TestClient, admin, engine: Engine, receiver
) -> None:
    seed_drift(engine, admin.org_id)
    set_policy(client, admin, enabled=True, alert_enabled=True)
    body = {
        "org_id": str(admin.org_id),
        "dry_run": True,
        "force_notify": True,
        "min_drift": "warning",
    }
    data = ok_data(post(client, admin, "/drift/schedule-run", body))
    assert data["dry_run"] is True and data["trigger"]["dry_run"] is True
    assert data["trigger"]["promote"]["created_pattern_count"] == 3
    assert data["notify"]["outcome"] == "dry_run" and data["notify"]["notification"] is None
    assert _count(engine, IssuePattern) == 0 and receiver.received == []
    assert _count(engine, TriggerRun) == 1 and _count(engine, NotifyEvent) == 1
    real = ok_data(post(client, admin, "/drift/schedule-run", {"org_id": str(admin.org_id)}))
    assert real["trigger"]["executed"] is True  # the dry run did not take the window


def test_org_id_is_required_and_validated(client: TestClient, admin) -> None:
    missing = post(client, admin, "/drift/schedule-run", {})
    assert missing.status_code == 422 and missing.json()["error"]["details"][0]["loc"] == [
        "body",
        "org_id",
    ]
    unknown = post(
        client, admin, "/drift/schedule-run", {"org_id": str(admin.org_id), "min_drift": "none"}
    )
    assert unknown.status_code == 422
    legacy = client.post(
        "/api/system/contracts/drift/schedule-run",
        headers=admin.headers,
        json={"org_id": str(admin.org_id)},
    )
    assert (
        legacy.status_code == 400 and legacy.json()["error"]["code"] == "IDEMPOTENCY_KEY_REQUIRED"
    )


def _escalation_agents(engine: Engine) -> list:  # type: ignore[type-arg]
    with make_session_factory(engine)() as session:
        return list(
            session.scalars(
                select(IssuePattern.agent_id).where(
                    IssuePattern.primary_tag == "contract_drift_alert_delivery"
                )
            )
        )


def test_escalation_lands_on_escalation_agent_id_apart_from_the_trigger_scope(
    client: TestClient, admin, engine: Engine, receiver
) -> None:
    scanned = seed_drift(engine, admin.org_id)
    owner = seed_drift(engine, admin.org_id, breaking=0, warning=0, agent_name="on-call")
    set_policy(client, admin, enabled=True, alert_enabled=True)
    receiver.default = (502, {}, 0.0)
    body = {
        "org_id": str(admin.org_id),
        "agent_id": str(scanned),
        "escalation_agent_id": str(owner),
        "force_notify": True,
    }
    data = ok_data(post(client, admin, "/drift/schedule-run", body))
    assert (data["agent_id"], data["escalation_agent_id"]) == (str(scanned), str(owner))
    assert data["trigger"]["dedupe_key"].endswith(
        f":{scanned}"
    )  # the trigger stays scoped to agent_id
    assert data["trigger"]["promote"]["created_pattern_count"] == 2
    assert data["notify"]["escalation_pattern"]["created"] is True
    assert _escalation_agents(engine) == [owner]


def test_escalation_agent_id_defaults_to_agent_id_and_null_means_the_org(
    client: TestClient, admin, engine: Engine, receiver
) -> None:
    scanned = seed_drift(engine, admin.org_id)
    set_policy(client, admin, enabled=True, alert_enabled=True)
    receiver.default = (502, {}, 0.0)
    left_out = ok_data(
        post(
            client,
            admin,
            "/drift/schedule-run",
            {"org_id": str(admin.org_id), "agent_id": str(scanned), "force_notify": True},
        )
    )
    assert left_out["escalation_agent_id"] == str(scanned) and _escalation_agents(engine) == [
        scanned
    ]
    with make_session_factory(engine)() as session:  # close it, so the next escalation files anew
        session.query(IssuePattern).delete()
        session.commit()
    org_level = ok_data(
        post(
            client,
            admin,
            "/drift/schedule-run",
            {
                "org_id": str(admin.org_id),
                "agent_id": str(scanned),
                "escalation_agent_id": None,
                "force_notify": True,
            },
        )
    )
    assert org_level["escalation_agent_id"] is None and _escalation_agents(engine) == [None]


def test_an_unknown_escalation_agent_is_refused_like_an_unknown_agent(
    client: TestClient, admin, engine: Engine
) -> None:
    other = make_tenant(engine, role="admin", name="Other")
    foreign = seed_drift(engine, other.org_id)
    for field in ("agent_id", "escalation_agent_id"):
        refused = post(
            client, admin, "/drift/schedule-run", {"org_id": str(admin.org_id), field: str(foreign)}
        )
        assert (
            refused.status_code == 404 and refused.json()["error"]["code"] == "AGENT_NOT_FOUND"
        ), field
    assert _count(engine, TriggerRun) == 0


def _summary(data: dict) -> tuple:
    s = data["notify"]["summary"]
    counts = ("trigger_count", "executed_count", "deduped_count", "dry_run_count")
    return (*(s[k] for k in counts), s["dedupe_hit_rate"], s["execution_rate"])


def test_the_summary_a_run_returns_counts_every_trigger_of_its_schedule_in_its_window(
    client: TestClient, admin, engine: Engine, clock
) -> None:
    """Worked by hand: each run (executed, deduped, dry, another schedule, a window later, and
    after the first day's triggers left the 30-day window) changes the next summary exactly."""
    seed_drift(engine, admin.org_id)
    set_policy(client, admin, enabled=True)
    daily, hourly = {"org_id": str(admin.org_id)}, {"schedule_name": "hourly", "window_minutes": 60}

    def run(body: dict) -> tuple:
        return _summary(ok_data(post(client, admin, "/drift/schedule-run", body)))

    assert run(daily) == (1, 1, 0, 0, 0.0, 1.0)
    assert run(daily) == (2, 1, 1, 0, 0.5, 0.5)  # deduped: counted with itself
    assert run({**daily, **hourly}) == (1, 1, 0, 0, 0.0, 1.0)  # its own schedule
    assert run(daily) == (3, 1, 2, 0, 0.666667, 0.333333)  # the hourly run is not counted
    clock.advance(days=1)
    assert run(daily) == (4, 2, 2, 0, 0.5, 0.5)  # a new window executes
    assert run({**daily, "dry_run": True}) == (4, 2, 2, 1, 0.5, 0.5)  # dry: apart
    assert run(daily) == (5, 2, 3, 1, 0.6, 0.4)
    clock.advance(days=29, hours=12)  # the first day's three daily triggers are over 30 days old
    assert run(daily) == (3, 2, 1, 1, 0.333333, 0.666667)


def test_a_deduped_run_writes_its_notify_event_with_its_stored_response_or_not_at_all(
    client: TestClient, admin, engine: Engine, monkeypatch
) -> None:
    """The route hands the event row to the unit of work, which writes it with the idempotency
    record's completion (on Postgres in its statement): a completion that fails leaves neither."""
    seed_drift(engine, admin.org_id)
    set_policy(client, admin, enabled=True)
    body = {"org_id": str(admin.org_id)}
    ok_data(post(client, admin, "/drift/schedule-run", body))
    real, calls = idempotency_records.complete_record, []

    def fails_once(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(kwargs)
        done = real(*args, **kwargs)  # the completion and its rows ran, in the run's transaction
        if len(calls) == 1:
            raise OperationalError("UPDATE idempotency_records ...", {}, Exception("gone"))
        return done

    monkeypatch.setattr(idempotency_records, "complete_record", fails_once)
    failed = post(client, admin, "/drift/schedule-run", body, key="deduped-once")
    assert failed.status_code == 503
    assert _count(engine, TriggerRun) == 1 and _count(engine, NotifyEvent) == 1
    data = ok_data(post(client, admin, "/drift/schedule-run", body, key="deduped-once"))
    assert data["trigger"]["deduped"] is True and [len(c["rows"]) for c in calls] == [1, 1]
    assert _count(engine, TriggerRun) == 2
    with make_session_factory(engine)() as session:
        event = session.scalars(select(NotifyEvent).order_by(NotifyEvent.created_at.desc())).first()
    assert event is not None
    assert (event.outcome, event.fingerprint, event.reasons) == (
        data["notify"]["outcome"],
        data["notify"]["fingerprint"],
        data["notify"]["reasons"],
    )
    assert _count(engine, NotifyEvent) == 2


def test_a_policy_another_process_changed_is_the_one_the_next_run_follows(
    client: TestClient, admin, engine: Engine
) -> None:
    """The server remembers the policy it last read; on Postgres a deduped run's statement checks
    that it is still the org's. A change made elsewhere (here: straight in the database, which
    the server is not told of) rules the next run, whichever field it is."""
    seed_drift(engine, admin.org_id)
    set_policy(client, admin, enabled=True)
    body = {"org_id": str(admin.org_id)}
    policy = DriftPolicy.__table__

    def change_elsewhere(**values) -> None:  # type: ignore[no-untyped-def]
        with engine.begin() as connection:
            connection.execute(
                update(policy).where(policy.c.org_id == admin.org_id).values(**values)
            )

    assert ok_data(post(client, admin, "/drift/schedule-run", body))["trigger"]["executed"]
    assert ok_data(post(client, admin, "/drift/schedule-run", body))["trigger"]["deduped"]
    change_elsewhere(alert_max_dedupe_hit_rate=0.25)
    data = ok_data(post(client, admin, "/drift/schedule-run", body))
    assert data["trigger"]["deduped"] is True
    assert data["notify"]["thresholds"]["alert_max_dedupe_hit_rate"] == 0.25
    assert "dedupe_hit_rate_high" in data["notify"]["reasons"]  # 2 of 3: under 0.7, over 0.25
    change_elsewhere(schedule_window_minutes=60)
    data = ok_data(post(client, admin, "/drift/schedule-run", body))
    assert data["trigger"]["executed"] is True and data["window_minutes"] == 60
    change_elsewhere(enabled=False)
    data = ok_data(post(client, admin, "/drift/schedule-run", body))
    assert data["trigger"]["outcome"] == "policy_disabled"
