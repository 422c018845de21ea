"""ReadModel: a response body from a row's attributes, with derived values in front."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from pydantic import ValidationError

from driftwarden.schemas import ReadModel


class ThingRead(ReadModel):
    id: uuid.UUID
    name: str
    is_big: bool
    created_at: datetime


ROW = SimpleNamespace(
    id=uuid.UUID(int=7), name="seven", size=9, created_at=datetime(2026, 1, 2, tzinfo=UTC)
)


def test_attributes_and_derived_values_make_the_body() -> None:
    body = ThingRead.of(ROW, is_big=ROW.size > 5).model_dump(mode="json")
    assert body == {
        "id": "00000000-0000-0000-0000-000000000007",
        "name": "seven",
        "is_big": True,
        "created_at": "2026-01-02T00:00:00Z",
    }


def test_a_derived_value_wins_over_the_attribute_of_that_name() -> None:
    assert ThingRead.of(ROW, is_big=False, name="renamed").name == "renamed"


def test_a_missing_attribute_is_a_validation_error() -> None:
    with pytest.raises(ValidationError, match="is_big"):
        ThingRead.of(ROW)
