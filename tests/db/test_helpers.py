"""chunked(): bounded batches, in order, nothing lost or repeated."""

from __future__ import annotations

import pytest

from driftwarden.db.helpers import BATCH_SIZE, chunked


@pytest.mark.parametrize(
    ("items", "size", "expected"),
    [
        ([], 3, []),
        ([1, 2], 3, [[1, 2]]),
        ([1, 2, 3], 3, [[1, 2, 3]]),
        ([1, 2, 3, 4, 5, 6, 7], 3, [[1, 2, 3], [4, 5, 6], [7]]),
        ("abcd", 1, [["a"], ["b"], ["c"], ["d"]]),
    ],
)
def test_chunked_splits_in_order(items, size: int, expected: list) -> None:  # type: ignore[no-untyped-def]
    assert list(chunked(items, size)) == expected


def test_chunked_reads_a_generator_once_and_defaults_to_the_batch_size() -> None:
    batches = list(chunked(i for i in range(2 * BATCH_SIZE + 1)))
    assert [len(b) for b in batches] == [BATCH_SIZE, BATCH_SIZE, 1]
    assert batches[2] == [2 * BATCH_SIZE]


def test_chunked_refuses_a_size_below_one() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        list(chunked([1], 0))
