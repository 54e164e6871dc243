"""Plain rows a column at a time: NamedTuples read into columns and built from columns by field
name, with no Python frame per row.

A million-row import makes several kinds of row (the parsed entries, the entries to post, the
book's entries); a NamedTuple's own constructor is a Python function, called once per row.
``from_columns`` builds them with ``tuple.__new__`` (what ``_make`` calls) over the zipped
columns instead, after checking that every field is named or has a default, so a field added
later with a default is filled in rather than shifting the others.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from itertools import repeat
from typing import Any, TypeVar

Row = TypeVar("Row", bound=tuple[Any, ...])


def columns_of(cls: type[Row], rows: Sequence[Row]) -> dict[str, tuple[Any, ...]]:
    """Each field's values (every field of the NamedTuple ``cls``, by name, in ``rows``' order)."""
    fields: tuple[str, ...] = cls._fields  # type: ignore[attr-defined]
    if not rows:
        return {name: () for name in fields}
    return dict(zip(fields, zip(*rows, strict=True), strict=True))


def only_defaults(cls: type[Row], columns: Mapping[str, Sequence[Any]], fields: Iterable[str]) -> bool:
    """Whether each of ``fields`` holds nothing but its default (a field without one: False)."""
    defaults: dict[str, Any] = cls._field_defaults  # type: ignore[attr-defined]
    for name in fields:
        if name not in defaults:
            return False
        column, default = columns[name], defaults[name]
        if column.count(default) != len(column):
            return False
    return True


def from_columns(cls: type[Row], count: int, columns: Mapping[str, Iterable[Any]]) -> list[Row]:
    """``count`` rows of the NamedTuple ``cls``, each field from the column of its name, or its
    default where no column is named (a field without a default must be named)."""
    fields: tuple[str, ...] = cls._fields  # type: ignore[attr-defined]
    defaults: dict[str, Any] = cls._field_defaults  # type: ignore[attr-defined]
    unknown = set(columns).difference(fields)
    if unknown:
        raise TypeError(f"{cls.__name__} has no field {', '.join(sorted(unknown))}")
    ordered: list[Iterable[Any]] = []
    for name in fields:
        if name in columns:
            ordered.append(columns[name])
        elif name in defaults:
            ordered.append(repeat(defaults[name], count))
        else:
            raise TypeError(f"{cls.__name__}.{name} has no default: name its column")
    return list(map(tuple.__new__, repeat(cls, count), zip(*ordered, strict=True)))
