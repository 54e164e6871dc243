"""What every broker-file parser returns, and the helpers they share.

Parsers read files and return plain frozen values; they know nothing of the database. A
service resolves tickers/ISINs to listings, checks balances and holdings against the book,
and writes one atomic batch. Parsers do check everything a file alone can show (header,
dates, numbers, sign conventions, duplicate references) and report every bad line at once.

Sign conventions of a ``ParsedEntry`` (the ledger's, ``ledger_entries`` in the LDM §5.2):

* ``price`` is per unit, in the currency and scale named by ``price_currency`` (``GBX`` =
  pence); ``None`` there means "the listing's own quote currency and scale" (canonical files).
* ``fees_base`` ≥ 0, in GBP.
* ``cash_amount_base`` is the signed GBP cash movement: BUY −(consideration + fees), SELL
  +(consideration − fees), CONTRIBUTION, INTEREST and DIVIDEND > 0, WITHDRAWAL < 0, FEE
  −fees_base.
* A DIVIDEND names its payer where the file does (``ticker``/``isin``, else the broker's
  name for it in ``description``) but carries no units or price: the units held go to
  ``extra``. The service attaches it to the payer's listing when it can resolve one.
* TRANSFER moves units (signed: + in, − out; no cash) or cash alone (signed).
* ``consideration_base``, where the broker states it, is the GBP value of the units traded
  before fees, so no precision is lost when a price had to be derived from it.
* ``extra[CASH_CURRENCY]`` is set only on a line a file gives in a currency other than GBP (a
  Trading 212 multi-currency account's USD or EUR cash): ``cash_amount_base``, ``fees_base``
  and ``consideration_base`` are then in that currency, with the signs above, and the import
  service converts them to GBP at the stored rate (``services.import_fx``) before anything
  else reads them. A parser knows no rate: it says what the file says.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from itertools import pairwise
from pathlib import Path
from typing import Any, NamedTuple, Protocol, TypeVar, runtime_checkable

from ...core import limits
from ...core.enums import EntryType
from ...core.errors import FileFormatError, ValidationError
from ...core.frozen import FrozenDict
from ...core.money import CONTEXT, ZERO, to_decimal

T = TypeVar("T")


# The trace details a broker gives (str -> str), read-only: the one read-only mapping,
# ``core.frozen.FrozenDict`` (immutable, hashable, equal to a dict with the same items).
FrozenMap = FrozenDict


EMPTY_MAP: Mapping[str, str] = FrozenDict()
# The ``extra`` key naming the currency of an entry's amounts when it is not GBP (see the module).
CASH_CURRENCY = "cash_currency"


class ParsedEntry(NamedTuple):
    """One ledger entry read from a broker file, before it is resolved to a listing.

    A NamedTuple rather than a frozen dataclass: it is just as immutable and named, and a
    canonical import builds a million of them, where a frozen dataclass's ``__init__``
    (one ``object.__setattr__`` per field) measured four times slower (2.0 µs against
    0.5 µs per entry), a third of the whole parse. Use ``_replace`` to derive a changed copy.
    """

    source: str  # the file's name, so a service can name it in errors
    line: int  # 1-based, the header being line 1
    entry_time: datetime  # aware, UTC
    entry_type: EntryType
    cash_amount_base: Decimal
    fees_base: Decimal = ZERO
    ticker: str | None = None
    exchange: str | None = None
    isin: str | None = None
    description: str | None = None  # the broker's own name for the instrument
    units: Decimal | None = None
    price: Decimal | None = None
    price_currency: str | None = None  # GBP, GBX (pence), USD…; None = the listing's own scale
    consideration_base: Decimal | None = None
    external_ref: str | None = None
    notes: str | None = None
    extra: Mapping[str, str] = EMPTY_MAP


@dataclass(frozen=True, slots=True)
class StatementBalance:
    """A broker's running cash balance, for the service to check its own cash against.

    ``balance`` must equal the portfolio's cash once ``entries[:after_entries]`` of the
    ``ParsedFile`` are applied. ``external_ref`` is the entry this statement line produced;
    it is None for the opening balance (``* BALANCE B/F *``).
    """

    source: str
    line: int
    on: date
    balance: Decimal
    after_entries: int
    external_ref: str | None


@dataclass(frozen=True, slots=True)
class SourceFile:
    name: str
    sha256: str  # of the file's bytes, exactly as read
    kind: str  # e.g. "canonical", "ajbell-history", "ajbell-cash-statement"


@dataclass(frozen=True, slots=True)
class ParsedFile:
    """A parsed broker export: entries oldest first, plus what the service needs to verify it."""

    name: str
    format: str
    entries: tuple[ParsedEntry, ...]
    content_sha256: str  # idempotency key of the import: the bytes of every source file
    sources: tuple[SourceFile, ...]
    balances: tuple[StatementBalance, ...] = ()
    # What to tell the investor when the import leaves cash below zero because of what the file
    # leaves out (AJ Bell's history without its statement; InvestEngine's trades without cash).
    cash_hint: str | None = None

    @property
    def opening_balance(self) -> StatementBalance | None:
        return next((b for b in self.balances if b.external_ref is None), None)


@dataclass(frozen=True, slots=True)
class NamedBytes:
    """File content already in memory (a notebook upload), with the name to report it by."""

    name: str
    data: bytes


Source = str | os.PathLike[str] | NamedBytes


@runtime_checkable
class BrokerFormat(Protocol):
    """A broker export format: ``parse`` reads one or more files and returns a ParsedFile."""

    name: str
    title: str

    def parse(self, *sources: Source, **options: Any) -> ParsedFile: ...


def format_options(
    title: str, given: Mapping[str, object], known: Mapping[str, tuple[str, ...]]
) -> dict[str, str]:
    """The options of a format (``--option KEY=VALUE``): each known one with the value given or
    its default (the first of its values). Anything else is a ``ValidationError`` naming what
    the format takes."""
    takes = "; ".join(f"{key}={'|'.join(values)}" for key, values in known.items()) or "none"
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise ValidationError(f"unknown option {', '.join(unknown)} for the {title}; it takes: {takes}")
    chosen = {key: values[0] for key, values in known.items()}
    for key, value in given.items():
        text = str(value).strip().lower()
        if text not in known[key]:
            raise ValidationError(f"option {key}={value}: the {title} takes {key}={'|'.join(known[key])}")
        chosen[key] = text
    return chosen


class UnmappedDescriptionsError(FileFormatError):
    """Some instrument descriptions are not in the mapping file."""

    def __init__(
        self,
        file: str,
        problems: list[tuple[int | None, str]],
        *,
        descriptions: Sequence[str],
    ) -> None:
        super().__init__(file, problems)
        self.descriptions = tuple(descriptions)

    def mapping_template(self) -> str:
        """CSV lines to paste into the mapping file, one per missing description."""
        lines = ["description,ticker,exchange"]
        lines += [f'"{d.replace(chr(34), chr(34) * 2)}",,' for d in self.descriptions]
        return "\n".join(lines) + "\n"


# --- reading ---------------------------------------------------------------------------


BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class SourceText:
    name: str
    data: bytes
    sha256: str

    @property
    def text(self) -> str:
        """The whole file as text (for the small broker exports)."""
        return limits.decode_utf8(self.name, self.data)

    def stream(self) -> io.TextIOWrapper:
        """The file as a text stream, decoded as it is read: a big file is never held twice.

        Decoding errors surface while reading, as ``UnicodeDecodeError``.
        """
        return io.TextIOWrapper(io.BytesIO(self.data), encoding="utf-8-sig", newline="")


def read_source(source: Source) -> SourceText:
    """Read a file's bytes (UTF-8, a BOM tolerated) and hash them; refuse an empty file, one
    over ``core.limits.MAX_FILE_BYTES`` (before reading it) and one holding a NUL byte."""
    if isinstance(source, NamedBytes):
        name, data = source.name, source.data
        limits.check_size(name, data)
    else:
        path = Path(source)
        name = path.name
        try:
            data = limits.read_file_bytes(path, name=name)
        except OSError as exc:
            raise FileFormatError(name, [(None, f"cannot be read: {exc.strerror or exc}")]) from None
    body = data[len(BOM) :] if data.startswith(BOM) else data
    if not body or body.isspace():
        raise FileFormatError(name, [(None, "the file is empty")])
    limits.check_text_file(name, data)
    return SourceText(name, data, hashlib.sha256(data).hexdigest())


class Cells:
    """One CSV row's cells by column name (stripped; a column the file lacks reads as "")."""

    def __init__(self, index: Mapping[str, int], row: Sequence[str]) -> None:
        self.index, self.row = index, row

    def __getitem__(self, name: str) -> str:
        i = self.index.get(name)
        return self.row[i].strip() if i is not None else ""

    def number(self, name: str, limit: Decimal = limits.MAX_AMOUNT) -> Decimal | None:
        """The cell as an exact number (``to_decimal``, bounded by ``limit``), None when empty."""
        text = self[name]
        return to_decimal(text, what=name, limit=limit) if text else None


