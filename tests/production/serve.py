"""`driftwarden serve` as a real child process on 127.0.0.1, for shutdown and multi-worker tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time

import httpx
import pytest

from tests.support import ON_POSTGRES, free_port

RUN_SLOW = os.environ.get("RUN_SLOW") == "1" or ON_POSTGRES
slow = [pytest.mark.slow, pytest.mark.skipif(not RUN_SLOW, reason="real processes: set RUN_SLOW=1")]


class ServeProcess:
    """Starts `driftwarden serve`, waits for /healthz, and always reaps the process it started."""

    def __init__(
        self,
        database_url: str,
        *,
        workers: int = 1,
        graceful_seconds: int = 30,
        env: dict[str, str] | None = None,
        startup_seconds: float = 30,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # Outlives __init__: the child writes to it, __exit__ closes and removes it.
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in __exit__
            prefix="driftwarden-serve-", suffix=".log", delete=False
        )
        self.command = [
            sys.executable,
            "-m",
            "driftwarden.cli",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            str(workers),
            "--graceful-seconds",
            str(graceful_seconds),
        ]
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "LOG_LEVEL": "WARNING",
            **(env or {}),
        }
        self.env.pop("SUPABASE_DB_URL", None)
        self.process: subprocess.Popen[bytes] | None = None
        self.startup_seconds = startup_seconds

    def __enter__(self) -> ServeProcess:
        self.process = subprocess.Popen(
            self.command, env=self.env, stdout=self.log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + self.startup_seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"serve exited with {self.process.returncode}: {self.output()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError(f"serve did not come up: {self.output()}")

    def signal(self, signum: int) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def wait(self, timeout: float) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout)

    def output(self) -> str:
        with open(self.log.name, encoding="utf-8", errors="replace") as handle:
            return handle.read()[-4000:]

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        self.log.close()
        os.unlink(self.log.name)
