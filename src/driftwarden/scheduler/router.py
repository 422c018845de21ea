"""HTTP for the scheduler domain."""

from __future__ import annotations

from fastapi import APIRouter

from driftwarden.api.envelope import ERROR_RESPONSES

router = APIRouter(responses=ERROR_RESPONSES)
