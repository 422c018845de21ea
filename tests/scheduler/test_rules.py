"""Pure rules of the scheduler.

Windows, dedupe key, trigger precedence, anomaly reasons, fingerprint.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from driftwarden.scheduler import anomaly, windows

UTC = UTC
ORG = uuid.UUID("11111111-1111-1111-1111-111111111111")


@pytest.mark.parametrize(
    ("now", "minutes", "start", "end"),
    [
        (
            datetime(2026, 11, 25, 12, 0, tzinfo=UTC),
            1440,
            datetime(2026, 11, 25, tzinfo=UTC),
            datetime(2026, 11, 26, tzinfo=UTC),
        ),
        (
            datetime(2026, 11, 25, 23, 59, 59, 999999, tzinfo=UTC),
            1440,
            datetime(2026, 11, 25, tzinfo=UTC),
            datetime(2026, 11, 26, tzinfo=UTC),
        ),
        (
            datetime(2026, 11, 26, 0, 0, tzinfo=UTC),
            1440,
            datetime(2026, 11, 26, tzinfo=UTC),
            datetime(2026, 11, 27, tzinfo=UTC),
        ),
        (
            datetime(2026, 11, 25, 12, 7, 30, tzinfo=UTC),
            5,
            datetime(2026, 11, 25, 12, 5, tzinfo=UTC),
            datetime(2026, 11, 25, 12, 10, tzinfo=UTC),
        ),
        (
            datetime(2026, 11, 25, 12, 7, tzinfo=UTC),
            60,
            datetime(2026, 11, 25, 12, tzinfo=UTC),
            datetime(2026, 11, 25, 13, tzinfo=UTC),
        ),
        # Weeks align to the epoch (a Thursday), not to Monday.
        (
            datetime(2026, 11, 25, 12, tzinfo=UTC),
            10080,
            datetime(2026, 11, 19, tzinfo=UTC),
            datetime(2026, 11, 26, tzinfo=UTC),
        ),
        (
            datetime(1970, 1, 1, 0, 4, tzinfo=UTC),
            5,
            datetime(1970, 1, 1, tzinfo=UTC),
            datetime(1970, 1, 1, 0, 5, tzinfo=UTC),
        ),
    ],
)
def test_window_is_the_aligned_bucket_containing_now(now, minutes, start, end) -> None:
    window = windows.window_for(now, minutes)
    assert (window.start, window.end, window.minutes) == (start, end, minutes)
    assert window.start <= now < window.end
    assert int(window.start.timestamp()) % (minutes * 60) == 0


def test_window_of_a_non_utc_moment_is_computed_in_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    window = windows.window_for(datetime(2026, 11, 26, 1, 0, tzinfo=plus_two), 1440)
    assert window.start == datetime(2026, 11, 25, tzinfo=UTC)


def test_window_rejects_non_positive_size() -> None:
    with pytest.raises(ValueError):
        windows.window_for(datetime(2026, 1, 1, tzinfo=UTC), 0)


def test_dedupe_key_format_and_what_changes_it() -> None:
    now = datetime(2026, 11, 25, 12, tzinfo=UTC)
    window = windows.window_for(now, 1440)
    key = windows.dedupe_key(org_id=ORG, schedule_name="daily", window=window, agent_id=None)
    assert key == f"{ORG}:daily:1440:2026-11-25T00:00:00Z:*"
    agent = uuid.uuid4()
    assert windows.dedupe_key(
        org_id=ORG, schedule_name="daily", window=window, agent_id=agent
    ).endswith(f":{agent}")
    same_window = windows.window_for(now + timedelta(hours=11), 1440)
    assert (
        windows.dedupe_key(org_id=ORG, schedule_name="daily", window=same_window, agent_id=None)
        == key
    )
    next_window = windows.window_for(now + timedelta(hours=12), 1440)
    assert (
        windows.dedupe_key(org_id=ORG, schedule_name="daily", window=next_window, agent_id=None)
        != key
    )
    assert (
        windows.dedupe_key(org_id=ORG, schedule_name="hourly", window=window, agent_id=None) != key
    )


@pytest.mark.parametrize(
    ("enabled", "promote", "force", "expected"),
    [
        (False, True, False, "policy_disabled"),
        (False, False, False, "policy_disabled"),  # disabled beats promotion_disabled
        (True, False, False, "promotion_disabled"),
        (True, True, False, None),  # go on to the window
        (False, False, True, None),  # force skips every gate
    ],
)
def test_gates_come_before_the_window(
    enabled: bool, promote: bool, force: bool, expected: str | None
) -> None:
    """The rest of the precedence (deduped, failed, dry runs) is pinned over HTTP: test_trigger."""
    assert (
        windows.gate_outcome(policy_enabled=enabled, promote_to_patterns=promote, force=force)
        == expected
    )


@pytest.mark.parametrize(
    ("dedupe", "execution", "expected"),
    [
        (None, None, []),
        (0.0, 1.0, []),
        (0.69, 0.5, []),
        (0.7, 0.5, ["dedupe_hit_rate_high"]),  # >= max is an anomaly
        (0.2, 0.49, ["execution_rate_low"]),  # < min is an anomaly
        (0.2, 0.5, []),  # == min is fine
        (0.9, 0.1, ["dedupe_hit_rate_high", "execution_rate_low"]),
        (1.0, 0.0, ["dedupe_hit_rate_high", "execution_rate_low"]),
    ],
)
def test_anomaly_reasons_against_thresholds(dedupe, execution, expected) -> None:
    assert (
        anomaly.anomaly_reasons(
            dedupe_hit_rate=dedupe,
            execution_rate=execution,
            max_dedupe_hit_rate=0.7,
            min_execution_rate=0.5,
        )
        == expected
    )


def test_thresholds_at_the_edges() -> None:
    assert anomaly.anomaly_reasons(
        dedupe_hit_rate=0.0, execution_rate=0.0, max_dedupe_hit_rate=0.0, min_execution_rate=0.0
    ) == ["dedupe_hit_rate_high"]
    assert anomaly.anomaly_reasons(
        dedupe_hit_rate=0.99, execution_rate=0.99, max_dedupe_hit_rate=1.0, min_execution_rate=1.0
    ) == ["execution_rate_low"]


def test_fingerprint_is_sha256_of_org_schedule_and_sorted_reasons() -> None:
    reasons = ["execution_rate_low", "dedupe_hit_rate_high"]
    expected = hashlib.sha256(
        f"{ORG}|daily|dedupe_hit_rate_high,execution_rate_low".encode()
    ).hexdigest()
    assert anomaly.fingerprint(ORG, "daily", reasons) == expected
    assert anomaly.fingerprint(ORG, "daily", list(reversed(reasons))) == expected
    assert anomaly.fingerprint(str(ORG), "daily", reasons) == expected
    assert anomaly.fingerprint(ORG, None, []) == hashlib.sha256(f"{ORG}|_all|".encode()).hexdigest()


def test_fingerprint_changes_only_when_the_reasons_change() -> None:
    """The rates never enter the fingerprint; the set of reasons, schedule and org do."""

    def fp_for(dedupe: float, execution: float) -> str:
        return anomaly.fingerprint(
            ORG,
            "daily",
            anomaly.anomaly_reasons(
                dedupe_hit_rate=dedupe,
                execution_rate=execution,
                max_dedupe_hit_rate=0.7,
                min_execution_rate=0.5,
            ),
        )

    assert fp_for(0.8, 0.2) == fp_for(0.95, 0.05)
    assert fp_for(0.8, 0.6) == fp_for(0.71, 0.9)
    assert len({fp_for(0.8, 0.2), fp_for(0.8, 0.6), fp_for(0.1, 0.2), fp_for(0.1, 0.9)}) == 4
    assert anomaly.fingerprint(ORG, "daily", ["x"]) != anomaly.fingerprint(ORG, "hourly", ["x"])
    assert anomaly.fingerprint(ORG, "daily", ["x"]) != anomaly.fingerprint(
        uuid.uuid4(), "daily", ["x"]
    )


def test_cooldown_applies_only_to_the_same_fingerprint() -> None:
    sent = datetime(2026, 11, 25, 12, tzinfo=UTC)
    assert anomaly.cooldown_until(
        state_fingerprint="a", last_notified_at=sent, current_fingerprint="a", cooldown_minutes=60
    ) == sent + timedelta(minutes=60)
    assert (
        anomaly.cooldown_until(
            state_fingerprint="a",
            last_notified_at=sent,
            current_fingerprint="b",
            cooldown_minutes=60,
        )
        is None
    )
    assert (
        anomaly.cooldown_until(
            state_fingerprint=None,
            last_notified_at=None,
            current_fingerprint="a",
            cooldown_minutes=60,
        )
        is None
    )


NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
LATER = NOW + timedelta(minutes=1)


@pytest.mark.parametrize(
    ("dry_run", "anomalous", "alerting", "force", "cooldown_ends", "action", "would"),
    [
        (True, True, True, False, None, "dry_run", "send"),  # dry run first, whatever else holds
        (True, False, True, False, None, "dry_run", "skipped"),
        (True, True, True, False, LATER, "dry_run", "suppressed"),
        (False, False, True, False, None, "skipped", "skipped"),  # no anomaly
        (False, True, False, False, None, "skipped", "skipped"),  # alerts disabled
        (False, False, False, False, LATER, "skipped", "skipped"),  # skipped beats suppressed
        (False, True, True, False, LATER, "suppressed", "suppressed"),
        (False, True, True, False, NOW, "send", "send"),  # the cooldown has just expired
        (False, True, True, False, NOW - timedelta(seconds=1), "send", "send"),
        (False, True, True, False, None, "send", "send"),
        (
            False,
            False,
            False,
            True,
            LATER,
            "send",
            "send",
        ),  # force_notify overrides skip and suppression
        (False, True, True, True, LATER, "send", "send"),
        (True, False, False, True, LATER, "dry_run", "send"),  # ... but not the dry run
    ],
)
def test_notify_decision_precedence(
    dry_run, anomalous, alerting, force, cooldown_ends, action, would
) -> None:
    decision = anomaly.decide_notify(
        dry_run=dry_run,
        anomaly_detected=anomalous,
        alert_enabled=alerting,
        force_notify=force,
        cooldown_ends=cooldown_ends,
        now=NOW,
    )
    assert (decision.action, decision.would, decision.suppressed) == (
        action,
        would,
        would == "suppressed",
    )
