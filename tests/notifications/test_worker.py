"""The drainer: bounded concurrency, racing drainers, SIGTERM and SIGKILL, and the CLI verbs."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from typer.testing import CliRunner

from driftwarden.cli import app as cli_app
from driftwarden.clock import SystemClock
from driftwarden.db.engine import make_engine, make_session_factory
from driftwarden.notifications import flows, outbox
from driftwarden.notifications.models import NotificationOutbox
from driftwarden.settings import Settings, get_settings
from driftwarden.worker.runner import Periodic, Worker, WorkerConfig
from tests.notifications.conftest import SECRET
from tests.notifications.helpers import enqueue, row, verified
from tests.support import ON_POSTGRES, wait_for

SLOW = ON_POSTGRES or os.environ.get("RUN_SLOW") == "1"
slow = pytest.mark.skipif(
    not SLOW, reason="real worker processes: set RUN_SLOW=1 (or RUN_DB_INTEGRATION=1)"
)


def _bulk_enqueue(session_factory, settings, clock, org_id, count: int) -> None:  # type: ignore[no-untyped-def]
    with session_factory() as session:
        for n in range(count):
            outbox.enqueue(
                session,
                org_id=org_id,
                event_type="webhook.test",
                data={"n": n},
                now=clock.now(),
                settings=settings,
            )
        session.commit()


def _race(settings, clock, receiver, org_id, session_factory, *, drainers: int, count: int) -> None:  # type: ignore[no-untyped-def]
    """`drainers` workers, each on its own engine (own connections), over `count` due messages."""
    _bulk_enqueue(session_factory, settings, clock, org_id, count)
    engines = [make_engine(settings) for _ in range(drainers)]
    workers = [
        Worker(
            make_session_factory(e), settings, SystemClock(), WorkerConfig(concurrency=4, once=True)
        )
        for e in engines
    ]
    threads = [threading.Thread(target=w.run) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    for engine in engines:
        engine.dispose()
    ids = [r.headers["webhook-id"] for r in receiver.received]
    assert len(ids) == count and len(set(ids)) == count  # each delivered, none twice
    assert sum(w.stats.sent for w in workers) == count
    with session_factory() as session:
        counts = dict(
            session.execute(
                select(NotificationOutbox.status, func.count()).group_by(NotificationOutbox.status)
            ).all()
        )
        attempts = session.scalar(select(func.max(NotificationOutbox.attempt_count)))
    assert counts == {"sent": count} and attempts == 1
    for got in receiver.received:
        verified(got, SECRET)


def test_drainers_racing_deliver_each_message_once(
    settings, clock, receiver, admin, session_factory
) -> None:
    _race(settings, clock, receiver, admin.org_id, session_factory, drainers=3, count=120)


@pytest.mark.integration
@pytest.mark.skipif(
    not ON_POSTGRES, reason="needs PostgreSQL (RUN_DB_INTEGRATION=1): FOR UPDATE SKIP LOCKED race"
)
def test_three_drainers_over_1000_messages_on_postgres(
    settings, clock, receiver, admin, session_factory
) -> None:
    _race(settings, clock, receiver, admin.org_id, session_factory, drainers=3, count=1000)


def test_worker_once_logs_one_line_per_attempt_without_secrets(
    settings, clock, receiver, admin, session_factory, caplog
) -> None:
    receiver.responses.append((500, {}, 0.0))
    _bulk_enqueue(session_factory, settings, clock, admin.org_id, 3)
    worker = Worker(session_factory, settings, clock, WorkerConfig(concurrency=2, once=True))
    with caplog.at_level("INFO", logger="driftwarden.notifications"):
        stats = worker.run()
    assert (stats.attempted, stats.sent, stats.retrying) == (3, 2, 1)
    lines = [
        json.loads(r.getMessage())
        for r in caplog.records
        if r.getMessage().startswith('{"event": "webhook_attempt"')
    ]
    assert len(lines) == 3 and {line["outcome"] for line in lines} == {"sent", "pending"}
    assert all(line["host"].startswith("http://127.0.0.1:") for line in lines)
    text = caplog.text
    assert (
        SECRET not in text and "/hook" not in text and '"data":' not in text and '"n":' not in text
    )


def test_worker_rides_out_a_database_outage(
    settings, clock, receiver, admin, session_factory
) -> None:
    """The call that records the outcome fails once.

    The result is kept and recorded later, not resent.
    """
    [outbox_id] = enqueue(session_factory, settings, clock, admin.org_id)
    calls = {"n": 0}

    def flaky():  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 3:  # 1 = reap, 2 = claim, 3 = record
            raise OperationalError(
                "UPDATE notification_outbox", {}, Exception("server closed the connection")
            )
        return session_factory()

    worker = Worker(flaky, settings, clock, WorkerConfig(concurrency=2, poll_interval=0.02))
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        assert wait_for(lambda: row(session_factory, outbox_id).status == "sent", timeout=10)
    finally:
        worker.stop.set()
        thread.join(timeout=10)
    assert calls["n"] > 3 and len(receiver.received) == 1 and worker.stats.sent == 1


def test_periodic_jobs_run_between_rounds_and_cannot_stop_the_drain(
    settings, clock, receiver, admin, session_factory
) -> None:
    ticks: list[float] = []

    def broken() -> None:
        raise RuntimeError("watchdog bug")

    worker = Worker(
        session_factory,
        settings,
        clock,
        WorkerConfig(poll_interval=0.02),
        periodic=[
            Periodic("tick", 0.05, lambda: ticks.append(time.monotonic())),
            Periodic("broken", 0.05, broken),
        ],
    )
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        assert wait_for(lambda: len(ticks) >= 3, timeout=5)
        [outbox_id] = enqueue(session_factory, settings, clock, admin.org_id)
        assert wait_for(lambda: row(session_factory, outbox_id).status == "sent", timeout=5)
    finally:
        worker.stop.set()
        thread.join(timeout=10)
    assert (
        not thread.is_alive()
        and min(b - a for a, b in zip(ticks, ticks[1:], strict=False)) >= 0.045
    )


def test_stop_releases_what_outlives_the_grace_period(
    settings, clock, receiver, admin, session_factory
) -> None:
    receiver.responses.append((200, {}, 2.0))
    [outbox_id] = enqueue(session_factory, settings, clock, admin.org_id)
    worker = Worker(
        session_factory, settings, clock, WorkerConfig(poll_interval=0.02, shutdown_grace=0.1)
    )
    thread = threading.Thread(target=worker.run)
    thread.start()
    assert wait_for(lambda: len(receiver.received) == 1, timeout=5)
    worker.stop.set()
    thread.join(timeout=5)
    released = row(session_factory, outbox_id)
    assert not thread.is_alive() and worker.stats.released == 1
    assert (
        released.status == "pending"
        and released.lease_expires_at is None
        and released.attempt_count == 1
    )


def _worker_process(settings, *args: str) -> subprocess.Popen:  # type: ignore[type-arg, no-untyped-def]
    env = {
        **os.environ,
        "DATABASE_URL": settings.db_url,
        "NOTIFY_WEBHOOK_URL": settings.webhook_url,
        "NOTIFY_WEBHOOK_SECRET": SECRET,
        "NOTIFY_RETRY_SCHEDULE": "1,2,3",
        "NOTIFY_WEBHOOK_TIMEOUT_SECONDS": "10",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "driftwarden.cli", "worker", "--poll-interval", "0.1", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


@slow
def test_sigterm_finishes_in_flight_deliveries(
    settings, clock, receiver, admin, session_factory
) -> None:
    receiver.default = (200, {}, 1.0)
    _bulk_enqueue(session_factory, settings, clock, admin.org_id, 2)
    proc = _worker_process(settings, "--concurrency", "2")
    try:
        assert wait_for(lambda: len(receiver.received) == 2, timeout=20)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        proc.kill()
    stderr = proc.stderr.read().decode()  # type: ignore[union-attr]
    with session_factory() as session:
        assert set(session.scalars(select(NotificationOutbox.status))) == {"sent"}
    # A text log line is `ts level logger [request id] message`; the message is the attempt's JSON.
    attempts = [
        json.loads(line[line.index("{") :])
        for line in stderr.splitlines()
        if '"webhook_attempt"' in line
    ]
    assert len(attempts) == 2 and SECRET not in stderr


@slow
def test_sigkill_mid_delivery_loses_nothing(
    settings, clock, receiver, admin, session_factory
) -> None:
    receiver.responses.append((200, {}, 3.0))  # the first delivery hangs while the worker is killed
    [outbox_id] = enqueue(session_factory, settings, clock, admin.org_id)
    proc = _worker_process(settings, "--lease-seconds", "1")
    try:
        assert wait_for(lambda: len(receiver.received) == 1, timeout=20)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        proc.kill()
    assert row(session_factory, outbox_id).status == "sending"
    time.sleep(1.1)  # the dead worker's lease lapses
    second = _worker_process(settings, "--once")
    assert second.wait(timeout=30) == 0
    delivered = row(session_factory, outbox_id)
    assert delivered.status == "sent" and delivered.attempt_count == 2
    first, again = receiver.received
    assert first.headers["webhook-id"] == again.headers["webhook-id"] == delivered.message_id
    verified(again, SECRET)


def test_webhook_verify_cli(tmp_path, settings, clock, receiver, admin, session_factory) -> None:
    ids = enqueue(session_factory, settings, clock, admin.org_id)
    flows.deliver_now(session_factory, outbox_ids=ids, settings=settings, clock=clock)
    [got] = receiver.received
    headers, body = tmp_path / "headers.json", tmp_path / "body.bin"
    headers.write_text(json.dumps(got.headers))
    body.write_bytes(got.body)
    runner = CliRunner()
    get_settings.cache_clear()
    try:
        args = ["webhook", "verify", "--headers", str(headers), "--body", str(body)]
        valid = runner.invoke(cli_app, [*args, "--secret", SECRET], env={})
        assert valid.exit_code == 0 and "VALID" in valid.output
        assert runner.invoke(cli_app, args, env={"NOTIFY_WEBHOOK_SECRET": SECRET}).exit_code == 0
        wrong = runner.invoke(cli_app, [*args, "--secret", "whsec_" + "A" * 32], env={})
        assert wrong.exit_code == 1 and "INVALID" in wrong.output
        assert runner.invoke(cli_app, [*args, "--secret", "nope"], env={}).exit_code == 2
        raw = tmp_path / "raw.txt"
        raw.write_text(
            "POST /hook HTTP/1.1\n" + "".join(f"{k}: {v}\n" for k, v in got.headers.items())
        )
        assert (
            runner.invoke(
                cli_app,
                [
                    "webhook",
                    "verify",
                    "--headers",
                    str(raw),
                    "--body",
                    str(body),
                    "--secret",
                    SECRET,
                ],
                env={},
            ).exit_code
            == 0
        )
        body.write_bytes(got.body + b" ")
        assert runner.invoke(cli_app, [*args, "--secret", SECRET], env={}).exit_code == 1
        # bad input, not a traceback: a file that is not UTF-8, a header no request can carry
        for saved in (b"\xff\xfe garbage", b'{"webhook-id": "\\udc00", "webhook-timestamp": "1"}'):
            headers.write_bytes(saved)
            refused = runner.invoke(cli_app, [*args, "--secret", SECRET], env={})
            assert refused.exit_code == 2 and "webhook verify: " in refused.output, refused.output
    finally:
        get_settings.cache_clear()


def test_worker_refuses_bad_destination_config() -> None:
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(
            cli_app,
            ["worker", "--once"],
            env={
                "NOTIFY_WEBHOOK_URL": "http://127.0.0.1:9/x",
                "NOTIFY_WEBHOOK_EVENTS": "contract_drift.oops",
                "DATABASE_URL": "sqlite:///unused.db",
            },
        )
        assert result.exit_code == 2 and "NOTIFY_WEBHOOK_EVENTS" in result.output
        bad_format = CliRunner().invoke(
            cli_app, ["worker", "--once"], env={"NOTIFY_WEBHOOK_FORMAT": "xml"}
        )
        assert bad_format.exit_code == 2 and "NOTIFY_WEBHOOK_FORMAT" in bad_format.output
    finally:
        get_settings.cache_clear()


def test_worker_command_never_logs_the_webhook_url_path(
    settings, clock, receiver, admin, session_factory, caplog
) -> None:
    """`driftwarden worker` turns INFO logging on.

    httpx's own INFO line would print each full URL.
    """
    tokened = Settings(
        DATABASE_URL=settings.db_url, NOTIFY_WEBHOOK_URL=receiver.url + "/T0/B0/s3cr3t-path"
    )
    enqueue(session_factory, tokened, clock, admin.org_id)
    httpx_logger, root = logging.getLogger("httpx"), logging.getLogger()
    level, handlers = (
        httpx_logger.level,
        {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)},
    )
    root_level, root_handlers = root.level, list(root.handlers)
    get_settings.cache_clear()
    try:
        with caplog.at_level("INFO"):
            result = CliRunner().invoke(
                cli_app,
                ["worker", "--once"],
                env={
                    "DATABASE_URL": settings.db_url,
                    "NOTIFY_WEBHOOK_URL": tokened.webhook_url,
                    "NOTIFY_WEBHOOK_EVENTS": "",
                    "NOTIFY_WEBHOOK_SECRET": "",
                },
            )
    finally:  # the command installs its SIGTERM/SIGINT handlers and its logging in this process
        httpx_logger.setLevel(level)
        root.handlers[:] = root_handlers
        root.setLevel(root_level)
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert [r.path for r in receiver.received] == ["/hook/T0/B0/s3cr3t-path"]
    logged = caplog.text + result.output  # the command's own handler writes to its stderr
    assert '"webhook_attempt"' in logged and "s3cr3t-path" not in logged
