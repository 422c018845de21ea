"""Filter forms send every field, empty ones too: read them as text, blank meaning 'any'."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from driftwarden.errors import Invalid


def choice(value: str, allowed: Iterable[str], *, field: str) -> str | None:
    if not value:
        return None
    options = tuple(allowed)
    if value not in options:
        raise Invalid(
            f"{field} must be one of {', '.join(options)}",
            details=[{"loc": ["query", field], "msg": "not an allowed value", "type": "enum"}],
        )
    return value


def uuid_or_none(value: str, *, field: str) -> uuid.UUID | None:
    if not value:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        raise Invalid(
            f"{field} must be a UUID",
            details=[{"loc": ["query", field], "msg": "not a UUID", "type": "uuid"}],
        ) from None


def query(filters: dict[str, Any]) -> dict[str, Any]:
    """The filters worth repeating in a pager link (set ones only)."""
    return {
        k: ("true" if v is True else v) for k, v in filters.items() if v not in (None, "", False)
    }
