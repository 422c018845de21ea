"""The `driftwarden` command."""

from __future__ import annotations

import sys

import typer
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError

from driftwarden.clock import SystemClock
from driftwarden.contracts import cli as contracts_cli
from driftwarden.db import migrate
from driftwarden.db import models as _every_table  # noqa: F401  (ORM flushes need every FK target known)
from driftwarden.db.engine import make_engine, make_session_factory
from driftwarden.notifications import cli as notifications_cli
from driftwarden.scheduler import cli as scheduler_cli
from driftwarden.settings import Settings, describe_error

app = typer.Typer(help="driftwarden: contract drift for AI agents.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)
app.add_typer(db_app, name="db")


def load_settings(*, check_destinations: bool = False) -> Settings:
    """Settings, or a clear message naming the bad variable and exit 2."""
    from driftwarden.notifications.worker import check_destination_settings

    try:
        settings = Settings()
    except ValidationError as exc:  # name the variable, never echo its value (it may be a secret)
        typer.echo(f"driftwarden: invalid configuration: {describe_error(exc)}", err=True)
        raise typer.Exit(2) from None
    problems = check_destination_settings(settings) if check_destinations else []
    if problems:
        typer.echo("driftwarden: invalid configuration: " + "; ".join(problems), err=True)
        raise typer.Exit(2)
    return settings


def ensure_schema(settings: Settings) -> None:
    """SQLite migrates itself; Postgres must be migrated by `driftwarden db upgrade` first."""
    engine = make_engine(settings, null_pool=True)
    try:
        if settings.is_sqlite:
            migrate.upgrade(engine)
        elif not migrate.is_at_head(engine):
            typer.echo(f"driftwarden: database schema is at {migrate.current_revision(engine)!r}, "
                       f"expected {migrate.head_revision()!r}; run `driftwarden db upgrade`", err=True)
            raise typer.Exit(1)
    finally:
        engine.dispose()


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head")) -> None:
    """Apply migrations up to REVISION (default head)."""
    engine = make_engine(load_settings(), null_pool=True)
    migrate.upgrade(engine, revision)
    typer.echo(f"database at {migrate.current_revision(engine)}")


@db_app.command("current")
def db_current() -> None:
    """Print the schema revision and whether it is the latest."""
    engine = make_engine(load_settings(), null_pool=True)
    current, head = migrate.current_revision(engine), migrate.head_revision()
    typer.echo(f"current={current} head={head} {'(up to date)' if current == head else '(behind)'}")
    if current != head:
        raise typer.Exit(1)


@app.command()
def serve(host: str = "127.0.0.1", port: int = 8001,
          workers: int = typer.Option(1, min=1, max=32, help="uvicorn worker processes"),
          graceful_seconds: int = typer.Option(30, help="how long in-flight requests may finish on SIGTERM")) -> None:
    """Serve the API with uvicorn. SQLite is migrated on start; Postgres must already be current."""
    import uvicorn

    settings = load_settings(check_destinations=True)
    ensure_schema(settings)
    uvicorn.run("driftwarden.api.asgi:app", host=host, port=port, workers=workers,
                timeout_graceful_shutdown=graceful_seconds, log_level=settings.log_level.lower())


@app.command()
def bootstrap(org_name: str = typer.Option(..., "--org-name", help="name of the org to create"),
              global_key: bool = typer.Option(False, "--global", help="make the admin key global (all orgs)"),
              api_key: str | None = typer.Option(
                  None, "--api-key", help="use this plaintext instead of a generated key (local development "
                  "only, e.g. the runbook's dev_plain_key_001; 16-200 printable characters)")) -> None:
    """Create an org and an admin key; prints ORG_ID=… and API_KEY=… lines for eval or $GITHUB_ENV."""
    from driftwarden.auth import service as auth_service

    if api_key is not None and not (16 <= len(api_key) <= 200 and all(32 < ord(c) < 127 for c in api_key)):
        typer.echo("driftwarden: --api-key must be 16-200 printable characters without spaces", err=True)
        raise typer.Exit(2)
    settings = load_settings()
    ensure_schema(settings)
    engine = make_engine(settings, null_pool=True)
    now = SystemClock().now()
    with make_session_factory(engine)() as session:
        try:
            org = auth_service.create_org(session, name=org_name, slug=None, now=now)
            _, plaintext = auth_service.create_api_key(
                session, name=f"{org_name} bootstrap admin", org_id=None if global_key else org.id, role="admin",
                expires_at=None, created_by=None, now=now, plaintext=api_key)
            session.commit()
        except IntegrityError:
            typer.echo("driftwarden: that --api-key is already in use", err=True)
            raise typer.Exit(2) from None
    sys.stdout.write(f"ORG_ID={org.id}\nAPI_KEY={plaintext}\n")


contracts_cli.register(app)
notifications_cli.register(app)
scheduler_cli.register(app)

if __name__ == "__main__":
    app()
