"""`driftwarden demo`: a demo org with drift, the API on SQLite, one real schedule run, its signals.

Everything goes through the same paths production uses: the HTTP API served by uvicorn, the
contracts import endpoint, the schedule-run client of `driftwarden schedule-run`, and a signed
webhook delivered to a local receiver.
"""

from __future__ import annotations

import base64
import secrets
import shutil
import socket
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import typer
import uvicorn

from driftwarden.api.app import create_app
from driftwarden.auth import service as auth_service
from driftwarden.cli import schedule_client as client
from driftwarden.console import login_links
from driftwarden.db import migrate
from driftwarden.db.engine import make_engine, make_session_factory
from driftwarden.scheduler import signals
from driftwarden.settings import Settings


def _definition(definition_type: str, key: str, name: str, version: str) -> dict[str, str]:
    return {
        "definition_type": definition_type,
        "key": key,
        "name": name,
        "contract_version": version,
    }


def _agent(name: str, status: str, *bindings: tuple[str, str, str]) -> dict[str, Any]:
    return {
        "external_id": name,
        "name": name,
        "status": status,
        "bindings": [
            {"definition_type": t, "key": k, "definition_contract_version": v}
            for t, k, v in bindings
        ],
    }


# Breaking, warning, invalid and healthy bindings: every kind of finding the product reports.
DEMO_IMPORT: dict[str, Any] = {
    "definitions": [
        _definition("gate", "pii-filter", "PII filter", "2.0.0"),
        _definition("evaluator", "toxicity", "Toxicity evaluator", "1.5.0"),
        _definition("run_type", "nightly-eval", "Nightly eval", "0.4.0"),
    ],
    "agents": [
        _agent(
            "support-bot",
            "production",
            ("gate", "pii-filter", "1.4.2"),
            ("evaluator", "toxicity", "1.3.0"),
        ),
        _agent(
            "billing-agent",
            "production",
            ("run_type", "nightly-eval", "0.3.1"),
            ("gate", "pii-filter", "v1.2"),
        ),
        _agent(
            "research-agent",
            "testing",
            ("gate", "pii-filter", "2.0.0"),
            ("evaluator", "toxicity", "1.5.0"),
        ),
    ],
}