def csv_rows(src: SourceText, *, skip: int = 0) -> Iterator[tuple[int, list[str]]]:
    """(line, cells) for each CSV record of the file after the first ``skip`` lines; a record
    spanning lines (a quoted newline) is numbered by its first line. A cell over the ``csv``
    module's limit (``core.limits.MAX_CSV_FIELD``) or a malformed record is a
    ``FileFormatError`` naming its line."""
    lines = src.text.splitlines()[skip:]
    reader = csv.reader(lines)
    line = skip + 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            where = skip + reader.line_num
            raise FileFormatError(src.name, [(where, limits.csv_error_reason(exc))]) from None
        yield line, row
        line = skip + reader.line_num + 1


def combined_sha256(sources: Sequence[SourceFile]) -> str:
    """One file: its own SHA-256. Several: a hash of their kinds and hashes, in a fixed order."""
    if len(sources) == 1:
        return sources[0].sha256
    text = "\n".join(f"{s.kind}:{s.sha256}" for s in sorted(sources, key=lambda s: s.kind))
    return hashlib.sha256(text.encode()).hexdigest()


def header_error(name: str, found: Sequence[str], expected: Sequence[str]) -> FileFormatError:
    return FileFormatError(name, [(1, f"the header is {','.join(found)!r}; expected {','.join(expected)!r}")])


