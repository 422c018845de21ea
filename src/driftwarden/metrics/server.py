"""The worker's own GET /metrics (`driftwarden worker --metrics-port PORT`): same body, same auth.

A small threaded WSGI server in a daemon thread, like prometheus-client's `start_http_server`,
answering through `exposition.scrape` so the worker reports exactly what the API would.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from sqlalchemy.orm import Session, sessionmaker

from driftwarden.clock import Clock
from driftwarden.metrics import exposition, state
from driftwarden.settings import Settings

REASONS = {200: "200 OK", 401: "401 Unauthorized", 404: "404 Not Found"}


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return  # scrapes every few seconds would drown the worker's own lines


def metrics_app(
    session_factory: sessionmaker[Session], *, settings: Settings, clock: Clock
) -> Callable:
    """A WSGI app serving /metrics only."""
    cache = state.StateCache(seconds=settings.metrics_cache_seconds)

    def app(environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != "/metrics":
            start_response(REASONS[404], [("Content-Type", "text/plain")])
            return [b"not found\n"]
        with session_factory() as session:
            status, body, content_type = exposition.scrape(
                session,
                cache=cache,
                settings=settings,
                now=clock.now(),
                authorization=environ.get("HTTP_AUTHORIZATION"),
            )
        headers = [("Content-Type", content_type)] + (
            [("WWW-Authenticate", "Bearer")] if status == 401 else []
        )
        start_response(REASONS[status], headers)
        return [body]

    return app


def start_metrics_server(
    port: int,
    *,
    session_factory: sessionmaker[Session],
    settings: Settings,
    clock: Clock,
    host: str = "0.0.0.0",
) -> WSGIServer:
    """Serve in a daemon thread; call `.shutdown()` on the result to stop."""
    server = make_server(
        host,
        port,
        metrics_app(session_factory, settings=settings, clock=clock),
        server_class=_ThreadingServer,
        handler_class=_QuietHandler,
    )
    threading.Thread(target=server.serve_forever, name="dw-metrics", daemon=True).start()
    return server
