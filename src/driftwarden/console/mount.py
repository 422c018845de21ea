"""Mount the console on the app: pages, forms, static files and the console's response headers."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from driftwarden.console import actions, pages
from driftwarden.console.web import HERE, SecurityHeaders


def route_paths() -> list[str]:
    """The console's path templates, for the `route` label of the HTTP metrics."""
    return [route.path for router in (pages.router, actions.router) for route in router.routes]


def install(app: FastAPI) -> None:
    app.mount("/console/static", StaticFiles(directory=HERE / "static"), name="console_static")
    app.include_router(pages.router)
    app.include_router(actions.router)
    app.add_middleware(SecurityHeaders)
