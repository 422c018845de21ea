"""`driftwarden demo --serve`: after the signals it keeps serving.

It also prints a one-time console link.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import httpx

from tests.production.serve import slow

pytestmark = slow
LINK = re.compile(r"console:\s+(http://127\.0\.0\.1:\d+/console/login/link\?token=\S+)")


def _wait_for_link(process: subprocess.Popen, timeout: float = 60) -> str:  # type: ignore[type-arg]
    deadline, seen = time.monotonic() + timeout, ""
    while time.monotonic() < deadline:
        line = process.stdout.readline()  # type: ignore[union-attr]
        seen += line
        if found := LINK.search(line):
            return found.group(1)
        if not line and process.poll() is not None:
            break
    raise AssertionError(f"no console link printed: {seen[-2000:]}")


def test_demo_serves_the_console_with_a_single_use_link(tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = {**os.environ, "NOTIFY_WEBHOOK_URL": "", "DATABASE_URL": "", "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "driftwarden.cli", "demo", "--serve"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        link = _wait_for_link(process)
        with httpx.Client(timeout=10, follow_redirects=True) as browser:
            signed_in = browser.get(link)
            overview = browser.get(link.split("/console/")[0] + "/console")
            again = httpx.get(link, timeout=10)
        assert signed_in.history[0].status_code == 303 and signed_in.status_code == 200
        assert 'data-testid="drift-count-breaking">2<' in overview.text
        assert again.status_code == 401  # single use
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
