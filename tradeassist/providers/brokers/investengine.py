"""InvestEngine CSV exports (the account's trading history: Activity → Export).

Header: ``Security / ISIN,Transaction Type,Quantity,Share Price,Total Trade Value,
Trade Date/Time,Settlement Date,Broker``. A security is ``<name> / ISIN <isin>``; amounts carry
a ``£``; times are UK local time, ``dd/mm/yy hh:mm:ss`` (``23/12/24 15:18:12``).

* ``Buy`` → BUY, ``Sell`` → SELL, in GBP, no fees (InvestEngine charges none per trade). The
  consideration is the Total Trade Value. The Share Price it prints is rounded to the penny
  (2.699055 × £110.79 is £299.03, the value £299.04), so the price is Total Trade Value /
  Quantity to 8 places (``base.derived_price``) and the printed one goes to ``extra``.
* Instruments are named by ISIN only (no ticker); the service finds the listing by ISIN.
* Anything else is refused by name. There is no reference column: ``external_ref`` is a
  content hash of the row.
* The file holds **no cash lines**: the money paid in for the buys is not in it, so an import
  into a portfolio without that cash is refused (cash below zero) and told how to bring it
  (``ParsedFile.cash_hint``): record the contributions first, or ``contributions=each-buy``,
  which books each buy's cost as a CONTRIBUTION at the moment of the buy (what InvestEngine's
  regular investing does: money paid in, then invested). A sale's proceeds stay as cash.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from ...core.enums import EntryType
from ...core.errors import FileFormatError, ValidationError
from ...core.frozen import FrozenDict
from ...core.isin import validate_isin
from ...core.limits import MAX_PRICE
from ...core.money import ZERO, to_decimal
from ...core.timeutil import LONDON
from .base import (
    Cells,
    ContentRefs,
    ParsedEntry,
    ParsedFile,
    Problems,
    Source,
    SourceFile,
    check_parsed_entries,
    convention_problem,
    csv_rows,
    decimal_key,
    derived_price,
    format_options,
    is_blank,
    oldest_first,
    read_source,
)

FORMAT = "investengine"
HEADER = (
    "Security / ISIN",
    "Transaction Type",
    "Quantity",
    "Share Price",
    "Total Trade Value",
    "Trade Date/Time",
    "Settlement Date",
    "Broker",
)
OPTIONS = {"contributions": ("none", "each-buy")}
_SIDES = {"buy": EntryType.BUY, "sell": EntryType.SELL}
_SECURITY = re.compile(r"^(.*?)\s*/\s*ISIN\s+(\S+)$", re.IGNORECASE)
_TIME = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{2}|\d{4})\s+(\d{1,2}):(\d{2})(?::(\d{2}))?$")
NO_CASH_HINT = (
    "InvestEngine's export holds no cash lines, so the money paid in for these buys is not in it: "
    "record your contributions first (`tradeassist ledger add --portfolio NAME --type CONTRIBUTION "
    "--amount AMOUNT --time YYYY-MM-DD`, dated before the buys they paid for) and import again, or "
    "import with `--option contributions=each-buy` to record each buy's cost as paid in at the "
    "moment of the buy"
)


def parse_investengine(source: Source, *, contributions: str = "none") -> ParsedFile:
    """Parse an InvestEngine CSV export; raise ``FileFormatError`` naming every bad line.
    ``contributions="each-buy"``: each buy is paid in as it is made (see the module)."""
    src = read_source(source)
    records = list(csv_rows(src))
    header = [cell.strip() for cell in records[0][1]] if records else []
    index = {name: i for i, name in enumerate(header)}
    if missing := [name for name in HEADER if name not in index]:
        why = f"not an InvestEngine export: no {', '.join(missing)} column; expected {','.join(HEADER)!r}"
        raise FileFormatError(src.name, [(1, why)])
    problems = Problems()
    refs = ContentRefs(FORMAT)
    trades: list[ParsedEntry] = []
    for line, row in records[1:]:
        if is_blank(row):
            continue
        if len(row) != len(header):
            problems.add(src.name, line, f"has {len(row)} fields, expected {len(header)}")
            continue
        try:
            trades.append(_trade(Cells(index, row), line, src.name, refs))
        except (ValueError, ValidationError) as exc:
            problems.add(src.name, line, str(exc))
    if not trades and not problems:
        problems.add(src.name, None, "has a header but no entries")
    check_parsed_entries(trades, problems)
    problems.raise_if_any()
    entries = oldest_first(trades, key=lambda e: e.entry_time)
    if contributions == "each-buy":
        entries = _paid_in(entries)
    hint = None if contributions == "each-buy" else NO_CASH_HINT
    sources = (SourceFile(src.name, src.sha256, FORMAT),)
    return ParsedFile(src.name, FORMAT, tuple(entries), src.sha256, sources, (), hint)


def _trade(cells: Cells, line: int, name: str, refs: ContentRefs) -> ParsedEntry:
    """One row as a BUY or SELL; ValueError/ValidationError with the reason if it cannot be."""
    security = cells["Security / ISIN"]
    match = _SECURITY.match(security)
    if match is None:
        raise ValueError(f"Security / ISIN {security!r} does not name an ISIN ('<name> / ISIN <ISIN>')")
    title, isin = match.group(1).strip() or None, validate_isin(match.group(2))
    side = cells["Transaction Type"]
    entry_type = _SIDES.get(side.lower())
    if entry_type is None:
        raise ValueError(f"transaction type {side!r} is not supported (Buy and Sell are)")
    when = _time(cells["Trade Date/Time"])
    units = to_decimal(cells["Quantity"], what="Quantity") if cells["Quantity"] else None
    if not cells["Total Trade Value"]:
        raise ValueError("Total Trade Value is empty")
    value = to_decimal(cells["Total Trade Value"], what="Total Trade Value")
    if value <= ZERO:
        raise ValueError(f"Total Trade Value must be positive, got {value}")
    if cells["Share Price"]:
        to_decimal(cells["Share Price"], what="Share Price", limit=MAX_PRICE)  # a number, if given
    price = derived_price(value, units) if units else None
    cash = -value if entry_type is EntryType.BUY else value
    problem = convention_problem(entry_type, isin, units, price, ZERO, cash)
    if problem:
        raise ValueError(problem)
    extra = {
        key: cells[column]
        for key, column in (
            ("share_price", "Share Price"),
            ("settlement_date", "Settlement Date"),
            ("broker", "Broker"),
        )
        if cells[column] and cells[column].lower() != "none"
    }
    ref = refs(isin, side.lower(), cells["Trade Date/Time"], decimal_key(units), decimal_key(value))
    return ParsedEntry(
        name, line, when, entry_type, cash, ZERO, None, None, isin, title, units, price, "GBP", value,
        ref, None, FrozenDict(extra),
    )  # fmt: skip


def _time(text: str) -> datetime:
    """``dd/mm/yy hh:mm:ss`` (or a four-digit year, or no seconds) in UK time, as UTC."""
    match = _TIME.match(text)
    if match is None:
        raise ValueError(f"Trade Date/Time {text!r} is not dd/mm/yy hh:mm:ss")
    day, month, year, hour, minute = (int(part) for part in match.groups()[:5])
    second = int(match.group(6) or 0)
    try:
        local = datetime(year + 2000 if year < 100 else year, month, day, hour, minute, second, tzinfo=LONDON)
    except ValueError:
        raise ValueError(f"Trade Date/Time {text!r} does not exist") from None
    return local.astimezone(UTC)


def _paid_in(entries: list[ParsedEntry]) -> list[ParsedEntry]:
    """Each buy preceded by a CONTRIBUTION of its cost at the same moment (contributions=each-buy)."""
    refs = ContentRefs(f"{FORMAT}-contribution")
    result: list[ParsedEntry] = []
    for e in entries:
        if e.entry_type is EntryType.BUY:
            notes = f"paid in for the buy on line {e.line} (contributions=each-buy: the export has no cash)"
            ref = refs(e.external_ref or "")
            paid_in = ParsedEntry(
                e.source, e.line, e.entry_time, EntryType.CONTRIBUTION, -e.cash_amount_base,
                external_ref=ref, notes=notes,
            )  # fmt: skip
            result.append(paid_in)
        result.append(e)
    return result


class InvestEngineFormat:
    name = FORMAT
    title = "InvestEngine CSV export"

    def parse(self, *sources: Source, **options: object) -> ParsedFile:
        if len(sources) != 1:
            raise ValidationError("the InvestEngine format reads exactly one file")
        chosen = format_options(self.title, options, OPTIONS)
        return parse_investengine(sources[0], contributions=chosen["contributions"])
