"""Log lines: the JSON shape, the request id on every line of a request, and no secret anywhere."""

from __future__ import annotations

import base64
import io
import json
import logging
import logging.config
import threading
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient

from driftwarden import logs
from driftwarden.api.app import create_app
from driftwarden.settings import Settings
from tests.scheduler.conftest import seed_drift
from tests.support import free_port

WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"s" * 32).decode()
PATH_TOKEN = "T0kenInTheWebhookPath" + uuid.uuid4().hex
ENDPOINT_TOKEN = "EndpointPathToken" + uuid.uuid4().hex
PG_PASSWORD = "PgPassw0rdNeverLogged"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """dictConfig changes process-wide loggers: put back what the test run had."""
    root = logging.getLogger()
    saved = {
        name: (lg.handlers[:], lg.level, lg.propagate)
        for name in ("", "uvicorn", "uvicorn.access", "uvicorn.error", "driftwarden")
        for lg in [logging.getLogger(name or None)]
    }
    yield
    for name, (handlers, level, propagate) in saved.items():
        lg = logging.getLogger(name or None)
        lg.handlers[:] = handlers
        lg.setLevel(level)
        lg.propagate = propagate
    assert root is logging.getLogger()


def capture() -> io.StringIO:
    """Point the configured handler (shared by root and uvicorn's loggers) at a buffer."""
    buffer = io.StringIO()
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(buffer)
    return buffer


class Served:
    """The app in a real uvicorn, configured by the same dict `serve` hands uvicorn."""

    def __init__(self, app, settings: Settings) -> None:  # type: ignore[no-untyped-def]
        self.port = free_port()
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            lifespan="off",
            log_level=None,
            log_config=logs.uvicorn_log_config(settings),
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Served:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def test_json_lines_carry_the_named_fields(restore_logging) -> None:  # type: ignore[no-untyped-def]
    logs.configure_logging(Settings(LOG_FORMAT="json"))
    buffer = capture()
    token = logs.begin_request("req-123")
    logs.bind(route="/api/v1/agents/{agent_id}", status=404, duration_ms=1.5, org_id=None)
    logging.getLogger("driftwarden.test").warning("inside %s", "a request")
    logs.end_request(token)
    logging.getLogger("driftwarden.test").error("outside")
    inside, outside = (json.loads(line) for line in buffer.getvalue().splitlines())
    assert inside["msg"] == "inside a request" and inside["level"] == "WARNING"
    assert inside["logger"] == "driftwarden.test" and inside["request_id"] == "req-123"
    assert (inside["route"], inside["status"], inside["duration_ms"]) == (
        "/api/v1/agents/{agent_id}",
        404,
        1.5,
    )
    assert "org_id" not in inside and inside["ts"].endswith("Z")
    assert outside["request_id"] is None and "route" not in outside


def _run_everything(url: str, admin, receiver) -> tuple[list[str], str]:
    """Schedule runs whose deliveries fail (one destination, then two), then a drain.

    Returns the secrets the server handed out and the request id of the first run.
    """
    with httpx.Client(base_url=url, headers=admin.headers, timeout=30) as http:
        http.post(
            "/api/v1/system/contracts/drift-policy", json={"enabled": True, "alert_enabled": True}
        )
        body = {"org_id": str(admin.org_id), "force_notify": True}
        first = http.post(
            "/api/v1/system/contracts/drift/schedule-run",
            headers={"Idempotency-Key": "k1"},
            json=body,
        )
        assert first.json()["data"]["notify"]["outcome"] == "failed", first.text
        created = http.post(
            "/api/v1/system/notifications/endpoints",
            json={"url": f"{receiver.url}/{ENDPOINT_TOKEN}"},
        )
        assert created.status_code == 201, created.text
        second = http.post(
            "/api/v1/system/contracts/drift/schedule-run",
            headers={"Idempotency-Key": "k2"},
            json=body,
        )
        assert len(second.json()["data"]["notify"]["notification"]["deliveries"]) == 2, second.text
        http.post("/api/v1/system/notifications/outbox/drain", json={})
        http.get(f"/api/v1/agents/{uuid.uuid4()}?token={PATH_TOKEN}")
    return [admin.api_key, created.json()["data"]["secret"]], first.headers["x-request-id"]


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_no_secret_in_any_line_of_a_failing_schedule_run(  # type: ignore[no-untyped-def]
    restore_logging, database_url, engine, admin, receiver, log_format
) -> None:
    receiver.default = (500, {}, 0.0)
    settings = Settings(
        DATABASE_URL=database_url,
        NOTIFY_WEBHOOK_URL=f"{receiver.url}/{PATH_TOKEN}",
        NOTIFY_WEBHOOK_SECRET=WEBHOOK_SECRET,
        NOTIFY_RETRY_SCHEDULE="0,0",
        NOTIFY_ALLOW_PRIVATE_NETWORKS=True,
        LOG_FORMAT=log_format,
        LOG_LEVEL="DEBUG",
    )
    seed_drift(engine, admin.org_id)
    with Served(create_app(settings, engine=engine), settings) as served:
        buffer = capture()
        secrets, request_id = _run_everything(served.url, admin, receiver)
        time.sleep(0.2)
    lines = buffer.getvalue().splitlines()
    assert len(receiver.received) >= 2 and any("schedule-run" in line for line in lines)
    forbidden = [
        *secrets,
        WEBHOOK_SECRET,
        WEBHOOK_SECRET.removeprefix("whsec_"),
        PATH_TOKEN,
        ENDPOINT_TOKEN,
    ]
    leaks = [line for line in lines for secret in forbidden if secret in line]
    assert leaks == []
    run_lines = [line for line in lines if request_id in line]
    assert any("webhook_attempt" in line for line in run_lines)  # the app's own lines carry it too
    if log_format == "json":
        records = [json.loads(line) for line in lines]
        access = [
            r for r in records if r["logger"] == "uvicorn.access" and "schedule-run" in r["msg"]
        ]
        assert access and access[0]["request_id"] == request_id
        assert access[0]["route"] == "/api/v1/system/contracts/drift/schedule-run"
        assert access[0]["status"] == 200 and access[0]["duration_ms"] > 0 and access[0]["org_id"]


def test_a_database_password_is_never_logged(restore_logging) -> None:
    settings = Settings(
        DATABASE_URL=f"postgresql://dw:{PG_PASSWORD}@127.0.0.1:1/driftwarden",
        LOG_FORMAT="json",
        DB_POOL_TIMEOUT_SECONDS=1,
    )
    logs.configure_logging(settings)
    buffer = capture()
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        statuses = {
            client.get("/readyz").status_code,
            client.get("/api/v1/agents", headers={"Authorization": "Bearer dwk_x"}).status_code,
            client.get("/metrics", headers={"Authorization": "Bearer dwk_x"}).status_code,
        }
    assert statuses <= {500, 503}
    assert buffer.getvalue() and PG_PASSWORD not in buffer.getvalue()
