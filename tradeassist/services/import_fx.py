"""Broker lines in another currency, converted to GBP at the stored rate before an import.

The book keeps cash in GBP only. A Trading 212 multi-currency account holds USD and EUR cash
beside its pounds, and a line paid from it (a deposit in USD, interest in EUR, a share bought
with the account's dollars) has no GBP amount in the file: its parser gives the amounts in the
line's own currency, marked ``extra["cash_currency"]``, and this module converts them, before the
import resolves or validates anything:

* **the rate** is the stored GBP cross (``fx_rates``, ``1 GBP = rate X``: the ECB's reference
  rates, ``tradeassist fx import``) as price normalisation picks one: the latest on or before
  the line's date in London, no more than ``DEFAULT_MAX_FX_AGE_DAYS`` (7) days older, the first
  source's where several have that day (``fx_series``);
* **the amounts**: cash, fees and a stated consideration are each divided by the rate and
  rounded to the penny, half-even (``core.money.round_cash``, the one rounding rule for cash); a
  trade's GBP consideration is then its GBP cash ∓ fees, so the entry adds up to the penny;
* **what the line said** goes to the entry's ``original_currency`` and ``original_amount``: the
  signed cash of a cash line (a USD deposit of 1000: ``USD``, ``1000``), the consideration of a
  trade (Total ∓ fees in that currency), as a trade in a foreign listing records it elsewhere;
* a line moving nothing (a split's 0.00) needs no rate.

When a rate is missing the import is refused, in one message naming every currency and day
without one and the command that stores them; nothing is written. The same file converts the
same way every time the same rates are stored, so importing it again, or an export overlapping
it, finds its entries already recorded with the same values.

This is an approximation the book accepts: it holds pounds only, so money held in dollars is
counted at its value in pounds on the day it moved, and what the dollars gain or lose against
the pound while they sit in the account is not tracked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlmodel import Session

from ..core.enums import EntryType
from ..core.errors import FileFormatError
from ..core.frozen import FrozenDict
from ..core.limits import latest_date
from ..core.money import CONTEXT, ZERO, round_cash
from ..core.timeutil import LONDON
from ..engine.normalize import BASE_CURRENCY, DEFAULT_MAX_FX_AGE_DAYS, FxSeries
from ..providers.brokers import ParsedEntry, ParsedFile
from ..providers.brokers.base import CASH_CURRENCY
from .fx_series import fx_series
from .ledger import NewEntry

FX_IMPORT_COMMAND = "tradeassist fx import FILE --format ecb"
_LISTED = 12  # days (or lines) named per currency in a refusal before "and N more"

# (file, line, entry type) -> (the line's currency, its amount in it)
Originals = Mapping[tuple[str, int, EntryType], tuple[str, Decimal]]


@dataclass(frozen=True)
class Converted:
    """A parsed file whose amounts are all in GBP, and what its converted lines said."""

    parsed: ParsedFile
    originals: Originals

    def record_originals(self, entries: Sequence[NewEntry]) -> list[NewEntry]:
        """The entries, each converted one carrying its line's currency and amount."""
        if not self.originals:
            return list(entries)
        recorded = []
        for e in entries:
            key = (e.source or "", e.line or 0, EntryType(e.entry_type))
            found = self.originals.get(key)
            if found is not None:
                e = e._replace(original_currency=found[0], original_amount=found[1])
            recorded.append(e)
        return recorded


def convert_foreign_cash(session: Session, parsed: ParsedFile) -> Converted:
    """``parsed`` with every line in another currency converted to GBP (see the module), or a
    ``FileFormatError`` naming every currency and day whose rate is not stored."""
    foreign = [
        (index, p)
        for index, p in enumerate(parsed.entries)
        if p.extra.get(CASH_CURRENCY, BASE_CURRENCY) != BASE_CURRENCY
    ]
    if not foreign:
        return Converted(parsed, {})
    days = {index: london_day(p.entry_time) for index, p in foreign}
    wanted: dict[str, list[date]] = {}
    for index, p in foreign:
        wanted.setdefault(p.extra[CASH_CURRENCY], []).append(days[index])
    series = {currency: _series(session, currency, on) for currency, on in wanted.items()}
    entries = list(parsed.entries)
    originals: dict[tuple[str, int, EntryType], tuple[str, Decimal]] = {}
    missing: dict[str, list[tuple[date, int]]] = {}
    for index, p in foreign:
        currency = p.extra[CASH_CURRENCY]
        if not (p.cash_amount_base or p.fees_base or p.consideration_base):
            entries[index] = p._replace(extra=_in_pounds(p.extra))  # nothing to convert
            continue
        rate = series[currency].rate_on(days[index], max_age_days=DEFAULT_MAX_FX_AGE_DAYS)
        if rate is None:
            missing.setdefault(currency, []).append((days[index], p.line))
            continue
        entries[index] = in_gbp(p, rate)
        originals[(p.source, p.line, p.entry_type)] = (currency, original_amount(p))
    if missing:
        raise FileFormatError(parsed.name, [(None, missing_rates_reason(parsed.format, missing))])
    return Converted(replace(parsed, entries=tuple(entries)), originals)


