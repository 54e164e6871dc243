"""ECB euro reference rates, and the GBP crosses derived from them.

Two files are read:

* the full history ``eurofxref-hist.csv`` (inside ``eurofxref-hist.zip``): newest first, one
  column per currency, ``N/A`` where a currency has no rate that day, and a trailing comma on
  every line (so an empty last column);
* the daily ``eurofxref.csv`` (inside ``eurofxref.zip``): one row, ``", "`` separators, the
  date written ``13 April 2026``, a trailing ``", "``.

Each value is units of currency per 1 EUR (the ``GBP`` column is EURGBP). ``parse`` returns
those as published: ``FxRate(as_of, "EUR", X, rate)``, exact Decimals from the text. What no
reference rate can be is refused with its line (``core.limits``): a rate outside 10^-6 to
10^9 or with more than 18 decimal places, a date after today, a column that is not a
three-letter currency code, a file with no rate at all.

``gbp_crosses`` derives GBP-based rates: GBP→X = EURX / EURGBP and GBP→EUR = 1 / EURGBP,
divided in a ``Decimal`` context of ``CROSS_PRECISION`` (12) significant digits, rounded half
even. The ECB publishes 5 or 6 significant digits, so 12 keeps every digit the division can
honestly claim and still gives the same text on every machine.
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import ClassVar, Protocol, runtime_checkable

from ...core import limits
from ...core.errors import FileFormatError, ProviderError
from ..http import HttpClient
from ..prices.base import Problems, csv_lines, decode, parse_iso_date, parse_number, snippet

CROSS_PRECISION = 12
CROSS_CONTEXT = Context(prec=CROSS_PRECISION, rounding=ROUND_HALF_EVEN)

DEFAULT_BASE_URL = "https://www.ecb.europa.eu"
HISTORY_PATH = "/stats/eurofxref/eurofxref-hist.zip"
DAILY_PATH = "/stats/eurofxref/eurofxref.zip"
MAX_UNZIPPED_BYTES = 50 * 1024 * 1024  # the full history unzips to 2 MB

_MONTHS = {
    name: number
    for number, name in enumerate(
        (
            "january",
            "february",
            "march",
            "april",
            "may",
            "june",
            "july",
            "august",
            "september",
            "october",
            "november",
            "december",
        ),
        start=1,
    )
}
_MISSING = frozenset({"", "N/A", "n/a", "NA"})
_CURRENCY = re.compile(r"^[A-Z]{3}$")


@dataclass(frozen=True, slots=True)
class FxRate:
    """``1 base_currency = rate quote_currency`` on ``as_of`` (the ECB's reference day)."""

    as_of: date
    base_currency: str
    quote_currency: str
    rate: Decimal
    source: str = "ecb"


@runtime_checkable
class FxProvider(Protocol):
    @property
    def name(self) -> str:
        """The registered name (a class attribute of each provider)."""
        ...

    def parse(self, data: str | bytes, *, source_name: str = "<fx>") -> tuple[FxRate, ...]: ...

    def fetch(self, *, start: date | None = None, end: date | None = None) -> tuple[FxRate, ...]: ...


def _ecb_date(text: str) -> date:
    """``2026-04-13`` (history file) or ``13 April 2026`` (daily file)."""
    if len(text) == 10 and text[4] == "-":
        return parse_iso_date(text)
    parts = text.split()
    if len(parts) == 3 and parts[0].isdigit() and parts[1].lower() in _MONTHS and parts[2].isdigit():
        try:
            return date(int(parts[2]), _MONTHS[parts[1].lower()], int(parts[0]))
        except (ValueError, OverflowError):
            pass
    raise ValueError(f"date {limits.shown(text)!r} is not YYYY-MM-DD or like '13 April 2026'")


def parse_ecb_csv(
    data: str | bytes, *, source_name: str = "<ecb>", source: str = "ecb"
) -> tuple[FxRate, ...]:
    """EUR→X rates from either ECB CSV, ascending by date then currency.

    Missing values (``N/A``) are left out. Duplicated dates, unparseable numbers and rates of
    zero or below are errors, all reported together with their lines.
    """
    text = decode(data, source_name)
    if text.startswith("PK"):
        raise FileFormatError(source_name, line=None, reason="this is a zip archive: unzip it (or use fetch)")
    rows = csv_lines(text, source_name=source_name)
    first = next(rows, None)
    if first is None:
        raise FileFormatError(source_name, line=1, reason="empty: not an ECB reference rate CSV")
    header_line, header = first
    if not header or header[0].lower() != "date" or len(header) < 2:
        raise FileFormatError(
            source_name, line=header_line, reason=f"not an ECB reference rate CSV: {snippet(text)!r}"
        )
    currencies = [cell.upper() for cell in header[1:]]
    bad = [cell for cell in currencies if cell and not _CURRENCY.match(cell)]
    if bad:
        names = ", ".join(repr(limits.shown(cell)) for cell in bad[:5])
        raise FileFormatError(source_name, line=header_line, reason=f"not currency codes: {names}")
    width = len(header)
    problems = Problems(source_name)
    rates: list[FxRate] = []
    seen: dict[date, int] = {}
    latest = limits.latest_date()
    for line, cells in rows:
        if cells and cells[-1] == "" and len(cells) == width + 1:
            cells = cells[:-1]  # a header without the trailing comma over rows with it
        if len(cells) != width:
            problems.add(line, f"expected {width} fields, found {len(cells)}")
            continue
        try:
            day = _ecb_date(cells[0])
        except ValueError as exc:
            problems.add(line, str(exc))
            continue
        if day > latest:
            problems.add(line, f"the date {day.isoformat()} is in the future")
            continue
        if day in seen:
            problems.add(line, f"duplicate date {day.isoformat()} (also on line {seen[day]})")
            continue
        seen[day] = line
        for currency, cell in zip(currencies, cells[1:], strict=True):
            if not currency or cell in _MISSING:
                continue
            try:
                rate = parse_number(cell, currency, limits.MAX_FX_RATE)
            except ValueError as exc:
                problems.add(line, str(exc))
                continue
            problem = limits.fx_rate_problem(rate)
            if problem:
                problems.add(line, f"{currency} rate {cell} {problem}")
                continue
            rates.append(FxRate(day, "EUR", currency, rate, source))
    if not rates and not problems:
        problems.add(None, "no rates: the file has a header but no rows with a rate")
    problems.raise_if_any()
    rates.sort(key=lambda r: (r.as_of, r.quote_currency))
    return tuple(rates)


def gbp_crosses(
    rates: Iterable[FxRate], *, quotes: Iterable[str] | None = None, context: Context = CROSS_CONTEXT
) -> tuple[FxRate, ...]:
    """GBP→X for every day that has EURGBP: X/EURGBP for each other currency, and GBP→EUR = 1/EURGBP.

    ``rates`` are EUR-based (``parse_ecb_csv``). ``quotes`` limits the currencies returned
    (e.g. ``{"USD", "EUR"}``). Days without a GBP rate give nothing.
    """
    wanted = None if quotes is None else {q.upper() for q in quotes}
    by_day: dict[date, dict[str, FxRate]] = defaultdict(dict)
    for rate in rates:
        if rate.base_currency != "EUR":
            raise ValueError(
                f"gbp_crosses needs EUR-based rates, got {rate.base_currency}→{rate.quote_currency}"
            )
        by_day[rate.as_of][rate.quote_currency] = rate
    crosses: list[FxRate] = []
    for day in sorted(by_day):
        day_rates = by_day[day]
        eurgbp = day_rates.get("GBP")
        if eurgbp is None:
            continue
        if wanted is None or "EUR" in wanted:
            crosses.append(FxRate(day, "GBP", "EUR", context.divide(Decimal(1), eurgbp.rate), eurgbp.source))
        for currency in sorted(day_rates):
            if currency == "GBP" or (wanted is not None and currency not in wanted):
                continue
            cross = context.divide(day_rates[currency].rate, eurgbp.rate)
            crosses.append(FxRate(day, "GBP", currency, cross, eurgbp.source))
    return tuple(crosses)


def _unzip(content: bytes, source_name: str) -> bytes:
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            members = [m for m in archive.infolist() if m.filename.lower().endswith(".csv")]
            if len(members) != 1:
                raise FileFormatError(
                    source_name, line=None, reason="expected one CSV file in the zip archive"
                )
            if members[0].file_size > MAX_UNZIPPED_BYTES:
                raise FileFormatError(
                    source_name, line=None, reason="the CSV in the zip archive is too large"
                )
            return archive.read(members[0])
    except (zipfile.BadZipFile, zlib.error, EOFError, RuntimeError, NotImplementedError, ValueError, OSError):
        # a damaged, encrypted or oddly compressed archive: nothing here reads it
        raise FileFormatError(source_name, line=None, reason="not a valid zip archive") from None


class EcbFxProvider:
    """ECB reference rates: ``parse`` a CSV (or its zip), ``fetch`` the history or the daily file."""

    name: ClassVar[str] = "ecb"

    def __init__(self, *, base_url: str = DEFAULT_BASE_URL, client: HttpClient | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = client

    def parse(self, data: str | bytes, *, source_name: str = "<ecb>") -> tuple[FxRate, ...]:
        if isinstance(data, bytes | bytearray) and bytes(data[:4]) == b"PK\x03\x04":
            data = _unzip(bytes(data), source_name)
        return parse_ecb_csv(data, source_name=source_name, source=self.name)

    def fetch(
        self, *, start: date | None = None, end: date | None = None, latest_only: bool = False
    ) -> tuple[FxRate, ...]:
        """EUR→X rates from ``start`` to ``end`` inclusive: the full history file, or with
        ``latest_only`` the (much smaller) file of the latest reference day."""
        path = DAILY_PATH if latest_only else HISTORY_PATH
        client = self._client or HttpClient()
        response = client.get(f"{self.base_url}{path}")
        try:
            rates = self.parse(response.content, source_name=response.url)
        except FileFormatError as exc:
            problem = str(exc)
        else:
            return tuple(
                r for r in rates if (start is None or r.as_of >= start) and (end is None or r.as_of <= end)
            )
        raise ProviderError(f"ecb: the answer is not reference rate data: {problem}")