class _Receiver:
    """A local webhook receiver that accepts (204) and keeps what it got."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def _serving(settings: Settings) -> Iterator[str]:
    """The API under uvicorn on a free 127.0.0.1 port, in a background thread."""
    port = _free_port()
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the demo API did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _bootstrap(settings: Settings) -> tuple[str, str, uuid.UUID]:
    """Migrate and create the demo org with an admin key (what `driftwarden bootstrap` does)."""
    engine = make_engine(settings, null_pool=True)
    try:
        migrate.upgrade(engine)
        now = datetime.now(UTC)
        with make_session_factory(engine)() as session:
            org = auth_service.create_org(session, name="Demo org", slug=None, now=now)
            key, api_key = auth_service.create_api_key(
                session,
                name="demo admin",
                org_id=org.id,
                role="admin",
                expires_at=None,
                created_by=None,
                now=now,
            )
            session.commit()
        return str(org.id), api_key, key.id
    finally:
        engine.dispose()


def _checked(response: httpx.Response) -> dict[str, Any]:
    if response.status_code >= 300:
        request = response.request
        raise RuntimeError(
            f"{request.method} {request.url.path}: HTTP {response.status_code} "
            f"{response.text[:300]}"
        )
    return response.json()["data"]


def _seed(http: httpx.Client, org_id: str) -> None:
    """Definitions, agents and drifted bindings through the import endpoint; then the policy."""
    _checked(
        http.post(
            "/api/v1/contracts/import",
            json={"org_id": org_id, **DEMO_IMPORT},
            headers={"Idempotency-Key": f"demo-import-{org_id}"},
        )
    )
    _checked(
        http.post(
            "/api/v1/system/contracts/drift-policy",
            json={"org_id": org_id, "enabled": True, "min_drift": "warning", "alert_enabled": True},
        )
    )


def _signed_ok(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """Verify a delivery as any Standard Webhooks receiver would."""
    from standardwebhooks.webhooks import Webhook

    try:
        Webhook(secret).verify(body, headers)
        return True
    except Exception:
        return False


def _shown(value: Any) -> Any:
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else value


def _summary(data: dict[str, Any], scan: dict[str, Any], receiver: _Receiver, signed: bool) -> None:
    promote, counts = data["trigger"]["promote"] or {}, scan["counts"]
    delivered = any(b"contract_drift.trigger_anomaly" in body for _, body in receiver.received)
    verdict = "signature verified" if signed else "signature NOT verified"
    typer.echo("\nsummary:")
    kinds = ", ".join(f"{counts[kind]} {kind}" for kind in ("breaking", "warning", "invalid"))
    typer.echo(
        f"  drift found:      {scan['total_count']} findings ({kinds}) in "
        f"{scan['checked_binding_count']} bindings of {scan['checked_agent_count']} agents"
    )
    typer.echo(
        f"  patterns created: {promote.get('created_pattern_count', 0)} "
        f"(eligible {promote.get('eligible_item_count', 0)}, "
        f"reused {promote.get('reused_pattern_count', 0)})"
    )
    typer.echo(
        f"  alert delivered:  {'yes' if delivered else 'no'} - "
        f"contract_drift.trigger_anomaly to {receiver.url} ({verdict}; FORCE_NOTIFY=true, "
        "since a first run of a healthy schedule has no anomaly to report)"
    )


def _report(
    result: client.RunResult, scan: dict[str, Any], receiver: _Receiver, secret: str
) -> int:
    """Print the six signals and a short human summary; 0 when the demo showed what it promises."""
    if not client.is_success(result):
        typer.echo(f"schedule-run failed: {client.outcome(result)[1]}", err=True)
        return 1
    data = result.document["data"]
    typer.echo(
        f"\nschedule-run: HTTP {result.status}, trigger {data['trigger']['outcome']}, "
        f"notify {data['notify']['outcome']}\n\nsignals:"
    )
    for path, value in signals.signals(data).items():
        typer.echo(f"  {path:<34} {_shown(value)}")
    anomaly_hooks = [(h, b) for h, b in receiver.received if b"contract_drift.trigger_anomaly" in b]
    signed = bool(anomaly_hooks) and _signed_ok(secret, *anomaly_hooks[0])
    _summary(data, scan, receiver, signed)
    promote = data["trigger"]["promote"] or {}
    ok = data["trigger"]["executed"] and promote.get("created_pattern_count", 0) > 0 and signed
    return 0 if ok and data["notify"]["notification"]["sent"] else 1


def _run_once(base_url: str, org_id: str, api_key: str) -> tuple[client.RunResult, dict[str, Any]]:
    """Seed, then one schedule run through the `driftwarden schedule-run` client; and the scan."""
    auth = {"Authorization": f"Bearer {api_key}"}
    with httpx.Client(base_url=base_url, headers=auth, timeout=60) as http:
        _seed(http, org_id)
        typer.echo(f"  seeded:   org {org_id}: 3 agents, 3 definitions, 6 bindings; policy enabled")
        env = {
            "BASE_URL": base_url,
            "API_PREFIX": "/api/v1",
            "API_KEY": api_key,
            "ORG_ID": org_id,
            "FORCE_NOTIFY": "true",
            "MIN_DRIFT": "warning",
            "MAX_RETRIES": "1",
        }
        result = client.call(client.config_from_env(env))
        scan = _checked(http.get("/api/v1/contracts/drift", params={"org_id": org_id}))
    return result, scan


def _serve_console(settings: Settings, base_url: str, key_id: uuid.UUID) -> None:
    """Print a one-time console sign-in link and keep serving until Ctrl-C."""
    engine = make_engine(settings, null_pool=True)
    try:
        url = login_links.issue_one_time_url(
            make_session_factory(engine),
            api_key_id=key_id,
            base_url=base_url,
            now=datetime.now(UTC),
        )
    finally:
        engine.dispose()
    typer.echo(
        f"\nconsole:  {url}\n          (one-time sign-in link, valid 10 minutes; "
        "Ctrl-C stops the demo)"
    )
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        typer.echo("\nstopped")


def run(*, db: Path | None, keep: bool, once: bool = True) -> int:
    """Set up, run one schedule run over HTTP, report; then serve the console unless `once`."""
    workdir = Path(tempfile.mkdtemp(prefix="driftwarden-demo-"))
    db_path = db or workdir / "driftwarden-demo.db"
    receiver = _Receiver()
    receiver.thread.start()
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    settings = Settings(
        DATABASE_URL=f"sqlite:///{db_path}",
        NOTIFY_WEBHOOK_URL=receiver.url,
        NOTIFY_WEBHOOK_SECRET=secret,
        NOTIFY_WEBHOOK_TIMEOUT_SECONDS=5,
        LOG_LEVEL="WARNING",
    )
    try:
        org_id, api_key, key_id = _bootstrap(settings)
        with _serving(settings) as base_url:
            typer.echo(
                f"driftwarden demo\n  database: {db_path}\n  API:      {base_url}\n"
                f"  webhook:  {receiver.url}"
            )
            result, scan = _run_once(base_url, org_id, api_key)
            code = _report(result, scan, receiver, secret)
            if not once:
                _serve_console(settings, base_url, key_id)
        return code
    finally:
        receiver.httpd.shutdown()
        receiver.httpd.server_close()
        if keep or db is not None:
            typer.echo(f"  kept:     {db_path}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


HELP = (
    "The main job in one command: demo org with drift, the API, one real schedule run, its signals."
)


def demo(
    db: Path | None = typer.Option(
        None, help="SQLite file to use; default: a fresh one in a temp dir"
    ),
    keep: bool = typer.Option(False, help="keep the temp dir (database) after the demo"),
    once: bool | None = typer.Option(
        None,
        "--once/--serve",
        help="exit after the signals (default when stdout is not "
        "a terminal), or keep serving the console with a one-time sign-in link",
    ),
) -> None:
    """Shows the product's main job end to end, through the same paths production uses."""
    raise typer.Exit(run(db=db, keep=keep, once=not sys.stdout.isatty() if once is None else once))
