"""Patterns fixtures.

A default webhook (so notifications are queued) and a drift world built in the DB.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, delete, func, select, update

from driftwarden.agents.models import Agent
from driftwarden.contracts.models import ContractBinding, ContractDefinition
from driftwarden.db.engine import make_session_factory
from driftwarden.notifications.models import NotificationOutbox
from driftwarden.patterns.models import IssuePattern
from driftwarden.settings import Settings
from tests import support

HOOK = "http://127.0.0.1:9/hook"  # never contacted: nothing drains the outbox in these tests
T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        DATABASE_URL=database_url, NOTIFY_RETRY_SCHEDULE="1,2,3", NOTIFY_WEBHOOK_URL=HOOK
    )


@dataclass
class World:
    """Agents, definitions and bindings of one org, written straight to the database."""

    engine: Engine
    org_id: uuid.UUID

    def _add(self, row: Any) -> uuid.UUID:
        with make_session_factory(self.engine)() as session:
            session.add(row)
            session.commit()
            return row.id

    def agent(self, name: str) -> uuid.UUID:
        return self._add(
            Agent(
                org_id=self.org_id,
                name=name,
                status="production",
                metadata_={},
                created_at=T0,
                updated_at=T0,
            )
        )

    def definition(self, key: str, version: str, definition_type: str = "gate") -> uuid.UUID:
        return self._add(
            ContractDefinition(
                org_id=self.org_id,
                definition_type=definition_type,
                key=key,
                name=key,
                contract_version=version,
                default_config={},
                is_active=True,
                created_at=T0,
                updated_at=T0,
            )
        )

    def bind(
        self, agent_id: uuid.UUID, definition_id: uuid.UUID, bound: str | None, enabled: bool = True
    ) -> uuid.UUID:
        return self._add(
            ContractBinding(
                org_id=self.org_id,
                agent_id=agent_id,
                definition_id=definition_id,
                enabled=enabled,
                config={},
                definition_contract_version=bound,
                created_at=T0,
                updated_at=T0,
            )
        )

    def set_bound(self, binding_id: uuid.UUID, bound: str | None) -> None:
        self._execute(
            update(ContractBinding)
            .where(ContractBinding.id == binding_id)
            .values(definition_contract_version=bound)
        )

    def unbind(self, binding_id: uuid.UUID) -> None:
        self._execute(delete(ContractBinding).where(ContractBinding.id == binding_id))

    def _execute(self, statement: Any) -> None:
        with make_session_factory(self.engine)() as session:
            session.execute(statement)
            session.commit()

    def patterns(self) -> list[IssuePattern]:
        with make_session_factory(self.engine)() as session:
            return list(session.scalars(select(IssuePattern).order_by(IssuePattern.dedupe_key)))

    def outbox(self, event_type: str | None = None) -> list[NotificationOutbox]:
        with make_session_factory(self.engine)() as session:
            query = select(NotificationOutbox).order_by(
                NotificationOutbox.created_at, NotificationOutbox.id
            )
            if event_type:
                query = query.where(NotificationOutbox.event_type == event_type)
            return list(session.scalars(query))

    def count(self, model: Any) -> int:
        with make_session_factory(self.engine)() as session:
            return session.scalar(select(func.count()).select_from(model)) or 0


@pytest.fixture
def world(engine: Engine, admin: support.Tenant) -> World:
    assert admin.org_id is not None
    return World(engine=engine, org_id=admin.org_id)


@pytest.fixture
def member(engine: Engine, admin: support.Tenant) -> support.Tenant:
    return support.make_tenant(engine, role="member", org_id=admin.org_id)
