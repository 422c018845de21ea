"""Metrics fixtures: the scheduler's webhook receiver as destination, a token, no cache."""

from __future__ import annotations

import pytest

from driftwarden.settings import Settings
from tests.metrics.helpers import TOKEN
from tests.scheduler.conftest import _shared_receiver, receiver  # noqa: F401 - shared fixtures
from tests.support import WebhookReceiver


@pytest.fixture
def settings(database_url: str, receiver: WebhookReceiver) -> Settings:  # noqa: F811 - the fixture
    return Settings(
        DATABASE_URL=database_url,
        NOTIFY_RETRY_SCHEDULE="1,2,3",
        NOTIFY_WEBHOOK_URL=receiver.url,
        NOTIFY_WEBHOOK_TIMEOUT_SECONDS=5,
        METRICS_TOKEN=TOKEN,
        METRICS_CACHE_SECONDS=0,
    )
