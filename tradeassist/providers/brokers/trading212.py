"""Trading 212 CSV exports ("History" → Export CSV).

The columns change between exports (fee columns appear only when the period had such a
fee; older exports write ``Total (GBP)`` where newer ones write ``Total`` and
``Currency (Total)``), so every column is looked up by name. Times are UTC.

* Deposit → CONTRIBUTION; Withdrawal → WITHDRAWAL; ``Market|Limit|Stop … buy/sell`` →
  BUY/SELL; ``Dividend (…)`` → DIVIDEND with notes ``dividend: …``, naming the payer by ISIN,
  ticker and name for the service to attach it to that listing (no units or price: the units
  held and the withholding tax go to ``extra``); ``Interest on cash``/``Lending interest`` →
  INTEREST; ``Stock split open/close`` → unit TRANSFER (+/−) marked as a corporate action.
  Other actions are refused by name.
* Only GBP accounts: the account currency is the Total's currency on trades converted from
  another currency (else GBP if any Total is in GBP); an account in EUR or USD is refused in
  one line. A trade priced in USD whose Total is in GBP is fine: the price keeps its own
  currency (``price_currency``; GBX means pence) and the cash is the GBP Total. A line whose
  Total is in another currency (a multi-currency account's USD or EUR cash: a deposit, interest
  or a trade paid in USD) has no GBP amount: its amounts are given in that currency, marked
  ``extra["cash_currency"]`` (``base.CASH_CURRENCY``), and the import service converts them to
  GBP at the stored rate of the line's day (``services.import_fx``); ``foreign_cash=skip``
  leaves such lines out instead. A line's fees must be in its Total's currency.
* ``Crypto buy``/``Crypto sell`` are refused as crypto (no ISIN, not held in V1).
* Total includes fees: BUY cash = −Total, consideration = Total − fees; SELL cash = +Total,
  consideration = Total + fees. Fees are the sum of the GBP fee/tax columns (currency
  conversion fee, stamp duty, transaction fee, …).
* Entries carry the ISIN (validated) and Trading 212's ticker; the service maps ISIN →
  listing. ``external_ref`` is the ID column, or a content hash where an export has none.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal

from ...core.enums import EntryType
from ...core.errors import FileFormatError, ValidationError
from ...core.frozen import FrozenDict
from ...core.isin import validate_isin
from ...core.limits import MAX_AMOUNT, MAX_PRICE, in_utc, shown
from ...core.money import ZERO, to_decimal
from ...core.units import canonical_scale
from .base import (
    CASH_CURRENCY,
    ContentRefs,
    ParsedEntry,
    ParsedFile,
    Problems,
    Source,
    SourceFile,
    SourceText,
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

FORMAT = "trading212"
BASE_CURRENCY = "GBP"
TYPICAL_HEADER = (
    "Action,Time,ISIN,Ticker,Name,No. of shares,Price / share,Currency (Price / share),"
    "Exchange rate,Total,Currency (Total),…,ID"
)
# A fee or tax column: "Currency conversion fee", "Stamp duty (GBP)", "Transaction fee"…
_FEE_COLUMN = re.compile(r"^(?!withholding)(.*\b(?:fee|tax|duty))(?: \(([a-z]{3})\))?$", re.IGNORECASE)
_TOTAL_IN = re.compile(r"^total \(([a-z]{3})\)$", re.IGNORECASE)
_NOT_AVAILABLE = {"", "not available", "n/a", "-"}
OPTIONS = {"foreign_cash": ("convert", "skip")}
_CURRENCY_CODE = re.compile(r"^[A-Z]{3}$")


class _Columns:
    """Where each named column is in this export, and which columns hold fees."""

    def __init__(self, header: Sequence[str]) -> None:
        self.names = [cell.strip() for cell in header]
        self.index = {name.lower(): i for i, name in enumerate(self.names)}
        self.total: int | None = self.index.get("total")
        self.total_currency: int | str | None = self.index.get("currency (total)")
        for i, name in enumerate(self.names):
            if self.total is None and (m := _TOTAL_IN.match(name)):
                self.total, self.total_currency = i, m.group(1).upper()
        # (column, its name, its currency: a fixed code or the column that says it)
        self.fees: list[tuple[int, str, int | str | None]] = []
        for i, name in enumerate(self.names):
            m = _FEE_COLUMN.match(name)
            if m and not name.lower().startswith("currency ("):
                currency = m.group(2).upper() if m.group(2) else self.index.get(f"currency ({name.lower()})")
                self.fees.append((i, name, currency))

    def missing(self) -> list[str]:
        wanted = {"action": "Action", "time": "Time"}
        lacking = [label for key, label in wanted.items() if key not in self.index]
        if self.total is None:
            lacking.append("Total")
        elif self.total_currency is None:
            lacking.append("Currency (Total)")  # never guess the currency of cash
        return lacking

    def get(self, row: Sequence[str], name: str) -> str:
        i = self.index.get(name.lower())
        return row[i].strip() if i is not None and i < len(row) else ""

    def currency(self, row: Sequence[str], where: int | str | None) -> str | None:
        if isinstance(where, str):
            return where
        if where is None:
            return None
        return row[where].strip().strip('"').upper() or None


def _kind(action: str) -> tuple[EntryType, int, str | None] | None:
    """The entry type, the sign of units for a TRANSFER, and the notes, for an Action."""
    a = " ".join(action.lower().split())
    if a == "deposit":
        return EntryType.CONTRIBUTION, 0, None
    if a == "withdrawal":
        return EntryType.WITHDRAWAL, 0, None
    if a.endswith(" buy"):
        return EntryType.BUY, 0, None
    if a.endswith(" sell"):
        return EntryType.SELL, 0, None
    if a.startswith("dividend"):
        return EntryType.DIVIDEND, 0, "dividend"
    if a in ("interest on cash", "lending interest"):
        return EntryType.INTEREST, 0, action.strip()
    if a == "stock split open":
        return EntryType.TRANSFER, 1, "corporate action: stock split (new shares in)"
    if a == "stock split close":
        return EntryType.TRANSFER, -1, "corporate action: stock split (old shares out)"
    return None


def _number(text: str, what: str, limit: Decimal = MAX_AMOUNT) -> Decimal | None:
    text = text.strip()
    return None if text.lower() in _NOT_AVAILABLE else to_decimal(text, what=what, limit=limit)


def _parse_line(cols: _Columns, row: list[str], line: int, name: str, refs: ContentRefs) -> ParsedEntry:
    """One export line as an entry; ValueError/ValidationError with the reason if not."""
    action = cols.get(row, "Action")
    entry_type, sign, notes = _action_kind(action)
    total_currency = _total_currency(cols, row)
    time_text = cols.get(row, "Time")
    entry_time = _time(time_text)
    total = _number(row[cols.total], "Total") if cols.total is not None else None
    if total is None:
        raise ValueError("Total is empty")
    total = _magnitude(total, entry_type, action)
    fees = _fees(cols, row, total_currency)
    isin_text = cols.get(row, "ISIN")
    isin = validate_isin(isin_text) if isin_text else None
    ticker = cols.get(row, "Ticker").upper() or None
    description = cols.get(row, "Name") or None
    shares = _number(cols.get(row, "No. of shares"), "No. of shares")
    price = _number(cols.get(row, "Price / share"), "Price / share", MAX_PRICE)
    quoted_in = cols.get(row, "Currency (Price / share)").strip('"')
    price_currency = canonical_scale(quoted_in) if quoted_in else None  # any pence spelling: GBX
    extra: dict[str, str] = {}
    if total_currency != BASE_CURRENCY:
        extra[CASH_CURRENCY] = total_currency  # for the import service to convert to GBP
    rate = cols.get(row, "Exchange rate")
    if rate.lower() not in _NOT_AVAILABLE:
        extra["exchange_rate"] = rate

    units = consideration = None
    cash = total
    if entry_type is EntryType.BUY or entry_type is EntryType.SELL:
        units, consideration = shares, total - fees if entry_type is EntryType.BUY else total + fees
        cash = -total if entry_type is EntryType.BUY else total
    elif entry_type is EntryType.TRANSFER:
        units = -shares if shares is not None and sign < 0 else shares
        cash = ZERO
        extra["corporate_action"] = "split"
    elif entry_type is EntryType.DIVIDEND:
        # The payer stays named (ISIN, ticker, name); the units held are not units moved.
        notes = f"dividend: {description or ticker or isin}" + (f" ({shares} units)" if shares else "")
        extra |= _dividend_extra(cols, row, isin, ticker, shares)
        price = price_currency = None  # the dividend per share, not a price paid
    else:
        if entry_type is EntryType.WITHDRAWAL:
            cash = -total
        isin = ticker = description = price = price_currency = None
    if fees and entry_type not in (EntryType.BUY, EntryType.SELL):
        raise ValueError(f"fees of {fees} on a {action!r} line are not supported")
    problem = convention_problem(entry_type, ticker or isin, units, price, fees, cash)
    if problem:
        raise ValueError(problem)
    ref = cols.get(row, "ID") or refs(
        action, time_text, isin_text, decimal_key(shares), decimal_key(total), total_currency
    )
    return ParsedEntry(
        name, line, entry_time, entry_type, cash, fees, ticker, None, isin, description, units,
        price if units is not None else None, price_currency if units is not None else None,
        consideration, ref, notes, FrozenDict(extra),
    )  # fmt: skip


def _magnitude(total: Decimal, entry_type: EntryType, action: str) -> Decimal:
    """The Total as a magnitude; its sign must agree with the action. Trading 212 writes
    every Total positive, except that newer exports write a withdrawal's negative: either
    way it is money out. A negative Total on any other line (a deposit of -100.00) is
    refused, never booked as its opposite."""
    if total >= 0:
        return total
    if entry_type is EntryType.WITHDRAWAL:
        return -total
    raise ValueError(f"the Total of a {action.strip()!r} line must not be negative, got {total}")


def _action_kind(action: str) -> tuple[EntryType, int, str | None]:
    if action.strip().lower().startswith("crypto"):
        raise ValueError(
            f"action {action.strip()!r}: crypto is not supported (the ledger holds instruments with an "
            "ISIN: shares, ETFs, funds)"
        )
    kind = _kind(action)
    if kind is None:
        raise ValueError(
            f"action {action!r} is not supported (deposits, withdrawals, buys, sells, dividends, "
            "interest and stock splits are)"
        )
    return kind


def _total_currency(cols: _Columns, row: list[str]) -> str:
    """The Total's currency, a three-letter code (GBP, or another for the service to convert)."""
    total_currency = cols.currency(row, cols.total_currency)
    if total_currency is None:
        raise ValueError("Currency (Total) is empty")
    if not _CURRENCY_CODE.match(total_currency):
        raise ValueError(f"Currency (Total) {shown(total_currency)!r} is not a three-letter currency code")
    return total_currency


