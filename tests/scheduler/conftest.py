"""Scheduler fixtures.

A webhook receiver as the default destination, drifted bindings, policy helpers.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from driftwarden.scheduler import watchlist
from driftwarden.settings import Settings
from tests.support import WebhookReceiver, seed_agent_bindings

PREFIX = "/api/v1/system/contracts"


@pytest.fixture(scope="session")
def _shared_receiver() -> Iterator[WebhookReceiver]:
    """One receiver thread for the run (its shutdown polls for half a second)."""
    with WebhookReceiver() as hook:
        yield hook


@pytest.fixture
def receiver(_shared_receiver: WebhookReceiver) -> WebhookReceiver:
    """The default webhook destination, reset to answer 200 with nothing received."""
    _shared_receiver.received.clear()
    _shared_receiver.responses.clear()
    _shared_receiver.default = (200, {}, 0.0)
    return _shared_receiver


@pytest.fixture
def settings(database_url: str, receiver: WebhookReceiver) -> Settings:
    return Settings(
        DATABASE_URL=database_url,
        NOTIFY_RETRY_SCHEDULE="1,2,3",
        NOTIFY_WEBHOOK_URL=receiver.url,
        NOTIFY_WEBHOOK_TIMEOUT_SECONDS=5,
    )


def seed_drift(
    engine: Engine,
    org_id: uuid.UUID,
    *,
    breaking: int = 2,
    warning: int = 1,
    agent_name: str = "support-bot",
) -> uuid.UUID:
    """One agent bound to `breaking` definitions a major version behind.

    And to `warning` definitions a minor version behind.
    """
    plan = [("2.0.0", "1.4.2")] * breaking + [("1.5.0", "1.4.2")] * warning
    return seed_agent_bindings(
        engine, org_id, plan, name=agent_name, key=lambda n: f"{agent_name}-gate-{n}"
    )


def set_policy(client: TestClient, tenant, **fields) -> dict:  # type: ignore[no-untyped-def]
    response = client.post(f"{PREFIX}/drift-policy", headers=tenant.headers, json=fields)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def post(client: TestClient, tenant, path: str, body: dict, key: str | None = None):  # type: ignore[no-untyped-def]
    headers = {**tenant.headers, "Idempotency-Key": key or uuid.uuid4().hex}
    return client.post(f"{PREFIX}{path}", headers=headers, json=body)


def ok_data(response) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.text
    return response.json()["data"]


@pytest.fixture(params=["full", "tracked"])
def watch_tracker(request: pytest.FixtureRequest) -> watchlist.WatchTracker | None:
    """Each watchdog test twice: every tick reading every schedule (no tracker), and a worker's
    tracker that never reads everything again after its first tick, so that what a tracked tick
    reads (due, changed policies, moving triggers) must notice each change on its own."""
    if request.param == "full":
        return None
    return watchlist.WatchTracker(full_every=timedelta.max)
