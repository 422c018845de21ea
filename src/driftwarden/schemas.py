"""The one way a response body is built from a database row: read its attributes by name."""

from __future__ import annotations

from typing import Any, Self

from pydantic import BaseModel, ConfigDict


class _Overlay:
    """A row seen through `values`: a name there wins over the row's attribute of that name."""

    __slots__ = ("_row", "_values")

    def __init__(self, row: object, values: dict[str, Any]) -> None:
        self._row = row
        self._values = values

    def __getattr__(self, name: str) -> Any:
        values = self._values
        return values[name] if name in values else getattr(self._row, name)


class ReadModel(BaseModel):
    """Base of every `…Read` built from a row; `derived` gives what the row does not store."""

    model_config = ConfigDict(from_attributes=True)

    @classmethod
    def of(cls, row: object, **derived: Any) -> Self:
        """Validate the row's attributes, with `derived` values (computed, renamed) in front."""
        return cls.model_validate(_Overlay(row, derived) if derived else row)
