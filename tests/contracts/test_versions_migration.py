"""Revision 0003 backfills one version row per existing definition, on SQLite and on Postgres."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, create_engine, text

from driftwarden.db import migrate
from tests import support

CREATED = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.fixture
def engine_at_0002(tmp_path: Path) -> Iterator[Engine]:
    url = (
        support.create_pg_database(prefix="dw_v3")
        if support.ON_POSTGRES
        else f"sqlite:///{tmp_path / 'v3.db'}"
    )
    engine = create_engine(url)
    try:
        if support.ON_POSTGRES:  # created at head
            migrate.downgrade(engine, "0002")
        else:
            migrate.upgrade(engine, "0002")
        yield engine
    finally:
        engine.dispose()
        if support.ON_POSTGRES:
            support.drop_pg_database(url)


def _insert(conn: Connection, org_id: uuid.UUID | None, key: str, version: str) -> uuid.UUID:
    definition_id = uuid.uuid4()
    conn.execute(
        text(
            "INSERT INTO contract_definitions (id, org_id, definition_type, key, name, "
            "contract_version, default_config, is_active, created_at, updated_at) "
            "VALUES (:id, :org, 'gate', :key, :key, "
            ":version, :config, true, :at, :at)"
        ),
        {
            "id": _uuid(conn, definition_id),
            "org": org_id and _uuid(conn, org_id),
            "key": key,
            "version": version,
            "config": '{"mode": "safe"}',
            "at": CREATED.replace(tzinfo=None),
        },
    )
    return definition_id


def _uuid(conn: Connection, value: uuid.UUID) -> str:
    return value.hex if conn.dialect.name == "sqlite" else str(value)


def test_upgrade_backfills_a_version_per_definition_and_downgrade_drops_it(engine_at_0002) -> None:
    org_id = uuid.uuid4()
    with engine_at_0002.begin() as conn:
        conn.execute(
            text("INSERT INTO orgs (id, name, slug, created_at) VALUES (:id, 'o', 'o', :at)"),
            {"id": _uuid(conn, org_id), "at": CREATED.replace(tzinfo=None)},
        )
        own = _insert(conn, org_id, "own", "1.4.2")
        builtin = _insert(conn, None, "shared", "not-semver")
    migrate.upgrade(engine_at_0002)
    with engine_at_0002.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT definition_id, org_id, contract_version, config_schema, changelog "
                "FROM contract_definition_versions ORDER BY contract_version"
            )
        ).all()
        schemas = conn.execute(text("SELECT config_schema FROM contract_definitions")).all()
    assert [(uuid.UUID(str(r[0])), r[1] is not None, r[2], r[3], r[4]) for r in rows] == [
        (own, True, "1.4.2", None, None),
        (builtin, False, "not-semver", None, None),
    ]
    assert schemas == [(None,), (None,)]
    migrate.downgrade(engine_at_0002, "0002")
    with engine_at_0002.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM contract_definitions")).scalar() == 2
    migrate.upgrade(engine_at_0002)
    assert migrate.current_revision(engine_at_0002) == migrate.head_revision()
