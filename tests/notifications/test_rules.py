"""Pure rules of notifications.

Retry schedule and jitter, Retry-After, body formats, signing, configuration checks.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from driftwarden.notifications import endpoints, formats, retry, signing
from driftwarden.notifications.outbox import check_destination_settings
from driftwarden.settings import Settings

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
DELAYS = [5.0, 300.0, 1800.0]


def _decide(attempt: retry.Attempt, count: int, max_attempts: int = 4) -> retry.Outcome:
    return retry.decide(
        attempt,
        attempt_count=count,
        max_attempts=max_attempts,
        delays=DELAYS,
        now=NOW,
        rng=random.Random(7),
    )


@pytest.mark.parametrize("code", [200, 201, 204, 299])
def test_only_2xx_is_sent(code: int) -> None:
    assert _decide(retry.Attempt(code), 1) == retry.Outcome("sent", None)


@pytest.mark.parametrize(
    "attempt",
    [
        retry.Attempt(300, "HTTP_300"),
        retry.Attempt(302, "HTTP_302"),
        retry.Attempt(400, "HTTP_400"),
        retry.Attempt(404, "HTTP_404"),
        retry.Attempt(500, "HTTP_500"),
        retry.Attempt(None, "TIMEOUT"),
        retry.Attempt(None, "CONNECTION_ERROR"),
    ],
)
def test_other_failures_retry_on_the_schedule_then_die(attempt: retry.Attempt) -> None:
    for count, delay in enumerate(DELAYS, start=1):
        outcome = _decide(attempt, count)
        assert outcome.status == "pending" and not outcome.disable_endpoint
        assert delay * 0.9 <= (outcome.next_attempt_at - NOW).total_seconds() <= delay * 1.1
    assert _decide(attempt, 4) == retry.Outcome("dead", None)


def test_410_is_dead_at_once_and_disables() -> None:
    assert _decide(retry.Attempt(410, "GONE"), 1) == retry.Outcome(
        "dead", None, disable_endpoint=True
    )


def test_a_forbidden_address_is_dead_at_once_without_disabling() -> None:
    assert _decide(retry.Attempt(None, "URL_FORBIDDEN"), 1) == retry.Outcome("dead", None)


def test_secret_fingerprint_is_a_sha256_prefix() -> None:
    # printf %s 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' | sha256sum | cut -c1-12
    assert endpoints.secret_fingerprint("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw") == "96ad2ccd8146"


def test_jitter_spreads_within_ten_percent() -> None:
    rng = random.Random(1)
    samples = [retry.jittered(100.0, rng) for _ in range(2000)]
    assert 90.0 <= min(samples) < 91.0 and 109.0 < max(samples) <= 110.0
    assert len({round(s, 3) for s in samples}) > 1900


@pytest.mark.parametrize("code", [429, 503])
def test_retry_after_wins_only_when_longer(code: int) -> None:
    longer = _decide(retry.Attempt(code, f"HTTP_{code}", retry_after=600), 1)
    assert longer.next_attempt_at == NOW + timedelta(seconds=600)
    shorter = _decide(retry.Attempt(code, f"HTTP_{code}", retry_after=1), 2)
    assert (shorter.next_attempt_at - NOW).total_seconds() >= 270
    capped = _decide(retry.Attempt(code, f"HTTP_{code}", retry_after=10**9), 1)
    assert capped.next_attempt_at == NOW + timedelta(seconds=retry.MAX_RETRY_AFTER_SECONDS)
    ignored = _decide(retry.Attempt(500, "HTTP_500", retry_after=600), 1)
    assert (ignored.next_attempt_at - NOW).total_seconds() <= 5.5


def test_parse_retry_after() -> None:
    assert retry.parse_retry_after("120", now=NOW) == 120.0
    assert retry.parse_retry_after("Wed, 25 Nov 2026 12:02:00 GMT", now=NOW) == 120.0
    assert retry.parse_retry_after("Wed, 25 Nov 2026 11:00:00 GMT", now=NOW) == 0.0
    for junk in (None, "", "soon", "-5", "1.5e3"):
        assert retry.parse_retry_after(junk, now=NOW) is None


@pytest.mark.parametrize("event_type", formats.EVENT_TYPES)
def test_every_event_renders_in_both_formats(event_type: str) -> None:
    data = {
        "org_id": "o-1",
        "schedule_name": "daily",
        "reasons": ["dedupe_hit_rate_high"],
        "missed_windows": 2,
    }
    document = json.loads(formats.render("json", event_type=event_type, data=data, now=NOW))
    assert document == {"type": event_type, "timestamp": "2026-11-25T12:00:00Z", "data": data}
    slack = json.loads(formats.render("slack", event_type=event_type, data=data, now=NOW))
    texts = [b.get("text", {}).get("text", "") for b in slack["blocks"]]
    assert slack["text"].startswith("[driftwarden]")
    assert any(t.startswith("*What happened:*") for t in texts) and any(
        t.startswith("*What to do next:*") for t in texts
    )
    with pytest.raises(ValueError):
        formats.render("xml", event_type=event_type, data=data, now=NOW)


def test_slack_names_the_created_patterns_and_the_callers_next_steps() -> None:
    created = [{"title": f"Contract drift (breaking): gate 'g{n}' 1.0.0 → 2.0.0"} for n in range(7)]
    slack = json.loads(
        formats.render(
            "slack",
            event_type="contract_drift.patterns_promoted",
            now=NOW,
            data={
                "created_pattern_count": 7,
                "created_patterns": created,
                "next_steps": "Page the owning team.",
            },
        )
    )
    happened, next_step = (b["text"]["text"] for b in slack["blocks"][1:3])
    assert (
        "7 new issue pattern(s)" in happened
        and "gate 'g4'" in happened
        and "gate 'g5'" not in happened
    )
    assert "and 2 more" in happened and next_step.startswith(
        "*What to do next:* Page the owning team."
    )


def test_values_are_made_json() -> None:
    import uuid

    ident = uuid.uuid4()
    assert formats.to_json_value({"id": ident, "at": NOW, "tags": ("a",)}) == {
        "id": str(ident),
        "at": "2026-11-25T12:00:00Z",
        "tags": ["a"],
    }


def test_signature_headers_verify_with_the_package_for_each_secret() -> None:
    old, new = signing.generate_secret(), signing.generate_secret()
    assert old != new and Settings(NOTIFY_WEBHOOK_URL="http://x", NOTIFY_WEBHOOK_SECRET=old)
    body = '{"type":"webhook.test","data":{"note":"héllo"}}'.encode()
    now = datetime.now(UTC)
    headers = signing.signature_headers(
        message_id="msg_abc", body=body, at=now, signing_secrets=[new, old]
    )
    assert headers["webhook-id"] == "msg_abc" and headers["webhook-timestamp"] == str(
        int(now.timestamp())
    )
    for secret in (new, old):
        Webhook(secret).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.generate_secret()).verify(body, headers)
    assert "webhook-signature" not in signing.signature_headers(
        message_id="m", body=body, at=now, signing_secrets=[]
    )


def test_verify_uses_the_configured_tolerance() -> None:
    secret, body = signing.generate_secret(), b"{}"
    headers = signing.signature_headers(
        message_id="msg_1", body=body, at=NOW, signing_secrets=[secret]
    )
    signing.verify(
        secret=secret,
        headers=headers,
        body=body,
        tolerance_seconds=60,
        now=NOW + timedelta(seconds=59),
    )
    for skew in (61, -61):
        with pytest.raises(WebhookVerificationError):
            signing.verify(
                secret=secret,
                headers=headers,
                body=body,
                tolerance_seconds=60,
                now=NOW + timedelta(seconds=skew),
            )
    with pytest.raises(WebhookVerificationError):
        signing.verify(
            secret=secret,
            headers={**headers, "webhook-signature": "garbage"},
            body=body,
            tolerance_seconds=60,
            now=NOW,
        )


@pytest.mark.parametrize(
    "env, variable",
    [
        ({"NOTIFY_WEBHOOK_FORMAT": "xml"}, "NOTIFY_WEBHOOK_FORMAT"),
        ({"NOTIFY_WEBHOOK_URL": "ftp://example.com"}, "NOTIFY_WEBHOOK_URL"),
        ({"NOTIFY_WEBHOOK_SECRET": "not-a-secret"}, "NOTIFY_WEBHOOK_SECRET"),
        ({"NOTIFY_WEBHOOK_SECRET": "whsec_c2hvcnQ="}, "NOTIFY_WEBHOOK_SECRET"),
        ({"NOTIFY_RETRY_SCHEDULE": "5,soon"}, "NOTIFY_RETRY_SCHEDULE"),
    ],
)
def test_bad_destination_settings_are_refused_by_name(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ValidationError) as info:
        Settings(**env)
    assert variable in str(info.value)


def test_cross_field_destination_checks() -> None:
    assert (
        check_destination_settings(
            Settings(NOTIFY_WEBHOOK_URL="http://x", NOTIFY_WEBHOOK_EVENTS="webhook.test")
        )
        == []
    )
    problems = check_destination_settings(
        Settings(NOTIFY_WEBHOOK_URL="http://x", NOTIFY_WEBHOOK_EVENTS="drift.oops")
    )
    assert len(problems) == 1 and problems[0].startswith("NOTIFY_WEBHOOK_EVENTS")
    orphan = check_destination_settings(Settings(NOTIFY_WEBHOOK_SECRET=signing.generate_secret()))
    assert orphan == ["NOTIFY_WEBHOOK_SECRET is set but NOTIFY_WEBHOOK_URL is not"]
    assert (
        Settings(NOTIFY_WEBHOOK_URL="https://hooks.slack.com/services/x").notify_webhook_format
        == "slack"
    )


def test_slack_escapes_control_sequences_from_user_data() -> None:
    slack = json.loads(
        formats.render(
            "slack",
            event_type="issue_pattern.status_changed",
            now=NOW,
            data={
                "title": "<!channel> pay <https://evil.example|here> & <@U123>",
                "from": "open",
                "to": "resolved",
                "next_steps": "<!here> now",
            },
        )
    )
    texts = [slack["text"]] + [b["text"]["text"] for b in slack["blocks"][1:3]]
    for text in texts[:2]:
        assert "&lt;!channel&gt; pay &lt;https://evil.example|here&gt; &amp; &lt;@U123&gt;" in text
    assert all("<" not in t and ">" not in t for t in texts) and "&lt;!here&gt; now" in texts[2]
