"""The worker's loop: drains the outbox (N deliveries in flight, outcomes recorded in batches) and
runs its periodic jobs between rounds; on stop it finishes or hands back what it holds.

Claiming, sending and recording are the notifications domain's (`outbox`, `delivery`); this
module only decides when each runs.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from driftwarden.clock import Clock
from driftwarden.metrics import events as metrics
from driftwarden.notifications import delivery, outbox, retry
from driftwarden.settings import Settings

log = logging.getLogger("driftwarden.worker")

REAP_EVERY_SECONDS = 1.0
# The longest a finished attempt waits in memory to be recorded with others (a crash before the
# record means one more delivery of it: at least once, docs/reference/notifications.md#outbox).
RECORD_AFTER_SECONDS = 0.1


@dataclass
class WorkerStats:
    attempted: int = 0
    sent: int = 0
    retrying: int = 0
    dead: int = 0
    released: int = 0
    reaped: int = 0


@dataclass
class WorkerConfig:
    concurrency: int = 8
    poll_interval: float = 1.0
    lease_seconds: float = delivery.DEFAULT_LEASE_SECONDS
    once: bool = False
    shutdown_grace: float = 20.0


@dataclass
class Periodic:
    """A job the worker runs between drain rounds, every `every_seconds` (see `worker.jobs`)."""

    name: str
    every_seconds: float
    run: Callable[[], None]
    next_at: float = 0.0


@dataclass
class Worker:
    session_factory: sessionmaker[Session]
    settings: Settings
    clock: Clock
    config: WorkerConfig = field(default_factory=WorkerConfig)
    stop: threading.Event = field(default_factory=threading.Event)
    stats: WorkerStats = field(default_factory=WorkerStats)
    periodic: list[Periodic] = field(default_factory=list)
    _finished: list[tuple[delivery.Job, outbox.Settlement]] = field(
        default_factory=list, init=False
    )
    _last_reap: float = field(default=0.0, init=False)
    _finished_at: float = field(default=0.0, init=False)
    # Each attempt's future lands here as it completes: one queue, not a wait() over all of them.
    _done: queue.SimpleQueue[Future[outbox.Settlement]] = field(
        default_factory=queue.SimpleQueue, init=False
    )

    def run(self) -> WorkerStats:
        """Drain until stopped (or, with `once`, until nothing is due); never drops a claim."""
        client = delivery.make_client(self.settings, max_connections=self.config.concurrency)
        pool = ThreadPoolExecutor(
            max_workers=self.config.concurrency, thread_name_prefix="dw-worker"
        )
        inflight: dict[Future[outbox.Settlement], delivery.Job] = {}
        try:
            self._loop(client, pool, inflight)
        finally:
            self._shutdown(pool, inflight)
            client.close()
        return self.stats

    def _loop(self, client, pool: ThreadPoolExecutor, inflight: dict) -> None:  # type: ignore[no-untyped-def]
        """Keep going through database outages: finished attempts wait in memory to be recorded."""
        while not self.stop.is_set():
            try:
                if not self._step(client, pool, inflight):
                    return
            except DBAPIError:
                if self.config.once:
                    raise
                log.exception(
                    "outbox database unavailable; retrying in %.1fs", self.config.poll_interval
                )
                self.stop.wait(self.config.poll_interval)

    def _step(self, client, pool: ThreadPoolExecutor, inflight: dict) -> bool:  # type: ignore[no-untyped-def]
        """One round: reap, record and top up in one transaction, wait; False once drained."""
        self._run_periodic()
        if time.monotonic() - self._last_reap >= REAP_EVERY_SECONDS:
            self._reap()
            self._last_reap = time.monotonic()
        batch = self.config.concurrency  # claimed ahead, so no sender waits on the database
        free = self.config.concurrency + batch - len(inflight)
        top_up = free >= batch or not inflight
        if top_up or self._record_due(inflight):
            for job in self._exchange(free if top_up else 0):
                future = pool.submit(self._send, client, job)
                inflight[future] = job
                future.add_done_callback(self._done.put)
        if not inflight:
            if self._finished:
                return True
            if self.config.once:
                return False
            self.stop.wait(self.config.poll_interval)
            return True
        timeout = RECORD_AFTER_SECONDS if self._finished else self.config.poll_interval
        try:
            done = [self._done.get(timeout=timeout)]
        except queue.Empty:
            return True
        while not self._done.empty():
            done.append(self._done.get_nowait())
        if not self._finished:
            self._finished_at = time.monotonic()
        self._finished += [(inflight.pop(f), f.result()) for f in done]
        return True

    def _record_due(self, inflight: dict) -> bool:  # type: ignore[type-arg]
        """Outcomes wait to be recorded together: a round's worth, or a tenth of a second."""
        return bool(self._finished) and (
            not inflight
            or len(self._finished) >= self.config.concurrency
            or time.monotonic() - self._finished_at >= RECORD_AFTER_SECONDS
        )

    def _run_periodic(self) -> None:
        """Due jobs run here, in the loop's thread; a failing job is logged and tried next time."""
        for job in self.periodic:
            if time.monotonic() < job.next_at:
                continue
            job.next_at = time.monotonic() + job.every_seconds
            try:
                job.run()
            except Exception:
                log.exception("periodic job %s failed", job.name)
            else:
                metrics.record_job_success(job=job.name, at=self.clock.now())

    def _flush_finished(self) -> None:
        if self._finished:
            self._exchange(0)

    def _send(self, client, job: delivery.Job) -> outbox.Settlement:  # type: ignore[no-untyped-def]
        try:
            result = delivery.attempt(client, job, now=self.clock.now())
        except (
            Exception
        ) as exc:  # a bug must cost one attempt, not the worker (and its other leases)
            log.exception("delivery attempt crashed", extra={"outbox_id": str(job.outbox_id)})
            result = retry.Attempt(
                None, "INTERNAL_ERROR", f"attempt failed inside driftwarden ({type(exc).__name__})"
            )
        return delivery.conclude(job, result, settings=self.settings, now=self.clock.now())

    def _reap(self) -> None:
        with self.session_factory() as session:
            self.stats.reaped += outbox.reap_expired_leases(session, now=self.clock.now())
            session.commit()

    def _exchange(self, limit: int) -> list[delivery.Job]:
        """Record what finished and claim up to `limit` more: two statements, one commit.

        On a database error nothing is lost: the outcomes stay here to be recorded next round.
        """
        finished = self._finished
        with self.session_factory() as session:
            now = self.clock.now()
            if finished:
                jobs, settlements = [j for j, _ in finished], [s for _, s in finished]
                delivery.record(session, jobs, settlements, now=now)
            claimed = []
            if limit > 0:
                rows = outbox.claim(
                    session, now=now, limit=limit, lease_seconds=self.config.lease_seconds
                )
                claimed = delivery.jobs_for(session, rows, settings=self.settings, now=now)
            session.commit()
        self._finished = []
        self._count([s for _, s in finished])
        return claimed

    def _count(self, settlements: Sequence[outbox.Settlement]) -> None:
        self.stats.attempted += len(settlements)
        self.stats.sent += sum(s.status == "sent" for s in settlements)
        self.stats.retrying += sum(s.status == "pending" for s in settlements)
        self.stats.dead += sum(s.status == "dead" for s in settlements)

    def _shutdown(self, pool: ThreadPoolExecutor, inflight: dict) -> None:  # type: ignore[no-untyped-def]
        """Let in-flight attempts finish within the grace period; hand back what is still held."""
        if inflight:
            done, _ = wait(list(inflight), timeout=self.config.shutdown_grace)
            self._finished += [(inflight.pop(f), f.result()) for f in done]
        try:
            self._flush_finished()
            held = [(job.outbox_id, job.attempt_count) for job in inflight.values()]
            if held:
                with self.session_factory() as session:
                    outbox.release(session, held, now=self.clock.now())
                    session.commit()
                self.stats.released += len(held)
        except DBAPIError:  # the leases lapse on their own; another drainer will pick the rows up
            log.exception("could not record or release held messages on shutdown")
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
