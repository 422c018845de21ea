"""What every command shares: settings that fail with a clear message, the schema check, exits."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, NoReturn

import typer
from pydantic import ValidationError
from sqlalchemy.orm import Session

from driftwarden.db import migrate
from driftwarden.db import models as _every_table  # noqa: F401  (ORM flushes need every FK target)
from driftwarden.db.engine import make_engine, make_session_factory
from driftwarden.notifications.outbox import check_destination_settings
from driftwarden.settings import Settings, describe_error

EXIT_FAILED, EXIT_BAD_INPUT = 1, 2


def fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    """One line on stderr, then exit with `code` (2: bad input or configuration, 1: it failed)."""
    typer.echo(message, err=True)
    raise typer.Exit(code)


def load_settings(*, check_destinations: bool = False) -> Settings:
    """Settings, or a clear message naming the bad variable and exit 2."""
    try:
        settings = Settings()
    except ValidationError as exc:  # name the variable, never echo its value (it may be a secret)
        fail(f"driftwarden: invalid configuration: {describe_error(exc)}")
    problems = check_destination_settings(settings) if check_destinations else []
    if problems:
        fail("driftwarden: invalid configuration: " + "; ".join(problems))
    return settings


def ensure_schema(settings: Settings) -> None:
    """SQLite migrates itself; Postgres must be migrated by `driftwarden db upgrade` first."""
    engine = make_engine(settings, null_pool=True)
    try:
        if settings.is_sqlite:
            migrate.upgrade(engine)
        elif not migrate.is_at_head(engine):
            fail(
                f"driftwarden: database schema is at {migrate.current_revision(engine)!r}, "
                f"expected {migrate.head_revision()!r}; run `driftwarden db upgrade`",
                EXIT_FAILED,
            )
    finally:
        engine.dispose()


@contextmanager
def one_session(settings: Settings) -> Iterator[Session]:
    """A session on a pool-less engine, disposed afterwards: a command's single unit of work."""
    engine = make_engine(settings, null_pool=True)
    try:
        with make_session_factory(engine)() as session:
            yield session
    finally:
        engine.dispose()
