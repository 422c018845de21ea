"""Command-line verbs of the contracts domain, registered on the main Typer app."""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path
from typing import Any, Iterable

import typer
import yaml
from pydantic import ValidationError

from driftwarden.api.errors import ApiError
from driftwarden.clock import SystemClock
from driftwarden.contracts import importing
from driftwarden.contracts.schemas import ImportDocument, ImportResult


def field_path(loc: Iterable[Any]) -> str:
    """`["body", "agents", 3, "key"]` → `agents[3].key`: the path an operator finds in the file."""
    path = ""
    for part in loc:
        if part == "body" and not path:
            continue
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(document)"


def read_document(file: Path) -> Any:
    """JSON or YAML; JSON goes through the json module (PyYAML is slow on large documents)."""
    text = file.read_text(encoding="utf-8")
    if file.suffix.lower() == ".json" or text.lstrip().startswith("{"):
        return json.loads(text)
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader either way


def _fail(problems: list[dict[str, Any]]) -> None:
    for problem in problems:
        typer.echo(f"{field_path(problem['loc'])}: {problem['msg']}", err=True)
    typer.echo(f"import rejected: {len(problems)} problem(s); nothing was written", err=True)
    raise typer.Exit(2)


def _validate(file: Path) -> ImportDocument:
    try:
        return ImportDocument.model_validate(read_document(file))
    except (ValueError, yaml.YAMLError) as exc:
        if isinstance(exc, ValidationError):
            _fail([{"loc": e["loc"], "msg": e["msg"]} for e in exc.errors()])
        typer.echo(f"{file}: not a JSON or YAML document: {exc}", err=True)
        raise typer.Exit(2) from exc


def _run_import(doc: ImportDocument, org_id: uuid.UUID, dry_run: bool) -> dict[str, Any]:
    from driftwarden.auth.models import Org
    from driftwarden.cli import ensure_schema, load_settings
    from driftwarden.db.engine import make_engine, make_session_factory

    settings = load_settings()
    ensure_schema(settings)
    engine = make_engine(settings, null_pool=True)
    try:
        with make_session_factory(engine)() as session:
            if session.get(Org, org_id) is None:
                typer.echo(f"org {org_id} not found", err=True)
                raise typer.Exit(2)
            result = importing.import_document(session, org_id=org_id, doc=doc, now=SystemClock().now())
            if dry_run:
                session.rollback()
            else:
                session.commit()
    finally:
        engine.dispose()
    return {**result, "dry_run": dry_run}


def register(app: typer.Typer) -> None:
    """Add this domain's commands to `app`."""

    @app.command("import")
    def import_file(file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True,
                                                help="YAML or JSON document: definitions, agents, bindings"),
                    org_id: uuid.UUID | None = typer.Option(None, "--org-id",
                                                            help="org to import into (else the document's org_id)"),
                    dry_run: bool = typer.Option(False, "--dry-run", help="check and count, write nothing")) -> None:
        """Upsert definitions, agents (by external_id) and bindings from FILE, all or nothing."""
        doc = _validate(file)
        target = org_id or doc.org_id
        if target is None:
            typer.echo("an org is needed: pass --org-id or set org_id in the document", err=True)
            raise typer.Exit(2)
        try:
            result = _run_import(doc, target, dry_run)
        except ApiError as exc:
            if exc.status_code == 422 and isinstance(exc.details, list):
                _fail(exc.details)
            typer.echo(f"import failed: {exc.code}: {exc.message}", err=True)
            raise typer.Exit(1) from exc
        sys.stdout.write(ImportResult.model_validate(result).model_dump_json(indent=2) + "\n")
