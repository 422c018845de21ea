"""`driftwarden bootstrap`: the first org and its admin key, as shell-evaluable lines."""

from __future__ import annotations

import sys

import typer
from sqlalchemy.exc import IntegrityError

from driftwarden.auth import service as auth_service
from driftwarden.cli.common import ensure_schema, fail, load_settings, one_session
from driftwarden.clock import SystemClock
from driftwarden.scheduler.policy import update_policy
from driftwarden.scheduler.schemas import PolicyUpdate

HELP = (
    "Create an org and an admin key; prints ORG_ID=… and API_KEY=… lines for eval or $GITHUB_ENV."
)


def _plausible_key(api_key: str) -> bool:
    return 16 <= len(api_key) <= 200 and all(32 < ord(c) < 127 for c in api_key)


def bootstrap(
    org_name: str = typer.Option(..., "--org-name", help="name of the org to create"),
    global_key: bool = typer.Option(False, "--global", help="make the admin key global (all orgs)"),
    api_key: str | None = typer.Option(
        None,
        "--api-key",
        help="use this plaintext instead of a generated key (local "
        "development only, e.g. the runbook's dev_plain_key_001; 16-200 printable "
        "characters)",
    ),
    enable_schedule: bool = typer.Option(
        False,
        "--enable-schedule",
        help="create the org with its drift policy enabled (and alerts on when "
        "NOTIFY_WEBHOOK_URL is set), so the first schedule run does something",
    ),
) -> None:
    """The first org and key, so the API can be used at all; the key is shown only here."""
    if api_key is not None and not _plausible_key(api_key):
        fail("driftwarden: --api-key must be 16-200 printable characters without spaces")
    settings = load_settings()
    ensure_schema(settings)
    now = SystemClock().now()
    with one_session(settings) as session:
        try:
            org = auth_service.create_org(session, name=org_name, slug=None, now=now)
            _, plaintext = auth_service.create_api_key(
                session,
                name=f"{org_name} bootstrap admin",
                org_id=None if global_key else org.id,
                role="admin",
                expires_at=None,
                created_by=None,
                now=now,
                plaintext=api_key,
            )
            if enable_schedule:
                update_policy(
                    session,
                    org_id=org.id,
                    now=now,
                    body=PolicyUpdate(
                        enabled=True,
                        alert_enabled=settings.notify_webhook_url is not None,
                    ),
                )
            session.commit()
        except IntegrityError:
            fail("driftwarden: that --api-key is already in use")
    if enable_schedule:
        alerts = "on" if settings.notify_webhook_url is not None else "off (no NOTIFY_WEBHOOK_URL)"
        typer.echo(f"driftwarden: drift policy enabled; alerts {alerts}", err=True)
    sys.stdout.write(f"ORG_ID={org.id}\nAPI_KEY={plaintext}\n")
