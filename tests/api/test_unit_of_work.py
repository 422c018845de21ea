"""The stored response is committed with the route's work, or neither is: a retry never runs twice.

Faults are injected where the old design lost the race: completing the idempotency record after
the route's own commit. Each test counts the rows the retries leave behind.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from driftwarden.agents import service as agents_service
from driftwarden.agents.models import Agent
from driftwarden.api import idempotency_records, unit_of_work
from driftwarden.api.models import IdempotencyRecord
from tests.support import ON_POSTGRES

AGENTS = "/api/v1/agents"


def _blip() -> OperationalError:
    return OperationalError(
        "UPDATE idempotency_records SET state=...",
        {},
        Exception("server closed the connection unexpectedly"),
    )


def _count(session_factory, model) -> int:  # type: ignore[no-untyped-def]
    with session_factory() as session:
        return session.scalar(select(func.count()).select_from(model))


def _retry_until_done(client: TestClient, headers: dict[str, str], body: dict) -> list[int]:
    """What a client does after a 503: retry with the same key until it gets an answer."""
    statuses = []
    for _ in range(4):
        response = client.post(AGENTS, headers=headers, json=body)
        statuses.append(response.status_code)
        if response.status_code < 500:
            break
    return statuses


@pytest.fixture
def once_on_request_sessions(monkeypatch) -> dict[str, bool]:  # type: ignore[no-untyped-def]
    """Arms one failure of the next request session's commit: before it, or after it succeeded."""
    armed: dict[str, bool] = {}
    real_commit = Session.commit

    def commit(session: Session) -> None:
        if not session.info.get(unit_of_work.STATE_KEY):
            return real_commit(session)
        if armed.pop("before", False):
            raise _blip()
        real_commit(session)
        if armed.pop("after", False):
            raise _blip()

    monkeypatch.setattr(Session, "commit", commit)
    return armed


def test_completion_failing_after_the_work_rolls_the_work_back(
    client: TestClient, admin, session_factory, monkeypatch
) -> None:
    real = idempotency_records.complete_record
    calls = {"n": 0}

    def fails_once(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        done = real(*args, **kwargs)  # the UPDATE ran, in the route's transaction
        if calls["n"] == 1:
            raise _blip()
        return done

    monkeypatch.setattr(idempotency_records, "complete_record", fails_once)
    headers = {**admin.headers, "Idempotency-Key": "blip-1"}
    first = client.post(AGENTS, headers=headers, json={"name": "once"})
    assert first.status_code == 503 and first.json()["error"]["code"] == "DATABASE_UNAVAILABLE"
    assert first.headers["retry-after"].isdigit()
    assert _count(session_factory, Agent) == 0  # nothing half-done is left behind the 503
    assert _retry_until_done(client, headers, {"name": "once"}) == [201]
    replay = client.post(AGENTS, headers=headers, json={"name": "once"})
    assert replay.headers["idempotent-replayed"] == "true"
    assert _count(session_factory, Agent) == 1


def test_commit_refused_leaves_nothing_and_the_retry_runs_once(
    client: TestClient, admin, session_factory, once_on_request_sessions
) -> None:
    once_on_request_sessions["before"] = True
    headers = {**admin.headers, "Idempotency-Key": "blip-2"}
    assert _retry_until_done(client, headers, {"name": "refused"}) == [503, 201]
    assert _count(session_factory, Agent) == 1


def test_answer_lost_after_commit_is_replayed_never_rerun(
    client: TestClient, admin, session_factory, once_on_request_sessions
) -> None:
    once_on_request_sessions["after"] = True  # committed, then the connection dropped
    headers = {**admin.headers, "Idempotency-Key": "blip-3"}
    lost = client.post(AGENTS, headers=headers, json={"name": "lost"})
    assert lost.status_code == 503
    retried = client.post(AGENTS, headers=headers, json={"name": "lost"})
    assert retried.status_code == 201 and retried.headers["idempotent-replayed"] == "true"
    with session_factory() as session:
        [agent] = session.scalars(select(Agent)).all()
        record = session.scalars(select(IdempotencyRecord)).one()
    assert retried.json()["data"]["id"] == str(agent.id)
    assert record.state == "completed" and record.response_status == 201


@pytest.mark.integration
@pytest.mark.skipif(not ON_POSTGRES, reason="SQLite has one writer: a takeover waits for this run")
def test_a_run_whose_key_was_taken_over_is_not_kept(
    client: TestClient, admin, session_factory, monkeypatch, clock
) -> None:
    real = agents_service.create_agent

    def taken_over_meanwhile(session, **kwargs):  # type: ignore[no-untyped-def]
        agent = real(session, **kwargs)
        with session_factory() as other:  # another worker took over the lapsed lease
            other.execute(
                IdempotencyRecord.__table__.update().values(
                    locked_until=clock.now().replace(year=2030)
                )
            )
            other.commit()
        return agent

    monkeypatch.setattr(agents_service, "create_agent", taken_over_meanwhile)
    response = client.post(
        AGENTS, headers={**admin.headers, "Idempotency-Key": "taken"}, json={"name": "loser"}
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "IDEMPOTENCY_IN_PROGRESS"
    assert _count(session_factory, Agent) == 0


def test_a_domain_error_rolls_back_what_the_route_flushed(
    client: TestClient, admin, session_factory
) -> None:
    created = client.post(AGENTS, headers=admin.headers, json={"name": "a", "external_id": "x1"})
    assert created.status_code == 201
    duplicate = client.post(
        AGENTS,
        headers={**admin.headers, "Idempotency-Key": "dup"},
        json={"name": "b", "external_id": "x1"},
    )
    assert duplicate.status_code == 409
    again = client.post(
        AGENTS,
        headers={**admin.headers, "Idempotency-Key": "dup"},
        json={"name": "b", "external_id": "x1"},
    )
    assert again.status_code == 409 and again.headers["idempotent-replayed"] == "true"
    assert _count(session_factory, Agent) == 1
