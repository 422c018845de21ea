"""Test support: database targets, org/key factories, a live server and a local webhook receiver."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import uvicorn
from sqlalchemy import Engine, create_engine, text

from driftwarden.agents.models import Agent
from driftwarden.auth import service as auth_service
from driftwarden.contracts.models import ContractBinding, ContractDefinition
from driftwarden.db import migrate, scratch
from driftwarden.db.engine import make_engine, make_session_factory
from driftwarden.db.models import metadata
from driftwarden.scheduler.models import TriggerRun

ON_POSTGRES = os.environ.get("RUN_DB_INTEGRATION") == "1"


def create_pg_database(prefix: str = "dw_test") -> str:
    """A fresh, migrated database on the server named by DATABASE_URL; returns its URL."""
    return scratch.create_database(prefix)


def drop_pg_database(url: str) -> None:
    scratch.drop_database(url)


def sqlite_template(directory: Path) -> Path:
    path = directory / "template.db"
    engine = create_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    engine.dispose()
    return path


def fresh_sqlite(template: Path, directory: Path) -> str:
    path = directory / "driftwarden.db"
    shutil.copyfile(template, path)
    return f"sqlite:///{path}"


def truncate_all(engine: Engine) -> None:
    """Empty every table and put the schema version back at head (some tests move it)."""
    names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        conn.execute(
            text("UPDATE alembic_version SET version_num = :head"),
            {"head": migrate.head_revision()},
        )


@dataclass
class Tenant:
    """An org with an API key of the given role; `headers` authenticate as that key."""

    org_id: uuid.UUID | None
    api_key: str
    api_key_id: uuid.UUID
    role: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


def make_tenant(
    engine: Engine,
    *,
    role: str = "admin",
    org_id: uuid.UUID | None = None,
    global_key: bool = False,
    name: str = "Acme",
) -> Tenant:
    now = datetime.now(UTC)
    with make_session_factory(engine)() as session:
        if org_id is None and not global_key:
            org_id = auth_service.create_org(session, name=name, slug=None, now=now).id
        key, plaintext = auth_service.create_api_key(
            session,
            name=f"{role} key",
            org_id=org_id,
            role=role,
            expires_at=None,
            created_by=None,
            now=now,
        )
        session.commit()
        return Tenant(org_id=org_id, api_key=plaintext, api_key_id=key.id, role=role)


def trigger_run(org_id: uuid.UUID, at: datetime, outcome: str = "executed") -> TriggerRun:
    """A settled, real trigger of the daily schedule started at `at`, as a row to add."""
    return TriggerRun(
        org_id=org_id,
        schedule_name="daily",
        window_minutes=1440,
        window_start=at,
        window_end=at + timedelta(days=1),
        dedupe_key=f"k-{uuid.uuid4().hex}",
        outcome=outcome,
        dry_run=False,
        forced=False,
        started_at=at,
        finished_at=at,
        duration_ms=1.0,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    """The app served by a real uvicorn on 127.0.0.1, in a thread of this process."""

    def __init__(self, app: Any) -> None:
        self.port = free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(
                app,
                host="127.0.0.1",
                port=self.port,
                log_level="warning",
                lifespan="off",
                limit_concurrency=200,
            )
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("live server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class WebhookReceiver:
    """A local HTTP receiver whose answers are scripted: each request pops the next response."""

    responses: list[tuple[int, dict[str, str], float]] = field(default_factory=list)
    default: tuple[int, dict[str, str], float] = (200, {}, 0.0)
    received: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        receiver = self
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with lock:
                    receiver.received.append(
                        Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                    )
                    status, headers, delay = (
                        receiver.responses.pop(0) if receiver.responses else receiver.default
                    )
                if delay:
                    time.sleep(delay)
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                return

        server_class = type(
            "Server", (ThreadingHTTPServer,), {"request_queue_size": 256, "daemon_threads": True}
        )
        self.httpd = server_class(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"

    def __enter__(self) -> WebhookReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


__all__ = [
    "ON_POSTGRES",
    "LiveServer",
    "Tenant",
    "WebhookReceiver",
    "make_engine",
    "make_tenant",
    "wait_for",
]


def seed_agent_bindings(
    engine: Engine,
    org_id: uuid.UUID,
    pairs: Sequence[tuple[str, str | None]],
    *,
    name: str,
    key: Callable[[int], str],
    enabled: Callable[[int], bool] = lambda n: True,
) -> uuid.UUID:
    """One agent bound to one new gate definition per (current, bound) version pair."""
    now = datetime.now(UTC)
    with make_session_factory(engine)() as session:
        agent = Agent(
            org_id=org_id,
            name=name,
            status="production",
            metadata_={},
            created_at=now,
            updated_at=now,
        )
        session.add(agent)
        session.flush()
        for n, (current, bound) in enumerate(pairs):
            definition = ContractDefinition(
                org_id=org_id,
                definition_type="gate",
                key=key(n),
                name=f"Gate {n}",
                contract_version=current,
                default_config={},
                is_active=True,
                created_at=now,
                updated_at=now,
            )
            session.add(definition)
            session.flush()
            session.add(
                ContractBinding(
                    org_id=org_id,
                    agent_id=agent.id,
                    definition_id=definition.id,
                    enabled=enabled(n),
                    config={},
                    definition_contract_version=bound,
                    created_at=now,
                    updated_at=now,
                )
            )
        session.commit()
        return agent.id