def london_day(when: datetime) -> date:
    """The date of ``when`` in London (the UTC date at the very edge of the calendar)."""
    try:
        return when.astimezone(LONDON).date()
    except OverflowError:  # 0001-01-01 00:00 UTC is still year 0 in London's mean time
        return when.date()


def _series(session: Session, currency: str, days: Sequence[date]) -> FxSeries:
    """The stored GBP→``currency`` rates for these days. The span is kept within the calendar
    (``fx_series`` reaches a week before its first day, and reads to the end of its last day's
    month) and ends today at the latest: no rate is stored for a later day, so a line dated in
    the future finds the same rate either way (and the ledger refuses it for its date)."""
    floor = date.min + timedelta(days=DEFAULT_MAX_FX_AGE_DAYS)
    last = max(min(max(days), latest_date()), floor)
    first = min(max(min(days), floor), last)
    return fx_series(session, currency, first, last)


def in_gbp(p: ParsedEntry, rate: Decimal) -> ParsedEntry:
    """The entry's amounts divided by the GBP→X ``rate``, each rounded to the penny half-even; a
    trade's consideration is its GBP cash ∓ fees (BUY −cash − fees, SELL cash + fees)."""
    cash = round_cash(CONTEXT.divide(p.cash_amount_base, rate))
    fees = round_cash(CONTEXT.divide(p.fees_base, rate))
    consideration = p.consideration_base
    if p.entry_type is EntryType.BUY:
        consideration = -cash - fees
    elif p.entry_type is EntryType.SELL:
        consideration = cash + fees
    elif consideration is not None:
        consideration = round_cash(CONTEXT.divide(consideration, rate))
    return p._replace(
        cash_amount_base=cash, fees_base=fees, consideration_base=consideration, extra=_in_pounds(p.extra)
    )


def _in_pounds(extra: Mapping[str, str]) -> FrozenDict:
    """The entry's details without the mark that its amounts are in another currency."""
    return FrozenDict({key: value for key, value in extra.items() if key != CASH_CURRENCY})


def original_amount(p: ParsedEntry) -> Decimal:
    """What the line said, in its own currency: a trade's consideration (as the file states it,
    else cash ∓ fees); any other line's signed cash, or the cost a transfer in brings."""
    if p.entry_type is EntryType.BUY:
        return p.consideration_base if p.consideration_base is not None else -p.cash_amount_base - p.fees_base
    if p.entry_type is EntryType.SELL:
        return p.consideration_base if p.consideration_base is not None else p.cash_amount_base + p.fees_base
    if p.cash_amount_base == ZERO and p.consideration_base is not None:
        return p.consideration_base
    return p.cash_amount_base


def missing_rates_reason(fmt: str, missing: Mapping[str, Sequence[tuple[date, int]]]) -> str:
    """One reason for every line without a rate: by currency, its days and lines, and the
    command that stores the rates."""
    count = sum(len(found) for found in missing.values())
    parts = []
    for currency, found in sorted(missing.items(), key=lambda item: min(line for _, line in item[1])):
        days = sorted({day for day, _ in found})
        lines = sorted(line for _, line in found)
        where = f"line {lines[0]}" if len(lines) == 1 else f"lines {_listed([str(n) for n in lines])}"
        parts.append(f"{currency} on {_listed([d.isoformat() for d in days], ' days')} ({where})")
    skip = (
        "; or leave those lines out with `--option foreign_cash=skip` (that cash, and what it bought or "
        "sold, is then not in the book)"
        if fmt == "trading212"
        else ""
    )
    return (
        f"no GBP exchange rate is stored for {count} line{'s' if count > 1 else ''} in a currency other "
        f"than {BASE_CURRENCY} ({'; '.join(parts)}): cash is kept in {BASE_CURRENCY} only, so each such "
        f"line is converted at the rate of its day in London, or the latest one within "
        f"{DEFAULT_MAX_FX_AGE_DAYS} days before it. Store the ECB's reference rates with "
        f"`{FX_IMPORT_COMMAND}` (FILE: eurofxref-hist.zip from the ECB's website, or the CSV in it) "
        f"and import this file again{skip}"
    )


def _listed(items: Sequence[str], noun: str = "") -> str:
    if len(items) <= _LISTED:
        return ", ".join(items)
    return f"{', '.join(items[:_LISTED])} and {len(items) - _LISTED} more{noun}"


__all__ = ["FX_IMPORT_COMMAND", "Converted", "convert_foreign_cash", "in_gbp", "london_day"]
