"""How the schedule client retries: network errors, 5xx and 429 with backoff or Retry-After, and
a 409 IDEMPOTENCY_IN_PROGRESS after its Retry-After, within MAX_RETRIES and RETRY_MAX_SECONDS."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Protocol

import httpx
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    retry_if_result,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
)

RETRY_STATUSES = frozenset({429}) | frozenset(range(500, 600))
IN_PROGRESS_WAIT_SECONDS = 5.0  # a 409 IDEMPOTENCY_IN_PROGRESS without Retry-After


class Budget(Protocol):
    """The bounds of a run's retries (a RunConfig)."""

    max_retries: int
    retry_max_seconds: float


def _error_code(response: httpx.Response) -> str | None:
    try:
        return (response.json().get("error") or {}).get("code")
    except (ValueError, AttributeError):
        return None


def _retry_status(response: httpx.Response) -> bool:
    """5xx and 429, and a 409 whose first request with this key is still running."""
    if response.status_code == 409:
        return _error_code(response) == "IDEMPOTENCY_IN_PROGRESS"
    return response.status_code in RETRY_STATUSES


def _last(state: RetryCallState) -> Any:
    """After the last attempt: the last response, or the last network error re-raised."""
    return state.outcome.result() if state.outcome else None  # type: ignore[union-attr]


def _waiter(config: Budget) -> Callable[[RetryCallState], float]:
    """The server's Retry-After (a 409 without one: 5 s; else backoff), within the budget."""
    backoff = wait_exponential(multiplier=1, max=30)

    def wait(state: RetryCallState) -> float:
        outcome = state.outcome
        response = None if outcome is None or outcome.failed else outcome.result()
        hinted: float | None = None
        if isinstance(response, httpx.Response):
            header = response.headers.get("retry-after", "")
            if re.fullmatch(r"[0-9]{1,6}", header):
                hinted = float(header)
            elif response.status_code == 409:
                hinted = IN_PROGRESS_WAIT_SECONDS
        if hinted is None:
            return backoff(state)
        left = config.retry_max_seconds - (state.seconds_since_start or 0.0)
        return max(0.0, min(hinted, left))

    return wait


def retrying(config: Budget, sleep: Callable[[float], None]) -> Retrying:
    return Retrying(
        retry=retry_if_exception_type(httpx.TransportError) | retry_if_result(_retry_status),
        stop=(
            stop_after_attempt(config.max_retries + 1) | stop_after_delay(config.retry_max_seconds)
        ),
        wait=_waiter(config),
        retry_error_callback=_last,
        sleep=sleep,
    )
