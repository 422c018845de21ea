"""Console forms (POST): sign-in and out, the org switcher, and the writes each role may make.

Every form that changes something is checked for the session's CSRF token and a same-site
`Origin` before anything else runs (docs/reference/console.md, CSRF).
"""

from __future__ import annotations

import secrets
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from pydantic import BaseModel, BeforeValidator
from sqlalchemy.orm import Session
from starlette.responses import RedirectResponse, Response

from driftwarden.api.deps import SessionDep
from driftwarden.auth import keys
from driftwarden.auth.models import Org
from driftwarden.console import login_links, views
from driftwarden.console import session as cookies
from driftwarden.console.users import ConsoleUser, current_user, safe_next
from driftwarden.console.web import ConsoleRoute, render
from driftwarden.errors import Forbidden, NotFound
from driftwarden.notifications import service as notifications_service
from driftwarden.patterns import service as patterns_service
from driftwarden.patterns.schemas import PatternUpdate
from driftwarden.scheduler import flows, signals
from driftwarden.scheduler import policy as policy_service
from driftwarden.scheduler.schemas import PolicyUpdate, ScheduleRunCreate

# The signing key is read (or made) before the route opens its session: on SQLite a second
# writer would wait for the route's own transaction.
router = APIRouter(
    prefix="/console",
    route_class=ConsoleRoute,
    include_in_schema=False,
    dependencies=[Depends(cookies.signing_key)],
)
Token = Annotated[str | None, Form()]
POLICY_FLAGS = ("enabled", "promote_to_patterns", "alert_enabled")
POLICY_VALUES = (
    "min_drift",
    "scan_limit",
    "schedule_name",
    "schedule_window_minutes",
    "alert_max_dedupe_hit_rate",
    "alert_min_execution_rate",
    "alert_cooldown_minutes",
)


