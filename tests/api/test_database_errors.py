"""A saturated or unreachable database is 503 with Retry-After in the envelope, never 500."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy.exc import TimeoutError as PoolTimeout

from driftwarden.agents import service as agents_service
from driftwarden.api.app import create_app
from driftwarden.db.engine import make_engine
from driftwarden.settings import Settings
from tests.support import ON_POSTGRES, make_tenant, sqlite_template

AGENTS = "/api/v1/agents"


def _assert_503(response, code: str) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["ok"] is False and body["error"]["code"] == code
    assert body["error"]["details"]["request_id"] == response.headers["x-request-id"]
    assert int(response.headers["retry-after"]) >= 1
    assert "SELECT" not in response.text and "Traceback" not in response.text


def test_no_free_connection_is_503_overloaded_within_the_acquire_timeout(
    database_url: str, clock, engine
) -> None:
    tenant = make_tenant(engine)
    tight = Settings(
        DATABASE_URL=database_url, DB_POOL_SIZE=1, DB_MAX_OVERFLOW=0, DB_POOL_TIMEOUT_SECONDS=0.5
    )
    small = make_engine(tight)
    app = create_app(tight, engine=small, clock=clock)
    try:
        with small.connect(), TestClient(app, raise_server_exceptions=False) as client:
            started = time.monotonic()
            response = client.get(AGENTS, headers=tenant.headers)
            elapsed = time.monotonic() - started
        _assert_503(response, "SERVICE_OVERLOADED")
        assert elapsed < 0.5 + 1.5, elapsed
    finally:
        small.dispose()


def test_a_pool_timeout_inside_a_route_is_503_overloaded(
    client: TestClient, admin, monkeypatch
) -> None:
    def saturated(*_args, **_kwargs):  # type: ignore[no-untyped-def]
        raise PoolTimeout("QueuePool limit of size 5 overflow 5 reached")

    monkeypatch.setattr(agents_service, "create_agent", saturated)
    response = client.post(
        AGENTS, headers={**admin.headers, "Idempotency-Key": "busy"}, json={"name": "x"}
    )
    _assert_503(response, "SERVICE_OVERLOADED")
    monkeypatch.undo()
    retried = client.post(
        AGENTS, headers={**admin.headers, "Idempotency-Key": "busy"}, json={"name": "x"}
    )
    assert retried.status_code == 201  # a 503 is not stored: the same key runs on retry


def _unreachable_url(tmp_path: Path) -> str:
    if ON_POSTGRES:
        return "postgresql://postgres@127.0.0.1:1/driftwarden_nowhere"
    return f"sqlite:///{tmp_path / 'missing-dir' / 'driftwarden.db'}"


def test_an_unreachable_database_is_503_unavailable_and_not_ready(tmp_path: Path, clock) -> None:
    settings = Settings(DATABASE_URL=_unreachable_url(tmp_path), DB_POOL_TIMEOUT_SECONDS=2)
    with TestClient(create_app(settings, clock=clock), raise_server_exceptions=False) as client:
        started = time.monotonic()
        write = client.post(
            AGENTS, headers={"Authorization": "Bearer dwk_" + "A" * 40}, json={"name": "x"}
        )
        assert time.monotonic() - started < 5
        ready = client.get("/readyz")
        alive = client.get("/healthz")
    _assert_503(write, "DATABASE_UNAVAILABLE")
    assert ready.status_code == 503 and alive.status_code == 200


def test_the_same_process_recovers_when_the_database_returns(tmp_path: Path, clock) -> None:
    """SQLite stands in for a server here: the file appears once the 'outage' ends."""
    path = tmp_path / "later" / "driftwarden.db"
    settings = Settings(DATABASE_URL=f"sqlite:///{path}")
    app = create_app(settings, clock=clock)
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/readyz").status_code == 503
        template = sqlite_template(tmp_path)
        path.parent.mkdir()
        shutil.copyfile(template, path)
        tenant = make_tenant(app.state.engine)
        assert client.get("/readyz").status_code == 200
        created = client.post(AGENTS, headers=tenant.headers, json={"name": "after"})
    assert created.status_code == 201
