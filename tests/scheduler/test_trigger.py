"""Every trigger outcome in its order of precedence, the window claim, force and dry runs.

docs/reference/scheduler.md#trigger
"""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from driftwarden.db.engine import make_session_factory
from driftwarden.patterns.models import IssuePattern
from driftwarden.scheduler import trigger as trigger_service
from driftwarden.scheduler.models import TriggerRun
from tests.scheduler.conftest import ok_data, post, seed_drift, set_policy
from tests.support import make_tenant


def _count(engine: Engine, model, *where) -> int:  # type: ignore[no-untyped-def]
    with make_session_factory(engine)() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


@pytest.fixture
def drifted(client: TestClient, admin, engine: Engine) -> uuid.UUID:
    agent_id = seed_drift(engine, admin.org_id)
    set_policy(client, admin, enabled=True)
    return agent_id


def test_policy_disabled_then_promotion_disabled_then_force(
    client: TestClient, admin, engine: Engine
) -> None:
    seed_drift(engine, admin.org_id)
    first = ok_data(post(client, admin, "/drift/trigger", {}))
    assert first["outcome"] == "policy_disabled" and not first["executed"] and not first["deduped"]
    assert first["promote"] is None
    set_policy(client, admin, enabled=True, promote_to_patterns=False)
    second = ok_data(post(client, admin, "/drift/trigger", {}))
    assert second["outcome"] == "promotion_disabled"
    set_policy(client, admin, enabled=False)
    forced = ok_data(post(client, admin, "/drift/trigger", {"force": True}))
    assert forced["outcome"] == "executed" and forced["forced"] is True
    assert forced["promote"]["created_pattern_count"] == 2  # breaking only: the policy's min_drift
    assert _count(engine, TriggerRun) == 3


def test_executed_then_deduped_naming_the_winner(
    client: TestClient, admin, engine: Engine, drifted, clock
) -> None:
    first = ok_data(post(client, admin, "/drift/trigger", {}))
    assert (
        first["outcome"] == "executed" and first["executed"] is True and first["deduped"] is False
    )
    assert (
        first["window_start"] == "2026-11-25T00:00:00Z"
        and first["window_end"] == "2026-11-26T00:00:00Z"
    )
    assert first["dedupe_key"] == f"{admin.org_id}:daily:1440:2026-11-25T00:00:00Z:*"
    assert first["promote"]["created_pattern_count"] == 2 and first["error"] is None
    clock.advance(hours=11)
    second = ok_data(post(client, admin, "/drift/trigger", {}))
    assert (
        second["outcome"] == "deduped" and second["deduped"] is True and second["executed"] is False
    )
    assert second["deduped_from_trigger_id"] == first["trigger_id"] and second["promote"] is None
    assert _count(engine, IssuePattern) == 2
    clock.advance(hours=1)  # the next window opens
    third = ok_data(post(client, admin, "/drift/trigger", {}))
    assert third["outcome"] == "executed" and third["window_start"] == "2026-11-26T00:00:00Z"
    assert (
        third["promote"]["reused_pattern_count"] == 2
        and third["promote"]["created_pattern_count"] == 0
    )


