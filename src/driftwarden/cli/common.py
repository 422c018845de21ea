"""What every command shares: settings that fail with a clear message, the schema check, exits."""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import typer
from pydantic import ValidationError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, InterfaceError, OperationalError
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


def warn_two_database_urls(env: dict[str, str] | os._Environ[str] = os.environ) -> None:
    """DATABASE_URL wins; warn (naming both variables, never their values) if they differ."""
    primary, fallback = env.get("DATABASE_URL") or "", env.get("SUPABASE_DB_URL") or ""
    if primary and fallback and primary != fallback:
        typer.echo(
            "driftwarden: warning: DATABASE_URL and SUPABASE_DB_URL are both set and differ; "
            "using DATABASE_URL",
            err=True,
        )


def load_settings(*, check_destinations: bool = False) -> Settings:
    """Settings, or a clear message naming the bad variable and exit 2."""
    warn_two_database_urls()
    try:
        settings = Settings()
    except ValidationError as exc:  # name the variable, never echo its value (it may be a secret)
        fail(f"driftwarden: invalid configuration: {describe_error(exc)}")
    problems = check_destination_settings(settings) if check_destinations else []
    if problems:
        fail("driftwarden: invalid configuration: " + "; ".join(problems))
    return settings


def _where(settings: Settings) -> str:
    """host:port/database of the URL: what to check, without the user's password."""
    try:
        url = make_url(settings.db_url)
    except ArgumentError:
        return "(an unparsable DATABASE_URL)"
    if settings.is_sqlite:
        return f"the SQLite file {url.database or ':memory:'}"
    return f"{url.host or 'localhost'}:{url.port or 5432}/{url.database or ''}"


def _reason(settings: Settings, exc: Exception) -> str:
    """The driver's first line, with the password taken out should it ever appear there."""
    cause = getattr(exc, "orig", None) or exc
    line = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
    try:
        password = make_url(settings.db_url).password
    except ArgumentError:
        password = None
    return line.replace(str(password), "***") if password else line


@contextmanager
def database_errors(settings: Settings) -> Iterator[None]:
    """An unreachable database is one actionable line and exit 1; the traceback only at DEBUG."""
    try:
        yield
    except (OperationalError, InterfaceError) as exc:
        if settings.log_level.upper() == "DEBUG":
            traceback.print_exc(file=sys.stderr)
        fail(
            f"driftwarden: cannot reach the database at {_where(settings)}: "
            f"{_reason(settings, exc)}"
            " -- check DATABASE_URL (or SUPABASE_DB_URL): host, port, database name and "
            "credentials, and that the server is up and reachable from here (LOG_LEVEL=DEBUG "
            "shows the traceback)",
            EXIT_FAILED,
        )


def ensure_schema(settings: Settings) -> None:
    """SQLite migrates itself; Postgres must be migrated by `driftwarden db upgrade` first."""
    engine = make_engine(settings, null_pool=True)
    try:
        with database_errors(settings):
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
        with database_errors(settings), make_session_factory(engine)() as session:
            yield session
    finally:
        engine.dispose()
