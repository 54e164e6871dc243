"""Market data storage shared by the price and FX services: sources, timestamps, bulk writes.

* **Sources** (``market_data_sources``) are named after the provider that produced the data
  (``stooq``, ``yahoo``, ``ecb``...); a file import and a download from the same provider share
  the source, so the same price from either is the same row.
* **When a daily value is "as of"**: a close (or an FX reference rate) of date D is stored at
  the end of D in Europe/London (``timeutil.end_of_london_day``), which is what ``--as-of D``
  means, so "as of D" sees D's close and nothing later.
* **Bulk writes** go straight to the driver inside the caller's transaction, with values
  already in the exact stored form (decimals as plain text on SQLite, NUMERIC via ``COPY`` on
  PostgreSQL): SQLite gets one ``executemany``, PostgreSQL one ``COPY ... FROM STDIN``. Rows
  are never upserted: callers look up existing keys first and decide (see ``prices``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from ..core.timeutil import LONDON
from ..db import row_security
from ..db.models import MarketDataSource

_END_OF_DAY = time(23, 59, 59, 999999)


# --------------------------------------------------------------------------------------------
# Sources
# --------------------------------------------------------------------------------------------
def source_id(session: Session, name: str, *, create: bool = True) -> int | None:
    """The id of the source called ``name``, created on first use (``create``)."""
    found = session.execute(
        select(col(MarketDataSource.source_id)).where(col(MarketDataSource.name) == name)
    ).scalar()
    if found is not None or not create:
        return found
    source = MarketDataSource(name=name)
    session.add(source)
    session.flush()
    return source.source_id


def source_names(session: Session) -> dict[int, str]:
    rows = session.execute(select(col(MarketDataSource.source_id), col(MarketDataSource.name))).all()
    return {row[0]: row[1] for row in rows}


# --------------------------------------------------------------------------------------------
# Daily timestamps
# --------------------------------------------------------------------------------------------
@lru_cache(maxsize=4096)
def month_offset(year: int, month: int) -> timedelta | None:
    """London's UTC offset at the end of every day of the month, or None if it changes within it."""
    first = datetime.combine(date(year, month, 1), _END_OF_DAY, tzinfo=LONDON).utcoffset()
    last_day = date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)
    last = datetime.combine(last_day, _END_OF_DAY, tzinfo=LONDON).utcoffset()
    return first if first == last else None


def close_time(day: date) -> datetime:
    """The stored ``as_of`` of a daily value of ``day``: the end of that day in London, in UTC."""
    offset = month_offset(day.year, day.month)
    if offset is None:
        offset = datetime.combine(day, _END_OF_DAY, tzinfo=LONDON).utcoffset()
        assert offset is not None
    return (datetime.combine(day, _END_OF_DAY) - offset).replace(tzinfo=UTC)


def close_day(as_of: datetime) -> date:
    """The London date of a stored ``as_of`` (inverse of ``close_time`` for daily values)."""
    return as_of.astimezone(LONDON).date()


def day_start(day: date) -> datetime:
    """The first instant of ``day`` in London, in UTC (values of days before ``day`` are earlier)."""
    return datetime.combine(day, time(0), tzinfo=LONDON).astimezone(UTC)


# --------------------------------------------------------------------------------------------
# Bulk insert
# --------------------------------------------------------------------------------------------
def utc_text(moment: datetime) -> str:
    """A UTC timestamp as SQLAlchemy stores it on SQLite (naive UTC, always with microseconds)."""
    m = moment.astimezone(UTC)
    return f"{m.year:04d}-{m.month:02d}-{m.day:02d} {m:%H:%M:%S}.{m.microsecond:06d}"


def _london_offset(day: date) -> timedelta:
    offset = datetime.combine(day, _END_OF_DAY, tzinfo=LONDON).utcoffset()
    assert offset is not None
    return offset


def _suffix(offset: timedelta) -> str | None:
    """`` HH:MM:SS.ffffff`` (UTC) of the end of a London day at ``offset``, or None when the
    UTC date is not the London one (local mean time before 1847)."""
    end = datetime.combine(date(2000, 1, 1), _END_OF_DAY) - offset
    if end.date() != date(2000, 1, 1):
        return None
    return f" {end:%H:%M:%S}.{end.microsecond:06d}"


@lru_cache(maxsize=8192)
def _month_suffixes(year: int, month: int) -> tuple[int, str | None, str | None]:
    """(first day of the month on the second offset, suffix before it, suffix from it).

    London's offset changes at most once in any month (true since 1847, the 1940s double
    summer time included), so a binary search over the days finds the change.
    """
    last = (date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)).day
    before, after = _london_offset(date(year, month, 1)), _london_offset(date(year, month, last))
    if before == after:
        return 32, _suffix(before), _suffix(before)
    lo, hi = 1, last
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _london_offset(date(year, month, mid)) == before:
            lo = mid
        else:
            hi = mid
    return hi, _suffix(before), _suffix(after)


