"""Freetrade CSV exports (the app's Activity → Export CSV).

The header (columns are looked up by name): ``Title,Type,Timestamp,Account Currency,
Total Amount,Buy / Sell,Ticker,ISIN,Price per Share in Account Currency,Stamp Duty,Quantity,
Venue,Order ID,Order Type,Instrument Currency,Total Shares Amount,Price per Share,FX Rate,
Base FX Rate,FX Fee (BPS),FX Fee Amount,Dividend Ex Date,Dividend Pay Date,
Dividend Eligible Quantity,Dividend Amount Per Share,Dividend Gross Distribution Amount,
Dividend Net Distribution Amount,Dividend Withheld Tax Percentage,Dividend Withheld Tax Amount``.
Newest first; ISO timestamps in UTC. ``Total Amount`` is the money that moved, in the account
currency, written positive.

* ``TOP_UP`` → CONTRIBUTION; ``WITHDRAWAL`` → WITHDRAWAL; ``INTEREST_FROM_CASH`` → INTEREST.
* ``ORDER`` with ``Buy / Sell`` BUY or SELL → BUY/SELL. Fees are ``Stamp Duty`` + ``FX Fee
  Amount`` (both in GBP); BUY cash = −Total, consideration = Total − fees; SELL cash = +Total,
  consideration = Total + fees. The consideration must agree with Quantity × ``Price per Share
  in Account Currency`` to the penny (£0.01). The price is ``Price per Share`` in the
  ``Instrument Currency`` (pence as GBX); the service converts it to the listing's scale.
* ``FREESHARE_ORDER`` (a share Freetrade gives away) → TRANSFER of the units in: no cash,
  its value (Total Amount) as its cost.
* ``DIVIDEND`` → DIVIDEND of Total Amount (in GBP, net of the tax withheld abroad), naming the
  payer by ISIN, ticker and Title; the units held and the tax withheld go to ``extra``.
* ``PROPERTY`` (a REIT's property income distribution) is refused: UK tax treats it as
  property income, which is neither a dividend nor interest. ``property_income=dividend``
  books it as a DIVIDEND of its listing, with notes ``property income distribution: …``.
* ``MONTHLY_STATEMENT`` lines (statements, tax certificates: no money) are left out.
* An account currency other than GBP refuses the file in one line. Other types are refused.
* ``external_ref`` is the Order ID for orders and free shares, else a content hash.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal

from ...core.enums import EntryType
from ...core.errors import FileFormatError, ValidationError
from ...core.frozen import FrozenDict
from ...core.isin import validate_isin
from ...core.limits import MAX_PRICE, in_utc
from ...core.money import PENNY, ZERO, format_gbp
from ...core.units import canonical_scale
from .base import (
    Cells,
    ContentRefs,
    ParsedEntry,
    ParsedFile,
    Problems,
    Source,
    SourceFile,
    account_currency_error,
    check_parsed_entries,
    convention_problem,
    csv_rows,
    decimal_key,
    format_options,
    is_blank,
    oldest_first,
    read_source,
    repeated_references,
)

FORMAT = "freetrade"
BASE_CURRENCY = "GBP"
OPTIONS = {"property_income": ("refuse", "dividend")}
REQUIRED = (
    "Title",
    "Type",
    "Timestamp",
    "Account Currency",
    "Total Amount",
    "Buy / Sell",
    "Ticker",
    "ISIN",
    "Price per Share in Account Currency",
    "Stamp Duty",
    "Quantity",
    "Order ID",
    "Instrument Currency",
    "Price per Share",
    "FX Fee Amount",
)
_CASH_TYPES = {
    "TOP_UP": EntryType.CONTRIBUTION,
    "WITHDRAWAL": EntryType.WITHDRAWAL,
    "INTEREST_FROM_CASH": EntryType.INTEREST,
}
_LEFT_OUT = "MONTHLY_STATEMENT"
_SUPPORTED = (
    "top-ups, withdrawals, orders, free shares, dividends and interest are; monthly statements are left out"
)
_PROPERTY = (
    "type 'PROPERTY' (a REIT's property income distribution) is not supported: UK tax treats it as "
    "property income, which is neither a dividend nor interest; to book it as a DIVIDEND of its "
    "listing all the same, import with `--option property_income=dividend`"
)


def parse_freetrade(source: Source, *, property_income: str = "refuse") -> ParsedFile:
    """Parse a Freetrade CSV export; raise ``FileFormatError`` naming every bad line."""
    src = read_source(source)
    records = list(csv_rows(src))
    header = [cell.strip() for cell in records[0][1]] if records else []
    index = {name: i for i, name in enumerate(header)}
    if missing := [name for name in REQUIRED if name not in index]:
        why = f"not a Freetrade export: no {', '.join(missing)} column; expected {','.join(REQUIRED)}, …"
        raise FileFormatError(src.name, [(1, why)])
    rows = [(line, row) for line, row in records[1:] if not is_blank(row)]
    _check_account_currency(src.name, index, rows, len(header))
    problems = Problems()
    refs = ContentRefs(FORMAT)
    entries: list[ParsedEntry] = []
    for line, row in rows:
        if len(row) != len(header):
            problems.add(src.name, line, f"has {len(row)} fields, expected {len(header)}")
            continue
        cells = Cells(index, row)
        if cells["Type"].upper() == _LEFT_OUT:
            continue
        try:
            entries.append(_entry(cells, line, src.name, refs, property_income))
        except (ValueError, ValidationError) as exc:
            problems.add(src.name, line, str(exc))
    if not entries and not problems:
        problems.add(src.name, None, "has a header but no entries")
    repeated_references(src.name, [(e.line, e.external_ref) for e in entries], problems)
    check_parsed_entries(entries, problems)
    problems.raise_if_any()
    ordered = oldest_first(entries, key=lambda e: e.entry_time)
    sources = (SourceFile(src.name, src.sha256, FORMAT),)
    return ParsedFile(src.name, FORMAT, tuple(ordered), src.sha256, sources)


def _check_account_currency(
    name: str, index: Mapping[str, int], rows: list[tuple[int, list[str]]], width: int
) -> None:
    """Refuse, in one line, an account kept in another currency than GBP."""
    others: Counter[str] = Counter()
    for _, row in rows:
        if len(row) == width:
            currency = Cells(index, row)["Account Currency"].upper()
            if currency and currency != BASE_CURRENCY:
                others[currency] += 1
    if others:
        raise account_currency_error(name, others.most_common(1)[0][0])


def _entry(cells: Cells, line: int, name: str, refs: ContentRefs, property_income: str) -> ParsedEntry:
    """One line as an entry; ValueError/ValidationError with the reason if it cannot be."""
    kind = cells["Type"].upper()
    if kind == "PROPERTY" and property_income != "dividend":
        raise ValueError(_PROPERTY)
    if kind not in _CASH_TYPES and kind not in ("ORDER", "FREESHARE_ORDER", "DIVIDEND", "PROPERTY"):
        raise ValueError(f"type {cells['Type']!r} is not supported ({_SUPPORTED})")
    when = _time(cells["Timestamp"])
    if not cells["Account Currency"]:
        raise ValueError("Account Currency is empty")
    total = cells.number("Total Amount")
    if total is None:
        raise ValueError("Total Amount is empty")
    if total < ZERO and kind != "WITHDRAWAL":
        raise ValueError(f"the Total Amount of a {kind} line must not be negative, got {total}")
    total = abs(total)  # a withdrawal is money out, however its sign is written
    if kind in _CASH_TYPES:
        entry_type = _CASH_TYPES[kind]
        cash = -total if entry_type is EntryType.WITHDRAWAL else total
        notes = (cells["Title"] or None) if entry_type is EntryType.INTEREST else None
        ref = refs(kind, cells["Timestamp"], decimal_key(total))
        entry = ParsedEntry(name, line, when, entry_type, cash, external_ref=ref, notes=notes)
    elif kind == "ORDER":
        entry = _order(cells, line, name, when, total, refs)
    elif kind == "FREESHARE_ORDER":
        entry = _free_share(cells, line, name, when, total, refs)
    else:
        entry = _income(cells, line, name, when, total, refs, kind)
    problem = convention_problem(
        entry.entry_type, entry.ticker or entry.isin, entry.units, entry.price, entry.fees_base,
        entry.cash_amount_base,
    )  # fmt: skip
    if problem:
        raise ValueError(problem)
    return entry


def _time(text: str) -> datetime:
    """The Timestamp in UTC (a naive one is UTC)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"Timestamp {text!r} is not a date and time") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else in_utc(moment, "Timestamp", text)


