"""``core.rows``: NamedTuples read into columns and built from columns by field name."""

from __future__ import annotations

from typing import NamedTuple

import pytest

from tradeassist.core.rows import columns_of, from_columns, only_defaults


class Pair(NamedTuple):
    left: int
    right: str
    note: str | None = None
    tags: tuple[str, ...] = ()


def test_columns_round_trip_and_defaults_fill_what_is_not_named() -> None:
    rows = from_columns(Pair, 3, {"left": [1, 2, 3], "right": iter("abc")})
    assert rows == [Pair(1, "a"), Pair(2, "b"), Pair(3, "c")]
    assert all(type(row) is Pair for row in rows)
    assert rows[0].note is None and rows[0].tags == ()
    columns = columns_of(Pair, rows)
    assert columns == {"left": (1, 2, 3), "right": ("a", "b", "c"), "note": (None,) * 3, "tags": ((),) * 3}
    assert from_columns(Pair, 3, columns) == rows


def test_empty_rows_have_empty_columns() -> None:
    assert columns_of(Pair, []) == {"left": (), "right": (), "note": (), "tags": ()}
    assert from_columns(Pair, 0, {"left": [], "right": []}) == []


def test_a_field_without_default_must_be_named_and_no_unknown_field_is_taken() -> None:
    with pytest.raises(TypeError, match="right has no default"):
        from_columns(Pair, 1, {"left": [1]})
    with pytest.raises(TypeError, match="no field colour"):
        from_columns(Pair, 1, {"left": [1], "right": ["a"], "colour": ["red"]})


def test_columns_of_another_length_are_refused() -> None:
    with pytest.raises(ValueError):
        from_columns(Pair, 2, {"left": [1, 2], "right": ["a"]})
    with pytest.raises(ValueError):
        from_columns(Pair, 3, {"left": [1, 2], "right": ["a", "b"]})


def test_only_defaults() -> None:
    columns = columns_of(Pair, [Pair(1, "a"), Pair(2, "b", tags=("x",))])
    assert only_defaults(Pair, columns, ["note"])
    assert not only_defaults(Pair, columns, ["note", "tags"])
    assert not only_defaults(Pair, columns, ["left"])  # no default to hold
