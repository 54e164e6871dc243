"""The canonical ledger CSV: tradeassist's own import/export format, one ledger entry a line.

Header (exactly): ``entry_time,entry_type,ticker,exchange,units,price,fees_base,
cash_amount_base,external_ref,notes``.

* ``entry_time``: ISO 8601. A date alone means midnight UTC, a naive timestamp means UTC,
  an offset is honoured; everything is returned in UTC.
* ``price`` is in the listing's own quote currency and scale (pence for a GBX listing).
* ticker, exchange, units and price are empty for cash-only entries.
* an empty ``external_ref`` gets a deterministic content hash, so that re-importing the same
  file is recognisable; a reference repeated within the file is an error.

This path must carry a million rows in a few seconds, so the loop is the csv module and
plain comparisons; Decimals for repeated texts (units, prices, fees) are shared.
"""

from __future__ import annotations

import csv
import gc
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from ...core.enums import EntryType
from ...core.errors import ValidationError
from ...core.money import ZERO, to_decimal
from .base import (
    ContentRefs,
    ParsedEntry,
    ParsedFile,
    Problems,
    Source,
    SourceFile,
    SourceText,
    convention_problem,
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


class _BadRow(Exception):
    pass


def _number(text: str, what: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        try:
            value = to_decimal(text, what=what)  # thousands separators, £
        except ValidationError as exc:
            raise _BadRow(str(exc)) from None
    if not value.is_finite():
        raise _BadRow(f"{what}: {text!r} is not a finite number")
    return value


def _fresh(cache: dict[str, Any], text: str) -> Decimal:
    """A number not seen before, on the fast path: plain text only, remembered if room."""
    value = Decimal(text)
    if not value.is_finite():
        raise ValueError(text)
    if len(cache) < _CACHE_LIMIT:
        cache[text] = value
    return value


def _time(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise _BadRow(f"entry_time: {text!r} is not an ISO 8601 date or timestamp") from None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value if value.tzinfo is UTC else value.astimezone(UTC)


def parse_canonical(source: Source) -> ParsedFile:
    """Parse a canonical ledger CSV; raise ``FileFormatError`` naming every bad line."""
    src = read_source(source)
    reader = csv.reader(src.stream())
    try:
        return _parse(src, reader)
    except UnicodeDecodeError:
        _ = src.text  # decodes the whole file again to name the exact line, and raises
        raise


def _parse(src: SourceText, reader: Any) -> ParsedFile:
    name = src.name
    header = next(reader, [])
    if tuple(cell.strip() for cell in header) != HEADER:
        raise header_error(name, header, HEADER)

    problems = Problems()
    entries: list[ParsedEntry] = []
    append = entries.append
    content_ref = ContentRefs(FORMAT)
    # Texts seen before, already validated: tickers/exchanges (upper-cased), units and
    # prices ("" = none), fees ("" = 0). They repeat a lot; sharing one Decimal per text
    # also keeps a million entries small.
    names: dict[str, str | None] = {"": None}
    optional: dict[str, Decimal | None] = {"": None}
    fee_values: dict[str, Decimal] = {"": ZERO}

    def name_of(text: str) -> str | None:
        value = names[text] = text.strip().upper() or None
        return value

    def optional_number(text: str, what: str) -> Decimal | None:
        value = optional[text] = _number(text, what) if text.strip() else None
        return value

    def fee_number(text: str) -> Decimal:
        value = fee_values[text] = _number(text, "fees_base") if text.strip() else ZERO
        return value

    def parse_row(row: list[str], line: int) -> ParsedEntry:
        """The careful path: every field checked, with the reason if one is wrong."""
        time_text, type_text, ticker_text, exchange_text, units_text, price_text = row[:6]
        fees_text, cash_text, ref, notes = row[6:]
        entry_time = _time(time_text.strip())
        entry_type = _TYPES.get(type_text.strip().upper())
        if entry_type is None:
            raise _BadRow(f"entry_type {type_text!r} is not one of {', '.join(EntryType)}")
        ticker = name_of(ticker_text)
        exchange = name_of(exchange_text)
        if exchange and not ticker:
            raise _BadRow("an exchange without a ticker")
        units = optional_number(units_text, "units")
        price = optional_number(price_text, "price")
        fees = fee_number(fees_text)
        if not cash_text.strip():
            raise _BadRow("cash_amount_base is empty")
        cash = _number(cash_text, "cash_amount_base")
        problem = convention_problem(entry_type, ticker, units, price, fees, cash)
        if problem:
            raise _BadRow(problem)
        ref = ref.strip() or content_ref(*row[:8], notes)
        return ParsedEntry(
            name, line, entry_time, entry_type, cash, fees, ticker, exchange,
            units=units, price=price, external_ref=ref, notes=notes.strip() or None,
        )  # fmt: skip

    # A million new objects with no reference cycles: the cyclic collector would only
    # rescan them over and over (20-35% of the time, measured), so pause it for the loop.
    ref_lines: dict[str, int] = {}  # external_ref -> first line, to refuse repeats
    ascending = True  # whether the file is already oldest first (the usual case)
    last_time = datetime.min.replace(tzinfo=UTC)
    collecting = gc.isenabled()
    gc.disable()
    try:
        for row in reader:
            line = reader.line_num
            if len(row) != 10:
                if not is_blank(row):
                    problems.add(name, line, f"has {len(row)} fields, expected 10")
                continue
            # The fast path takes well-formed rows; anything odd (a new ticker, a
            # thousands separator, a bad value) goes to parse_row, which says why.
            entry = None
            try:
                time_text, type_text, tk, ex, un, pr, fe, cash_text, ref, notes = row
                entry_time = fromiso(time_text)
                if entry_time.tzinfo is not UTC:
                    raise ValueError
                entry_type = _TYPES[type_text]
                ticker = names[tk]
                exchange = names[ex]
                units = optional.get(un, _MISSING)
                if units is _MISSING:
                    units = _fresh(optional, un)
                price = optional.get(pr, _MISSING)
                if price is _MISSING:
                    price = _fresh(optional, pr)
                fees = fee_values.get(fe, _MISSING)
                if fees is _MISSING:
                    fees = _fresh(fee_values, fe)
                cash = Decimal(cash_text)
                ref = ref.strip()
                if (
                    ref
                    and cash.is_finite()
                    and (ticker or not exchange)
                    and convention_problem(entry_type, ticker, units, price, fees, cash) is None
                ):
                    entry = ParsedEntry(
                        name, line, entry_time, entry_type, cash, fees, ticker, exchange,
                        units=units, price=price, external_ref=ref, notes=notes.strip() or None,
                    )  # fmt: skip
            except (KeyError, ValueError, ArithmeticError):
                pass
            if entry is None:
                try:
                    entry = parse_row(row, line)
                except _BadRow as exc:
                    problems.add(name, line, str(exc))
                    continue
            first = ref_lines.setdefault(entry.external_ref, line)
            if first != line:
                problems.add(name, line, f"external_ref {entry.external_ref!r} repeats line {first}")
            if entry.entry_time < last_time:
                ascending = False
            last_time = entry.entry_time
            append(entry)
    finally:
        if collecting:
            gc.enable()

    if not entries and not problems:
        problems.add(name, None, "has a header but no entries")
    problems.raise_if_any()
    ordered = entries if ascending else oldest_first(entries, key=_entry_time)
    sha = src.sha256
    return ParsedFile(name, FORMAT, tuple(ordered), sha, (SourceFile(name, sha, FORMAT),))


def _entry_time(entry: ParsedEntry) -> datetime:
    return entry.entry_time


class CanonicalFormat:
    name = FORMAT
    title = "tradeassist canonical ledger CSV"

    def parse(self, *sources: Source, **options: object) -> ParsedFile:
        if len(sources) != 1 or options:
            raise ValidationError("the canonical format reads exactly one file and takes no options")
        return parse_canonical(sources[0])
