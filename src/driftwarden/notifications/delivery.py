"""Delivery: one signed HTTP attempt per claimed row, its outcome recorded, retries scheduled."""

from __future__ import annotations

import contextvars
import json
import logging
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import Row, select, update
from sqlalchemy.orm import Session

from driftwarden.clock import Clock
from driftwarden.metrics import events as metrics
from driftwarden.notifications import outbox, retry, signing, transport, urlpolicy
from driftwarden.notifications.models import NotificationEndpoint
from driftwarden.settings import Settings

log = logging.getLogger("driftwarden.notifications")

DEFAULT_LEASE_SECONDS = 60.0
USER_AGENT = "driftwarden-webhooks/1"
MAX_DISCARDED_BODY_BYTES = 64 * 1024


@dataclass(frozen=True)
class Job:
    """A claimed row, detached from its session, with what sending it needs."""

    outbox_id: uuid.UUID
    message_id: str
    org_id: uuid.UUID | None
    event_type: str
    destination: str
    endpoint_id: uuid.UUID | None
    url: str
    body: bytes
    attempt_count: int
    max_attempts: int
    signing_secrets: tuple[str, ...]
    blocked: str | None = None  # why it must not be sent (endpoint gone or disabled)


@dataclass(frozen=True)
class DeliveryResult:
    outbox_id: uuid.UUID
    message_id: str
    sent: bool
    status_code: int | None
    error: str | None
    attempt_count: int
    destination: str
    endpoint_id: uuid.UUID | None = None
    status: str = "pending"
    next_attempt_at: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "outbox_id": str(self.outbox_id),
            "message_id": self.message_id,
            "sent": self.sent,
            "status_code": self.status_code,
            "error": self.error,
            "attempt_count": self.attempt_count,
            "destination": self.destination,
            "endpoint_id": self.endpoint_id and str(self.endpoint_id),
            "status": self.status,
            "next_attempt_at": self.next_attempt_at
            and self.next_attempt_at.isoformat().replace("+00:00", "Z"),
        }


def jobs_for(
    session: Session, rows: Sequence[Row[Any]], *, settings: Settings, now: datetime
) -> list[Job]:
    """Attach signing secrets.

    The env secret, or the endpoint's (plus the previous one during rotation).
    """
    endpoint_ids = {r.endpoint_id for r in rows if r.endpoint_id is not None}
    endpoints = (
        {
            e.id: e
            for e in session.scalars(
                select(NotificationEndpoint).where(NotificationEndpoint.id.in_(endpoint_ids))
            )
        }
        if endpoint_ids
        else {}
    )
    jobs = []
    for row in rows:
        url, found, blocked = row.url, (), None
        if row.destination == outbox.ENV:
            url = settings.webhook_url or row.url
            found = (settings.webhook_secret,) if settings.webhook_secret else ()
        else:
            endpoint = endpoints.get(row.endpoint_id)  # type: ignore[arg-type]
            if endpoint is None:
                blocked = "ENDPOINT_DELETED"
            else:
                url, found = endpoint.url, _endpoint_secrets(endpoint, now)
                blocked = None if endpoint.enabled else "ENDPOINT_DISABLED"
        jobs.append(
            Job(
                row.id,
                row.message_id,
                row.org_id,
                row.event_type,
                row.destination,
                row.endpoint_id,
                url,
                bytes(row.body),
                row.attempt_count,
                row.max_attempts,
                found,
                blocked,
            )
        )
    return jobs


def _endpoint_secrets(endpoint: NotificationEndpoint, now: datetime) -> tuple[str, ...]:
    overlap = (
        endpoint.previous_secret
        and endpoint.previous_secret_expires_at
        and endpoint.previous_secret_expires_at > now
    )
    return (endpoint.secret, endpoint.previous_secret) if overlap else (endpoint.secret,)  # type: ignore[return-value]


