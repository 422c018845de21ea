"""Outbox throughput benchmark.

5 000 signed messages through 2 `driftwarden worker` processes to a local receiver.

Run: .venv/bin/python benchmarks/outbox.py [--messages 5000] [--workers 2] [--concurrency 16]
Uses the Postgres at DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/postgres),
creating and dropping a database of its own. Target: >= 250 deliveries/s on the 2-core
development machine.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from sqlalchemy import func, select

from driftwarden.auth import service as auth_service
from driftwarden.db import scratch
from driftwarden.db.engine import make_engine, make_session_factory
from driftwarden.notifications import outbox
from driftwarden.notifications.models import NotificationOutbox
from driftwarden.notifications.signing import generate_secret
from driftwarden.settings import Settings

TARGET_PER_SECOND = 250.0


class Receiver:
    """A keep-alive HTTP/1.1 receiver that counts webhook-ids (to spot duplicates)."""

    def __init__(self) -> None:
        self.ids: Counter[str] = Counter()
        lock = threading.Lock()
        ids = self.ids

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with lock:
                    ids[self.headers.get("webhook-id", "")] += 1
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return

        ThreadingHTTPServer.request_queue_size = 512
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"


def enqueue_all(settings: Settings, count: int) -> float:
    """All messages in one transaction, as a burst of promotions would; returns the commit time."""
    engine = make_engine(settings, null_pool=True)
    with make_session_factory(engine)() as session:
        now = datetime.now(UTC)
        org = auth_service.create_org(session, name="bench", slug=None, now=now)
        for n in range(count):
            outbox.enqueue(
                session,
                org_id=org.id,
                event_type="contract_drift.patterns_promoted",
                data={"n": n, "created_pattern_count": 1},
                now=now,
                settings=settings,
            )
        session.commit()
    engine.dispose()
    return time.perf_counter()


def sent_count(settings: Settings) -> int:
    engine = make_engine(settings, null_pool=True)
    with engine.connect() as conn:
        value = conn.scalar(
            select(func.count())
            .select_from(NotificationOutbox)
            .where(NotificationOutbox.status == "sent")
        )
    engine.dispose()
    return int(value or 0)


def run(messages: int, workers: int, concurrency: int) -> None:
    receiver = Receiver()
    url = scratch.create_database("dw_bench_outbox")
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "NOTIFY_WEBHOOK_URL": receiver.url,
        "NOTIFY_WEBHOOK_SECRET": generate_secret(),
        "LOG_LEVEL": "WARNING",
    }
    settings = Settings(
        DATABASE_URL=url,
        NOTIFY_WEBHOOK_URL=receiver.url,
        NOTIFY_WEBHOOK_SECRET=env["NOTIFY_WEBHOOK_SECRET"],
    )
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "driftwarden.cli",
                "worker",
                "--concurrency",
                str(concurrency),
                "--poll-interval",
                "0.05",
            ],
            env=env,
        )
        for _ in range(workers)
    ]
    try:
        time.sleep(3)  # let the workers start and idle-poll
        t_enqueue = time.perf_counter()
        committed = enqueue_all(settings, messages)
        print(f"enqueued {messages} messages in {committed - t_enqueue:.2f}s (one transaction)")
        while (done := sent_count(settings)) < messages:
            if time.perf_counter() - committed > 300:
                raise SystemExit(f"timed out with {done}/{messages} sent")
            time.sleep(0.05)
        elapsed = time.perf_counter() - committed
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)
        scratch.drop_database(url)
    rate = messages / elapsed
    duplicates = sum(c - 1 for c in receiver.ids.values() if c > 1)
    print(
        f"delivered {messages} signed webhooks through {workers} workers "
        f"x {concurrency} in flight: "
        f"{elapsed:.2f}s = {rate:.0f} deliveries/s"
    )
    print(
        f"receiver saw {sum(receiver.ids.values())} requests, "
        f"{len(receiver.ids)} distinct webhook-ids, "
        f"{duplicates} duplicates"
    )
    print(f"ratio to target ({TARGET_PER_SECOND:.0f}/s): {rate / TARGET_PER_SECOND:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    run(args.messages, args.workers, args.concurrency)


if __name__ == "__main__":
    main()
