"""A 30 MB unauthenticated upload to `driftwarden serve` is refused at once; the worker lives."""

from __future__ import annotations

import contextlib
import socket
import time

import httpx

from tests.production.serve import ServeProcess, slow

pytestmark = slow
SIZE = 30 * 1024 * 1024
CHUNK = 256 * 1024


def _upload_without_key(port: int) -> tuple[float, bytes, int]:
    """Sends the headers and streams the body until the server answers: (seconds, answer, sent)."""
    head = (
        f"POST /api/v1/contracts/import HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {SIZE}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        started = time.monotonic()
        sock.sendall(head)
        sock.setblocking(False)
        sent, answer = 0, b""
        while sent < SIZE and b"\r\n\r\n" not in answer and time.monotonic() - started < 10:
            with contextlib.suppress(BlockingIOError):
                answer += sock.recv(65536)
            try:
                sent += sock.send(b" " * min(CHUNK, SIZE - sent))
            except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                time.sleep(0.001)
        sock.setblocking(True)
        sock.settimeout(5)
        while b"\r\n\r\n" not in answer:
            data = sock.recv(65536)
            if not data:
                break
            answer += data
        return time.monotonic() - started, answer, sent


def test_a_30_mb_body_without_a_key_is_refused_in_under_a_second(database_url: str) -> None:
    with ServeProcess(database_url, workers=1) as server:
        timings = []
        for _ in range(3):
            seconds, answer, sent = _upload_without_key(server.port)
            assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
            assert b"connection: close" in answer.lower()
            timings.append(seconds)
        assert max(timings) < 1.0, timings
        assert sent < SIZE  # the server answered before the body was through
        assert httpx.get(f"{server.url}/healthz", timeout=2).status_code == 200
        assert server.process is not None and server.process.poll() is None
