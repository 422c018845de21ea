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


def test_the_trigger_winner_index_migration_goes_down_and_up_again(engine: Engine) -> None:
    """0008 is reversible: down to 0007 the index of executed windows goes, up again it is back."""
    index = "ix_contract_drift_trigger_runs_executed_dedupe_key"

    def indexes() -> set[str]:
        return {i["name"] for i in inspect(engine).get_indexes("contract_drift_trigger_runs")}

    try:
        migrate.downgrade(engine, "0007")
        assert migrate.current_revision(engine) == "0007"
        assert index not in indexes()
    finally:
        migrate.upgrade(engine)
    assert index in indexes()
    test_migrated_schema_matches_the_models(engine)
