"""Schedule watchdog and built-in scheduler benchmark: the every-minute cost over many orgs.

See
docs/reference/scheduler.md#noticing-a-schedule-that-stopped

Creates a private Postgres database (DATABASE_URL or postgresql://postgres@127.0.0.1:5432/postgres),
seeds `--small` (100) and then `--orgs` (10 000) orgs with an enabled hourly policy and `--history`
past hourly executions each (5 % of the orgs stopped three windows ago), then times, with the
statements each issues:

* the first watchdog tick (a watch row per org, the `up` ones recorded in bulk, one alert per
  stopped org: claim, outbox, a delivery attempt that fails fast, escalation);
* the tick after the built-in scheduler ran the stopped orgs' windows (one recovery alert each);
* the steady tick every worker repeats each minute (nothing changed since its last tick: it reads
  only the schedules due by `next_check_at`, with a changed policy or a trigger that can move them);
* the full tick each worker still makes once an hour (nothing changed; no bar);
* the `worker --schedule` job's tick (`run_due_schedules` with the worker's tracker) when every
  window already ran;
* `schedule-status` for one org (its policy schedule plus nine other names with history).

The database is analyzed before the steady ticks, as autovacuum would have done by then (the
planner otherwise guesses at the freshly written watch-state and trigger rows).

Bars: each steady tick at `--orgs` takes <= 5x its time at `--small`, with
the same number of statements at both sizes. Drops its databases.

    .venv/bin/python benchmarks/watchdog.py [--small 100] [--orgs 10000] [--history 100] [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from common import timed
from sqlalchemy import Engine, insert, text

from driftwarden.auth.models import Org
from driftwarden.clock import FrozenClock
from driftwarden.db import scratch
from driftwarden.db.engine import make_engine, make_session_factory
from driftwarden.scheduler import flows as scheduler_flows
from driftwarden.scheduler import policy, status_reads, watchdog, windows
from driftwarden.scheduler import service as scheduler_service
from driftwarden.scheduler.models import DriftPolicy, TriggerRun
from driftwarden.settings import Settings

NOW = datetime(2026, 11, 25, 12, 30, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
TIME_BAR = 5.0


def _runs(org_id: uuid.UUID, name: str, *, history: int, stopped: bool) -> list[dict[str, Any]]:
    """Hourly executions (and a deduped call after each), newest in this window unless stopped."""
    current = windows.window_for(NOW, 60).start - (3 * HOUR if stopped else timedelta())
    rows = []
    for n in range(history):
        start = current - n * HOUR
        key = windows.dedupe_key(
            org_id=org_id,
            schedule_name=name,
            agent_id=None,
            window=windows.Window(start=start, end=start + HOUR, minutes=60),
        )
        for outcome, at in (
            ("executed", start + timedelta(minutes=1)),
            ("deduped", start + timedelta(minutes=2)),
        ):
            rows.append(
                {
                    "id": uuid.uuid4(),
                    "org_id": org_id,
                    "schedule_name": name,
                    "window_minutes": 60,
                    "window_start": start,
                    "window_end": start + HOUR,
                    "agent_id": None,
                    "dedupe_key": key,
                    "outcome": outcome,
                    "dry_run": False,
                    "forced": False,
                    "started_at": at,
                    "finished_at": at,
                }
            )
    return rows


def seed(engine: Engine, *, orgs: int, history: int) -> list[uuid.UUID]:
    org_ids = [uuid.uuid4() for _ in range(orgs)]
    defaults = policy.PolicyFields(
        enabled=True, schedule_name="hourly", schedule_window_minutes=60, alert_enabled=True
    ).model_dump()
    with engine.begin() as conn:
        conn.execute(
            insert(Org),
            [
                {"id": o, "name": f"org {n}", "slug": f"org-{o.hex[:12]}", "created_at": NOW}
                for n, o in enumerate(org_ids)
            ],
        )
        conn.execute(
            insert(DriftPolicy),
            [  # set up yesterday: a policy changed just now is read again by every tick
                {"org_id": o, "created_at": NOW - DAY, "updated_at": NOW - DAY, **defaults}
                for o in org_ids
            ],
        )
        for n, org_id in enumerate(org_ids):
            rows = _runs(org_id, "hourly", history=history, stopped=n % 20 == 0)
            if n == 0:
                rows += [
                    r
                    for k in range(9)
                    for r in _runs(org_id, f"extra-{k}", history=history // 4, stopped=False)
                ]
            conn.execute(insert(TriggerRun), rows)
    return org_ids


def median_of(engine: Engine, work: Callable[[], Any], runs: int) -> tuple[float, int]:
    samples = [timed(engine, work) for _ in range(runs)]
    return statistics.median(s[0] for s in samples), samples[-1][1]


def measure(engine: Engine, *, runs: int, org_id: uuid.UUID) -> dict[str, tuple[float, int]]:
    factory = make_session_factory(engine)
    settings = Settings(
        DATABASE_URL=str(engine.url),
        NOTIFY_WEBHOOK_URL="http://127.0.0.1:9/unreachable",
        NOTIFY_WEBHOOK_TIMEOUT_SECONDS=1,
    )
    clock = FrozenClock(NOW)

    tracker = scheduler_service.DueTracker()

    def autorun() -> int:
        """The `worker --schedule` job's tick: every window already ran, so nothing is due."""
        report = scheduler_flows.run_due_schedules(
            factory, settings=settings, clock=clock, delay=lambda *_: 0.0, tracker=tracker
        )
        return report.due

    def status() -> int:
        with factory() as session:
            org_policy = policy.effective_policy(session, org_id=org_id)
            return len(
                status_reads.schedule_statuses(session, org_id=org_id, policy=org_policy, now=NOW)
            )

    watcher = watchdog.WatchTracker()

    def watch() -> watchdog.WatchReport:
        """The worker's watchdog tick, with its tracker: the first one reads every schedule."""
        return watchdog.tick(factory, settings=settings, clock=clock, tracker=watcher)

    first = timed(engine, watch)
    print(
        f"first tick: {len(first[2].alerts)} missed alerts ({first[2].quiet} quiet changes, "
        f"{first[2].checked} schedules checked)"
    )
    # The scheduler's first tick reads every policy and runs the stopped orgs' windows; the
    # watchdog's next tick sees them recover. The steady ticks of both are timed after that.
    print(f"scheduler's first tick: {autorun()} due")
    recovery = timed(engine, watch)
    print(
        f"recovery tick: {len(recovery[2].alerts)} recovered alerts, "
        f"{recovery[2].checked} schedules checked"
    )
    with engine.begin() as conn:  # as autovacuum would have by now: the planner sees these rows
        conn.execute(text("ANALYZE"))
    steady = median_of(engine, watch, runs)
    print(f"steady tick: {watch().checked} schedules checked")
    return {
        "first tick": first[:2],
        "recovery tick": recovery[:2],
        "steady tick": steady,
        "full tick (hourly, no change)": median_of(
            engine, lambda: watchdog.tick(factory, settings=settings, clock=clock), runs
        ),
        "schedule_autorun tick": median_of(engine, autorun, runs),
        "schedule-status (10 names)": median_of(engine, status, runs),
    }


