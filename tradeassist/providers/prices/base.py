"""What every price provider returns, the Protocols they follow, their registry, and parsing helpers.

A provider turns a feed's text (a downloaded file or an HTTP answer) into a ``PriceSeries``:
frozen ``PriceBar`` values sorted by date, plus what the provider *declared* about them
(currency, quote scale, symbol). Declared means declared: a provider that says nothing about
currency (Stooq, Yahoo CSV) gives ``None``, and deciding whether 613.6 is pence or pounds is
left to the listing's configuration and the quality checks, never guessed here.

Parsing rules shared by every format: a UTF-8 BOM is tolerated; rows come back ascending by
date whatever the file's order; a date that appears twice is an error; every malformed line is
collected and reported at once in one ``FileFormatError`` (file, line, reason); a close of zero
or below is kept (quality checks flag it later) but text that is not a number is an error.
"""

from __future__ import annotations

import csv
import itertools
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ...core import limits
from ...core.errors import ConfigError, FileFormatError
from ...core.frozen import FrozenDict
from ...core.units import PENCE, POUNDS, is_pence

if TYPE_CHECKING:
    from ..http import HttpClient
    from ..http_policy import HttpPolicy

_CURRENCY_CODE = re.compile(r"^[A-Z]{3}$")

_EMPTY: Mapping[str, str] = FrozenDict()


@dataclass(frozen=True, slots=True)
class PriceBar:
    """One price as the provider gave it. ``close`` is exact text-built Decimal, never a float.

    ``as_of`` is a ``date`` for daily bars, an aware ``datetime`` for intraday ones.
    ``currency``/``quote_scale`` are what the provider declared (``None``: it declared nothing);
    a pence quote has currency ``GBP`` and quote_scale ``GBX``. ``line`` is where the bar came
    from in the source text (for messages), and takes no part in equality.
    """

    as_of: date | datetime
    close: Decimal
    currency: str | None
    quote_scale: str | None
    source: str
    open: Decimal | None = None
    high: Decimal | None = None
    low: Decimal | None = None
    is_close: bool = True
    line: int | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class PriceSeries:
    """A provider's answer: bars ascending by ``as_of`` and what the provider declared about them.

    ``source`` is the provider's registered name; ``source_name`` the file name or the (redacted)
    URL the text came from. ``meta`` holds the provider's own declarations verbatim (e.g. Twelve
    Data's ``exchange``, ``mic_code``, ``exchange_timezone``) as a read-only mapping.
    """

    source: str
    source_name: str
    bars: tuple[PriceBar, ...]
    symbol: str | None = None
    currency: str | None = None
    quote_scale: str | None = None
    meta: Mapping[str, str] = field(default_factory=lambda: _EMPTY, hash=False)

    def __len__(self) -> int:
        return len(self.bars)

    def __iter__(self) -> Iterator[PriceBar]:
        return iter(self.bars)

    @property
    def first(self) -> PriceBar | None:
        return self.bars[0] if self.bars else None

    @property
    def last(self) -> PriceBar | None:
        return self.bars[-1] if self.bars else None


@runtime_checkable
class PriceProvider(Protocol):
    """Anything that reads a price feed's text into a ``PriceSeries``."""

    @property
    def name(self) -> str:
        """The registered name (a class attribute of each provider)."""
        ...

    def parse(self, data: str | bytes, *, source_name: str = "<data>") -> PriceSeries: ...


@runtime_checkable
class FetchingPriceProvider(PriceProvider, Protocol):
    """A price provider that can also download: ``start``/``end`` are inclusive dates."""

    def fetch(self, symbol: str, *, start: date | None = None, end: date | None = None) -> PriceSeries: ...


# --------------------------------------------------------------------------------------------
# Registry (after papermill's engine registry: a name -> factory map, options at lookup)
# --------------------------------------------------------------------------------------------
class PriceProviderRegistry:
    def __init__(self) -> None:
        self._factories: dict[str, Callable[..., PriceProvider]] = {}

    def register(self, name: str, factory: Callable[..., PriceProvider]) -> None:
        self._factories[name] = factory

    def get(self, name: str, **options: object) -> PriceProvider:
        """A new provider instance; ``options`` go to its constructor (``base_url``, ``client``...)."""
        try:
            factory = self._factories[name]
        except KeyError:
            known = ", ".join(self.names())
            raise ConfigError(f"unknown price provider {name!r}; known providers: {known}") from None
        return factory(**options)

    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self._factories))


