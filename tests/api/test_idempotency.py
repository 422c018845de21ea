"""docs/reference/api.md#idempotency: Idempotency-Key semantics, stored in the database."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from driftwarden.agents.models import Agent
from driftwarden.api.app import create_app
from driftwarden.api.idempotency import IdempotencyKeyRequired, request_fingerprint
from driftwarden.api.models import IdempotencyRecord
from tests.support import LiveServer


def _agents(session_factory) -> int:  # type: ignore[no-untyped-def]
    with session_factory() as session:
        return session.scalar(select(func.count()).select_from(Agent))


def test_replay_returns_stored_response_and_runs_nothing(
    client: TestClient, admin, session_factory
) -> None:
    headers = {**admin.headers, "Idempotency-Key": "k-1"}
    first = client.post(
        "/api/v1/agents", headers=headers, json={"name": "one", "metadata": {"a": 1}}
    )
    again = client.post(
        "/api/v1/agents", headers=headers, json={"metadata": {"a": 1}, "name": "one"}
    )
    assert first.status_code == again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert again.json() == first.json()
    assert _agents(session_factory) == 1


def test_same_key_other_payload_is_422(client: TestClient, admin) -> None:
    headers = {**admin.headers, "Idempotency-Key": "k-2"}
    client.post("/api/v1/agents", headers=headers, json={"name": "one"})
    other = client.post("/api/v1/agents", headers=headers, json={"name": "two"})
    assert other.status_code == 422 and other.json()["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    other_query = client.post("/api/v1/agents?x=1", headers=headers, json={"name": "one"})
    assert other_query.status_code == 422


def test_key_is_scoped_to_api_key_method_and_path(
    client: TestClient, admin, engine, session_factory
) -> None:
    from tests.support import make_tenant

    second_key = make_tenant(engine, role="admin", org_id=admin.org_id)
    body = {"name": "scoped"}
    client.post("/api/v1/agents", headers={**admin.headers, "Idempotency-Key": "same"}, json=body)
    other = client.post(
        "/api/v1/agents", headers={**second_key.headers, "Idempotency-Key": "same"}, json=body
    )
    assert other.status_code == 201 and "idempotent-replayed" not in other.headers
    legacy = client.post(
        "/api/agents", headers={**admin.headers, "Idempotency-Key": "same"}, json=body
    )
    assert "idempotent-replayed" not in legacy.headers
    assert _agents(session_factory) == 3


def test_in_progress_is_409_until_lease_lapses(
    client: TestClient, admin, session_factory, clock
) -> None:
    body = b'{"name":"slow"}'
    fingerprint = request_fingerprint("POST", "/api/v1/agents", b"", body)
    now = clock.now()
    with session_factory() as session:
        session.add(
            IdempotencyRecord(
                api_key_id=admin.api_key_id,
                method="POST",
                path="/api/v1/agents",
                idempotency_key="busy",
                request_hash=fingerprint,
                state="in_progress",
                locked_until=now + timedelta(minutes=5),
                expires_at=now + timedelta(hours=24),
                created_at=now,
            )
        )
        session.commit()
    headers = {**admin.headers, "Idempotency-Key": "busy", "Content-Type": "application/json"}
    busy = client.post("/api/v1/agents", headers=headers, content=body)
    assert busy.status_code == 409 and busy.json()["error"]["code"] == "IDEMPOTENCY_IN_PROGRESS"
    assert busy.headers["retry-after"] == "300"  # the whole 5-minute lease is left
    clock.advance(seconds=100.25)
    assert (
        client.post("/api/v1/agents", headers=headers, content=body).headers["retry-after"] == "200"
    )
    clock.advance(seconds=199.5)  # a quarter second left: still at least 1
    assert (
        client.post("/api/v1/agents", headers=headers, content=body).headers["retry-after"] == "1"
    )
    clock.advance(minutes=6)  # the first request crashed; its lease lapsed
    retried = client.post("/api/v1/agents", headers=headers, content=body)
    assert retried.status_code == 201
    assert _agents(session_factory) == 1


def test_records_expire(client: TestClient, admin, clock, session_factory) -> None:
    headers = {**admin.headers, "Idempotency-Key": "old"}
    client.post("/api/v1/agents", headers=headers, json={"name": "x"})
    clock.advance(hours=25)
    later = client.post("/api/v1/agents", headers=headers, json={"name": "x"})
    assert later.status_code == 201 and "idempotent-replayed" not in later.headers
    assert _agents(session_factory) == 2


def test_5xx_is_not_stored(settings, engine, clock, admin) -> None:
    app = create_app(settings, engine=engine, clock=clock)
    calls = {"n": 0}
    router = APIRouter()

    @router.post("/api/v1/flaky")
    def flaky(_key: IdempotencyKeyRequired) -> dict:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("transient")
        return {"ok": True, "data": {"n": calls["n"]}}

    app.include_router(router)
    with TestClient(app, raise_server_exceptions=False) as client:
        headers = {**admin.headers, "Idempotency-Key": "retry-me"}
        assert client.post("/api/v1/flaky", headers=headers, json={}).status_code == 500
        second = client.post("/api/v1/flaky", headers=headers, json={})
        assert second.status_code == 200 and second.json()["data"] == {"n": 2}
        third = client.post("/api/v1/flaky", headers=headers, json={})
        assert third.headers["idempotent-replayed"] == "true" and calls["n"] == 2
        missing = client.post("/api/v1/flaky", headers=admin.headers, json={})
        assert (
            missing.status_code == 400
            and missing.json()["error"]["code"] == "IDEMPOTENCY_KEY_REQUIRED"
        )


def test_invalid_key_is_400(client: TestClient, admin) -> None:
    response = client.post(
        "/api/v1/agents",
        headers={**admin.headers, "Idempotency-Key": "x" * 256},
        json={"name": "x"},
    )
    assert (
        response.status_code == 400
        and response.json()["error"]["code"] == "IDEMPOTENCY_KEY_INVALID"
    )


def test_unauthenticated_request_stores_nothing(client: TestClient, session_factory) -> None:
    response = client.post(
        "/api/v1/agents", headers={"Idempotency-Key": "anon"}, json={"name": "x"}
    )
    assert response.status_code == 401
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(IdempotencyRecord)) == 0


@pytest.mark.parametrize("attempt", range(2))
def test_twenty_racing_requests_with_one_key_make_one_agent(
    app, admin, session_factory, attempt: int
) -> None:
    headers = {**admin.headers, "Idempotency-Key": f"race-{attempt}"}
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=30) as http:

        def send(_: int) -> httpx.Response:
            return http.post("/api/v1/agents", headers=headers, json={"name": "raced"})

        with ThreadPoolExecutor(max_workers=20) as pool:
            responses = list(pool.map(send, range(20)))
    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) <= {201, 409}, statuses
    originals = [
        r for r in responses if r.status_code == 201 and "idempotent-replayed" not in r.headers
    ]
    replays = [r for r in responses if r.headers.get("idempotent-replayed") == "true"]
    conflicts = [r for r in responses if r.status_code == 409]
    assert len(originals) == 1
    assert len(originals) + len(replays) + len(conflicts) == 20
    assert all(r.json() == originals[0].json() for r in replays)
    assert all(r.json()["error"]["code"] == "IDEMPOTENCY_IN_PROGRESS" for r in conflicts)
    assert _agents(session_factory) == 1


def test_a_secret_shown_once_is_not_kept_for_replay(
    client: TestClient, admin, session_factory
) -> None:
    headers = {**admin.headers, "Idempotency-Key": "new-key-1"}
    created = client.post(
        "/api/v1/system/api-keys", headers=headers, json={"name": "ci", "role": "viewer"}
    )
    assert created.status_code == 201
    plaintext = created.json()["data"]["api_key"]
    with session_factory() as session:
        stored = session.scalars(select(IdempotencyRecord)).one()
    assert plaintext.encode() not in (stored.response_body or b"")
    replay = client.post(
        "/api/v1/system/api-keys", headers=headers, json={"name": "ci", "role": "viewer"}
    )
    assert replay.status_code == 409 and replay.headers["idempotent-replayed"] == "true"
    assert replay.json()["error"]["code"] == "IDEMPOTENCY_SECRET_WITHHELD"
    assert replay.json()["error"]["details"] == {
        "original_status": 201,
        "id": created.json()["data"]["id"],
    }
    assert plaintext not in replay.text
    listed = client.get("/api/v1/system/api-keys", headers=admin.headers).json()["data"]
    assert listed["total_count"] == 2  # the admin's own key and the one created once


def test_every_idempotent_request_gives_its_one_connection_back(
    settings, engine, clock, admin
) -> None:
    """The connection checked out for the key lookup is returned however the request ends."""
    small = create_app(
        settings.model_copy(update={"max_request_bytes": 2048}), engine=engine, clock=clock
    )

    def key(n: int) -> dict[str, str]:
        return {**admin.headers, "Idempotency-Key": f"conn-{n}"}

    with TestClient(small, raise_server_exceptions=False) as client:
        calls = [
            (201, lambda: client.post("/api/v1/agents", headers=key(1), json={"name": "a"})),
            (201, lambda: client.post("/api/v1/agents", headers=key(1), json={"name": "a"})),
            (422, lambda: client.post("/api/v1/agents", headers=key(1), json={"name": "b"})),
            (422, lambda: client.post("/api/v1/agents", headers=key(2), json={"nope": 1})),
            (400, lambda: client.post("/api/v1/agents", headers=key(0) | {"Idempotency-Key": ""})),
            (401, lambda: client.post("/api/v1/agents", headers={"Idempotency-Key": "conn-3"})),
            (413, lambda: client.post("/api/v1/agents", headers=key(4), content=b"x" * 4096)),
            (404, lambda: client.post("/api/v1/no-such-route", headers=key(5), json={})),
        ]
        for status, call in calls:
            assert call().status_code == status
            assert engine.pool.checkedout() == 0, status


def test_the_claim_is_committed_before_the_route_runs(settings, engine, clock, admin) -> None:
    """The claim runs in autocommit: another request with the key sees it while the route runs."""
    app = create_app(settings, engine=engine, clock=clock)
    entered, release = threading.Event(), threading.Event()
    router = APIRouter()

    @router.post("/api/v1/slow")
    def slow(_key: IdempotencyKeyRequired) -> dict:  # no session: SQLite's write lock stays free
        entered.set()
        release.wait(timeout=30)
        return {"ok": True, "data": {"done": True}}

    app.include_router(router)
    headers = {**admin.headers, "Idempotency-Key": "slow-1"}
    with (
        LiveServer(app) as server,
        httpx.Client(base_url=server.url, timeout=30) as http,
        ThreadPoolExecutor(max_workers=1) as pool,
    ):
        first = pool.submit(http.post, "/api/v1/slow", headers=headers, json={})
        assert entered.wait(timeout=30)
        busy = http.post("/api/v1/slow", headers=headers, json={})
        release.set()
        assert first.result().status_code == 200
        again = http.post("/api/v1/slow", headers=headers, json={})
    assert busy.status_code == 409 and busy.json()["error"]["code"] == "IDEMPOTENCY_IN_PROGRESS"
    assert again.headers["idempotent-replayed"] == "true"
    assert engine.pool.checkedout() == 0
