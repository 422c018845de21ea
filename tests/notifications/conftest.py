"""Notification fixtures: a clock at real time, a receiver.

The clock is at real time because signatures are checked against the wall clock.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from driftwarden.clock import FrozenClock
from driftwarden.settings import Settings
from tests.support import WebhookReceiver

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture
def clock() -> FrozenClock:
    """Frozen, but at the real time.

    The standardwebhooks verifier's 5-minute window then accepts it.
    """
    return FrozenClock(datetime.now(UTC).replace(microsecond=0))


def fast_receiver(**kwargs: object) -> WebhookReceiver:
    """A WebhookReceiver that accepts bursts and shuts down in 50 ms.

    serve_forever polls every 0.5 s by default.
    """
    hook = WebhookReceiver(**kwargs)  # type: ignore[arg-type]
    hook.httpd.socket.listen(
        256
    )  # socketserver's backlog of 5 drops connections from concurrent drainers
    hook.thread = threading.Thread(
        target=hook.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    return hook


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with fast_receiver() as hook:
        yield hook


@pytest.fixture
def settings(database_url: str, receiver: WebhookReceiver) -> Settings:
    """The env default destination points at the local receiver, signed; retries 1,2,3 s.

    Per-org endpoints at local receivers (127.0.0.1) need private networks allowed.
    """
    return Settings(
        DATABASE_URL=database_url,
        NOTIFY_RETRY_SCHEDULE="1,2,3",
        NOTIFY_WEBHOOK_URL=receiver.url,
        NOTIFY_WEBHOOK_SECRET=SECRET,
        NOTIFY_WEBHOOK_TIMEOUT_SECONDS=1,
        NOTIFY_ALLOW_PRIVATE_NETWORKS=True,
    )
