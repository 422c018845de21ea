"""Contracts fixtures: rows written straight to the database for service-level scan tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from driftwarden.agents.models import Agent
from driftwarden.contracts.models import ContractBinding, ContractDefinition

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


class Seeder:
    """Adds agents, definitions and bindings for one org in as few statements as possible."""

    def __init__(self, session_factory: Any, org_id: uuid.UUID) -> None:
        self.session_factory = session_factory
        self.org_id = org_id

    def agent(self, name: str, **fields: Any) -> uuid.UUID:
        return self._add(
            Agent(
                org_id=self.org_id,
                name=name,
                status="production",
                metadata_={},
                created_at=NOW,
                updated_at=NOW,
                **fields,
            )
        )

    def definition(
        self, key: str, version: str, *, definition_type: str = "gate", builtin: bool = False
    ) -> uuid.UUID:
        return self._add(
            ContractDefinition(
                org_id=None if builtin else self.org_id,
                definition_type=definition_type,
                key=key,
                name=key,
                contract_version=version,
                default_config={},
                is_active=True,
                created_at=NOW,
                updated_at=NOW,
            )
        )

    def bind(
        self,
        agent_id: uuid.UUID,
        definition_id: uuid.UUID,
        bound: str | None,
        *,
        enabled: bool = True,
    ) -> uuid.UUID:
        return self._add(
            ContractBinding(
                org_id=self.org_id,
                agent_id=agent_id,
                definition_id=definition_id,
                enabled=enabled,
                config={},
                definition_contract_version=bound,
                created_at=NOW,
                updated_at=NOW,
            )
        )

    def _add(self, row: Any) -> uuid.UUID:
        with self.session_factory() as session:
            session.add(row)
            session.commit()
            return row.id


@pytest.fixture
def seeder(session_factory: Any, admin: Any) -> Seeder:
    return Seeder(session_factory, admin.org_id)
