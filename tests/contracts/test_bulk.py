"""The import's COPY names every column's Postgres type, and psycopg must know each name."""

from __future__ import annotations

import pytest
from psycopg.postgres import types

from driftwarden.agents.models import Agent
from driftwarden.contracts import bulk
from driftwarden.contracts.models import (
    ContractBinding,
    ContractDefinition,
    ContractDefinitionVersion,
)


@pytest.mark.parametrize(
    "model", [Agent, ContractBinding, ContractDefinition, ContractDefinitionVersion]
)
def test_every_imported_column_has_a_type_psycopg_dumps(model: type) -> None:
    table = model.__table__  # type: ignore[attr-defined]
    names = [c.name for c in table.columns]
    found = {n: types.get(t) for n, t in zip(names, bulk.pg_types(table, names), strict=True)}
    assert all(found.values()), found
    assert {found[n].name for n in ("id", "created_at")} == {"uuid", "timestamptz"}
