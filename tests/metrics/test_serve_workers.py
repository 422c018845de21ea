"""`serve --workers 2`: requests spread over both workers add up in one scrape."""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.metrics.helpers import AUTH, TOKEN, parse, value
from tests.production.serve import ServeProcess, slow

pytestmark = slow
BATCH = 40


def _counter_pids(directory: Path) -> set[int]:
    """Workers that counted something: each writes its own counter_<pid>.db."""
    return {
        int(m[1]) for p in directory.iterdir() if (m := re.match(r"counter_(\d+)\.db$", p.name))
    }


def _batch(url: str) -> int:
    """BATCH concurrent requests on fresh connections, so both workers' accept loops get some."""

    def one(_: int) -> int:
        with httpx.Client(timeout=10) as fresh:
            return fresh.get(f"{url}/healthz").status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        assert set(pool.map(one, range(BATCH))) == {200}
    return BATCH


def _healthz_count(url: str) -> float:
    with httpx.Client(timeout=10) as fresh:
        samples = parse(fresh.get(f"{url}/metrics", headers=AUTH).text)
    count = value(
        samples, "driftwarden_http_requests_total", method="GET", route="/healthz", status="200"
    )
    return count or 0.0


def test_one_scrape_sums_both_workers(database_url: str, tmp_path: Path) -> None:
    directory = tmp_path / "prometheus"
    directory.mkdir()
    env = {
        "PROMETHEUS_MULTIPROC_DIR": str(directory),
        "METRICS_TOKEN": TOKEN,
        "LOG_LEVEL": "WARNING",
    }
    with ServeProcess(database_url, workers=2, env=env, startup_seconds=120) as served:
        baseline = _healthz_count(served.url)  # the start-up probe's request is in the sum too
        sent, deadline = 0, time.monotonic() + 90
        while len(_counter_pids(directory)) < 2 and time.monotonic() < deadline:
            sent += _batch(served.url)
        assert len(_counter_pids(directory)) == 2, "requests never reached the second worker"
        for _ in range(4):  # whichever worker answers the scrape reports the same sum
            with httpx.Client(timeout=10) as fresh:
                response = fresh.get(f"{served.url}/metrics", headers=AUTH)
            assert response.status_code == 200, response.text
            samples = parse(response.text)
            assert (
                value(
                    samples,
                    "driftwarden_http_requests_total",
                    method="GET",
                    route="/healthz",
                    status="200",
                )
                == baseline + sent
            )
            assert value(samples, "driftwarden_build_info", version="0.1.0") == 1