def _instrument(cells: Cells) -> tuple[str | None, str | None, str | None]:
    """(ISIN, ticker, name) of the line's instrument."""
    isin = validate_isin(cells["ISIN"]) if cells["ISIN"] else None
    return isin, cells["Ticker"].upper() or None, cells["Title"] or None


def _price(cells: Cells) -> tuple[Decimal | None, str | None]:
    """The price per share in the instrument's currency (GBX when pence), else in GBP."""
    price = cells.number("Price per Share", MAX_PRICE)
    if price is not None and cells["Instrument Currency"]:
        return price, canonical_scale(cells["Instrument Currency"])
    return cells.number("Price per Share in Account Currency", MAX_PRICE), BASE_CURRENCY


def _order(
    cells: Cells, line: int, name: str, when: datetime, total: Decimal, refs: ContentRefs
) -> ParsedEntry:
    side = cells["Buy / Sell"].upper()
    if side not in ("BUY", "SELL"):
        raise ValueError(f"Buy / Sell {cells['Buy / Sell']!r} of an ORDER must be BUY or SELL")
    buy = side == "BUY"
    isin, ticker, title = _instrument(cells)
    units = cells.number("Quantity")
    fees = (cells.number("Stamp Duty") or ZERO) + (cells.number("FX Fee Amount") or ZERO)
    consideration = total - fees if buy else total + fees
    in_gbp = cells.number("Price per Share in Account Currency", MAX_PRICE)
    if in_gbp is not None and units is not None:
        expected = in_gbp * units
        if abs(expected - consideration) > PENNY:
            raise ValueError(
                f"the Total Amount {format_gbp(total)} {'less' if buy else 'plus'} fees {format_gbp(fees)} "
                f"is {format_gbp(consideration)}, which does not agree with Quantity × Price per Share "
                f"in Account Currency = {format_gbp(expected)}"
            )
    price, price_currency = _price(cells)
    ref = cells["Order ID"] or refs("ORDER", cells["Timestamp"], side, isin or "", decimal_key(units))
    extra = {k: v for k, v in (("venue", cells["Venue"]), ("fx_rate", cells["FX Rate"])) if v}
    return ParsedEntry(
        name, line, when, EntryType.BUY if buy else EntryType.SELL, -total if buy else total, fees,
        ticker, None, isin, title, units, price, price_currency, consideration, ref, None,
        FrozenDict(extra),
    )  # fmt: skip


