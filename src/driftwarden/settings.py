"""The one configuration object, read from the environment once at start-up."""

from __future__ import annotations

import base64
import binascii
from functools import lru_cache
from typing import Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_RETRY_SCHEDULE = "5,300,1800,7200,18000,36000,36000"


def validate_whsec(value: str, *, variable: str) -> str:
    """Refuse a signing secret that is not `whsec_` + base64 of 24-64 bytes."""
    if not value.startswith("whsec_"):
        raise ValueError(f"{variable} must start with 'whsec_'")
    try:
        raw = base64.b64decode(value[len("whsec_") :], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"{variable} is not valid base64 after 'whsec_'") from exc
    if not 24 <= len(raw) <= 64:
        raise ValueError(f"{variable} must encode 24 to 64 bytes, got {len(raw)}")
    return value


class Settings(BaseSettings):
    """Server settings; every field maps to one environment variable."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", populate_by_name=True)

    database_url: str = Field(
        default="sqlite:///./driftwarden.db",
        validation_alias=AliasChoices("DATABASE_URL", "SUPABASE_DB_URL"),
        description="postgresql://… for Postgres/Supabase, sqlite:///path.db for the embedded default.",
    )
    db_pool_size: int = Field(default=5, ge=1, le=100, validation_alias="DB_POOL_SIZE",
                              description="Connections kept per process (Postgres).")
    db_max_overflow: int = Field(default=5, ge=0, le=100, validation_alias="DB_MAX_OVERFLOW",
                                 description="Extra connections a process may open under load (Postgres).")
    db_pool_timeout_seconds: float = Field(default=10.0, gt=0, validation_alias="DB_POOL_TIMEOUT_SECONDS",
                                           description="How long a request waits for a pooled connection.")
    notify_webhook_url: str | None = Field(default=None, validation_alias="NOTIFY_WEBHOOK_URL",
                                           description="Default webhook destination for every org.")
    notify_webhook_events: str = Field(default="", validation_alias="NOTIFY_WEBHOOK_EVENTS",
                                       description="Comma-separated event types for the default destination; empty = all.")
    notify_webhook_secret: str | None = Field(default=None, validation_alias="NOTIFY_WEBHOOK_SECRET",
                                              description="whsec_ signing secret for the default destination; unset = unsigned.")
    notify_webhook_format: Literal["json", "slack"] | None = Field(
        default=None, validation_alias="NOTIFY_WEBHOOK_FORMAT",
        description="json or slack; default slack for hooks.slack.com URLs, else json.")
    notify_webhook_signature_tolerance_seconds: int = Field(
        default=300, ge=1, validation_alias="NOTIFY_WEBHOOK_SIGNATURE_TOLERANCE_SECONDS",
        description="Receiver replay window used by the verify helper.")
    notify_webhook_timeout_seconds: float = Field(default=15.0, gt=0, le=300,
                                                  validation_alias="NOTIFY_WEBHOOK_TIMEOUT_SECONDS",
                                                  description="Timeout of one delivery attempt.")
    notify_retry_schedule: str = Field(default=DEFAULT_RETRY_SCHEDULE, validation_alias="NOTIFY_RETRY_SCHEDULE",
                                       description="Seconds between delivery attempts, comma-separated.")
    idempotency_ttl_hours: float = Field(default=24.0, gt=0, validation_alias="IDEMPOTENCY_TTL_HOURS",
                                         description="How long an idempotency record is kept.")
    idempotency_lease_seconds: float = Field(default=300.0, gt=0, validation_alias="IDEMPOTENCY_LEASE_SECONDS",
                                             description="After this, a key whose request crashed is released.")
    max_request_bytes: int = Field(default=64 * 1024 * 1024, ge=1024, validation_alias="MAX_REQUEST_BYTES",
                                   description="Largest request body accepted (bulk imports are the big ones).")
    log_level: str = Field(default="INFO", validation_alias="LOG_LEVEL", description="Python log level.")

    @field_validator("database_url")
    @classmethod
    def _normalise_db_url(cls, value: str) -> str:
        value = value.strip()
        if value.startswith("postgres://"):
            value = "postgresql://" + value[len("postgres://") :]
        if value.startswith("postgresql://"):
            value = "postgresql+psycopg://" + value[len("postgresql://") :]
        if not (value.startswith("postgresql+psycopg://") or value.startswith("sqlite:")):
            raise ValueError("DATABASE_URL/SUPABASE_DB_URL must be postgresql://… or sqlite:///…")
        return value

    @field_validator("notify_webhook_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("NOTIFY_WEBHOOK_URL must be an http(s) URL")
        return value

    @field_validator("notify_webhook_secret")
    @classmethod
    def _check_secret(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        return validate_whsec(value, variable="NOTIFY_WEBHOOK_SECRET")

    @field_validator("notify_retry_schedule")
    @classmethod
    def _check_schedule(cls, value: str) -> str:
        try:
            delays = [float(part) for part in value.split(",") if part.strip()]
        except ValueError as exc:
            raise ValueError("NOTIFY_RETRY_SCHEDULE must be comma-separated seconds") from exc
        if not delays or any(d < 0 for d in delays):
            raise ValueError("NOTIFY_RETRY_SCHEDULE needs at least one non-negative delay")
        return value

    @model_validator(mode="after")
    def _default_format(self) -> "Settings":
        if self.notify_webhook_format is None and self.notify_webhook_url:
            host = urlsplit(self.notify_webhook_url).hostname or ""
            self.notify_webhook_format = "slack" if host == "hooks.slack.com" else "json"
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def retry_delays(self) -> list[float]:
        """Delays between attempts; attempts = len + 1."""
        return [float(p) for p in self.notify_retry_schedule.split(",") if p.strip()]

    @property
    def webhook_event_filter(self) -> list[str]:
        return [e.strip() for e in self.notify_webhook_events.split(",") if e.strip()]


@lru_cache
def get_settings() -> Settings:
    return Settings()