def _time(text: str) -> datetime:
    """The line's Time in UTC (a naive one is UTC)."""
    try:
        entry_time = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"Time {text!r} is not a date and time") from None
    return entry_time.replace(tzinfo=UTC) if entry_time.tzinfo is None else in_utc(entry_time, "Time", text)


def _fees(cols: _Columns, row: list[str], total_currency: str) -> Decimal:
    """Every fee column of the line, added up (each must be in the Total's currency, converted
    with it when that is not GBP)."""
    fees = ZERO
    for index, fee_name, where in cols.fees:
        amount = _number(row[index], fee_name) if index < len(row) else None
        if not amount:
            continue
        currency = cols.currency(row, where) or total_currency
        if currency != total_currency:
            raise ValueError(
                f"{shown(fee_name)} is in {shown(currency)}; a line's fees must be in the Total's currency "
                f"({total_currency})"
            )
        fees += abs(amount)
    return fees


def _dividend_extra(
    cols: _Columns, row: list[str], isin: str | None, ticker: str | None, shares: Decimal | None
) -> dict[str, str]:
    """What a dividend line keeps of its payer: ISIN, ticker, units held, tax withheld."""
    extra = {"dividend_isin": isin or "", "dividend_ticker": ticker or ""}
    if shares is not None:
        extra["dividend_units"] = str(shares)
    tax = cols.get(row, "Withholding tax")
    if tax:
        extra["withholding_tax"] = f"{tax} {cols.get(row, 'Currency (Withholding tax)')}".strip()
    return extra