def make_client(
    settings: Settings,
    *,
    max_connections: int = 20,
    resolve: urlpolicy.Resolver = urlpolicy.system_resolver,
) -> httpx.Client:
    """One pooled client per drainer; redirects are failures, never followed.

    Per-org endpoints go through the URL policy's checked transport; only requests marked
    trusted (the operator's NOTIFY_WEBHOOK_URL) go direct.
    """
    limits = httpx.Limits(
        max_connections=max_connections, max_keepalive_connections=max_connections
    )
    ssl_context = httpx.create_ssl_context()  # loading the CA bundle is slow: once, for both
    checked = transport.CheckedTransport(
        allow_private=settings.notify_allow_private_networks,
        limits=limits,
        ssl_context=ssl_context,
        resolve=resolve,
    )
    trusted = httpx.HTTPTransport(verify=ssl_context, limits=limits)
    routing = transport.RoutingTransport(checked=checked, trusted=trusted)
    return httpx.Client(
        timeout=settings.notify_webhook_timeout_seconds,
        follow_redirects=False,
        transport=routing,
        headers={"user-agent": USER_AGENT},
    )


def attempt(client: httpx.Client, job: Job, *, now: datetime) -> retry.Attempt:
    """POST the stored bytes once, signed for this attempt's timestamp."""
    if job.blocked:
        return retry.Attempt(
            None, job.blocked, f"not sent: {job.blocked.lower().replace('_', ' ')}"
        )
    headers = {
        "content-type": "application/json",
        **signing.signature_headers(
            message_id=job.message_id, body=job.body, at=now, signing_secrets=job.signing_secrets
        ),
    }
    started = time.perf_counter()
    try:
        trusted = {transport.TRUSTED: True} if job.destination == outbox.ENV else {}
        with client.stream(
            "POST", job.url, content=job.body, headers=headers, extensions=trusted
        ) as response:
            code, retry_after = response.status_code, response.headers.get("retry-after")
            _discard_body(response, until=started + (client.timeout.read or 0.0))
    except urlpolicy.ForbiddenAddress:  # checked before any connection: nothing was dialled
        return retry.Attempt(
            None,
            "URL_FORBIDDEN",
            "not sent: the URL's host resolves to an address webhooks may not be sent to",
            None,
            _ms(started),
        )
    except httpx.TimeoutException:
        return retry.Attempt(None, "TIMEOUT", "timed out", None, _ms(started))
    except httpx.HTTPError:  # one text for refused, reset and not-HTTP: no port-scanner answers
        return retry.Attempt(None, "CONNECTION_ERROR", "connection failed", None, _ms(started))
    except httpx.InvalidURL:  # not an HTTPError: without this, deliver_now's caller would get a 500
        return retry.Attempt(
            None, "INVALID_URL", "the destination URL cannot be sent to", None, _ms(started)
        )
    if 200 <= code < 300:
        return retry.Attempt(code, duration_ms=_ms(started))
    error_code = "GONE" if code == 410 else f"HTTP_{code}"
    return retry.Attempt(
        code,
        error_code,
        f"receiver answered {code}",
        retry.parse_retry_after(retry_after, now=now),
        _ms(started),
    )


def _discard_body(response: httpx.Response, *, until: float) -> None:
    """The status decides the outcome; a small answer is read only so the connection can be reused.

    A slow or endless body must not turn a received 2xx into a timeout (and a duplicate delivery),
    nor hold the attempt past its deadline, nor fill memory: stop at the deadline or the size cap.
    """
    read = 0
    try:
        for chunk in response.iter_raw():
            read += len(chunk)
            if read > MAX_DISCARDED_BODY_BYTES or time.perf_counter() >= until:
                return
    except httpx.HTTPError:
        return


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


