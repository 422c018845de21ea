"""One scrape: authorization, the registry (in-process or multiprocess files) and the text format.

Multiprocess mode is on when PROMETHEUS_MULTIPROC_DIR was set before prometheus-client was first
imported; `serve` calls `prepare_multiprocess_dir()` before uvicorn starts its workers, so each
worker imports it with the directory set (docs/reference/operations.md, metrics).
"""

from __future__ import annotations

import hmac
import os
import re
import tempfile
import time
from datetime import datetime
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    CollectorRegistry,
    generate_latest,
    multiprocess,
    values,
)
from sqlalchemy.orm import Session

from driftwarden.auth import keys
from driftwarden.metrics import events, state
from driftwarden.settings import Settings

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_FILE = re.compile(r"^(?P<kind>[a-z_]+)_(?P<pid>\d+)\.db$")


def multiprocess_dir() -> str | None:
    """The directory this process writes its values to, or None when it counts in memory."""
    if values.ValueClass is values.MutexValue:
        return None
    return os.environ.get(MULTIPROC_ENV)


def prepare_multiprocess_dir() -> Path:
    """Before workers start: use (or make) the directory and empty what a previous run left."""
    path = Path(os.environ.get(MULTIPROC_ENV) or tempfile.mkdtemp(prefix="driftwarden-metrics-"))
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()
    os.environ[MULTIPROC_ENV] = str(path)
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def forget_dead_workers(directory: str) -> list[int]:
    """Drop the live-only gauges of exited workers; their counters stay (they never go down)."""
    dead = {
        int(m["pid"])
        for f in os.listdir(directory)
        if (m := _FILE.match(f)) and not _alive(int(m["pid"]))
    }
    for pid in sorted(dead):
        multiprocess.mark_process_dead(pid, directory)
    return sorted(dead)


class _Families:
    """A collector handing out families computed elsewhere (the state snapshot)."""

    def __init__(self, families: list) -> None:  # type: ignore[type-arg]
        self._families = families

    def collect(self):  # type: ignore[no-untyped-def]
        return iter(self._families)


def render(snapshot: state.Snapshot, *, org_labels: bool) -> tuple[bytes, str]:
    """The text exposition: this host's event metrics plus the database state."""
    events.mark_build()
    registry = CollectorRegistry(auto_describe=False)
    directory = multiprocess_dir()
    if directory:
        forget_dead_workers(directory)
        multiprocess.MultiProcessCollector(registry, path=directory)
    else:
        registry.register(events.EVENTS)
    registry.register(_Families(state.families(snapshot, org_labels=org_labels)))
    return generate_latest(registry), CONTENT_TYPE_PLAIN_0_0_4


def authorized(
    session: Session, *, authorization: str | None, settings: Settings, now: datetime
) -> bool:
    """METRICS_TOKEN when set, or any active admin API key."""
    token = keys.bearer_token(authorization)
    if token is None:
        return False
    expected = settings.metrics_token.get_secret_value() if settings.metrics_token else None
    if expected is not None and hmac.compare_digest(token.encode(), expected.encode()):
        return True
    key = keys.find_active_key(session, token=token, now=now)
    return key is not None and key.role == "admin"


def scrape(
    session: Session,
    *,
    cache: state.StateCache,
    settings: Settings,
    now: datetime,
    authorization: str | None,
) -> tuple[int, bytes, str]:
    """(status, body, content type) of GET /metrics, for the API and the worker's own server."""
    if not authorized(session, authorization=authorization, settings=settings, now=now):
        return (
            401,
            b"unauthorized: send Authorization: Bearer <METRICS_TOKEN or admin API key>\n",
            "text/plain",
        )
    snapshot = cache.get(session, now=now, monotonic=time.monotonic())
    body, content_type = render(snapshot, org_labels=settings.metrics_org_labels)
    return 200, body, content_type