def parse_trading212(source: Source, *, foreign_cash: str = "convert") -> ParsedFile:
    """Parse a Trading 212 CSV export; raise ``FileFormatError`` naming every bad line.

    A line whose Total is in another currency than GBP is given in that currency, for the
    import service to convert (``foreign_cash="convert"``), or left out (``"skip"``)."""
    src = read_source(source)
    records = list(csv_rows(src))
    cols = _Columns(records[0][1] if records else [])
    if lacking := cols.missing():
        why = f"not a Trading 212 export: no {', '.join(lacking)} column; expected {TYPICAL_HEADER!r}"
        raise FileFormatError(src.name, [(1, why)])
    rows = [(line, row) for line, row in records[1:] if not is_blank(row)]
    _check_account_currency(src.name, cols, rows)
    problems = Problems()
    refs = ContentRefs(FORMAT)
    entries: list[ParsedEntry] = []
    for line, row in rows:
        if len(row) != len(cols.names):
            problems.add(src.name, line, f"has {len(row)} fields, expected {len(cols.names)}")
            continue
        if foreign_cash == "skip":
            currency = cols.currency(row, cols.total_currency)
            if currency is not None and currency != BASE_CURRENCY and _CURRENCY_CODE.match(currency):
                continue
        try:
            entries.append(_parse_line(cols, row, line, src.name, refs))
        except (ValueError, ValidationError) as exc:
            problems.add(src.name, line, str(exc))
    if not entries and not problems:
        problems.add(src.name, None, "has a header but no entries")
    repeated_references(src.name, [(e.line, e.external_ref) for e in entries], problems)
    check_parsed_entries(entries, problems)
    problems.raise_if_any()
    return _result(src, entries)


