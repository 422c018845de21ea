"""The one configuration object, read from the environment once at start-up."""

from __future__ import annotations

import base64
import binascii
from functools import lru_cache
from typing import Literal
from urllib.parse import urlsplit

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
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


def _long_enough(secret: SecretStr | None, minimum: int) -> SecretStr | None:
    """None for unset or empty; refuse a secret shorter than `minimum` characters."""
    if secret is None or not secret.get_secret_value():
        return None
    if len(secret.get_secret_value()) < minimum:
        raise ValueError(f"must be at least {minimum} characters")
    return secret


class Settings(BaseSettings):
    """Server settings; every field maps to one environment variable."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", populate_by_name=True)

    database_url: SecretStr = Field(
        default=SecretStr("sqlite:///./driftwarden.db"),
        validation_alias=AliasChoices("DATABASE_URL", "SUPABASE_DB_URL"),
        description=(
            "postgresql://… for Postgres/Supabase, sqlite:///path.db for the embedded default."
        ),
    )
    db_pool_size: int = Field(
        default=5,
        ge=1,
        le=100,
        validation_alias="DB_POOL_SIZE",
        description="Connections kept per process (Postgres).",
    )
    db_max_overflow: int = Field(
        default=5,
        ge=0,
        le=100,
        validation_alias="DB_MAX_OVERFLOW",
        description="Extra connections a process may open under load (Postgres).",
    )
    db_pool_timeout_seconds: float = Field(
        default=5.0,
        gt=0,
        le=120,
        validation_alias="DB_POOL_TIMEOUT_SECONDS",
        description=(
            "How long a request waits for a pooled connection before 503 SERVICE_OVERLOADED."
        ),
    )
    db_prepare_threshold: int | None = Field(
        default=None,
        ge=0,
        le=1000,
        validation_alias="DB_PREPARE_THRESHOLD",
        description=(
            "Executions of one statement on a connection before psycopg prepares it server-side;"
            " unset = never (required behind a transaction pooler that keeps no prepared"
            " statements, such as Supabase's on port 6543)."
        ),
    )
    notify_webhook_url: SecretStr | None = Field(
        default=None,
        validation_alias="NOTIFY_WEBHOOK_URL",
        description="Default webhook destination for every org.",
    )
    notify_webhook_events: str = Field(
        default="",
        validation_alias="NOTIFY_WEBHOOK_EVENTS",
        description="Comma-separated event types for the default destination; empty = all.",
    )
    notify_webhook_secret: SecretStr | None = Field(
        default=None,
        validation_alias="NOTIFY_WEBHOOK_SECRET",
        description="whsec_ signing secret for the default destination; unset = unsigned.",
    )
    notify_webhook_format: Literal["json", "slack"] | None = Field(
        default=None,
        validation_alias="NOTIFY_WEBHOOK_FORMAT",
        description="json or slack; default slack for hooks.slack.com URLs, else json.",
    )
    notify_webhook_signature_tolerance_seconds: int = Field(
        default=300,
        ge=1,
        validation_alias="NOTIFY_WEBHOOK_SIGNATURE_TOLERANCE_SECONDS",
        description="Receiver replay window used by the verify helper.",
    )
    notify_webhook_timeout_seconds: float = Field(
        default=15.0,
        gt=0,
        le=300,
        validation_alias="NOTIFY_WEBHOOK_TIMEOUT_SECONDS",
        description="Timeout of one delivery attempt.",
    )
    notify_retry_schedule: str = Field(
        default=DEFAULT_RETRY_SCHEDULE,
        validation_alias="NOTIFY_RETRY_SCHEDULE",
        description="Seconds between delivery attempts, comma-separated.",
    )
    idempotency_ttl_hours: float = Field(
        default=24.0,
        gt=0,
        validation_alias="IDEMPOTENCY_TTL_HOURS",
        description="How long an idempotency record is kept.",
    )
    idempotency_lease_seconds: float = Field(
        default=300.0,
        gt=0,
        validation_alias="IDEMPOTENCY_LEASE_SECONDS",
        description="After this, a key whose request crashed is released.",
    )
    notify_allow_private_networks: bool = Field(
        default=False,
        validation_alias="NOTIFY_ALLOW_PRIVATE_NETWORKS",
        description="Let per-org endpoints reach loopback and private ranges (never link-local).",
    )
    max_request_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        validation_alias="MAX_REQUEST_BYTES",
        description="Largest request body accepted, checked while it streams.",
    )
    max_import_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=1024,
        validation_alias="MAX_IMPORT_BYTES",
        description="Largest body of POST /contracts/import, for an authenticated member or above.",
    )
    log_level: str = Field(
        default="INFO", validation_alias="LOG_LEVEL", description="Python log level."
    )
    log_format: Literal["text", "json"] = Field(
        default="text",
        validation_alias="LOG_FORMAT",
        description="text lines, or one JSON object a line.",
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        validation_alias="METRICS_TOKEN",
        description="Bearer token a scraper sends to GET /metrics; admin API keys work too.",
    )
    metrics_cache_seconds: float = Field(
        default=15.0,
        ge=0,
        le=3600,
        validation_alias="METRICS_CACHE_SECONDS",
        description="How long the database-read gauges of /metrics are reused.",
    )
    metrics_org_labels: bool = Field(
        default=True,
        validation_alias="METRICS_ORG_LABELS",
        description="false drops the org_id label (sums over orgs) for installs with many orgs.",
    )
    console_secret_key: SecretStr | None = Field(
        default=None,
        validation_alias="CONSOLE_SECRET_KEY",
        description=(
            "Signs console session cookies (>= 32 characters); "
            "unset: generated once, kept in the database."
        ),
    )
    console_cookie_secure: bool = Field(
        default=False,
        validation_alias="CONSOLE_COOKIE_SECURE",
        description="Mark the console cookie Secure even when the request did not come over https.",
    )
    retention_outbox_sent_days: int = Field(
        default=30,
        ge=0,
        validation_alias="RETENTION_OUTBOX_SENT_DAYS",
        description="Days a sent outbox message is kept; 0 keeps forever.",
    )
    retention_audit_days: int = Field(
        default=90,
        ge=0,
        validation_alias="RETENTION_AUDIT_DAYS",
        description="Days an audit row is kept; 0 keeps forever.",
    )
    retention_notify_events_days: int = Field(
        default=400,
        ge=0,
        validation_alias="RETENTION_NOTIFY_EVENTS_DAYS",
        description="Days a notify event is kept; 0 keeps forever.",
    )
    retention_trigger_runs_days: int = Field(
        default=400,
        ge=0,
        validation_alias="RETENTION_TRIGGER_RUNS_DAYS",
        description=(
            "Days a trigger run is kept "
            "(never under 366, so a 365-day summary stays whole); 0 forever."
        ),
    )

    @field_validator("database_url")
    @classmethod
    def _normalise_db_url(cls, secret: SecretStr) -> SecretStr:
        value = secret.get_secret_value().strip()
        if value.startswith("postgres://"):
            value = "postgresql://" + value[len("postgres://") :]
        if value.startswith("postgresql://"):
            value = "postgresql+psycopg://" + value[len("postgresql://") :]
        if not (value.startswith("postgresql+psycopg://") or value.startswith("sqlite:")):
            raise ValueError("DATABASE_URL/SUPABASE_DB_URL must be postgresql://… or sqlite:///…")
        return SecretStr(value)

    @field_validator("db_prepare_threshold", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("notify_webhook_url")
    @classmethod
    def _check_url(cls, secret: SecretStr | None) -> SecretStr | None:
        value = secret.get_secret_value() if secret is not None else ""
        if not value:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("NOTIFY_WEBHOOK_URL must be an http(s) URL")
        return secret

    @field_validator("notify_webhook_secret")
    @classmethod
    def _check_secret(cls, secret: SecretStr | None) -> SecretStr | None:
        value = secret.get_secret_value() if secret is not None else ""
        if not value:
            return None
        validate_whsec(value, variable="NOTIFY_WEBHOOK_SECRET")
        return secret

    @field_validator("console_secret_key")
    @classmethod
    def _check_console_key(cls, secret: SecretStr | None) -> SecretStr | None:
        return _long_enough(secret, 32)

    @field_validator("metrics_token")
    @classmethod
    def _check_metrics_token(cls, secret: SecretStr | None) -> SecretStr | None:
        return _long_enough(secret, 16)

    @field_validator("retention_trigger_runs_days")
    @classmethod
    def _keep_a_year(cls, value: int) -> int:
        if 0 < value < 366:
            raise ValueError("RETENTION_TRIGGER_RUNS_DAYS must be 0 (keep forever) or at least 366")
        return value

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
    def _default_format(self) -> Settings:
        if self.notify_webhook_format is None and self.notify_webhook_url:
            host = urlsplit(self.notify_webhook_url.get_secret_value()).hostname or ""
            self.notify_webhook_format = "slack" if host == "hooks.slack.com" else "json"
        return self

    @property
    def db_url(self) -> str:
        """The database URL itself (it may hold a password: never log it)."""
        return self.database_url.get_secret_value()

    @property
    def webhook_url(self) -> str | None:
        """The operator's default destination URL (its path may be a token: never log it)."""
        return self.notify_webhook_url.get_secret_value() if self.notify_webhook_url else None

    @property
    def webhook_secret(self) -> str | None:
        return self.notify_webhook_secret.get_secret_value() if self.notify_webhook_secret else None

    @property
    def is_sqlite(self) -> bool:
        return self.db_url.startswith("sqlite")

    @property
    def retry_delays(self) -> list[float]:
        """Delays between attempts; attempts = len + 1."""
        return [float(p) for p in self.notify_retry_schedule.split(",") if p.strip()]

    @property
    def webhook_event_filter(self) -> list[str]:
        return [e.strip() for e in self.notify_webhook_events.split(",") if e.strip()]


def describe_error(exc: ValidationError) -> str:
    """One line per bad setting, naming its variable and why, never the value it was given."""
    lines = []
    for error in exc.errors(include_input=False, include_url=False):
        variable = _variable_name(error.get("loc", ()))
        reason = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        lines.append(f"{variable}: {reason}")
    return "; ".join(lines) or "invalid configuration"


def _variable_name(loc: tuple) -> str:
    field = str(loc[0]) if loc else ""
    info = Settings.model_fields.get(field)
    alias = info.validation_alias if info is not None else None
    if isinstance(alias, AliasChoices):
        return "/".join(str(choice) for choice in alias.choices)
    return str(alias) if alias else field.upper()


@lru_cache
def get_settings() -> Settings:
    return Settings()
