"""`driftwarden import`: definitions, agents and bindings from YAML or JSON, all or nothing."""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NoReturn

import typer
import yaml
from pydantic import ValidationError

from driftwarden.api import guard
from driftwarden.auth.models import Org
from driftwarden.cli.common import EXIT_FAILED, ensure_schema, fail, load_settings, one_session
from driftwarden.clock import SystemClock
from driftwarden.contracts import importing
from driftwarden.contracts.schemas import ImportDocument, ImportResult
from driftwarden.errors import DomainError, Invalid


def field_path(loc: Iterable[Any]) -> str:
    """`["body", "agents", 3, "key"]` → `agents[3].key`: the path an operator finds in the file."""
    path = ""
    for part in loc:
        if part == "body" and not path:
            continue
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(document)"


def read_document(file: Path) -> Any:
    """JSON or YAML; JSON goes through the json module (PyYAML is slow on large documents).

    Refused (exit 2) as the API refuses the same document: what the database cannot store (a NUL,
    a lone surrogate, an infinity) and nesting past the limit (`api.guard.json_problem`, over the
    JSON text, or over the YAML document written as JSON)."""
    text = file.read_text(encoding="utf-8")
    try:
        if file.suffix.lower() == ".json" or text.lstrip().startswith("{"):
            document, as_json = json.loads(text), text.encode()
        else:
            document = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
            as_json = json.dumps(document, default=str).encode()  # YAML's dates as the API's text
    except RecursionError:
        fail(f"{file}: nested deeper than {guard.MAX_JSON_DEPTH} levels; nothing was written")
    problem = guard.json_problem(as_json)
    if problem is not None:
        fail(f"{file}: {problem}; nothing was written")
    return document


def _fail(problems: list[dict[str, Any]]) -> NoReturn:
    """Every problem on its own line, as `path: message`; nothing was written."""
    for problem in problems:
        typer.echo(f"{field_path(problem['loc'])}: {problem['msg']}", err=True)
    fail(f"import rejected: {len(problems)} problem(s); nothing was written")


def _validate(file: Path) -> ImportDocument:
    try:
        return ImportDocument.model_validate(read_document(file))
    except (ValueError, yaml.YAMLError) as exc:
        if isinstance(exc, ValidationError):
            _fail([{"loc": e["loc"], "msg": e["msg"]} for e in exc.errors()])
        typer.echo(f"{file}: not a JSON or YAML document: {exc}", err=True)
        raise typer.Exit(2) from exc


def _run_import(doc: ImportDocument, org_id: uuid.UUID, dry_run: bool) -> dict[str, Any]:
    settings = load_settings()
    ensure_schema(settings)
    with one_session(settings) as session:
        if session.get(Org, org_id) is None:
            fail(f"org {org_id} not found")
        now = SystemClock().now()
        result = importing.import_document(session, org_id=org_id, doc=doc, now=now)
        if dry_run:
            session.rollback()
        else:
            session.commit()
    return {**result, "dry_run": dry_run}


def import_file(
    file: Path = typer.Argument(
        ...,
        exists=True,
        dir_okay=False,
        readable=True,
        help="YAML or JSON document: definitions, agents, bindings",
    ),
    org_id: uuid.UUID | None = typer.Option(
        None, "--org-id", help="org to import into (else the document's org_id)"
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="check and count, write nothing"),
) -> None:
    """Upsert definitions, agents (by external_id) and bindings from FILE, all or nothing."""
    doc = _validate(file)
    target = org_id or doc.org_id
    if target is None:
        fail("an org is needed: pass --org-id or set org_id in the document")
    try:
        result = _run_import(doc, target, dry_run)
    except DomainError as exc:
        if isinstance(exc, Invalid) and isinstance(exc.details, list):
            _fail(exc.details)
        fail(f"import failed: {exc.code}: {exc.message}", EXIT_FAILED)
    sys.stdout.write(ImportResult.model_validate(result).model_dump_json(indent=2) + "\n")
