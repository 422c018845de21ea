"""Script fixtures: the scheduler's receiver-backed settings, drift, and a live API on 127.0.0.1."""

from __future__ import annotations

from tests.scheduler.conftest import _shared_receiver, receiver, settings  # noqa: F401  (same fixtures as the scheduler tests)