def _redirect(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


def _signed_in(
    request: Request, response: RedirectResponse, api_key_id: uuid.UUID
) -> RedirectResponse:
    cookies.write(request, response, cookies.new_session(api_key_id))
    return response


def checked(
    request: Request, session: Session, token: str | None, *, role: str = "viewer"
) -> ConsoleUser:
    """The signed-in user, once the form proved it came from this console; then the role."""
    user = current_user(request, session)
    if not cookies.same_origin(request):
        raise Forbidden("this form was sent from another site", code="CSRF_ORIGIN_MISMATCH")
    if not cookies.csrf_ok(request, user.data, token):
        raise Forbidden(
            "the form's CSRF token is missing or wrong; reload the page", code="CSRF_FAILED"
        )
    user.require(role)
    if user.org_id is None:
        raise NotFound("there is no org yet", code="ORG_NOT_FOUND")
    return user


@router.post("/login")
def login(
    request: Request,
    session: SessionDep,
    api_key: Annotated[str, Form()] = "",
    next: Annotated[str | None, Form()] = None,
) -> Response:
    if not cookies.same_origin(request):
        raise Forbidden("this form was sent from another site", code="CSRF_ORIGIN_MISMATCH")
    key = (
        keys.find_active_key(session, token=api_key.strip(), now=request.app.state.clock.now())
        if api_key.strip()
        else None
    )
    if key is None:
        return render(
            request,
            "login.html",
            {
                "user": None,
                "next": safe_next(next),
                "error": "That API key is unknown, revoked or expired.",
            },
            status_code=401,
        )
    return _signed_in(request, _redirect(safe_next(next)), key.id)


@router.get("/login/link")
def login_link(request: Request, session: SessionDep, token: str = "") -> Response:
    """A one-time link: a GET (followed from a terminal) that only ever signs in its own key."""
    api_key_id = (
        login_links.redeem(session, token=token, now=request.app.state.clock.now())
        if token
        else None
    )
    session.commit()
    if api_key_id is None:
        return render(
            request,
            "login.html",
            {
                "user": None,
                "next": "/console",
                "error": "That sign-in link was already used or has expired.",
            },
            status_code=401,
        )
    return _signed_in(request, _redirect("/console"), api_key_id)


@router.post("/logout")
def logout(request: Request, session: SessionDep, csrf_token: Token = None) -> Response:
    checked(request, session, csrf_token)
    response = _redirect("/console/login")
    cookies.clear(request, response)
    return response


@router.post("/org")
def switch_org(
    request: Request,
    session: SessionDep,
    org_id: Annotated[uuid.UUID, Form()],
    csrf_token: Token = None,
) -> Response:
    user = checked(request, session, csrf_token)
    if user.key_org_id is not None and org_id != user.key_org_id:
        raise Forbidden("this API key belongs to another org", code="ORG_FORBIDDEN")
    if session.get(Org, org_id) is None:
        raise NotFound("org not found", code="ORG_NOT_FOUND")
    response = _redirect("/console")
    data = cookies.SessionData(api_key_id=user.api_key_id, nonce=user.data.nonce, org_id=org_id)
    cookies.write(request, response, data)
    return response


@router.post("/patterns/{pattern_id}/status")
def change_pattern_status(
    request: Request,
    session: SessionDep,
    pattern_id: uuid.UUID,
    status: Annotated[str, Form()],
    note: Annotated[str, Form()] = "",
    csrf_token: Token = None,
) -> Response:
    user = checked(request, session, csrf_token, role="member")
    body = PatternUpdate(status=status, note=note.strip() or None)
    pattern = patterns_service.get_pattern_or_404(
        session, org_id=user.org_id, pattern_id=pattern_id, for_update=True
    )
    patterns_service.update_pattern(
        session,
        pattern=pattern,
        body=body,
        now=request.app.state.clock.now(),
        api_key_id=user.api_key_id,
        can_force=False,
        actor_role=user.role,
        settings=request.app.state.settings,
        request_id=request.state.request_id,
    )
    session.commit()
    return _redirect(f"/console/patterns/{pattern_id}?done=status")


def _blank_is_unset(value: object) -> object:
    return None if value == "" else value


# A number field of a form: text, read as a number here; left empty, the value stays as it is.
FormInt = Annotated[int | None, BeforeValidator(_blank_is_unset)]
FormFloat = Annotated[float | None, BeforeValidator(_blank_is_unset)]


class PolicyForm(BaseModel):
    """The policy form as sent: checkboxes are present or absent, numbers arrive as text (read
    here: the policy's own fields take JSON numbers only)."""

    csrf_token: str | None = None
    enabled: str | None = None
    promote_to_patterns: str | None = None
    alert_enabled: str | None = None
    min_drift: str | None = None
    scan_limit: FormInt = None
    schedule_name: str | None = None
    schedule_window_minutes: FormInt = None
    alert_max_dedupe_hit_rate: FormFloat = None
    alert_min_execution_rate: FormFloat = None
    alert_cooldown_minutes: FormInt = None

    def update(self) -> PolicyUpdate:
        values = {name: getattr(self, name) for name in POLICY_VALUES}
        values = {name: value for name, value in values.items() if value not in (None, "")}
        return PolicyUpdate(
            **values, **{name: getattr(self, name) == "on" for name in POLICY_FLAGS}
        )


@router.post("/schedule/policy")
def update_policy(
    request: Request, session: SessionDep, form: Annotated[PolicyForm, Form()]
) -> Response:
    user = checked(request, session, form.csrf_token, role="admin")
    policy_service.update_policy(
        session, org_id=user.org_id, body=form.update(), now=request.app.state.clock.now()
    )
    session.commit()
    return _redirect("/console/schedule")


@router.post("/schedule/run")
def run_now(
    request: Request,
    session: SessionDep,
    csrf_token: Token = None,
    dry_run: Annotated[str | None, Form()] = None,
    force: Annotated[str | None, Form()] = None,
) -> Response:
    """Run now: the schedule-run service path with a fresh Idempotency-Key, then the six signals."""
    user = checked(request, session, csrf_token, role="admin")
    app = request.app.state
    body = ScheduleRunCreate(org_id=user.org_id, dry_run=dry_run == "on", force=force == "on")
    result = flows.schedule_run(
        session,
        session_factory=app.session_factory,
        org_id=user.org_id,
        body=body,
        settings=app.settings,
        clock=app.clock,
        request_id=request.state.request_id,
        idempotency_key=f"console-{secrets.token_hex(16)}",
        api_key_id=user.api_key_id,
    )
    data = result.model_dump(mode="json")
    run = {
        "signals": signals.signals(data),
        "line": signals.signal_line(data),
        "dry_run": body.dry_run,
        "trigger_outcome": result.trigger.outcome,
        "notify_outcome": result.notify.outcome,
    }
    context = views.schedule(session, org_id=user.org_id, now=app.clock.now())
    return render(request, "schedule.html", {"user": user, "run": run, **context})


@router.post("/notifications/replay")
def replay(
    request: Request,
    session: SessionDep,
    csrf_token: Token = None,
    dry_run: Annotated[str | None, Form()] = None,
) -> Response:
    user = checked(request, session, csrf_token, role="admin")
    result = notifications_service.replay_dead_letters(
        session,
        org_id=user.org_id,
        event_type=None,
        limit=20,
        dry_run=dry_run == "on",
        now=request.app.state.clock.now(),
    )
    session.commit()
    return _redirect(f"/console/notifications?replayed={result.replayed_count}")
