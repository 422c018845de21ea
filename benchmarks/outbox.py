"""Outbox throughput against its ceiling: the same POSTs with no database at all.

`--messages` signed messages go through `--workers` `driftwarden worker` processes to a local
keep-alive receiver; then the same number of processes POST the same signed bodies (same client,
same signing, same `--concurrency` in flight) to the same receiver with no database: the ceiling.
Each round does both, side by side; medians over `--rounds` are printed with their ratio (bar:
>= 50 %), the duplicate `webhook-id`s the receiver saw (bar: 0), and the statements the workers
issued per delivered message (counted by a SQLAlchemy listener in each worker process).

Run: .venv/bin/python benchmarks/outbox.py [--messages 5000] [--workers 2] [--concurrency 16]
     [--rounds 3]
Uses the Postgres at DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/postgres),
creating and dropping a database of its own. A round's clock starts when its messages become due
and stops when every one is recorded `sent` (the ceiling's: when the receiver has them all).
"""

from __future__ import annotations

import argparse
import base64
import itertools
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from sqlalchemy import func, select, update

from driftwarden.auth import service as auth_service
from driftwarden.db import scratch
from driftwarden.db.engine import make_engine, make_session_factory
from driftwarden.notifications import delivery, outbox
from driftwarden.notifications.models import NotificationOutbox
from driftwarden.notifications.signing import generate_secret
from driftwarden.settings import Settings

BAR = 0.5
FAR_FUTURE = datetime(2100, 1, 1, tzinfo=UTC)


class Receiver:
    """A keep-alive HTTP/1.1 receiver that counts webhook-ids (to spot duplicates)."""

    def __init__(self) -> None:
        self.ids: Counter[str] = Counter()
        self.received = 0
        lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with lock:
                    receiver.ids[self.headers.get("webhook-id", "")] += 1
                    receiver.received += 1
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

    def reset(self) -> None:
        self.ids, self.received = Counter(), 0

    def wait_for(self, count: int, started: float) -> None:
        while self.received < count:
            if time.perf_counter() - started > 300:
                raise SystemExit(f"timed out with {self.received}/{count} received")
            time.sleep(0.005)

    def duplicates(self) -> int:
        return sum(c - 1 for c in self.ids.values() if c > 1)


def worker_child(argv: list[str]) -> None:
    """`driftwarden worker` itself, counting its statements; SIGUSR1 appends the count to a file."""
    from sqlalchemy import Engine, event

    from driftwarden.cli import app

    counter = itertools.count()
    event.listen(Engine, "before_cursor_execute", lambda *_: next(counter))
    path = Path(os.environ["DW_BENCH_STATEMENTS"])

    def mark(*_: object) -> None:
        with path.open("a") as out:
            out.write(f"{next(counter)}\n")  # the mark itself takes one number: subtracted below

    signal.signal(signal.SIGUSR1, mark)
    app(["worker", *argv], prog_name="driftwarden")


def post_child(path: str, concurrency: int) -> None:
    """The ceiling: sign and POST each body once with the worker's client, no database."""
    settings = Settings()
    now = datetime.now(UTC)
    jobs = [
        delivery.Job(
            outbox_id=None,  # type: ignore[arg-type]
            message_id=m["id"],
            org_id=None,
            event_type="bench",
            destination=outbox.ENV,
            endpoint_id=None,
            url=str(settings.webhook_url),
            body=base64.b64decode(m["body"]),
            attempt_count=1,
            max_attempts=1,
            signing_secrets=(str(settings.webhook_secret),),
        )
        for m in json.loads(Path(path).read_text())
    ]
    client = delivery.make_client(settings, max_connections=concurrency)
    print("ready", flush=True)
    sys.stdin.readline()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        results = list(pool.map(lambda job: delivery.attempt(client, job, now=now), jobs))
    client.close()
    assert all(r.ok for r in results), "a ceiling POST failed"


