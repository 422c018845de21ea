"""create_app(): the FastAPI application with every domain mounted at /api/v1 and legacy /api."""

from __future__ import annotations

import logging

from fastapi import FastAPI
from fastapi.routing import APIRoute
from sqlalchemy import Engine

from driftwarden import __version__
from driftwarden.agents import router as agents_router
from driftwarden.api import housekeeping
from driftwarden.api import metrics as metrics_route
from driftwarden.api.context import RequestContextMiddleware
from driftwarden.api.database_errors import install_database_error_handlers
from driftwarden.api.errors import install_error_handlers
from driftwarden.api.gate import AuthGateMiddleware
from driftwarden.api.guard import InputGuardMiddleware
from driftwarden.api.idempotency import IdempotencyMiddleware
from driftwarden.api.unit_of_work import UnitOfWorkMiddleware
from driftwarden.auth import router as auth_router
from driftwarden.clock import Clock, SystemClock
from driftwarden.console import mount as console
from driftwarden.contracts import router as contracts_router
from driftwarden.db.engine import make_engine, make_session_factory
from driftwarden.metrics.http import HttpMetricsMiddleware
from driftwarden.notifications import router as notifications_router
from driftwarden.patterns import router as patterns_router
from driftwarden.scheduler import router as scheduler_router
from driftwarden.settings import Settings, get_settings
from driftwarden.system import router as system_router

DOMAIN_ROUTERS = (
    auth_router.router,
    system_router.router,
    agents_router.router,
    contracts_router.router,
    patterns_router.router,
    scheduler_router.promotion_router,
    scheduler_router.router,
    notifications_router.router,
)


def _operation_id(route: APIRoute) -> str:
    return route.name


def route_templates() -> list[str]:
    """Full path templates in routing order, for the `route` label of the HTTP metrics."""
    top_level = (*system_router.health_router.routes, *metrics_route.router.routes)
    top = [route.path for route in top_level] + console.route_paths()
    prefixed = [
        prefix + route.path
        for router in DOMAIN_ROUTERS
        for prefix in ("/api/v1", "/api")
        for route in router.routes
    ]
    return top + prefixed


def create_app(
    settings: Settings | None = None, *, engine: Engine | None = None, clock: Clock | None = None
) -> FastAPI:
    settings = settings or get_settings()
    engine = engine or make_engine(settings)
    app = FastAPI(
        title="driftwarden",
        version=__version__,
        generate_unique_id_function=_operation_id,
        lifespan=housekeeping.lifespan,
        description=(
            "Finds contract drift in AI agents' bindings, files it, schedules it, alerts on it."
        ),
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.session_factory = make_session_factory(engine)
    app.state.clock = clock or SystemClock()
    app.state.purge_every_seconds = housekeeping.PURGE_EVERY_SECONDS
    install_error_handlers(app)
    install_database_error_handlers(app)
    app.include_router(system_router.health_router)
    metrics_route.install(app, settings)
    for router in DOMAIN_ROUTERS:
        app.include_router(router, prefix="/api/v1")
        app.include_router(router, prefix="/api", include_in_schema=False)
    console.install(app)  # /console: HTML pages, not under /api, not in the OpenAPI document
    # Outermost first: request id and last-resort envelope, auth from the headers, the body read
    # within its limit, the idempotency claim, then the transaction that commits the response.
    app.add_middleware(UnitOfWorkMiddleware)
    app.add_middleware(IdempotencyMiddleware)
    app.add_middleware(InputGuardMiddleware, max_body_bytes=settings.max_request_bytes)
    app.add_middleware(AuthGateMiddleware)
    app.add_middleware(RequestContextMiddleware)
    # added last = outermost: it counts every response, the last-resort 500 included
    app.add_middleware(HttpMetricsMiddleware, templates=route_templates())
    logging.getLogger("driftwarden").setLevel(settings.log_level.upper())
    return app