def test_replayed_key_returns_the_first_response(client: TestClient, admin, drifted) -> None:
    first = post(client, admin, "/drift/trigger", {}, key="window-key-1")
    replay = post(client, admin, "/drift/trigger", {}, key="window-key-1")
    assert replay.headers.get("idempotent-replayed") == "true"
    assert replay.json() == first.json() and replay.json()["data"]["outcome"] == "executed"
    reused = post(client, admin, "/drift/trigger", {"dry_run": True}, key="window-key-1")
    assert reused.status_code == 422 and reused.json()["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"


def test_key_is_required(client: TestClient, admin, drifted) -> None:
    response = client.post("/api/v1/system/contracts/drift/trigger", headers=admin.headers, json={})
    assert (
        response.status_code == 400
        and response.json()["error"]["code"] == "IDEMPOTENCY_KEY_REQUIRED"
    )


def test_overrides_change_the_window_and_the_key(
    client: TestClient, admin, engine: Engine, drifted
) -> None:
    base = ok_data(post(client, admin, "/drift/trigger", {}))
    hourly = ok_data(
        post(client, admin, "/drift/trigger", {"schedule_name": "hourly", "window_minutes": 60})
    )
    assert hourly["outcome"] == "executed" and hourly["window_start"] == "2026-11-25T12:00:00Z"
    per_agent = ok_data(
        post(client, admin, "/drift/trigger", {"agent_id": str(drifted), "min_drift": "warning"})
    )
    assert per_agent["outcome"] == "executed" and per_agent["dedupe_key"].endswith(f":{drifted}")
    assert (
        per_agent["promote"]["created_pattern_count"] == 1
    )  # the warning finding, breaking ones reused
    assert len({base["dedupe_key"], hourly["dedupe_key"], per_agent["dedupe_key"]}) == 3
    limited = ok_data(post(client, admin, "/drift/trigger", {"force": True, "limit": 1}))
    assert limited["promote"]["eligible_item_count"] == 1


def test_dry_run_writes_only_its_record_and_never_dedupes(
    client: TestClient, admin, engine: Engine, drifted
) -> None:
    dry = ok_data(post(client, admin, "/drift/trigger", {"dry_run": True}))
    assert dry["outcome"] == "executed" and dry["dry_run"] is True
    assert dry["promote"]["dry_run"] is True and dry["promote"]["created_pattern_count"] == 2
    assert _count(engine, IssuePattern) == 0
    real = ok_data(post(client, admin, "/drift/trigger", {}))
    assert real["outcome"] == "executed" and real["dry_run"] is False
    dry_again = ok_data(post(client, admin, "/drift/trigger", {"dry_run": True}))
    assert dry_again["outcome"] == "executed" and dry_again["deduped"] is False
    assert _count(engine, IssuePattern) == 2
    assert _count(engine, TriggerRun, TriggerRun.dry_run.is_(True)) == 2


def test_force_executes_again_in_an_executed_window(
    client: TestClient, admin, engine: Engine, drifted
) -> None:
    first = ok_data(post(client, admin, "/drift/trigger", {}))
    forced = ok_data(post(client, admin, "/drift/trigger", {"force": True}))
    assert (
        forced["outcome"] == "executed"
        and forced["forced"] is True
        and forced["dedupe_key"] == first["dedupe_key"]
    )
    after = ok_data(post(client, admin, "/drift/trigger", {}))
    assert after["outcome"] == "deduped" and after["deduped_from_trigger_id"] == first["trigger_id"]


def test_failed_promotion_is_recorded_and_frees_the_window(
    client: TestClient, admin, engine: Engine, drifted, monkeypatch
) -> None:
    def broken(*_args, **_kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("scan exploded")

    with monkeypatch.context() as patch:
        patch.setattr(trigger_service.patterns_service, "promote_drift", broken)
        response = post(client, admin, "/drift/trigger", {})
    failed, rid = ok_data(response), response.headers["x-request-id"]
    assert failed["outcome"] == "failed" and failed["executed"] is False
    expected = f"INTERNAL_ERROR: drift promotion failed (RuntimeError) (request_id {rid})"
    assert failed["error"] == expected
    assert "scan exploded" not in failed["error"] and failed["promote"] is None
    assert _count(engine, IssuePattern) == 0
    retry = ok_data(post(client, admin, "/drift/trigger", {}))
    assert retry["outcome"] == "executed" and retry["promote"]["created_pattern_count"] == 2


def test_agent_must_belong_to_the_org(client: TestClient, admin, engine: Engine, drifted) -> None:
    other = make_tenant(engine, name="Other")
    foreign_agent = seed_drift(engine, other.org_id, agent_name="theirs")
    response = post(client, admin, "/drift/trigger", {"agent_id": str(foreign_agent)})
    assert response.status_code == 404 and response.json()["error"]["code"] == "AGENT_NOT_FOUND"
    bad_window = post(client, admin, "/drift/trigger", {"window_minutes": 4})
    assert bad_window.status_code == 422


def test_trigger_row_records_who_and_when(
    client: TestClient, admin, engine: Engine, drifted
) -> None:
    response = client.post(
        "/api/v1/system/contracts/drift/trigger",
        json={},
        headers={**admin.headers, "Idempotency-Key": "k-rec", "X-Request-Id": "req-rec"},
    )
    trigger_id = uuid.UUID(ok_data(response)["trigger_id"])
    with make_session_factory(engine)() as session:
        row = session.get(TriggerRun, trigger_id)
        assert row is not None
        assert (row.request_id, row.idempotency_key, row.outcome) == (
            "req-rec",
            "k-rec",
            "executed",
        )
        assert row.finished_at is not None and row.duration_ms is not None and row.duration_ms >= 0
        assert row.promote_result["created_pattern_count"] == 2


def test_a_failed_promotion_records_a_code_a_line_and_the_request_id_never_sql() -> None:
    from sqlalchemy.exc import OperationalError

    from driftwarden.errors import Conflict

    leak = OperationalError(
        "UPDATE issue_patterns SET evidence=%(e)s WHERE id = 7",
        {"e": "x"},
        Exception("could not serialize access\nDETAIL: ..."),
    )
    text = trigger_service.error_text(leak, "req-9")
    assert text == (
        "DATABASE_ERROR: the database failed during drift promotion; retry (request_id req-9)"
    )
    domain = trigger_service.error_text(Conflict("pattern changed meanwhile\nsecond line"), None)
    assert domain == "CONFLICT: pattern changed meanwhile (request_id -)"