def close_texts(stamps: Sequence[date | datetime]) -> list[str]:
    """``utc_text`` of each stamp: ``close_time(day)`` for a date, the instant for a datetime.

    Fast for long daily series: the London offsets are worked out once per month.
    """
    out: list[str] = []
    append = out.append
    month = (0, 0)
    change, before, after = 32, None, None
    for stamp in stamps:
        if type(stamp) is not date:
            append(utc_text(stamp) if isinstance(stamp, datetime) else utc_text(close_time(stamp)))
            continue
        if (stamp.year, stamp.month) != month:
            month = (stamp.year, stamp.month)
            change, before, after = _month_suffixes(*month)
        suffix = before if stamp.day < change else after
        append(stamp.isoformat() + suffix if suffix is not None else utc_text(close_time(stamp)))
    return out


def decimal_texts(values: Sequence[Decimal | None]) -> list[str | None]:
    """``decimal_text`` of each value; ``str`` is three times faster and the same text for
    prices (no exponent, not negative zero), so it is used unless a value needs more."""
    texts = [None if v is None else str(v) for v in values]
    joined = "".join(filter(None, texts))
    if "E" in joined or "-0" in joined:
        return [decimal_text(v) for v in values]
    return texts


def decimal_text(value: Decimal | None) -> str | None:
    """A Decimal as ExactDecimal stores it on SQLite (plain, non-scientific text)."""
    if value is None:
        return None
    text = format(value, "f")
    return "0" if text == "-0" else text


def bulk_insert(
    session: Session,
    table: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    timestamp_columns: Iterable[str] = (),
) -> int:
    """Insert ``rows`` in the caller's transaction (see ``bulk_insert_chunks``)."""
    return bulk_insert_chunks(session, table, columns, [rows], timestamp_columns=timestamp_columns)


def bulk_insert_chunks(
    session: Session,
    table: str,
    columns: Sequence[str],
    chunks: Iterable[Sequence[Sequence[Any]]],
    *,
    timestamp_columns: Iterable[str] = (),
) -> int:
    """Insert the rows of every chunk in the caller's transaction: ``executemany`` on SQLite,
    one ``COPY`` on PostgreSQL (the server stores a chunk while the next one is being built).
    Returns the row count.

    Values come in stored form: timestamps as ``utc_text`` (UTC), decimals as
    ``decimal_text``, booleans as ``bool``, JSON as text. ``timestamp_columns`` names the
    timestamp columns (PostgreSQL is told they are UTC).
    """
    connection = session.connection()
    cursor = connection.connection.cursor()
    count = 0
    try:
        if connection.dialect.name == "sqlite":
            marks = ", ".join("?" for _ in columns)
            statement = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"
            for rows in chunks:
                if rows:
                    cursor.executemany(statement, rows)
                    count += len(rows)
        elif row_security.row_security_active(connection, table):
            # A person's own login: PostgreSQL refuses COPY into a table row security restricts.
            # The values go as text with the server casting them, as COPY would.
            stamps = {columns.index(name) for name in timestamp_columns}
            marks = ", ".join("%s" for _ in columns)
            statement = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"
            for rows in chunks:
                if rows:
                    cursor.executemany(statement, [_with_zone(row, stamps) for row in rows])
                    count += len(rows)
        else:
            stamps = {columns.index(name) for name in timestamp_columns}
            with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for rows in chunks:
                    if rows:
                        copy.write(copy_text(rows, stamps))
                        count += len(rows)
    finally:
        cursor.close()
    return count


def _with_zone(row: Sequence[Any], stamps: set[int]) -> list[Any]:
    """A row for executemany: the UTC timestamps (``utc_text``) marked as UTC."""
    return [f"{v}+00" if i in stamps and isinstance(v, str) else v for i, v in enumerate(row)]


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_text(rows: Sequence[Sequence[Any]], timestamp_indexes: Iterable[int] = ()) -> str:
    """Rows in PostgreSQL's COPY text format (values strings, bools, ints or None); the cells at
    ``timestamp_indexes`` are UTC timestamps and get the ``+00`` zone. Built column by column."""
    if not rows:
        return ""
    stamps = set(timestamp_indexes)
    cells = [_copy_column(column, index in stamps) for index, column in enumerate(zip(*rows, strict=True))]
    return "\n".join(map("\t".join, zip(*cells, strict=True))) + "\n"


def _copy_column(values: Sequence[Any], is_timestamp: bool) -> list[str]:
    kinds = {type(v) for v in values}
    if kinds == {str}:
        joined = "".join(values)
        if any(c in joined for c in "\\\t\n\r"):
            out = [v.translate(_COPY_ESCAPES) for v in values]
        else:
            out = list(values)
    elif kinds == {bool}:
        out = ["t" if v else "f" for v in values]
    elif kinds == {int}:
        out = list(map(str, values))
    else:
        out = [_copy_cell(v) for v in values]
    if is_timestamp:
        out = [v if v == "\\N" else v + "+00" for v in out]
    return out


def _copy_cell(value: Any) -> str:
    if value is None:
        return "\\N"
    if value is True:
        return "t"
    if value is False:
        return "f"
    if isinstance(value, str):
        return value.translate(_COPY_ESCAPES)
    return str(value)