def _free_share(
    cells: Cells, line: int, name: str, when: datetime, total: Decimal, refs: ContentRefs
) -> ParsedEntry:
    if cells["Buy / Sell"].upper() not in ("", "BUY"):
        raise ValueError(f"a FREESHARE_ORDER is a share received, not {cells['Buy / Sell']!r}")
    isin, ticker, title = _instrument(cells)
    units = cells.number("Quantity")
    price, price_currency = _price(cells)
    ref = cells["Order ID"] or refs("FREESHARE_ORDER", cells["Timestamp"], isin or "", decimal_key(units))
    notes = f"free share from Freetrade: {title or ticker or isin}, worth {format_gbp(total)}"
    return ParsedEntry(
        name, line, when, EntryType.TRANSFER, ZERO, ZERO, ticker, None, isin, title, units, price,
        price_currency, total, ref, notes, FrozenDict({"free_share": "yes"}),
    )  # fmt: skip


def _income(
    cells: Cells, line: int, name: str, when: datetime, total: Decimal, refs: ContentRefs, kind: str
) -> ParsedEntry:
    """A dividend, or a property income distribution booked as one (``property_income``)."""
    isin, ticker, title = _instrument(cells)
    held = cells["Dividend Eligible Quantity"] or cells["Quantity"]
    label = "dividend" if kind == "DIVIDEND" else "property income distribution"
    notes = f"{label}: {title or ticker or isin}" + (f" ({held} units)" if held else "")
    extra = {"dividend_isin": isin or "", "dividend_ticker": ticker or ""}
    if held:
        extra["dividend_units"] = held
    withheld = cells.number("Dividend Withheld Tax Amount")
    if withheld:
        currency = cells["Instrument Currency"] or BASE_CURRENCY
        extra["withholding_tax"] = f"{cells['Dividend Withheld Tax Amount']} {currency}"
    for key, column in (("ex_date", "Dividend Ex Date"), ("pay_date", "Dividend Pay Date")):
        if cells[column]:
            extra[key] = cells[column]
    if kind != "DIVIDEND":
        extra["income"] = label
    ref = refs(kind, cells["Timestamp"], isin or ticker or "", decimal_key(total))
    return ParsedEntry(
        name, line, when, EntryType.DIVIDEND, total, ZERO, ticker, None, isin, title,
        external_ref=ref, notes=notes, extra=FrozenDict(extra),
    )  # fmt: skip


class FreetradeFormat:
    name = FORMAT
    title = "Freetrade CSV export"

    def parse(self, *sources: Source, **options: object) -> ParsedFile:
        if len(sources) != 1:
            raise ValidationError("the Freetrade format reads exactly one file")
        chosen = format_options(self.title, options, OPTIONS)
        return parse_freetrade(sources[0], property_income=chosen["property_income"])