def account_currency_error(name: str, currency: str, why: str = "") -> FileFormatError:
    """The one-line refusal of an export from an account kept in another currency than GBP (the
    ledger's only cash currency): one line for the file, not one per row."""
    because = f" ({why})" if why else ""
    return FileFormatError(
        name,
        [
            (
                None,
                f"the account currency is {currency}{because}: only GBP accounts are supported, since "
                "cash is kept in GBP only",
            )
        ],
    )


def is_blank(row: Sequence[str]) -> bool:
    return not row or all(not cell.strip() for cell in row)


# --- problems --------------------------------------------------------------------------


class Problems:
    """Collects every bad line (file, line, reason) so that one error can name them all."""

    def __init__(self) -> None:
        self.items: list[tuple[str, int | None, str]] = []

    def add(self, source: str, line: int | None, reason: str) -> None:
        self.items.append((source, line, reason))

    def __bool__(self) -> bool:
        return bool(self.items)

    def lines(self, source: str) -> set[int]:
        return {ln for src, ln, _ in self.items if src == source and ln is not None}

    def raise_if_any(self, *, unmapped: Sequence[str] = ()) -> None:
        if not self.items:
            return
        names = list(dict.fromkeys(src for src, _, _ in self.items))
        items = sorted(self.items, key=lambda p: (names.index(p[0]), p[1] or 0))
        if len(names) == 1:
            file, problems = names[0], [(ln, why) for _, ln, why in items]
        else:
            file = " + ".join(names)
            problems = [
                (None, f"{src} line {ln}: {why}" if ln else f"{src}: {why}") for src, ln, why in items
            ]
        if unmapped:
            raise UnmappedDescriptionsError(file, problems, descriptions=unmapped)
        raise FileFormatError(file, problems)


