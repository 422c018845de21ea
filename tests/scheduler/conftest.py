"""Scheduler fixtures.

A webhook receiver as the default destination, drifted bindings, policy helpers.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from driftwarden.agents.models import Agent
from driftwarden.contracts.models import ContractBinding, ContractDefinition
from driftwarden.db.engine import make_session_factory
from driftwarden.settings import Settings
from tests.support import WebhookReceiver

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
    now = datetime.now(UTC)
    with make_session_factory(engine)() as session:
        agent = Agent(
            org_id=org_id,
            name=agent_name,
            status="production",
            metadata_={},
            created_at=now,
            updated_at=now,
        )
        session.add(agent)
        session.flush()
        plan = [("2.0.0", "1.4.2")] * breaking + [("1.5.0", "1.4.2")] * warning
        for n, (current, bound) in enumerate(plan):
            definition = ContractDefinition(
                org_id=org_id,
                definition_type="gate",
                key=f"{agent_name}-gate-{n}",
                name=f"Gate {n}",
                contract_version=current,
                default_config={},
                is_active=True,
                created_at=now,
                updated_at=now,
            )
            session.add(definition)
            session.flush()
            session.add(
                ContractBinding(
                    org_id=org_id,
                    agent_id=agent.id,
                    definition_id=definition.id,
                    enabled=True,
                    config={},
                    definition_contract_version=bound,
                    created_at=now,
                    updated_at=now,
                )
            )
        session.commit()
        return agent.id


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
