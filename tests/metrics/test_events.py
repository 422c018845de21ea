"""Event helpers and the multiprocess directory's housekeeping."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from driftwarden.metrics import events, exposition


@pytest.mark.parametrize(
    ("status", "error_code", "result"),
    [
        ("sent", None, "sent"),
        ("pending", "HTTP_500", "failed"),
        ("pending", "TIMEOUT", "failed"),
        ("dead", "HTTP_500", "dead"),
        ("dead", "GONE", "gone"),
        ("dead", "NOTIFY_URL_FORBIDDEN", "dead"),
    ],
)
def test_delivery_result_labels(status: str, error_code: str | None, result: str) -> None:
    assert events.delivery_result(status=status, error_code=error_code) == result


def test_record_delivery_counts_and_times() -> None:
    def sample(name: str, **labels: str) -> float:
        return events.EVENTS.get_sample_value(name, labels) or 0.0

    sent, observed = (
        sample("driftwarden_deliveries_total", result="gone"),
        sample("driftwarden_delivery_duration_seconds_count"),
    )
    events.record_delivery(status="dead", error_code="GONE", duration_seconds=0.25)
    events.record_delivery(
        status="dead", error_code="GONE", duration_seconds=None
    )  # blocked: not sent
    assert sample("driftwarden_deliveries_total", result="gone") == sent + 2
    assert sample("driftwarden_delivery_duration_seconds_count") == observed + 1


def test_prepare_empties_a_directory_left_by_a_previous_run(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "counter_123.db").write_bytes(b"old")
    monkeypatch.setenv(exposition.MULTIPROC_ENV, str(tmp_path))
    assert exposition.prepare_multiprocess_dir() == tmp_path
    assert list(tmp_path.iterdir()) == []


def test_prepare_makes_a_directory_when_none_is_set(monkeypatch) -> None:
    monkeypatch.setenv(
        exposition.MULTIPROC_ENV, ""
    )  # recorded, so the teardown restores the original
    monkeypatch.delenv(exposition.MULTIPROC_ENV)
    path = exposition.prepare_multiprocess_dir()
    assert os.environ[exposition.MULTIPROC_ENV] == str(path) and path.is_dir()
    path.rmdir()


def test_a_dead_workers_live_gauges_go_and_its_counters_stay(tmp_path: Path) -> None:
    exited = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    pid = int(exited.stdout)
    for name in (f"counter_{pid}.db", f"gauge_livemax_{pid}.db", f"gauge_max_{pid}.db"):
        (tmp_path / name).write_bytes(b"")
    assert exposition.forget_dead_workers(str(tmp_path)) == [pid]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        f"counter_{pid}.db",
        f"gauge_max_{pid}.db",
    ]