# --- values ----------------------------------------------------------------------------


def parse_uk_date(text: str) -> date:
    """``dd/mm/yyyy`` (what UK brokers print); ValueError with a readable message if not."""
    parts = text.strip().split("/")
    if len(parts) != 3 or len(parts[2]) != 4 or not all(p.isdigit() for p in parts):
        raise ValueError(f"date {text!r} is not dd/mm/yyyy")
    day, month, year = (int(p) for p in parts)
    try:
        return date(year, month, day)
    except ValueError:
        raise ValueError(f"date {text!r} does not exist") from None


def midnight_utc(day: date) -> datetime:
    # Broker statements give dates only. Midnight UTC keeps the same calendar date in
    # Europe/London (UTC+0 or +1), so a date never moves to the previous day.
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


PRICE_PLACES = Decimal("1E-8")


def derived_price(amount: Decimal, units: Decimal) -> Decimal:
    """A price made up from what a file states, amount / units, to 8 places, half-even: for a
    broker that gives only the amount (AJ Bell) or a price rounded coarser than its amount
    (InvestEngine), so that units × price agrees with the amount; the amount itself is kept
    exact as ``consideration_base``."""
    return (abs(amount) / abs(units)).quantize(PRICE_PLACES, rounding=ROUND_HALF_EVEN, context=CONTEXT)


def decimal_key(value: Decimal | None) -> str:
    """A spelling of a number that does not change with trailing zeros (200 == 200.00)."""
    if value is None:
        return ""
    text = format(value.normalize(), "f")
    return "0" if text == "-0" else text


