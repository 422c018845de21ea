"""ASGI middleware counting requests by route template, and telling the logs what it measured."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from driftwarden import logs
from driftwarden.metrics import events

_PARAM = re.compile(r"\{([^}:]+)(:path)?\}")


def _pattern(template: str) -> re.Pattern[str]:
    """A template's regex: `{name}` is one path segment, `{name:path}` the rest of the path."""
    parts, last = [], 0
    for match in _PARAM.finditer(template):
        parts += [re.escape(template[last : match.start()]), ".+" if match.group(2) else "[^/]+"]
        last = match.end()
    return re.compile("".join(parts) + re.escape(template[last:]) + "$")


class RouteTemplates:
    """The app's path templates in routing order, matched against raw paths.

    Matching the path (rather than reading what the router chose) gives a request answered
    before routing, such as an idempotent replay, the same label as the request it replays.
    """

    def __init__(self, templates: Iterable[str]) -> None:
        self._patterns = [(_pattern(t), t) for t in dict.fromkeys(templates)]

    def label(self, scope: Scope) -> str:
        path = scope.get("path", "")
        for pattern, template in self._patterns:
            if pattern.match(path):
                return template
        route_path = getattr(scope.get("route"), "path", None)  # a route mounted without a template
        return route_path if isinstance(route_path, str) and route_path else events.UNMATCHED_ROUTE


class HttpMetricsMiddleware:
    """Outermost: sees every response, the last-resort 500 included."""

    def __init__(self, app: ASGIApp, *, templates: Iterable[str]) -> None:
        self.app = app
        self.routes = RouteTemplates(templates)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        seen = {"done": False}

        def measure(status: int) -> None:
            seen["done"] = True
            route, elapsed = self.routes.label(scope), time.perf_counter() - started
            events.record_request(
                method=scope["method"], route=route, status=status, duration_seconds=elapsed
            )
            state = scope.get("state", {})
            logs.bind(
                route=route,
                status=status,
                duration_ms=round(elapsed * 1000, 3),
                org_id=str(state["org_id"]) if state.get("org_id") else None,
            )

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start" and not seen["done"]:
                measure(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception:
            if not seen["done"]:
                measure(500)
            raise
