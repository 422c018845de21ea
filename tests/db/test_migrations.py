"""The migrations build exactly the tables the models declare, on SQLite and Postgres."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect

from driftwarden.db import migrate
from driftwarden.db.models import metadata


def test_migrated_schema_matches_the_models(engine: Engine) -> None:
    assert migrate.is_at_head(engine)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        differences = compare_metadata(context, metadata)
    assert differences == []


def test_the_watchdog_next_check_migration_goes_down_and_up_again(engine: Engine) -> None:
    """0007 is reversible: down to 0006 the column and its indexes go, up again they are back."""
    table = "contract_drift_schedule_watch_state"
    try:
        migrate.downgrade(engine, "0006")
        assert migrate.current_revision(engine) == "0006"
        inspector = inspect(engine)
        assert "next_check_at" not in {c["name"] for c in inspector.get_columns(table)}
        assert not {i["name"] for i in inspector.get_indexes("contract_drift_policies")} & {
            "ix_contract_drift_policies_updated_at"
        }
    finally:
        migrate.upgrade(engine)
    assert "next_check_at" in {c["name"] for c in inspect(engine).get_columns(table)}
    test_migrated_schema_matches_the_models(engine)


def test_the_trigger_run_indexes_migration_goes_down_and_up_again(engine: Engine) -> None:
    """0008 is reversible: down to 0007 the index of executed windows goes and the schedule index
    carries no columns; up again both are back (the included columns on Postgres only)."""
    winner = "ix_contract_drift_trigger_runs_executed_dedupe_key"
    schedule = "ix_contract_drift_trigger_runs_org_id_schedule_name_started_at"

    def indexes() -> dict[str, list[str]]:
        found = inspect(engine).get_indexes("contract_drift_trigger_runs")
        return {
            i["name"]: i.get("dialect_options", {}).get("postgresql_include", []) for i in found
        }

    try:
        migrate.downgrade(engine, "0007")
        assert migrate.current_revision(engine) == "0007"
        assert winner not in indexes() and indexes()[schedule] == []
    finally:
        migrate.upgrade(engine)
    postgres = engine.dialect.name == "postgresql"
    assert winner in indexes()
    assert indexes()[schedule] == (["outcome", "dry_run"] if postgres else [])
    test_migrated_schema_matches_the_models(engine)