def _verdict(name: str, ratio: float, small: int, large: int) -> str:
    """The bars for the steady ticks: <= 5x the time, the same statements at both sizes."""
    if name not in ("steady tick", "schedule_autorun tick"):
        return ""
    met = ratio <= TIME_BAR and small == large
    return f"   bar <= {TIME_BAR:.0f}x, equal statements: {'met' if met else 'NOT met'}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--orgs", type=int, default=10000)
    parser.add_argument("--history", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    results = {}
    for orgs in (args.small, args.orgs):
        url = scratch.create_database("dw_bench_watchdog")
        try:
            engine = make_engine(Settings(DATABASE_URL=url))
            started = time.perf_counter()
            org_ids = seed(engine, orgs=orgs, history=args.history)
            print(
                f"seeded {orgs} orgs x {args.history} hourly windows "
                f"({orgs * args.history * 2} trigger rows) "
                f"in {time.perf_counter() - started:.1f}s"
            )
            results[orgs] = measure(engine, runs=args.runs, org_id=org_ids[0])
            engine.dispose()
        finally:
            scratch.drop_database(url)
    small, large = results[args.small], results[args.orgs]
    print(
        f"\n{'':32} {args.small:>8} orgs {'':>6} {args.orgs:>8} orgs   time ratio  statements ratio"
    )
    for name in large:
        (t1, s1), (t2, s2) = small[name], large[name]
        print(
            f"{name:32} {t1 * 1000:8.1f} ms {s1:5d} st {t2 * 1000:8.1f} ms {s2:5d} st "
            f"{t2 / t1:10.2f} {s2 / max(s1, 1):10.2f}{_verdict(name, t2 / t1, s1, s2)}"
        )
    print(f"\nload average: {os.getloadavg()[0]:.1f} (2 shared cores; figures are noisy)")


if __name__ == "__main__":
    main()