class ContentRefs:
    """Deterministic references for rows a broker gives no usable reference for.

    The hash covers the row's content and how many identical rows came before it in the
    file, so re-importing the same file (or a longer export containing the same day)
    yields the same references, and two identical rows still get different ones.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.seen: Counter[tuple[str, ...]] = Counter()

    def __call__(self, *content: str) -> str:
        occurrence = self.seen[content]
        self.seen[content] += 1
        raw = "\x1f".join((self.kind, *content, str(occurrence)))
        return "h-" + hashlib.sha256(raw.encode()).hexdigest()[:20]


def entry_text_problem(ref: str | None, notes: str | None) -> str | None:
    """Why an entry's reference or notes cannot be kept (too long, a NUL), or None: checked
    before the database, whose ``external_ref`` holds 200 characters."""
    return limits.text_problem(ref, "reference", limits.MAX_REF_LENGTH) or limits.text_problem(
        notes, "notes", limits.MAX_NOTES_LENGTH
    )


def check_parsed_entries(entries: Iterable[ParsedEntry], problems: Problems) -> None:
    """Every entry whose reference or notes cannot be kept, or whose price (given or derived,
    as AJ Bell's amount / units) is beyond ``core.limits.MAX_PRICE``, with its file and line."""
    for e in entries:
        problem = entry_text_problem(e.external_ref, e.notes)
        if problem is None and e.price is not None and abs(e.price) > limits.MAX_PRICE:
            bound = limits.magnitude_text(limits.MAX_PRICE)
            problem = f"the price {limits.shown(e.price)} is out of range: at most {bound}"
        if problem:
            problems.add(e.source, e.line, problem)


def repeated_references(source: str, refs: Iterable[tuple[int, str | None]], problems: Problems) -> None:
    """A broker reference seen twice in one file is an error (it is the idempotency key)."""
    first_line: dict[str, int] = {}
    for line, ref in refs:
        if ref is None:
            continue
        first = first_line.setdefault(ref, line)
        if first != line:
            problems.add(source, line, f"reference {ref!r} repeats line {first}")


def duplicate_refs(entries: Iterable[ParsedEntry], problems: Problems) -> None:
    """The same external_ref on entries from different files (each file checks its own)."""
    first: dict[str, ParsedEntry] = {}
    for e in entries:
        if e.external_ref is None:
            continue
        seen = first.setdefault(e.external_ref, e)
        if seen.source != e.source:
            where = f"{seen.source} line {seen.line}"
            problems.add(e.source, e.line, f"reference {e.external_ref!r} is also on {where}")


def oldest_first(items: Sequence[T], key: Callable[[T], Any]) -> list[T]:
    """Ascending files stay as they are; descending ones are reversed; others sorted stably.

    Reversing (rather than sorting) a newest-first statement keeps the true order of lines
    that share a date, which a running balance depends on.
    """
    keys = [key(item) for item in items]
    if all(a <= b for a, b in pairwise(keys)):
        return list(items)
    if all(a >= b for a, b in pairwise(keys)):
        return list(reversed(items))
    order = sorted(range(len(items)), key=keys.__getitem__)
    return [items[i] for i in order]


def convention_problem(
    entry_type: EntryType,
    ticker: str | None,
    units: Decimal | None,
    price: Decimal | None,
    fees: Decimal,
    cash: Decimal,
    *,
    instrument: bool | None = None,
) -> str | None:
    """Why these values break the ledger's sign conventions, or None if they keep them.

    ``instrument`` says whether the entry names an instrument (defaults to ``ticker``); a
    DIVIDEND may name one or not.
    """
    # Runs once per row of a million-row import: comparisons are against the Decimal ZERO
    # (faster than against the int 0) and the commonest types come first.
    named = bool(ticker) if instrument is None else instrument
    if fees < ZERO:
        return f"fees {fees} must not be negative"
    if entry_type is EntryType.BUY or entry_type is EntryType.SELL:
        if not named:
            return f"a {entry_type} needs an instrument"
        if units is None or units <= ZERO:
            return f"a {entry_type} needs units > 0, got {units}"
        if price is not None and price <= ZERO:
            return f"a {entry_type} needs a price > 0, got {price}"
        if entry_type is EntryType.BUY:
            if cash > -fees:
                return f"a BUY's cash must be −(consideration + fees) ≤ −fees, got {cash} with fees {fees}"
        elif cash < -fees:
            return f"a SELL's cash must be consideration − fees ≥ −fees, got {cash} with fees {fees}"
        return None
    if entry_type is EntryType.DIVIDEND:
        if units is not None or price is not None:
            return "a DIVIDEND carries no units or price (the units held belong in the notes)"
        if fees != 0:
            return f"a DIVIDEND has no fees (record them as a separate FEE), got {fees}"
        return None if cash > 0 else f"a DIVIDEND's cash must be positive, got {cash}"
    if entry_type is EntryType.TRANSFER:
        if units is not None:
            if not named:
                return "a TRANSFER of units needs an instrument"
            if units == 0:
                return "a TRANSFER of units needs units ≠ 0 (+ in, − out)"
            if cash != 0:
                return f"a TRANSFER of units moves no cash, got {cash}"
            return None
        if named or price is not None:
            return "a cash TRANSFER has no instrument or price"
        return "a cash TRANSFER needs a non-zero amount" if cash == 0 else None
    if named or units is not None or price is not None:
        return f"a {entry_type} is cash only: no instrument, units or price"
    if entry_type is EntryType.FEE:
        if fees <= 0 or cash != -fees:
            return f"a FEE needs fees > 0 and cash = −fees, got fees {fees} and cash {cash}"
        return None
    if fees != 0:
        return f"a {entry_type} has no fees (record them as a separate FEE), got {fees}"
    if entry_type is EntryType.WITHDRAWAL:
        return None if cash < 0 else f"a WITHDRAWAL's cash must be negative, got {cash}"
    return None if cash > 0 else f"a {entry_type}'s cash must be positive, got {cash}"
