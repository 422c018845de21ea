"""Console plumbing: templates, a route class rendering refusals as pages, security headers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from driftwarden import errors
from driftwarden.api.errors import status_of as domain_status
from driftwarden.console import session as cookies
from driftwarden.console.users import ConsoleUser, SignInRequired, login_redirect_url

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")

# docs/reference/console.md (safety): scripts only from this origin, never framed.
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
    ),
    (b"referrer-policy", b"same-origin"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"cache-control", b"no-store"),
]


def status_of(exc: Exception) -> int:
    """The API's status for a domain error; a form the schema refused is a 422."""
    if isinstance(exc, errors.DomainError):
        return domain_status(exc)
    return 422 if isinstance(exc, (ValidationError, RequestValidationError)) else 400


def render(
    request: Request, name: str, context: dict[str, Any], *, status_code: int = 200
) -> Response:
    return templates.TemplateResponse(request, name, context, status_code=status_code)


def refusal(request: Request, exc: Exception, user: ConsoleUser | None = None) -> Response:
    """A domain error (or a form the schema refused) as a page with the same code."""
    code = getattr(exc, "code", "VALIDATION_ERROR")
    if isinstance(exc, (ValidationError, RequestValidationError)):
        message = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
    else:
        message = getattr(exc, "message", str(exc))
    return render(
        request,
        "error.html",
        {"user": user, "code": code, "message": message},
        status_code=status_of(exc),
    )


class ConsoleRoute(APIRoute):
    """Renders sign-in redirects and refusals as HTML instead of the API's JSON envelope."""

    def get_route_handler(self) -> Callable[[Request], Any]:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await original(request)
            except SignInRequired as exc:
                response = RedirectResponse(login_redirect_url(exc.next_path), status_code=303)
                cookies.clear(request, response)
                return response
            except (errors.DomainError, RequestValidationError, ValidationError) as exc:
                return refusal(request, exc)

        return handler


class SecurityHeaders:
    """Adds the console's headers to every response under /console (pages, redirects, static)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/console"):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name for name, _ in SECURITY_HEADERS}
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message = {**message, "headers": kept + SECURITY_HEADERS}
            await send(message)

        await self.app(scope, receive, send_with_headers)
