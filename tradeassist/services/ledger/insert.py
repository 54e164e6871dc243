"""Writing a batch's entries: one executemany (COPY on PostgreSQL with psycopg, unless row-level
security restricts the login), with the values rendered as the column types would store them.

A million rows through SQLAlchemy's per-row parameter processing cost more than the insert
itself, so the rows go to the driver as plain tuples: exact decimal text and naive UTC
timestamps on SQLite; Decimals and aware datetimes on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, insert
from sqlalchemy.sql.compiler import SQLCompiler
from sqlmodel import Session

from ...core.money import decimal_str
from ...db import row_security
from ...engine import book as bk
from .model import ENTRIES, NewEntry

_ENTRY_COLUMNS = (
    "ledger_batch_id",
    "portfolio_id",
    "entry_time",
    "entry_type",
    "listing_id",
    "units",
    "price",
    "fees_base",
    "cash_amount_base",
    "original_currency",
    "original_amount",
    "notes",
    "external_ref",
    "corrects_entry_id",
    "cost_base",
)

Row = tuple[Any, ...]


def insert_entries(
    session: Session,
    batch_id: int,
    portfolio_id: int,
    ordered: Sequence[bk.Entry],
    normalised: Sequence[NewEntry],
    carried: Mapping[int, Decimal],
) -> None:
    """Insert the new entries (``ordered``, keyed -(index + 1) into ``normalised``) of a batch;
    ``carried`` is the cost a TRANSFER in brings from the TRANSFER out it names."""
    connection = session.connection()
    dialect = connection.dialect
    if dialect.name == "sqlite":
        rows = _rows(batch_id, portfolio_id, ordered, normalised, carried, _plain_text, _sqlite_moment)
    else:
        rows = _rows(batch_id, portfolio_id, ordered, normalised, carried, _same_value, _same_value)
    if dialect.name == "postgresql" and dialect.driver == "psycopg" and _may_copy(connection):
        _copy(connection, rows)
    else:
        compiled = insert(ENTRIES).compile(dialect=dialect, column_keys=list(_ENTRY_COLUMNS))
        assert isinstance(compiled, SQLCompiler)  # what a Core insert compiles to
        _executemany(connection, compiled, rows)


def _rows(
    batch_id: int,
    portfolio_id: int,
    ordered: Sequence[bk.Entry],
    normalised: Sequence[NewEntry],
    carried: Mapping[int, Decimal],
    number: Callable[[Decimal | None], Any],
    moment: Callable[[datetime], Any],
) -> list[Row]:
    rows: list[Row] = []
    append = rows.append
    for entry in ordered:
        e = normalised[-entry.key - 1]
        append(
            (
                batch_id,
                portfolio_id,
                moment(entry.entry_time),
                entry.entry_type.value,
                entry.listing_id,
                number(entry.units),
                number(entry.price),
                number(entry.fees),
                number(entry.cash),
                e.original_currency,
                number(e.original_amount),
                e.notes,
                e.external_ref,
                e.corrects_entry_id,
                number(carried.get(entry.key, e.cost_base)),
            )
        )
    return rows


def _may_copy(connection: Connection) -> bool:
    """PostgreSQL refuses ``COPY FROM`` into a table whose rows row-level security restricts
    (a person's own login, ``db.row_security``): such a login inserts through executemany."""
    return not row_security.row_security_active(connection, ENTRIES.name)


def _copy(connection: Connection, rows: Sequence[Row]) -> None:
    """COPY: the fastest way in, and still inside the session's transaction."""
    raw = connection.connection.driver_connection
    assert raw is not None
    statement = f"COPY {ENTRIES.name} ({', '.join(_ENTRY_COLUMNS)}) FROM STDIN"
    with raw.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)


def _executemany(connection: Connection, compiled: SQLCompiler, rows: list[Row]) -> None:
    """The statement Core compiled for this dialect, its parameters in its own order or names."""
    if compiled.positional:
        positions = compiled.positiontup
        assert positions is not None
        order = [_ENTRY_COLUMNS.index(name) for name in positions]
        if order != list(range(len(_ENTRY_COLUMNS))):
            rows = [tuple(row[i] for i in order) for row in rows]
        connection.exec_driver_sql(str(compiled), rows)
    else:
        names = [compiled.binds[name].key for name in _ENTRY_COLUMNS]
        connection.exec_driver_sql(str(compiled), [dict(zip(names, row, strict=True)) for row in rows])


def _sqlite_moment(value: datetime) -> str:
    """What UTCDateTime stores on SQLite: naive UTC, "YYYY-MM-DD HH:MM:SS.ffffff"."""
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat(" ", "microseconds")[:26]


def _same_value(value: Any) -> Any:
    return value


def _plain_text(value: Decimal | None) -> str | None:
    """``decimal_str`` (what ExactDecimal stores on SQLite), with a fast path: ``str`` is the
    same text unless it uses an exponent or is a negative zero."""
    if value is None:
        return None
    text = str(value)
    if "E" in text or (text[0] == "-" and not value):
        return decimal_str(value)
    return text
