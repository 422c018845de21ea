"""On Postgres every table has RLS and no policy, so Supabase's Data API roles see nothing.

docs/reference/operations.md#configuration
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, func, inspect, select, text
from sqlalchemy.exc import DBAPIError

from driftwarden.db import migrate
from driftwarden.db.models import metadata
from tests import support
from tests.production.rows import fill_empty_tables

DATA_API_ROLES = ("anon", "authenticated")
# Revision 0002 covers the first tables;
# a later migration adding tables lists them in its own TABLES.
MIGRATIONS = sorted(Path(migrate.MIGRATIONS_DIR, "versions").glob("*.py"))
on_postgres = pytest.mark.skipif(
    not support.ON_POSTGRES, reason="row-level security exists on Postgres only"
)


def _rls_tables() -> set[str]:
    tables: set[str] = set()
    for path in MIGRATIONS:
        spec = importlib.util.spec_from_file_location(f"rls_migration_{path.stem}", path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        tables |= set(getattr(module, "TABLES", ()))
    return tables


def test_the_migration_covers_every_table_driftwarden_creates() -> None:
    expected = set(metadata.tables) | {"alembic_version"}
    missing = expected - _rls_tables()
    assert not missing, (
        f"enable row-level security on {sorted(missing)} (migration 0002 or a new one)"
    )


def _grant_like_supabase(engine: Engine) -> None:
    """Supabase creates these roles and grants them everything in `public` by default."""
    with engine.begin() as conn:
        for role in DATA_API_ROLES:
            conn.execute(
                text(
                    f"DO $$ BEGIN CREATE ROLE {role} NOLOGIN; "
                    "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
                )
            )
        schema = conn.scalar(text("SELECT current_schema()"))
        roles = ", ".join(DATA_API_ROLES)
        conn.execute(text(f'GRANT USAGE ON SCHEMA "{schema}" TO {roles}'))
        conn.execute(
            text(
                "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "
                f'"{schema}" TO {roles}'
            )
        )


def _counts(engine: Engine, role: str | None) -> dict[str, int]:
    present = set(inspect(engine).get_table_names())  # a downgraded schema lacks later tables
    names = sorted((set(metadata.tables) | {"alembic_version"}) & present)
    with engine.begin() as conn:  # SET LOCAL: transaction-scoped, safe through a transaction pooler
        if role:
            conn.execute(text(f"SET LOCAL ROLE {role}"))
        return {
            name: conn.scalar(select(func.count()).select_from(text(f'"{name}"'))) for name in names
        }


def _populate_through_the_api(client, admin) -> None:  # type: ignore[no-untyped-def]
    created = client.post(
        "/api/v1/agents",
        headers={**admin.headers, "Idempotency-Key": "rls-1"},
        json={"name": "visible only to the owner", "metadata": {"secret": "s"}},
    )
    assert created.status_code == 201, created.text
    keyed = client.post(
        "/api/v1/system/api-keys", headers=admin.headers, json={"name": "second", "role": "viewer"}
    )
    assert keyed.status_code == 201, keyed.text


@pytest.mark.integration
@on_postgres
def test_data_api_roles_read_and_write_nothing(client, admin, engine: Engine) -> None:
    _populate_through_the_api(client, admin)
    fill_empty_tables(engine)
    _grant_like_supabase(engine)
    as_owner = _counts(engine, None)
    assert all(as_owner.values()), f"every table should hold rows for this test: {as_owner}"
    for role in DATA_API_ROLES:
        assert _counts(engine, role) == dict.fromkeys(as_owner, 0), role
        with engine.begin() as conn:
            conn.execute(text(f"SET LOCAL ROLE {role}"))
            assert conn.execute(text("UPDATE agents SET name = 'pwned'")).rowcount == 0
            assert conn.execute(text("DELETE FROM api_keys")).rowcount == 0
        with pytest.raises(DBAPIError, match="row-level security"), engine.begin() as conn:
            conn.execute(text(f"SET LOCAL ROLE {role}"))
            conn.execute(
                text(
                    "INSERT INTO orgs (id, name, slug, created_at) "
                    "VALUES (gen_random_uuid(), 'x', 'x', now())"
                )
            )
    assert _counts(engine, None) == as_owner


@pytest.mark.integration
@on_postgres
def test_no_table_without_rls_and_no_policy(engine: Engine) -> None:
    with engine.connect() as conn:
        without = conn.scalars(
            text(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') "
                "AND NOT c.relrowsecurity"
            )
        ).all()
        policies = conn.scalars(
            text("SELECT policyname FROM pg_policies WHERE schemaname = current_schema()")
        ).all()
    assert without == [], f"tables without row-level security: {without}"
    assert policies == [], f"policies would open tables to the Data API roles: {policies}"


def _rls_flags(engine: Engine) -> set[bool]:
    with engine.connect() as conn:
        return set(
            conn.scalars(
                text(
                    "SELECT c.relrowsecurity FROM pg_class c "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = current_schema() AND c.relkind = 'r'"
                )
            ).all()
        )


@pytest.mark.integration
@on_postgres
def test_downgrade_disables_and_upgrade_restores_rls() -> None:
    url = support.create_pg_database(prefix="dw_rls")
    engine = create_engine(url)
    try:
        _grant_like_supabase(engine)
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO orgs (id, name, slug, created_at) "
                    "VALUES (gen_random_uuid(), 'o', 'o', now())"
                )
            )
        assert _rls_flags(engine) == {True} and _counts(engine, "anon")["orgs"] == 0
        migrate.downgrade(engine, "0001")
        # Without RLS the same grants expose the row: the zero above is RLS's doing.
        assert _rls_flags(engine) == {False} and _counts(engine, "anon")["orgs"] == 1
        migrate.upgrade(engine)
        _grant_like_supabase(engine)  # Supabase's default privileges grant tables created since
        assert _rls_flags(engine) == {True} and _counts(engine, "anon")["orgs"] == 0
    finally:
        engine.dispose()
        support.drop_pg_database(url)


@pytest.mark.skipif(
    support.ON_POSTGRES,
    reason="SQLite only; Postgres: test_downgrade_disables_and_upgrade_restores_rls",
)
def test_on_sqlite_the_migration_is_a_no_op_both_ways(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'rls.db'}")
    try:
        migrate.upgrade(engine)
        assert migrate.current_revision(engine) == migrate.head_revision()
        migrate.downgrade(engine, "0001")
        assert migrate.current_revision(engine) == "0001"
        migrate.upgrade(engine)
        assert migrate.current_revision(engine) == migrate.head_revision()
    finally:
        engine.dispose()
