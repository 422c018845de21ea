"""GET /metrics: Prometheus text, outside /api, the envelope and the OpenAPI document."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request, Response
from starlette.concurrency import run_in_threadpool

from driftwarden.metrics import exposition, state
from driftwarden.settings import Settings

router = APIRouter(include_in_schema=False)


def install(app, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    """Mount the route and give the app its own state cache (METRICS_CACHE_SECONDS)."""
    app.state.metrics_cache = state.StateCache(seconds=settings.metrics_cache_seconds)
    app.include_router(router)


def _scrape(request: Request, authorization: str | None) -> tuple[int, bytes, str]:
    app_state = request.app.state
    with app_state.session_factory() as session:
        return exposition.scrape(
            session,
            cache=app_state.metrics_cache,
            settings=app_state.settings,
            now=app_state.clock.now(),
            authorization=authorization,
        )


@router.get("/metrics", name="metrics")
async def metrics(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> Response:
    """Authorised by METRICS_TOKEN or an admin API key (docs/reference/operations.md, metrics)."""
    status, body, content_type = await run_in_threadpool(_scrape, request, authorization)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return Response(body, status_code=status, media_type=content_type, headers=headers)
