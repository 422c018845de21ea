"""Command-line verbs of the contracts domain, registered on the main Typer app."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this domain's commands to `app`."""
