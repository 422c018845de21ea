"""Notification bodies: what a client sends apart from what it reads back."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator

from driftwarden.notifications.formats import EVENT_TYPES, WebhookFormat
from driftwarden.schemas import Boolean, Integer, ReadModel

EventType = Literal[
    "contract_drift.patterns_promoted",
    "contract_drift.trigger_anomaly",
    "contract_drift.schedule_missed",
    "contract_drift.schedule_recovered",
    "contract_drift.schedule_disabled_triggered",
    "issue_pattern.status_changed",
    "webhook.test",
]
OutboxStatus = Literal["pending", "sending", "sent", "dead"]
assert set(EventType.__args__) == set(EVENT_TYPES)  # type: ignore[attr-defined]


def _http_url(value: str) -> str:
    """An absolute http(s) URL the webhook client can send to.

    Anything else is refused here (422), not at every delivery.
    """
    try:
        url = httpx.URL(value)
        urlsplit(value).port  # noqa: B018 - raises on a port outside 0-65535
    except (httpx.InvalidURL, ValueError) as exc:
        raise ValueError("url is not a valid URL") from exc
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError("url must be an http(s) URL")
    if url.port == 0:
        raise ValueError("url's port must be 1-65535")
    if not _could_resolve(url.raw_host.decode("ascii")):
        raise ValueError("url's host is not a host name or address")
    return value


def _could_resolve(host: str) -> bool:
    """What no resolver answers: a space or `%` (httpx escapes a space), an empty label, a label
    over 63 characters or a name over 253 (RFC 1035). Anything else, an underscore included (some
    internal names have one), is left to the resolver and the URL policy."""
    if ":" in host:  # an IPv6 literal, parsed by httpx
        return True
    name = host.removesuffix(".")
    labels = name.split(".")
    return "%" not in name and len(name) <= 253 and all(1 <= len(label) <= 63 for label in labels)


class EndpointCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    org_id: uuid.UUID | None = None
    url: str = Field(max_length=2000)
    format: WebhookFormat | None = Field(
        default=None,
        description=(
            "Default: slack for hooks.slack.com URLs, else json (as NOTIFY_WEBHOOK_FORMAT)."
        ),
    )
    event_types: list[EventType] = Field(
        default_factory=list, description="Empty = every event type."
    )
    enabled: Boolean = True
    description: str | None = Field(default=None, max_length=2000)

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        return _http_url(value)


class EndpointUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str | None = Field(default=None, max_length=2000)
    format: WebhookFormat | None = None
    event_types: list[EventType] | None = None
    enabled: Boolean | None = None
    description: str | None = Field(default=None, max_length=2000)

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        return None if value is None else _http_url(value)


class EndpointRead(ReadModel):
    id: uuid.UUID
    org_id: uuid.UUID
    url: str
    format: str
    event_types: list[str]
    enabled: bool
    description: str | None
    disabled_reason: str | None
    secret_fingerprint: str = Field(
        description="The first 12 hex characters of the SHA-256 of the current secret: it tells "
        "secrets apart without revealing any part of one."
    )
    previous_secret_expires_at: datetime | None
    created_at: datetime
    updated_at: datetime


class EndpointWithSecret(EndpointRead):
    secret: str = Field(description="The signing secret; shown only here, on create and on rotate.")


class DeliveryRead(BaseModel):
    outbox_id: uuid.UUID
    message_id: str
    sent: bool
    status_code: int | None
    error: str | None
    attempt_count: int
    destination: str
    endpoint_id: uuid.UUID | None
    status: str
    next_attempt_at: datetime | None


class OutboxRead(ReadModel):
    id: uuid.UUID
    org_id: uuid.UUID | None
    event_type: str
    message_id: str
    destination: str
    endpoint_id: uuid.UUID | None
    url_host: str = Field(
        description="Scheme and host only: a webhook URL's path can carry a token."
    )
    format: str
    status: str
    attempt_count: int
    max_attempts: int
    next_attempt_at: datetime
    lease_expires_at: datetime | None
    last_status_code: int | None
    last_error_code: str | None
    last_error: str | None
    request_id: str | None
    sent_at: datetime | None
    dead_at: datetime | None
    created_at: datetime
    updated_at: datetime


class DrainRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    org_id: uuid.UUID | None = None
    limit: Integer = Field(default=20, ge=1, le=200)


class DrainRead(BaseModel):
    picked: int
    sent: int
    failed: int
    dead: int
    items: list[DeliveryRead]


class Bucket(BaseModel):
    bucket: str
    count: int


class ReasonGroup(BaseModel):
    reason: str
    count: int


class DeadLetterSummary(BaseModel):
    total_dead: int
    oldest_dead_age_seconds: float | None
    reason_groups: list[ReasonGroup]
    age_buckets: list[Bucket]


class ReplayRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    org_id: uuid.UUID | None = None
    event_type: EventType | None = None
    limit: Integer = Field(default=20, ge=1, le=100)
    dry_run: Boolean = False


class ReplayRead(BaseModel):
    selected_count: int
    replayed_count: int
    outbox_ids: list[uuid.UUID]
    dry_run: bool
