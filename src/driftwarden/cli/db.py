"""`driftwarden db upgrade|current`: the schema's migrations."""

from __future__ import annotations

import typer

from driftwarden.cli.common import EXIT_FAILED, database_errors, load_settings
from driftwarden.db import migrate
from driftwarden.db.engine import make_engine

app = typer.Typer(help="Database migrations.", no_args_is_help=True)


@app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head")) -> None:
    """Apply migrations up to REVISION (default head)."""
    settings = load_settings()
    engine = make_engine(settings, null_pool=True)
    try:
        with database_errors(settings):
            migrate.upgrade(engine, revision)
            typer.echo(f"database at {migrate.current_revision(engine)}")
    finally:
        engine.dispose()


@app.command("current")
def db_current() -> None:
    """Print the schema revision and whether it is the latest."""
    settings = load_settings()
    engine = make_engine(settings, null_pool=True)
    try:
        with database_errors(settings):
            current, head = migrate.current_revision(engine), migrate.head_revision()
    finally:
        engine.dispose()
    state = "(up to date)" if current == head else "(behind)"
    typer.echo(f"current={current} head={head} {state}")
    if current != head:
        raise typer.Exit(EXIT_FAILED)
