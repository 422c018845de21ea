"""The migrations build exactly the tables the models declare, on SQLite and Postgres."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine

from driftwarden.db import migrate
from driftwarden.db.models import metadata


def test_migrated_schema_matches_the_models(engine: Engine) -> None:
    assert migrate.is_at_head(engine)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        differences = compare_metadata(context, metadata)
    assert differences == []
