"""Event counters and histograms, counted where things happen.

See docs/reference/operations.md (metrics).

Under `serve --workers N` prometheus-client's multiprocess mode (PROMETHEUS_MULTIPROC_DIR) keeps
each worker's values in a file, so one scrape reports the sum of the workers.
"""

from __future__ import annotations

from datetime import datetime

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)

from driftwarden import __version__

# Only the reference's names: no `_created` series beside each counter.
disable_created_metrics()
# Our own registry: the exposition decides whether to read it or the multiprocess files.
EVENTS = CollectorRegistry(auto_describe=True)
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED_ROUTE = "<unmatched>"

TRIGGER_RUNS = Counter(
    "driftwarden_trigger_runs",
    "Triggers recorded, by outcome (dry runs as dry_run).",
    ["outcome"],
    registry=EVENTS,
)
NOTIFY_EVENTS = Counter(
    "driftwarden_notify_events", "Notify events recorded, by outcome.", ["outcome"], registry=EVENTS
)
DELIVERIES = Counter(
    "driftwarden_deliveries",
    "Webhook delivery attempts, by result: sent|failed|dead|gone.",
    ["result"],
    registry=EVENTS,
)
DELIVERY_DURATION = Histogram(
    "driftwarden_delivery_duration_seconds", "Duration of one webhook attempt.", registry=EVENTS
)
HTTP_REQUESTS = Counter(
    "driftwarden_http_requests",
    "HTTP requests, by method, route template and status.",
    ["method", "route", "status"],
    registry=EVENTS,
)
HTTP_DURATION = Histogram(
    "driftwarden_http_request_duration_seconds",
    "Time to the response's first byte, by method and route template.",
    ["method", "route"],
    registry=EVENTS,
)
# "max": a dead worker's last success stays visible (and ages), rather than vanishing.
JOB_LAST_SUCCESS = Gauge(
    "driftwarden_worker_job_last_success_timestamp_seconds",
    "Unix time of each worker job's last successful run.",
    ["job"],
    multiprocess_mode="max",
    registry=EVENTS,
)
# "livemax": one series per version among live processes; dead workers' files are cleaned up.
BUILD_INFO = Gauge(
    "driftwarden_build_info",
    "Always 1, labelled with the running version.",
    ["version"],
    multiprocess_mode="livemax",
    registry=EVENTS,
)


def mark_build() -> None:
    """Publish this process's version (called once per process by the exposition and the app)."""
    BUILD_INFO.labels(version=__version__).set(1)


def record_trigger(*, outcome: str, dry_run: bool) -> None:
    """One settled trigger (docs/reference/scheduler.md, trigger)."""
    TRIGGER_RUNS.labels(outcome="dry_run" if dry_run else outcome).inc()


def record_notify(*, outcome: str) -> None:
    """One notify event: sent, failed, suppressed, skipped or dry_run."""
    NOTIFY_EVENTS.labels(outcome=outcome).inc()


def delivery_result(*, status: str, error_code: str | None) -> str:
    """The `result` label of one attempt: from the row's new status and the error code."""
    if status == "sent":
        return "sent"
    if error_code == "GONE":
        return "gone"
    return "dead" if status == "dead" else "failed"


def record_delivery(*, status: str, error_code: str | None, duration_seconds: float | None) -> None:
    """One webhook attempt; `duration_seconds` is None when nothing was sent (a blocked row)."""
    DELIVERIES.labels(result=delivery_result(status=status, error_code=error_code)).inc()
    if duration_seconds is not None:
        DELIVERY_DURATION.observe(duration_seconds)


def record_request(*, method: str, route: str, status: int, duration_seconds: float) -> None:
    """One HTTP response; `route` must be a template (bounded), never the raw path."""
    method = method if method in HTTP_METHODS else "OTHER"
    HTTP_REQUESTS.labels(method=method, route=route, status=str(status)).inc()
    HTTP_DURATION.labels(method=method, route=route).observe(duration_seconds)


def record_job_success(*, job: str, at: datetime) -> None:
    """A worker job finished without error at `at`."""
    JOB_LAST_SUCCESS.labels(job=job).set(at.timestamp())
