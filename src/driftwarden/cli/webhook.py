"""`driftwarden webhook verify`: check a saved delivery against its Standard Webhooks secret."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from driftwarden.cli.common import EXIT_FAILED, fail, load_settings
from driftwarden.notifications import signing
from driftwarden.settings import validate_whsec

app = typer.Typer(help="Standard Webhooks helpers.", no_args_is_help=True)


def read_headers(path: Path) -> dict[str, str]:
    """Headers saved as a JSON object, or as raw `Name: value` lines (an HTTP request head).

    Bad input (exit 2): a file that is not UTF-8, or a header no HTTP request could carry (text
    outside Latin-1, such as a lone surrogate from a JSON escape)."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        fail(f"webhook verify: {path} is not UTF-8 text")
    try:
        loaded = json.loads(text)
    except ValueError:
        loaded = None
    if isinstance(loaded, dict):
        headers = {str(k).lower(): str(v) for k, v in loaded.items()}
    else:
        headers = {}
        for line in text.splitlines():
            name, sep, value = line.partition(":")
            if sep and name.strip() and " " not in name.strip():
                headers[name.strip().lower()] = value.strip()
    try:
        "".join(f"{name}{value}" for name, value in headers.items()).encode("latin-1")
    except UnicodeEncodeError:
        fail(f"webhook verify: {path} holds a header no HTTP request can carry (not Latin-1)")
    return headers


def _checked_secret(secret: str | None) -> str:
    if not secret:
        fail("webhook verify: no secret (pass --secret or set NOTIFY_WEBHOOK_SECRET)")
    try:
        return validate_whsec(secret, variable="--secret")
    except ValueError as exc:
        fail(f"webhook verify: {exc}")


@app.command("verify")
def verify(
    headers_file: Path = typer.Option(
        ...,
        "--headers",
        exists=True,
        dir_okay=False,
        help="saved headers: JSON object or `Name: value` lines",
    ),
    body_file: Path = typer.Option(
        ..., "--body", exists=True, dir_okay=False, help="the exact body bytes"
    ),
    secret: str | None = typer.Option(
        None,
        "--secret",
        envvar="NOTIFY_WEBHOOK_SECRET",
        help="whsec_… secret (default: $NOTIFY_WEBHOOK_SECRET)",
    ),
    tolerance_seconds: int | None = typer.Option(
        None,
        "--tolerance-seconds",
        min=1,
        help="replay window (default: $NOTIFY_WEBHOOK_SIGNATURE_TOLERANCE_SECONDS, 300)",
    ),
) -> None:
    """Check a saved webhook against a secret: exit 0 when valid, 1 when not, 2 on bad input."""
    secret = _checked_secret(secret)
    tolerance = tolerance_seconds or load_settings().notify_webhook_signature_tolerance_seconds
    headers = read_headers(headers_file)
    try:
        signing.verify(
            secret=secret, headers=headers, body=body_file.read_bytes(), tolerance_seconds=tolerance
        )
    except signing.WebhookVerificationError as exc:
        typer.echo(f"INVALID: {exc} (webhook-id {headers.get('webhook-id', '?')})")
        raise typer.Exit(EXIT_FAILED) from exc
    typer.echo(
        f"VALID: signature matches for webhook-id {headers.get('webhook-id')} "
        f"(timestamp {headers.get('webhook-timestamp')}, tolerance {tolerance}s)"
    )
