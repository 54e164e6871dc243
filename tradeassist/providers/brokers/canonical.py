"""The canonical ledger CSV: tradeassist's own import/export format, one ledger entry a line.

Header (exactly): ``entry_time,entry_type,ticker,exchange,units,price,fees_base,
cash_amount_base,external_ref,notes``.

* ``entry_time``: ISO 8601. A date alone means midnight UTC, a naive timestamp means UTC,
  an offset is honoured; everything is returned in UTC.
* ``price`` is in the listing's own quote currency and scale (pence for a GBX listing).
* ticker, exchange, units and price are empty for cash-only entries.
* an empty ``external_ref`` gets a deterministic content hash, so that re-importing the same
  file is recognisable; a reference repeated within the file is an error.

This path must carry a million rows in a few seconds. Rows are read in chunks and each chunk is
converted a column at a time (``_Rows.bulk``: C-level ``map`` over a column, no Python call per
cell), taking only what is plainly right: every time in UTC, every number plain decimal text
well inside the bounds, every reference given and new. A chunk with anything else goes row by
row (``_Rows.fast``, else ``_Rows.careful``, which says what is wrong), so both ways give the
same entries and every bad line is named. Decimals for repeated texts are shared.
"""

from __future__ import annotations

import csv
import gc
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from itertools import islice, repeat
from operator import attrgetter, is_not, le
from typing import Any

from ...core import limits
from ...core.enums import EntryType
from ...core.errors import FileFormatError, ValidationError
from ...core.limits import (
    MAX_AMOUNT,
    MAX_NOTES_LENGTH,
    MAX_NUMBER_TEXT,
    MAX_PRICE,
    MAX_REF_LENGTH,
    number_problem,
)
from ...core.money import ZERO, to_decimal
from ...core.rows import from_columns
from .base import (
    ContentRefs,
    ParsedEntry,
    ParsedFile,
    Problems,
    Source,
    SourceFile,
    SourceText,
    convention_problem,
    entry_text_problem,
    header_error,
    is_blank,
    oldest_first,
    read_source,
)

FORMAT = "canonical"
HEADER = (
    "entry_time",
    "entry_type",
    "ticker",
    "exchange",
    "units",
    "price",
    "fees_base",
    "cash_amount_base",
    "external_ref",
    "notes",
)
_TYPES = {t.value: t for t in EntryType} | {t.value.lower(): t for t in EntryType}
fromiso = datetime.fromisoformat
_MISSING: Any = object()
_CACHE_LIMIT = 50_000  # distinct number texts remembered per column group
# A plain cash text this short (no exponent) has at most 18 decimal places and 19 digits:
# within the bounds but for its size, which the fast path compares.
_PLAIN_CASH = 19
_CHUNK = 50_000  # rows converted a column at a time
_zone = attrgetter("tzinfo")
_not_none = partial(is_not, None)


class _BadRow(Exception):
    pass


def _number(text: str, what: str, limit: Decimal = MAX_AMOUNT) -> Decimal:
    """A cell's number within the bounds of ``core.limits`` (``to_decimal``'s), or ``_BadRow``."""
    try:
        return to_decimal(text, what=what, limit=limit)  # thousands separators, £
    except ValidationError as exc:
        raise _BadRow(str(exc)) from None


def _fresh(cache: dict[str, Any], text: str) -> Decimal:
    """A number not seen before, on the fast path: plain text within the bounds only,
    remembered if room (anything else is left to the careful path, which says why)."""
    if len(text) > MAX_NUMBER_TEXT:
        raise ValueError(text)
    value = Decimal(text)
    if not value.is_finite() or number_problem(value) is not None:
        raise ValueError(text)
    if len(cache) < _CACHE_LIMIT:
        cache[text] = value
    return value


