"""Metrics fixtures: a token, no state cache, a webhook receiver as the destination."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from driftwarden.settings import Settings
from tests.metrics.helpers import TOKEN
from tests.support import WebhookReceiver


@pytest.fixture(scope="session")
def _receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as hook:
        yield hook


@pytest.fixture
def receiver(_receiver: WebhookReceiver) -> WebhookReceiver:
    _receiver.received.clear()
    _receiver.responses.clear()
    _receiver.default = (200, {}, 0.0)
    return _receiver


@pytest.fixture
def settings(database_url: str, receiver: WebhookReceiver) -> Settings:
    return Settings(
        DATABASE_URL=database_url,
        NOTIFY_RETRY_SCHEDULE="1,2,3",
        NOTIFY_WEBHOOK_URL=receiver.url,
        NOTIFY_WEBHOOK_TIMEOUT_SECONDS=5,
        METRICS_TOKEN=TOKEN,
        METRICS_CACHE_SECONDS=0,
    )