def conclude(
    job: Job, result: retry.Attempt, *, settings: Settings, now: datetime
) -> outbox.Settlement:
    """Turn an attempt into the row's new state; a blocked row is dead at once."""
    if job.blocked:
        decided = retry.Outcome("dead", None)
    else:
        decided = retry.decide(
            result,
            attempt_count=job.attempt_count,
            max_attempts=job.max_attempts,
            delays=settings.retry_delays,
            now=now,
        )
    _log_attempt(job, result, decided)
    metrics.record_delivery(
        status=decided.status,
        error_code=result.error_code,
        duration_seconds=None if result.duration_ms is None else result.duration_ms / 1000,
    )
    return outbox.Settlement(
        job.outbox_id,
        job.attempt_count,
        decided.status,
        decided.next_attempt_at,
        result.status_code,
        result.error_code,
        result.error,
    )


def _log_attempt(job: Job, result: retry.Attempt, decided: retry.Outcome) -> None:
    """One structured line per attempt.

    Never the body, the secret, nor the URL's path or credentials.
    """
    if not log.isEnabledFor(logging.INFO):  # skip building the line nobody will read
        return
    log.info(
        json.dumps(
            {
                "event": "webhook_attempt",
                "outbox_id": str(job.outbox_id),
                "message_id": job.message_id,
                "event_type": job.event_type,
                "org_id": job.org_id and str(job.org_id),
                "destination": job.destination,
                "endpoint_id": job.endpoint_id and str(job.endpoint_id),
                "host": outbox.origin(job.url),
                "attempt": job.attempt_count,
                "max_attempts": job.max_attempts,
                "status_code": result.status_code,
                "error_code": result.error_code,
                "duration_ms": result.duration_ms,
                "outcome": decided.status,
                "next_attempt_at": decided.next_attempt_at and decided.next_attempt_at.isoformat(),
            }
        )
    )


def record(
    session: Session,
    jobs: Sequence[Job],
    settlements: Sequence[outbox.Settlement],
    *,
    now: datetime,
) -> None:
    """Store outcomes and disable every per-org endpoint that answered 410 Gone."""
    outbox.settle(session, settlements, now=now)
    gone = {
        j.endpoint_id
        for j, s in zip(jobs, settlements, strict=True)
        if s.error_code == "GONE" and j.endpoint_id
    }
    if gone:
        session.execute(
            update(NotificationEndpoint)
            .where(NotificationEndpoint.id.in_(gone))
            .values(enabled=False, disabled_reason="receiver answered 410 Gone", updated_at=now)
            .execution_options(synchronize_session=False)
        )


def to_result(job: Job, s: outbox.Settlement) -> DeliveryResult:
    """What the caller of `flows.deliver_now` sees; `error` reads "<CODE>: <text>"."""
    error = f"{s.error_code}: {s.error}" if s.error_code and s.error else s.error_code
    return DeliveryResult(
        job.outbox_id,
        job.message_id,
        s.status == "sent",
        s.status_code,
        error,
        job.attempt_count,
        job.destination,
        job.endpoint_id,
        s.status,
        s.next_attempt_at,
    )


def send_all(
    jobs: Sequence[Job], *, client: httpx.Client, settings: Settings, clock: Clock, concurrency: int
) -> list[outbox.Settlement]:
    def one(job: Job) -> outbox.Settlement:
        return conclude(
            job, attempt(client, job, now=clock.now()), settings=settings, now=clock.now()
        )

    if len(jobs) <= 1 or concurrency <= 1:
        return [one(j) for j in jobs]
    # Each thread runs in a copy of the caller's context, so its log lines keep the request id.
    contexts = [contextvars.copy_context() for _ in jobs]
    with ThreadPoolExecutor(
        max_workers=min(concurrency, len(jobs)), thread_name_prefix="dw-deliver"
    ) as pool:
        return list(pool.map(lambda context, job: context.run(one, job), contexts, jobs))


def lease_seconds_for(settings: Settings) -> float:
    """The lease: one attempt plus slack.

    Long enough that a live drainer never loses its lease mid-request.
    """
    return max(DEFAULT_LEASE_SECONDS, settings.notify_webhook_timeout_seconds * 2 + 10)