def _numbers(
    texts: Sequence[str], empty: Decimal | None, limit: Decimal, *, shared: bool
) -> list[Any] | None:
    """A column's numbers ("" is ``empty``), or None unless every text is plainly a number
    inside the bounds: at most ``_PLAIN_CASH`` characters without an exponent (so within the
    digits and places of ``core.limits``), finite, and at most ``limit`` in size. ``shared``:
    one Decimal per distinct text, for a column of few (units, fees); prices are mostly
    different. (The texts the fast path takes, and a price's bound as the careful path's.)"""
    distinct = set(texts) if shared else texts
    if max(map(len, distinct)) > _PLAIN_CASH:
        return None
    joined = "".join(distinct)
    if "e" in joined or "E" in joined:
        return None
    given: Iterable[Decimal | None]
    try:
        if shared:
            values = {text: Decimal(text) if text else empty for text in distinct}
            column = list(map(values.__getitem__, texts))
            given = values.values()
        else:
            column = given = [Decimal(text) if text else empty for text in texts]
    except ArithmeticError:  # no number at all: the careful path says so
        return None
    numbers: list[Decimal] = list(filter(_not_none, given))  # type: ignore[arg-type]
    if not numbers:
        return column
    if not all(map(Decimal.is_finite, numbers)):
        return None
    return column if -limit <= min(numbers) and max(numbers) <= limit else None


