"""The migrations build exactly the tables the models declare, on SQLite and Postgres."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, select

from driftwarden.db import migrate
from driftwarden.db.engine import make_session_factory
from driftwarden.db.models import metadata
from driftwarden.scheduler.models import TriggerDayCount
from tests.support import make_tenant, trigger_run


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


def test_the_trigger_day_counts_migration_counts_the_triggers_already_there(
    engine: Engine,
) -> None:
    """0009 is reversible, and counts on its way up the triggers written before it (without the
    database's counting, gone at 0008)."""
    org_id = make_tenant(engine).org_id
    factory = make_session_factory(engine)
    day = datetime(2026, 11, 20, 23, 0, tzinfo=UTC)
    try:
        migrate.downgrade(engine, "0008")
        assert "contract_drift_trigger_day_counts" not in inspect(engine).get_table_names()
        with factory() as session:
            session.add_all(
                [
                    trigger_run(org_id, day, "executed"),
                    trigger_run(org_id, day + timedelta(minutes=30), "deduped"),
                    trigger_run(org_id, day + timedelta(minutes=59), "deduped"),
                    trigger_run(org_id, day + timedelta(hours=1), "deduped"),  # 11-21, 00:00
                ]
            )
            session.commit()
    finally:
        migrate.upgrade(engine)
    test_migrated_schema_matches_the_models(engine)
    with factory() as session:
        session.add(trigger_run(org_id, day + timedelta(hours=2), "deduped"))  # counted as written
        session.commit()
        counts = session.execute(
            select(TriggerDayCount.day, TriggerDayCount.outcome, TriggerDayCount.trigger_count)
            .where(TriggerDayCount.org_id == org_id)
            .order_by(TriggerDayCount.day, TriggerDayCount.outcome)
        ).all()
    assert [tuple(c) for c in counts] == [
        (date(2026, 11, 20), "deduped", 2),
        (date(2026, 11, 20), "executed", 1),
        (date(2026, 11, 21), "deduped", 2),
    ]