# --------------------------------------------------------------------------------------------
# Currency declarations
# --------------------------------------------------------------------------------------------
def http_client(client: HttpClient | None, policy: HttpPolicy | None) -> HttpClient:
    """A downloading provider's client: the one it was given, else a new one with ``policy``.
    The HTTP client (httpx) is loaded here, when a provider first downloads, never when the
    providers are imported: a price file's import and a task run's kernel download nothing."""
    if client is not None:
        return client
    from ..http import HttpClient

    return HttpClient(policy)


def declared_units(currency: str | None) -> tuple[str | None, str | None]:
    """``(currency, quote_scale)`` from a feed's currency text.

    Every spelling of pence (``core.units.PENCE_SPELLINGS``: ``GBp``, ``GBX``, ``GBx``, ``gbx``)
    gives ``("GBP", "GBX")``; ``GBP`` gives ``("GBP", "GBP")``; any other ISO code ``C`` gives
    ``(C, C)``; nothing gives ``(None, None)``. ``gbp`` is taken as pounds.
    Raises ``ValueError`` for text that is not a currency code.
    """
    if currency is None or not currency.strip():
        return None, None
    text = currency.strip()
    if is_pence(text):
        return POUNDS, PENCE
    code = text.upper()
    if not _CURRENCY_CODE.match(code):
        raise ValueError(f"{currency!r} is not a currency code")
    return code, code


def common(values: Iterable[str | None]) -> str | None:
    """The one value shared by all, else None (for series-level currency/scale)."""
    distinct = set(values)
    return distinct.pop() if len(distinct) == 1 else None


# --------------------------------------------------------------------------------------------
# Parsing helpers
# --------------------------------------------------------------------------------------------
class Problems:
    """Collects (line, reason) pairs so a file's every bad line is reported at once."""

    def __init__(self, source_name: str) -> None:
        self.source_name = source_name
        self.items: list[tuple[int | None, str]] = []

    def add(self, line: int | None, reason: str) -> None:
        self.items.append((line, reason))

    def __bool__(self) -> bool:
        return bool(self.items)

    def raise_if_any(self) -> None:
        if self.items:
            raise FileFormatError(self.source_name, list(self.items))


def decode(data: str | bytes, source_name: str) -> str:
    """Text from bytes (UTF-8, BOM tolerated) or a str (a leading BOM dropped); content over
    ``core.limits.MAX_FILE_BYTES`` or holding a NUL is refused."""
    limits.check_size(source_name, data)
    if isinstance(data, bytes | bytearray):
        raw = bytes(data)
        limits.check_text_file(source_name, raw)
        return limits.decode_utf8(source_name, raw)
    if "\x00" in data:
        limits.check_text_file(source_name, data.encode("utf-8", "replace"))
    return data.removeprefix("\ufeff")


def csv_lines(
    text: str, *, comments: bool = False, source_name: str = "<csv>"
) -> Iterator[tuple[int, list[str]]]:
    """(1-based line number, cells) for each non-blank record (a record spanning lines, a
    quoted newline, is numbered by its first line); ``#`` lines skipped when ``comments``.

    A record the ``csv`` module refuses (a cell over ``core.limits.MAX_CSV_FIELD``) raises
    ``FileFormatError`` naming ``source_name`` and the line.
    """
    reader = csv.reader(text.splitlines())
    number = 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            reason = limits.csv_error_reason(exc)
            raise FileFormatError(source_name, line=reader.line_num, reason=reason) from None
        start, number = number, reader.line_num + 1
        if not any(cell.strip() for cell in cells):
            continue
        if comments and cells[0].lstrip().startswith("#"):
            continue
        yield start, [cell.strip() for cell in cells]


def parse_number(text: str, what: str, limit: Decimal = limits.MAX_PRICE) -> Decimal:
    """A finite Decimal from plain text (``.`` decimal point, no thousands separators), within
    ``limit`` in size and the digits of ``core.limits`` (``MAX_PRICE`` for a price).

    Raises ``ValueError`` with a reason. Zero and negative values are accepted on purpose.
    """
    if not text:
        raise ValueError(f"{what} is empty")
    if len(text) > limits.MAX_NUMBER_TEXT:
        raise ValueError(f"{what} {limits.shown(text)!r} is too long for a number")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{what} {limits.shown(text)!r} is not a number") from None
    if not value.is_finite():
        raise ValueError(f"{what} {text!r} is not a finite number")
    problem = limits.number_problem(value, limit=limit)
    if problem:
        raise ValueError(f"{what} {text} {problem}")
    return value