def _time(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise _BadRow(f"entry_time: {text!r} is not an ISO 8601 date or timestamp") from None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value if value.tzinfo is UTC else limits.in_utc(value, "entry_time", text)
    except ValueError as exc:
        raise _BadRow(str(exc)) from None


def parse_canonical(source: Source) -> ParsedFile:
    """Parse a canonical ledger CSV; raise ``FileFormatError`` naming every bad line."""
    src = read_source(source)
    reader = csv.reader(src.stream())
    try:
        return _parse(src, reader)
    except UnicodeDecodeError:
        _ = src.text  # decodes the whole file again to name the exact line, and raises
        raise


class _Rows:
    """One file's rows as entries: a fast path for well-formed rows and a careful path that
    says why a row is wrong. Both share what was seen before, already validated: tickers and
    exchanges (upper-cased), units and prices ("" = none), fees ("" = 0). They repeat a lot;
    sharing one Decimal per text also keeps a million entries small."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.content_ref = ContentRefs(FORMAT)
        self.names: dict[str, str | None] = {"": None}
        self.optional: dict[str, Decimal | None] = {"": None}
        self.fee_values: dict[str, Decimal] = {"": ZERO}

    def fast(self, row: list[str], line: int) -> ParsedEntry | None:
        """The entry of a well-formed row of known texts, or None: anything odd (a new
        ticker, a thousands separator, a bad value) is left to ``careful``, which says why."""
        try:
            time_text, type_text, tk, ex, un, pr, fe, cash_text, ref, notes = row
            entry_time = fromiso(time_text)
            if entry_time.tzinfo is not UTC:
                return None
            entry_type = _TYPES[type_text]
            ticker = self.names[tk]
            exchange = self.names[ex]
            units = self.optional.get(un, _MISSING)
            if units is _MISSING:
                units = _fresh(self.optional, un)
            price = self.optional.get(pr, _MISSING)
            if price is _MISSING:
                price = _fresh(self.optional, pr)
            fees = self.fee_values.get(fe, _MISSING)
            if fees is _MISSING:
                fees = _fresh(self.fee_values, fe)
            if len(cash_text) > _PLAIN_CASH or "E" in cash_text or "e" in cash_text:
                return None  # within the bounds for certain only when short and plain
            cash = Decimal(cash_text)
            ref = ref.strip()
            if (
                ref
                and len(ref) <= MAX_REF_LENGTH
                and len(notes) <= MAX_NOTES_LENGTH
                and cash.is_finite()
                and -MAX_AMOUNT <= cash <= MAX_AMOUNT
                and (price is None or price <= MAX_PRICE)
                and (ticker or not exchange)
                and convention_problem(entry_type, ticker, units, price, fees, cash) is None
            ):
                return ParsedEntry(
                    self.name, line, entry_time, entry_type, cash, fees, ticker, exchange,
                    units=units, price=price, external_ref=ref, notes=notes.strip() or None,
                )  # fmt: skip
        except (KeyError, ValueError, ArithmeticError):
            pass
        return None

    def bulk(
        self, chunk: Sequence[list[str]], lines: Sequence[int], ref_lines: dict[str | None, int]
    ) -> list[ParsedEntry] | None:
        """The chunk's entries converted a column at a time, or None unless every row is plainly
        right (ten fields, a UTC or naive time, plain numbers inside the bounds, the sign
        conventions kept, a reference of its own, new to the file); the rows then go one at
        a time, and the careful path names what is wrong. Records ``ref_lines`` when it
        returns entries."""
        if set(map(len, chunk)) != {10}:
            return None
        time_t, type_t, ticker_t, exchange_t, units_t, price_t, fees_t, cash_t, ref_t, notes_t = zip(
            *chunk, strict=True
        )
        try:
            times = list(map(fromiso, time_t))
            kinds = list(map(_TYPES.__getitem__, type_t))
        except (ValueError, KeyError):
            return None
        zones = set(map(_zone, times))
        if zones != {UTC}:
            if not zones <= {UTC, None}:
                return None  # an offset: the careful path converts it, or says why it cannot
            times = [t if t.tzinfo is UTC else t.replace(tzinfo=UTC) for t in times]  # naive: UTC
        names = self.names
        for text in set(ticker_t).union(exchange_t).difference(names):
            self._name_of(text)
        tickers = list(map(names.__getitem__, ticker_t))
        exchanges = list(map(names.__getitem__, exchange_t))
        if any(exchange and not ticker for ticker, exchange in set(zip(tickers, exchanges, strict=True))):
            return None
        units = _numbers(units_t, None, MAX_AMOUNT, shared=True)
        prices = _numbers(price_t, None, MAX_PRICE, shared=False)
        fees = _numbers(fees_t, ZERO, MAX_AMOUNT, shared=True)
        cash = _numbers(cash_t, None, MAX_AMOUNT, shared=False) if min(cash_t) else None  # "": none
        if units is None or prices is None or fees is None or cash is None:
            return None
        if set(map(convention_problem, kinds, tickers, units, prices, fees, cash)) != {None}:
            return None
        refs = list(map(str.strip, ref_t))
        distinct = set(refs)
        if (
            min(refs) == ""  # the least text of all
            or max(map(len, refs)) > MAX_REF_LENGTH
            or max(map(len, notes_t)) > MAX_NOTES_LENGTH
            or len(distinct) != len(refs)
            or not distinct.isdisjoint(ref_lines)
        ):
            return None  # a reference to derive, a repeated one, or text too long: row by row
        count = len(chunk)
        notes = [n.strip() or None for n in notes_t] if any(notes_t) else [None] * count
        ref_lines.update(zip(refs, lines, strict=True))
        return from_columns(
            ParsedEntry,
            count,
            {"source": repeat(self.name, count), "line": lines, "entry_time": times, "entry_type": kinds,
             "cash_amount_base": cash, "fees_base": fees, "ticker": tickers, "exchange": exchanges,
             "units": units, "price": prices, "external_ref": refs, "notes": notes},
        )  # fmt: skip

    def careful(self, row: list[str], line: int) -> ParsedEntry:
        """Every field checked, with the reason (``_BadRow``) if one is wrong."""
        time_text, type_text, ticker_text, exchange_text, units_text, price_text = row[:6]
        fees_text, cash_text, ref, notes = row[6:]
        entry_time = _time(time_text.strip())
        entry_type = _TYPES.get(type_text.strip().upper())
        if entry_type is None:
            raise _BadRow(f"entry_type {type_text!r} is not one of {', '.join(EntryType)}")
        ticker = self._name_of(ticker_text)
        exchange = self._name_of(exchange_text)
        if exchange and not ticker:
            raise _BadRow("an exchange without a ticker")
        units = self._optional_number(units_text, "units")
        price = self._optional_number(price_text, "price", MAX_PRICE)
        fees = self._fee_number(fees_text)
        if not cash_text.strip():
            raise _BadRow("cash_amount_base is empty")
        cash = _number(cash_text, "cash_amount_base")
        problem = convention_problem(entry_type, ticker, units, price, fees, cash)
        if problem:
            raise _BadRow(problem)
        ref = ref.strip() or self.content_ref(*row[:8], notes)
        problem = entry_text_problem(ref, notes.strip())
        if problem:
            raise _BadRow(problem)
        return ParsedEntry(
            self.name, line, entry_time, entry_type, cash, fees, ticker, exchange,
            units=units, price=price, external_ref=ref, notes=notes.strip() or None,
        )  # fmt: skip

    def _name_of(self, text: str) -> str | None:
        value = self.names[text] = text.strip().upper() or None
        return value

    def _optional_number(self, text: str, what: str, limit: Decimal = MAX_AMOUNT) -> Decimal | None:
        value = self.optional[text] = _number(text, what, limit) if text.strip() else None
        return value

    def _fee_number(self, text: str) -> Decimal:
        value = self.fee_values[text] = _number(text, "fees_base") if text.strip() else ZERO
        return value


def _parse(src: SourceText, reader: Any) -> ParsedFile:
    name = src.name
    try:
        header: list[str] = next(reader, [])
    except csv.Error as exc:
        raise FileFormatError(name, [(reader.line_num, limits.csv_error_reason(exc))]) from None
    if tuple(cell.strip() for cell in header) != HEADER:
        raise header_error(name, header, HEADER)
    problems = Problems()
    entries = _read_entries(_Rows(name), reader, problems)
    if not entries and not problems:
        problems.add(name, None, "has a header but no entries")
    problems.raise_if_any()
    ordered = entries if _ascending(entries) else oldest_first(entries, key=_entry_time)
    sha = src.sha256
    return ParsedFile(name, FORMAT, tuple(ordered), sha, (SourceFile(name, sha, FORMAT),))


def _read_entries(rows: _Rows, reader: Any, problems: Problems) -> list[ParsedEntry]:
    """Every good row's entry, in file order; every bad row and repeated reference reported.

    A million new objects with no reference cycles: the cyclic collector would only rescan
    them over and over (20-35% of the time, measured), so it is paused for the loop.
    """
    entries: list[ParsedEntry] = []
    ref_lines: dict[str | None, int] = {}  # external_ref -> first line, to refuse repeats
    collecting = gc.isenabled()
    gc.disable()
    try:
        records = _records(reader, rows.name, problems)
        while True:
            chunk, lines = _next_chunk(records, reader)
            if not chunk:
                break
            bulk = rows.bulk(chunk, lines, ref_lines)
            entries += bulk if bulk is not None else _row_by_row(rows, chunk, lines, ref_lines, problems)
    finally:
        if collecting:
            gc.enable()
    return entries


def _next_chunk(records: Iterable[list[str]], reader: Any) -> tuple[list[list[str]], list[int]]:
    """Up to ``_CHUNK`` records and the line each ends on (a quoted newline spans lines)."""
    chunk: list[list[str]] = []
    lines: list[int] = []
    add_row, add_line = chunk.append, lines.append
    for row in islice(records, _CHUNK):
        add_row(row)
        add_line(reader.line_num)
    return chunk, lines


def _row_by_row(
    rows: _Rows,
    chunk: Sequence[list[str]],
    lines: Sequence[int],
    ref_lines: dict[str | None, int],
    problems: Problems,
) -> list[ParsedEntry]:
    """The chunk's entries one row at a time, every bad row and repeated reference reported."""
    name = rows.name
    entries: list[ParsedEntry] = []
    append = entries.append
    fast, careful = rows.fast, rows.careful
    for row, line in zip(chunk, lines, strict=True):
        if len(row) != 10:
            if not is_blank(row):
                problems.add(name, line, f"has {len(row)} fields, expected 10")
            continue
        entry = fast(row, line)
        if entry is None:
            try:
                entry = careful(row, line)
            except _BadRow as exc:
                problems.add(name, line, str(exc))
                continue
        first = ref_lines.setdefault(entry.external_ref, line)
        if first != line:
            problems.add(name, line, f"external_ref {entry.external_ref!r} repeats line {first}")
        append(entry)
    return entries


def _records(reader: Any, name: str, problems: Problems) -> Iterator[list[str]]:
    """The reader's rows; a record the ``csv`` module refuses (a cell over 128 KiB) ends the
    file there, reported with its line."""
    try:
        yield from reader
    except csv.Error as exc:
        problems.add(name, reader.line_num, limits.csv_error_reason(exc))


def _ascending(entries: list[ParsedEntry]) -> bool:
    """Whether the entries are already oldest first (the usual case)."""
    times = list(map(_entry_time, entries))
    return all(map(le, times, islice(times, 1, None)))


_entry_time = attrgetter("entry_time")


class CanonicalFormat:
    name = FORMAT
    title = "tradeassist canonical ledger CSV"

    def parse(self, *sources: Source, **options: object) -> ParsedFile:
        if len(sources) != 1 or options:
            raise ValidationError("the canonical format reads exactly one file and takes no options")
        return parse_canonical(sources[0])
