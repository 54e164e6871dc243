"""Writing a batch's entries, a column at a time: on SQLite as multi-row ``INSERT … VALUES``
statements, on PostgreSQL by COPY with psycopg (executemany where row-level security restricts
the login), with the values rendered as the column types would store them.

A million rows through SQLAlchemy's per-row parameter processing cost more than the insert
itself, so the values go to the driver as plain values: exact decimal text and naive UTC
timestamps on SQLite; Decimals and aware datetimes on PostgreSQL. Each column is converted in
one pass (``str`` of a Decimal is ``decimal_str`` but for an exponent or a negative zero, which
one search of the column's text finds).

On SQLite one row per statement costs a statement's overhead per row (its statement journal,
its foreign-key and trigger bookkeeping): a few hundred rows per statement halve the time of
the insert itself (``bench/bench_ledger.py`` prints it beside a plain ``executemany``), and
what every row shares (the batch, the portfolio, a column NULL throughout) is bound once or not
at all. The rows are the same, in the same order, so they take the same ids.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from itertools import chain, repeat
from operator import attrgetter
from typing import Any

from sqlalchemy import Connection, insert
from sqlalchemy.sql.compiler import SQLCompiler
from sqlmodel import Session

from ...core.money import decimal_str
from ...db import row_security
from ...engine import book as bk
from .model import ENTRIES, NewEntry

ENTRY_COLUMNS = (
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
# Rows per INSERT on SQLite (fewer where the build allows fewer bound values per statement).
ROWS_PER_STATEMENT = 400

Row = tuple[Any, ...]
Column = Sequence[Any]

_zone = attrgetter("tzinfo")
# A number text that is no plain decimal text: an exponent, or a negative zero (one a line).
_NOT_PLAIN = re.compile(r"E|^-0(?:\.0*)?$", re.MULTILINE)


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
    if not ordered:
        return
    connection = session.connection()
    dialect = connection.dialect
    columns = entry_columns(ordered, normalised, carried, sqlite=dialect.name == "sqlite")
    if dialect.name == "sqlite":
        _insert_values(connection, batch_id, portfolio_id, columns)
        return
    rows = list(zip(repeat(batch_id), repeat(portfolio_id), *columns))
    if dialect.name == "postgresql" and dialect.driver == "psycopg" and _may_copy(connection):
        _copy(connection, rows)
    else:
        compiled = insert(ENTRIES).compile(dialect=dialect, column_keys=list(ENTRY_COLUMNS))
        assert isinstance(compiled, SQLCompiler)  # what a Core insert compiles to
        _executemany(connection, compiled, rows)


def entry_columns(
    ordered: Sequence[bk.Entry],
    normalised: Sequence[NewEntry],
    carried: Mapping[int, Decimal],
    *,
    sqlite: bool,
) -> list[Column]:
    """The values of every column of ``ENTRY_COLUMNS`` after the batch and the portfolio, one
    sequence per column in the order of ``ordered``: as SQLite stores them (``sqlite``: decimal
    text, naive UTC text), else as the driver takes them (Decimals, aware datetimes)."""
    keys, times, kinds, cash, fees, listing_ids, units, prices, costs, corrects, _ = zip(
        *ordered, strict=True
    )
    news = [normalised[-key - 1] for key in keys]
    currencies = [e.original_currency for e in news]
    amounts = [e.original_amount for e in news]
    notes = [e.notes for e in news]
    refs = [e.external_ref for e in news]
    if carried:
        costs = tuple(carried.get(key, cost) for key, cost in zip(keys, costs, strict=True))
    numbers: list[Column] = [units, prices, fees, cash, amounts, costs]
    moments: Column = times
    if sqlite:
        moments = _sqlite_moments(times)
        numbers = [_plain_texts(column) for column in numbers]
    type_values = [kind._value_ for kind in kinds]
    return [moments, type_values, listing_ids, *numbers[:4], currencies, numbers[4], notes, refs,
            corrects, numbers[5]]  # fmt: skip


def _sqlite_moments(values: Sequence[datetime]) -> list[str]:
    """What UTCDateTime stores on SQLite: naive UTC, "YYYY-MM-DD HH:MM:SS.ffffff". (The date's
    and the naive time's own texts: a third faster than an aware datetime's, whose offset is
    asked for and then cut off.)"""
    if set(map(_zone, values)) != {UTC}:
        values = [value.astimezone(UTC) for value in values]
    return [value.date().isoformat() + " " + value.time().isoformat("microseconds") for value in values]


def _plain_texts(values: Sequence[Decimal | None]) -> list[str | None]:
    """``decimal_str`` of each value (what ExactDecimal stores on SQLite): ``str`` is the same
    text unless it uses an exponent or is a negative zero, which one search of the column finds."""
    texts = [None if value is None else str(value) for value in values]
    if _NOT_PLAIN.search("\n".join(filter(None, texts))):
        return [decimal_str(value) for value in values]
    return texts


def _insert_values(connection: Connection, batch_id: int, portfolio_id: int, columns: list[Column]) -> None:
    """The rows in order, ``ROWS_PER_STATEMENT`` to an ``INSERT … VALUES (…), (…)``. What every
    row shares is no parameter: the batch and the portfolio are written in the statement (ids
    of ours, integers), and a column NULL in every row is left to its default, NULL."""
    assert type(batch_id) is int and type(portfolio_id) is int  # written into the SQL
    count = len(columns[0])
    names, given = ["ledger_batch_id", "portfolio_id"], []
    for name, column in zip(ENTRY_COLUMNS[2:], columns, strict=True):
        if column.count(None) != count or not _null_by_default(name):
            names.append(name)
            given.append(column)
    width = len(given)
    flat = list(chain.from_iterable(zip(*given, strict=True)))
    per = min(ROWS_PER_STATEMENT, _variable_limit(connection) // width)
    full = count // per * per
    head = f"INSERT INTO {ENTRIES.name} ({', '.join(names)}) VALUES "
    one = f"({batch_id}, {portfolio_id}, {', '.join('?' * width)})"
    if full:
        step = per * width
        chunks = [tuple(flat[start : start + step]) for start in range(0, full * width, step)]
        connection.exec_driver_sql(head + ", ".join([one] * per), chunks)
    if full < count:
        connection.exec_driver_sql(head + ", ".join([one] * (count - full)), tuple(flat[full * width :]))


def _null_by_default(name: str) -> bool:
    column = ENTRIES.c[name]
    return bool(column.nullable) and column.server_default is None


def _variable_limit(connection: Connection) -> int:
    """How many values one SQLite statement may bind (999 on builds before 3.32)."""
    raw = connection.connection.driver_connection
    getlimit = getattr(raw, "getlimit", None)
    if getlimit is None:
        return 999
    limit: int = getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    return limit


def _may_copy(connection: Connection) -> bool:
    """PostgreSQL refuses ``COPY FROM`` into a table whose rows row-level security restricts
    (a person's own login, ``db.row_security``): such a login inserts through executemany."""
    return not row_security.row_security_active(connection, ENTRIES.name)


def _copy(connection: Connection, rows: Sequence[Row]) -> None:
    """COPY: the fastest way in, and still inside the session's transaction."""
    raw = connection.connection.driver_connection
    assert raw is not None
    statement = f"COPY {ENTRIES.name} ({', '.join(ENTRY_COLUMNS)}) FROM STDIN"
    with raw.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)


def _executemany(connection: Connection, compiled: SQLCompiler, rows: list[Row]) -> None:
    """The statement Core compiled for this dialect, its parameters in its own order or names."""
    if compiled.positional:
        positions = compiled.positiontup
        assert positions is not None
        order = [ENTRY_COLUMNS.index(name) for name in positions]
        if order != list(range(len(ENTRY_COLUMNS))):
            rows = [tuple(row[i] for i in order) for row in rows]
        connection.exec_driver_sql(str(compiled), rows)
    else:
        names = [compiled.binds[name].key for name in ENTRY_COLUMNS]
        connection.exec_driver_sql(str(compiled), [dict(zip(names, row, strict=True)) for row in rows])
