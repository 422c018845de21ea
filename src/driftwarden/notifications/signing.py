"""Standard Webhooks signing and verification, through the `standardwebhooks` package."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

SECRET_BYTES = 32

__all__ = ["WebhookVerificationError", "generate_secret", "signature_headers", "verify"]


def generate_secret() -> str:
    """A fresh endpoint secret: `whsec_` + base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def signature_headers(
    *, message_id: str, body: bytes, at: datetime, signing_secrets: Iterable[str]
) -> dict[str, str]:
    """The three Standard Webhooks headers, one `v1,` signature per valid secret, space-joined."""
    at = at.astimezone(UTC)
    text = body.decode("utf-8")
    signatures = [Webhook(secret).sign(message_id, at, text) for secret in signing_secrets]
    headers = {"webhook-id": message_id, "webhook-timestamp": str(int(at.timestamp()))}
    if signatures:
        headers["webhook-signature"] = " ".join(signatures)
    return headers


class _TolerantWebhook(Webhook):
    """The package's verifier with our replay window and clock.

    The package hard-codes 5 min of wall time.
    """

    def __init__(self, secret: str, *, tolerance_seconds: float, now: datetime) -> None:
        super().__init__(secret)
        self._tolerance = timedelta(seconds=tolerance_seconds)
        self._now = now

    def _Webhook__verify_timestamp(self, timestamp_header: str) -> datetime:  # noqa: N802 - overrides the private hook
        try:
            timestamp = datetime.fromtimestamp(float(timestamp_header), tz=UTC)
        except (TypeError, ValueError, OverflowError) as exc:
            raise WebhookVerificationError("webhook-timestamp is not unix seconds") from exc
        if timestamp < self._now - self._tolerance:
            raise WebhookVerificationError("message timestamp too old (outside the tolerance)")
        if timestamp > self._now + self._tolerance:
            raise WebhookVerificationError("message timestamp too new (outside the tolerance)")
        return timestamp


def verify(
    *,
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    tolerance_seconds: float,
    now: datetime | None = None,
) -> None:
    """Raise WebhookVerificationError unless the signature is valid.

    `body` and `headers` must carry a valid signature for `secret`.
    """
    checker = _TolerantWebhook(
        secret, tolerance_seconds=tolerance_seconds, now=now or datetime.now(UTC)
    )
    try:
        checker.verify(body, dict(headers), json_parse=False)
    except (ValueError, UnicodeDecodeError) as exc:  # malformed signature list or body bytes
        raise WebhookVerificationError(f"malformed webhook: {type(exc).__name__}") from exc
