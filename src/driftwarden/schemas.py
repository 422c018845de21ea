"""The one way a response body is built from a database row: read its attributes by name; and the
scalar types a request body's fields take as JSON has them."""

from __future__ import annotations

from typing import Annotated, Any, Self

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Strict
from pydantic_core import PydanticCustomError

# A request body's numbers and booleans as the OpenAPI document states them. FastAPI validates
# the parsed JSON in pydantic's lax mode, which would take `true` for 1, 1 for `true` and "5" for
# 5; these refuse such input with a 422 instead. Python callers pass real ints and bools.
Integer = Annotated[int, Strict()]
Number = Annotated[float, Strict()]  # an integer is a number, as in JSON
Boolean = Annotated[bool, Strict()]


def _date_time_text(value: object) -> object:
    """Lax mode would read a number, or a string of digits, as Unix time."""
    if isinstance(value, (int, float)) or (isinstance(value, str) and _is_number(value)):
        raise PydanticCustomError("datetime_type", "Input should be an RFC 3339 date-time string")
    return value


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# A date-time field of a request body: an RFC 3339 string with its offset (a naive one would be
# compared with aware times); from Python, an aware datetime.
Timestamp = Annotated[AwareDatetime, BeforeValidator(_date_time_text)]


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