def enqueue_all(settings: Settings, count: int) -> None:
    """All messages in one transaction, not yet due: each round makes them due at its start."""
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
        session.execute(update(NotificationOutbox).values(next_attempt_at=FAR_FUTURE))
        session.commit()
    engine.dispose()


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.receiver = Receiver()
        self.url = scratch.create_database("dw_bench_outbox")
        self.tmp = Path(tempfile.mkdtemp(prefix="dw_bench_outbox"))
        self.env = {
            **os.environ,
            "DATABASE_URL": self.url,
            "NOTIFY_WEBHOOK_URL": self.receiver.url,
            "NOTIFY_WEBHOOK_SECRET": generate_secret(),
            "LOG_LEVEL": "WARNING",
        }
        self.settings = Settings(
            DATABASE_URL=self.url,
            NOTIFY_WEBHOOK_URL=self.receiver.url,
            NOTIFY_WEBHOOK_SECRET=self.env["NOTIFY_WEBHOOK_SECRET"],
        )
        self.engine = make_engine(self.settings)

    def start_workers(self) -> list[subprocess.Popen[bytes]]:
        args = ["--concurrency", str(self.args.concurrency), "--poll-interval", "0.05"]
        return [
            subprocess.Popen(
                [sys.executable, __file__, "--worker-child", *args],
                env={**self.env, "DW_BENCH_STATEMENTS": str(self.tmp / f"statements-{n}")},
            )
            for n in range(self.args.workers)
        ]

    def marks(self, procs: list[subprocess.Popen[bytes]], expected: int) -> list[int]:
        """Signal every worker to write its statement count; wait for the lines."""
        for proc in procs:
            os.kill(proc.pid, signal.SIGUSR1)
        files = [self.tmp / f"statements-{n}" for n in range(len(procs))]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            lines = [f.read_text().split() if f.exists() else [] for f in files]
            if all(len(ls) >= expected for ls in lines):
                return [int(ls[expected - 1]) for ls in lines]
            time.sleep(0.01)
        raise SystemExit("a worker did not report its statement count")

    def through_database(self, procs: list[subprocess.Popen[bytes]], n: int) -> tuple[float, int]:
        """One round: every message due now; seconds until all are `sent`, statements issued."""
        self.receiver.reset()
        before = self.marks(procs, 2 * n + 1)
        with self.engine.begin() as conn:
            conn.execute(
                update(NotificationOutbox).values(
                    status="pending", attempt_count=0, next_attempt_at=datetime.now(UTC)
                )
            )
        started = time.perf_counter()
        self.receiver.wait_for(self.args.messages, started)  # then wait for the records
        count = select(func.count()).where(NotificationOutbox.status == "sent")
        with self.engine.connect() as conn:
            while (done := conn.scalar(count) or 0) < self.args.messages:
                if time.perf_counter() - started > 300:
                    raise SystemExit(f"timed out with {done}/{self.args.messages} sent")
                conn.rollback()
                time.sleep(0.02)
        elapsed = time.perf_counter() - started
        after = self.marks(procs, 2 * n + 2)
        return elapsed, sum(a - b - 1 for a, b in zip(after, before, strict=True))

    def write_halves(self) -> list[Path]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(NotificationOutbox.message_id, NotificationOutbox.body))
            messages = [{"id": m, "body": base64.b64encode(b).decode()} for m, b in rows]
        paths = []
        for n in range(self.args.workers):
            paths.append(self.tmp / f"bodies-{n}.json")
            paths[-1].write_text(json.dumps(messages[n :: self.args.workers]))
        return paths

    def ceiling(self, halves: list[Path]) -> float:
        """The same processes' POSTs with no database: seconds until the receiver has them all."""
        command = [sys.executable, __file__, "--concurrency", str(self.args.concurrency)]
        procs = [
            subprocess.Popen(
                [*command, "--post-child", str(p)],
                env=self.env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
            for p in halves
        ]
        for proc in procs:
            assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
        self.receiver.reset()
        started = time.perf_counter()
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write(b"go\n")
            proc.stdin.flush()
        self.receiver.wait_for(self.args.messages, started)
        elapsed = time.perf_counter() - started
        for proc in procs:
            proc.wait(timeout=30)
        return elapsed

    def run(self) -> None:
        args, procs = self.args, self.start_workers()
        try:
            time.sleep(3)  # let the workers start and idle-poll
            started = time.perf_counter()
            enqueue_all(self.settings, args.messages)
            print(f"enqueued {args.messages} messages in {time.perf_counter() - started:.2f}s")
            halves = self.write_halves()
            rows = []
            for n in range(args.rounds):
                took, statements = self.through_database(procs, n)
                duplicates = self.receiver.duplicates()
                for proc in procs:  # idle workers would poll during the ceiling: pause them
                    os.kill(proc.pid, signal.SIGSTOP)
                try:
                    ceiling = self.ceiling(halves)
                finally:
                    for proc in procs:
                        os.kill(proc.pid, signal.SIGCONT)
                rows.append((took, statements, duplicates, ceiling))
                print(
                    f"round {n + 1}: database {args.messages / took:6.0f}/s "
                    f"({statements / args.messages:.3f} statements/message, "
                    f"{duplicates} duplicates)   no database {args.messages / ceiling:6.0f}/s"
                )
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(timeout=30)
            self.engine.dispose()
            scratch.drop_database(self.url)
        self.report(rows)

    def report(self, rows: list[tuple[float, int, int, float]]) -> None:
        args = self.args
        rate = args.messages / statistics.median(r[0] for r in rows)
        ceiling = args.messages / statistics.median(r[3] for r in rows)
        per_message = statistics.median(r[1] for r in rows) / args.messages
        duplicates = sum(r[2] for r in rows)
        print(
            f"\nthrough the database: {rate:.0f} deliveries/s ({args.workers} workers x "
            f"{args.concurrency} in flight, median of {args.rounds})"
        )
        print(f"ceiling, no database: {ceiling:.0f} POSTs/s (same processes, bodies, receiver)")
        ratio = statistics.median(r[3] / r[0] for r in rows)  # each round's pair, side by side
        verdict = "met" if ratio >= BAR else "NOT met"
        print(f"ratio: {ratio:.0%} of the ceiling, median per round (bar >= {BAR:.0%}: {verdict})")
        print(f"duplicate webhook-ids received: {duplicates} (bar 0)")
        print(f"statements per delivered message: {per_message:.3f}")
        print(f"load average: {os.getloadavg()[0]:.1f} (2 shared cores; figures are noisy)")


def main() -> None:
    if sys.argv[1:2] == ["--worker-child"]:
        worker_child(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--post-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.post_child:
        post_child(args.post_child, args.concurrency)
        return
    Bench(args).run()


if __name__ == "__main__":
    main()