def _check_account_currency(name: str, cols: _Columns, rows: list[tuple[int, list[str]]]) -> None:
    """Refuse, in one line, an account whose currency is not GBP. The account currency is the
    Total's on trades converted from another currency (a USD price, a EUR Total and a rate);
    with none, GBP if any Total is in GBP, else the commonest Total currency."""
    totals: Counter[str] = Counter()
    converted: Counter[str] = Counter()
    for _, row in rows:
        if len(row) != len(cols.names):
            continue
        total = cols.currency(row, cols.total_currency)
        if not total:
            continue
        totals[total] += 1
        quoted = canonical_scale(cols.get(row, "Currency (Price / share)").strip('"'))
        major = BASE_CURRENCY if quoted == "GBX" else quoted
        if major and major != total and cols.get(row, "Exchange rate").lower() not in _NOT_AVAILABLE:
            converted[total] += 1
    if converted:
        account, _ = converted.most_common(1)[0]
    elif not totals or BASE_CURRENCY in totals:
        return
    else:
        account, _ = totals.most_common(1)[0]
    if account != BASE_CURRENCY:
        raise account_currency_error(name, account, f"its cash and trades are settled in {account}")


def _result(src: SourceText, entries: list[ParsedEntry]) -> ParsedFile:
    ordered = oldest_first(entries, key=lambda e: e.entry_time)
    return ParsedFile(
        src.name, FORMAT, tuple(ordered), src.sha256, (SourceFile(src.name, src.sha256, FORMAT),)
    )


class Trading212Format:
    name = FORMAT
    title = "Trading 212 CSV export"

    def parse(self, *sources: Source, **options: object) -> ParsedFile:
        if len(sources) != 1:
            raise ValidationError("the Trading 212 format reads exactly one file")
        chosen = format_options(self.title, options, OPTIONS)
        return parse_trading212(sources[0], foreign_cash=chosen["foreign_cash"])
