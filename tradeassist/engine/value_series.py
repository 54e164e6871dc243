"""Daily portfolio value from the ledger and closing prices.

The ledger is a sequence of ``LedgerEvent`` (one per cash/unit movement); prices are a GBP
close per listing. Every value is computed in exact ``Decimal`` (``DailyValues``); the
DataFrame for charts (``value_series``) carries floats converted from those Decimals at the
very end, so rounding never accumulates along the series.

Conventions (shared with ``performance``):

- The series has one row per *calendar* day. A listing's last known close is carried
  forward over weekends, bank holidays and gaps in the feed, so a day is always valued.
- Every event takes effect at the close of its date, and flows are valued at that close.
- External flows are what crosses the portfolio boundary: CONTRIBUTION and WITHDRAWAL at their
  cash amount, TRANSFER at its cash amount plus its units valued at that day's close
  (in-specie transfers in are positive, out negative). BUY, SELL, FEE and INTEREST are internal.
- A holding is never valued at zero for want of a price. ``daily_values`` refuses a day on which
  a listing is held (or moved in specie) before its first close (``MissingClose``);
  ``price_gaps`` names every such stretch (``PriceGap``: which listing, how many units, from
  when to when), and ``value_series_where_priced`` values the latest stretch of days on which
  every holding has a price and says what it leaves out (``ValuedSeries``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

import pandas as pd

from ..core.enums import EntryType
from ..core.errors import ValidationError
from ..core.money import ZERO
from .daily_values import (
    EXTERNAL_ENTRY_TYPES,
    UNIT_ENTRY_TYPES,
    DailyValues,
    LedgerEvent,
    bounds,
    daily_values,
    daily_values_over,
    transfer_value,
    units_held,
)
from .price_book import EPOCH, ONE_DAY, MissingClose, PriceBook, PriceInput, as_date, day_number

__all__ = [
    "EPOCH",
    "EXTERNAL_ENTRY_TYPES",
    "ONE_DAY",
    "UNIT_ENTRY_TYPES",
    "DailyValues",
    "LedgerEvent",
    "MissingClose",
    "PriceBook",
    "PriceGap",
    "PriceInput",
    "ValuedSeries",
    "as_date",
    "daily_values",
    "day_number",
    "price_gaps",
    "transfer_value",
    "units_held",
    "value_series",
    "value_series_where_priced",
]


def value_series(
    events: Sequence[LedgerEvent],
    prices: PriceInput,
    *,
    start: date | None = None,
    end: date | None = None,
) -> pd.DataFrame:
    """The daily value DataFrame for charts and returns (see ``daily_values`` for the rules).

    Columns: ``holdings_value``, ``cash``, ``total_value``, ``external_flow`` (contributions
    and transfers in positive, withdrawals and transfers out negative), ``contribution`` (the
    day's CONTRIBUTION amount) and ``has_contribution`` (a marker for charts). Values are floats
    converted once from exact Decimals; use ``daily_values`` for the exact figures.
    """
    return daily_values(events, prices, start=start, end=end).to_frame()


# --- holdings without a price ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PriceGap:
    """Days on which a listing was held (or moved in specie) with no close on or before them.

    ``since`` and ``until`` are the first and last such days (inclusive); ``units`` what was
    held on ``until`` (or, when that day moved everything out, what was there before);
    ``first_close`` the listing's first close, None when it has none at all. A gap is never a
    value of zero: the days it covers cannot be valued.
    """

    listing: str  # "TICKER:EXCHANGE"
    since: date
    until: date
    units: Decimal
    first_close: date | None

    @property
    def ticker(self) -> str:
        return self.listing.rpartition(":")[0] or self.listing

    @property
    def exchange(self) -> str:
        return self.listing.rpartition(":")[2] if ":" in self.listing else ""


def _gap(
    events: Sequence[LedgerEvent], listing: str, first: date | None, start: date, end: date
) -> PriceGap | None:
    """The listing's days without a close within ``start``..``end``, as one gap (None: none)."""
    limit = end if first is None else min(end, first - ONE_DAY)
    if limit < start:
        return None
    deltas: dict[date, Decimal] = {}
    moved: dict[date, Decimal] = {}  # the most units moved in specie on a day
    opening = ZERO
    for event in events:
        if event.listing != listing or not event.units or event.date > limit:
            continue
        if event.date < start:
            opening += event.units
            continue
        deltas[event.date] = deltas.get(event.date, ZERO) + event.units
        if event.entry_type is EntryType.TRANSFER:
            moved[event.date] = max(moved.get(event.date, ZERO), abs(event.units))
    since: date | None = None
    until: date | None = None
    units_then = ZERO

    def cover(first_day: date, last_day: date, units: Decimal) -> None:
        nonlocal since, until, units_then
        if units != ZERO and first_day <= last_day:
            since = since or first_day
            until, units_then = last_day, units

    units, cursor = opening, start
    for day in sorted(deltas):
        cover(cursor, day - ONE_DAY, units)
        before, units = units, units + deltas[day]
        if units != ZERO or day in moved:
            since = since or day
            until, units_then = day, units if units != ZERO else (before or moved[day])
        cursor = day + ONE_DAY
    cover(cursor, limit, units)
    if since is None or until is None:
        return None
    return PriceGap(listing=listing, since=since, until=until, units=units_then, first_close=first)


def _gaps(
    events: Sequence[LedgerEvent], book: PriceBook, listings: Iterable[str], start: date, end: date
) -> tuple[PriceGap, ...]:
    found = (_gap(events, listing, book.first_day(listing), start, end) for listing in sorted(listings))
    return tuple(gap for gap in found if gap is not None)


def price_gaps(
    events: Sequence[LedgerEvent],
    prices: PriceInput,
    *,
    start: date | None = None,
    end: date | None = None,
) -> tuple[PriceGap, ...]:
    """Every listing held (or moved in specie) on a day before its first close, by listing.

    The days are those ``daily_values`` would value (the same ``start`` and ``end``); an empty
    tuple means every day can be valued.
    """
    if not events:
        return ()
    listings = {e.listing for e in events if e.units and e.listing}
    book = PriceBook.build(prices, listings)
    start, end = bounds(events, book, start, end)
    return _gaps(events, book, listings, start, end)


@dataclass(frozen=True)
class ValuedSeries:
    """The value series over the days every holding can be valued, and what that leaves out.

    ``values`` is ``value_series``'s frame over the latest stretch of days outside every
    ``PriceGap`` (all of ``start``..``end`` when there is no gap), or None when no day is
    outside them. ``start`` and ``end`` are the days asked for.
    """

    values: pd.DataFrame | None
    gaps: tuple[PriceGap, ...]
    start: date
    end: date
    shown: tuple[date, date] | None = field(default=None)  # first and last day of ``values``

    @property
    def complete(self) -> bool:
        return not self.gaps

    @property
    def starts_late(self) -> bool:
        """The frame starts after ``start``: its first day's value was there before it began."""
        return self.shown is not None and self.shown[0] > self.start


def value_series_where_priced(
    events: Sequence[LedgerEvent],
    prices: PriceInput,
    *,
    start: date | None = None,
    end: date | None = None,
) -> ValuedSeries:
    """``value_series`` where it can be drawn: never a holding valued at zero, never a refusal.

    Without gaps it is the whole series. Otherwise the series covers the latest stretch of
    consecutive days on which every holding has a close, and which either reaches ``end`` or
    values some holding (a few days of cash before the first unpriced transfer say nothing);
    events before it fold into its opening balances, as with ``start``. ``gaps`` names what is
    missing.
    """
    if not events:
        raise ValidationError("no ledger events to value")
    listings = {e.listing for e in events if e.units and e.listing}
    book = PriceBook.build(prices, listings)
    start, end = bounds(events, book, start, end)
    gaps = _gaps(events, book, listings, start, end)
    stretch = _stretch_to_show(events, gaps, start, end) if gaps else (start, end)
    if stretch is None:
        return ValuedSeries(values=None, gaps=gaps, start=start, end=end)
    frame = daily_values_over(events, book, listings, *stretch).to_frame()
    return ValuedSeries(values=frame, gaps=gaps, start=start, end=end, shown=stretch)


def _free_stretches(gaps: Sequence[PriceGap], start: date, end: date) -> Iterator[tuple[date, date]]:
    """The stretches of consecutive days in ``start``..``end`` that no gap covers, latest first."""
    day = end
    while day >= start:
        covering = [g for g in gaps if g.since <= day <= g.until]
        if covering:
            day = min(g.since for g in covering) - ONE_DAY
            continue
        before = [g.until for g in gaps if g.until < day]
        first = max(max(before) + ONE_DAY, start) if before else start
        yield first, day
        day = first - ONE_DAY


def _holds_something(events: Sequence[LedgerEvent], first: date, last: date) -> bool:
    """Whether any listing is held on some day of ``first``..``last``."""
    opening: dict[str, Decimal] = {}
    for event in events:
        if not event.units or event.listing is None:
            continue
        if first <= event.date <= last:
            return True
        if event.date < first:
            opening[event.listing] = opening.get(event.listing, ZERO) + event.units
    return any(units != ZERO for units in opening.values())


def _stretch_to_show(
    events: Sequence[LedgerEvent], gaps: Sequence[PriceGap], start: date, end: date
) -> tuple[date, date] | None:
    """The latest stretch free of gaps that says something: one that reaches ``end`` (the value
    now), or one in which some holding is valued (not a few days of cash before the first one)."""
    for first, last in _free_stretches(gaps, start, end):
        if last == end or _holds_something(events, first, last):
            return first, last
    return None