def optional_number(text: str | None, what: str) -> Decimal | None:
    if text is None or not text.strip() or text.strip().lower() == "null":
        return None
    return parse_number(text.strip(), what)


def json_number(value: object, what: str) -> Decimal:
    """A Decimal from a JSON string or a number parsed with ``parse_float=Decimal``."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{what} is {value!r}, not a number")
    if isinstance(value, int):
        if not -limits.MAX_PRICE <= value <= limits.MAX_PRICE:  # before any conversion to text
            raise ValueError(f"{what} is out of range: at most {limits.magnitude_text(limits.MAX_PRICE)}")
        return parse_number(str(value), what)
    if isinstance(value, Decimal):
        return parse_number(str(value), what)
    if isinstance(value, str):
        return parse_number(value.strip(), what)
    raise ValueError(f"{what} {limits.shown(value)!r} is not a number")  # a float, a list, an object


def load_json(text: str, source_name: str) -> Any:
    """A JSON document (numbers exact, ``core.limits.load_json``), or ``FileFormatError`` naming
    the line: malformed, nested too deeply, an integer too long, NaN or Infinity."""
    try:
        return limits.load_json(text)
    except limits.JsonInputError as exc:
        raise FileFormatError(source_name, line=exc.line, reason=exc.reason) from None


def parse_iso_date(text: str) -> date:
    if len(text) != 10:
        raise ValueError(f"date {text!r} is not YYYY-MM-DD")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"date {text!r} is not a valid YYYY-MM-DD date") from None


def header_map(cells: Sequence[str], aliases: Mapping[str, str]) -> tuple[dict[str, int], list[str]]:
    """Column positions by canonical name (``aliases`` maps lower-cased header text to it).

    Returns the map and the header cells not recognised.
    """
    found: dict[str, int] = {}
    unknown: list[str] = []
    for index, cell in enumerate(cells):
        canonical = aliases.get(cell.strip().strip("<>").lower())
        if canonical is None:
            unknown.append(cell)
        elif canonical not in found:
            found[canonical] = index
    return found, unknown


def vendor_csv(
    text: str, source_name: str, aliases: Mapping[str, str], vendor: str
) -> tuple[Iterator[tuple[int, list[str]]], list[str], dict[str, int]]:
    """A vendor's price CSV: the data rows still to read, the header and its column map.
    Refuses a file without a Date and a Close column, naming the vendor."""
    rows = csv_lines(text, source_name=source_name)
    first = next(rows, None)
    if first is None:
        raise FileFormatError(source_name, line=1, reason=f"empty: not a {vendor} CSV")
    header_line, header = first
    columns, _ = header_map(header, aliases)
    if "date" not in columns or "close" not in columns:
        raise FileFormatError(
            source_name,
            line=header_line,
            reason=f"not a {vendor} CSV (no Date/Close header): {snippet(text)!r}",
        )
    return rows, header, columns


def _sort_key(as_of: date | datetime) -> datetime:
    if isinstance(as_of, datetime):
        return as_of.astimezone(UTC)
    return datetime.combine(as_of, time(0), tzinfo=UTC)


def finish(bars: Iterable[PriceBar], problems: Problems) -> tuple[PriceBar, ...]:
    """Bars ascending by ``as_of``; duplicates, bars dated in the future (after
    ``core.limits.latest_date``) and any collected problems raised together."""
    ordered = sorted(bars, key=lambda bar: _sort_key(bar.as_of))
    latest = limits.latest_date()
    for bar in ordered:
        day = bar.as_of.date() if isinstance(bar.as_of, datetime) else bar.as_of
        if day > latest:
            problems.add(bar.line, f"the date {bar.as_of.isoformat()} is in the future")
    for previous, current in itertools.pairwise(ordered):
        if previous.as_of == current.as_of:
            where = f" (also on line {previous.line})" if previous.line is not None else ""
            problems.add(current.line, f"duplicate date {current.as_of.isoformat()}{where}")
    problems.items.sort(key=lambda item: (item[0] is None, item[0] or 0))
    problems.raise_if_any()
    return tuple(ordered)


def snippet(text: str, limit: int = 120) -> str:
    """The start of a body on one line, for messages about what a feed sent instead of data."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def read_source(path: str | Path) -> tuple[bytes, str]:
    """A file's bytes and the name to report it by; a file over ``core.limits.MAX_FILE_BYTES``
    is refused before it is read."""
    file = Path(path)
    try:
        return limits.read_file_bytes(file), str(file)
    except OSError as exc:
        raise FileFormatError(str(file), line=None, reason=f"cannot read: {exc.strerror}") from None
