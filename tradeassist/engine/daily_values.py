"""Exact daily values of a portfolio from its ledger events and closing prices.

Every event takes effect at the close of its date, and flows are valued at that close; a
listing's last known close is carried forward over weekends, holidays and gaps in the feed.
External flows are what crosses the portfolio boundary (CONTRIBUTION, WITHDRAWAL, TRANSFER with
its units at the day's close). See ``value_series`` for the conventions in full.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, localcontext

import numpy as np
import pandas as pd

from ..core.enums import EntryType
from ..core.errors import ValidationError
from ..core.money import CONTEXT, ZERO, to_decimal
from .price_book import PriceBook, PriceInput, as_date

# Only these entries may move units; anything else moving units is a malformed event.
UNIT_ENTRY_TYPES = frozenset({EntryType.BUY, EntryType.SELL, EntryType.TRANSFER})
EXTERNAL_ENTRY_TYPES = frozenset({EntryType.CONTRIBUTION, EntryType.WITHDRAWAL, EntryType.TRANSFER})

Day = date  # the field below is named ``date``; annotating it as ``date`` would resolve to itself


@dataclass(frozen=True, slots=True)
class LedgerEvent:
    """One ledger movement: ``units`` and ``cash`` (GBP) are signed deltas.

    A BUY has positive units and negative cash; a WITHDRAWAL negative cash. ``listing`` is
    required when units move; a FEE or INTEREST may name one (a listing's charge or dividend),
    which only matters to per-sleeve attribution.
    """

    date: Day
    entry_type: EntryType
    listing: str | None
    units: Decimal
    cash: Decimal

    def __post_init__(self) -> None:
        # Normalise so callers may pass strings; frozen, hence object.__setattr__.
        object.__setattr__(self, "date", as_date(self.date, what="event date"))
        try:
            object.__setattr__(self, "entry_type", EntryType(self.entry_type))
        except ValueError:
            raise ValidationError(f"event on {self.date}: unknown entry type {self.entry_type!r}") from None
        object.__setattr__(self, "units", to_decimal(self.units, what="units"))
        object.__setattr__(self, "cash", to_decimal(self.cash, what="cash"))
        if self.units and self.entry_type not in UNIT_ENTRY_TYPES:
            raise ValidationError(f"{self.entry_type} on {self.date} cannot move units")
        if self.units and not self.listing:
            raise ValidationError(f"{self.entry_type} on {self.date} moves units but names no listing")


@dataclass(frozen=True, slots=True)
class DailyValues:
    """Exact daily values; one entry per calendar day from ``dates[0]`` to ``dates[-1]``."""

    dates: tuple[date, ...]
    holdings_value: tuple[Decimal, ...]
    cash: tuple[Decimal, ...]
    external_flow: tuple[Decimal, ...]
    contribution: tuple[Decimal, ...]

    @property
    def total_value(self) -> tuple[Decimal, ...]:
        return tuple(h + c for h, c in zip(self.holdings_value, self.cash, strict=True))

    def to_frame(self) -> pd.DataFrame:
        """Float columns for charts and return maths, indexed by a daily DatetimeIndex named ``date``."""
        # Microseconds: the resolution pandas gives parsed dates, so the index joins other frames.
        index = pd.date_range(self.dates[0], periods=len(self.dates), freq="D", unit="us", name="date")
        holdings = np.array(self.holdings_value, dtype=float)
        cash = np.array(self.cash, dtype=float)
        contribution = np.array(self.contribution, dtype=float)
        return pd.DataFrame(
            {
                "holdings_value": holdings,
                "cash": cash,
                "total_value": np.array(self.total_value, dtype=float),
                "external_flow": np.array(self.external_flow, dtype=float),
                "contribution": contribution,
                "has_contribution": contribution != 0,
            },
            index=index,
        )


def daily_values(
    events: Sequence[LedgerEvent],
    prices: PriceInput,
    *,
    start: date | None = None,
    end: date | None = None,
) -> DailyValues:
    """Replay ``events`` over every calendar day from ``start`` to ``end`` and value them.

    ``start`` defaults to the first event, ``end`` to the later of the last event and the last
    close of a listing the ledger touches. Events before ``start`` fold into the opening
    balances (their flows lie outside the window); events after ``end`` are ignored.
    Raises ``ValidationError`` when a listing is held (or transferred) on a day before its
    first known close.
    """
    if not events:
        raise ValidationError("no ledger events to value")
    listings = {e.listing for e in events if e.units and e.listing}
    book = PriceBook.build(prices, listings)
    start, end = bounds(events, book, start, end)
    return daily_values_over(events, book, listings, start, end)


def bounds(
    events: Sequence[LedgerEvent], book: PriceBook, start: date | None, end: date | None
) -> tuple[date, date]:
    """``start`` defaulting to the first event, ``end`` to the later of the last event and the
    last close of a listing the ledger touches."""
    start = as_date(start) if start is not None else min(e.date for e in events)
    if end is None:
        last_close = book.last_day()
        end = max(e.date for e in events)
        end = max(end, last_close) if last_close else end
    end = as_date(end)
    if end < start:
        raise ValidationError(f"end {end} is before start {start}")
    return start, end


@dataclass
class _Movements:
    """What the events move on each day of the window, and the opening balances that the
    events before it fold into (object arrays of Decimals, one cell per calendar day)."""

    cash: np.ndarray
    flow: np.ndarray
    contribution: np.ndarray
    units: dict[str, np.ndarray]
    opening_cash: Decimal
    opening_units: dict[str, Decimal]


def daily_values_over(
    events: Sequence[LedgerEvent], book: PriceBook, listings: set[str], start: date, end: date
) -> DailyValues:
    """The exact values of every day from ``start`` to ``end`` (see ``daily_values``)."""
    n_days = (end - start).days + 1
    with localcontext(CONTEXT):
        moves = _movements(events, book, listings, start, end)
        moves.cash[0] += moves.opening_cash
        cash = np.cumsum(moves.cash)
        holdings = _holdings_value(moves, book, listings, start, n_days)
    dates = tuple(start + timedelta(days=i) for i in range(n_days))
    return DailyValues(
        dates=dates,
        holdings_value=tuple(holdings),
        cash=tuple(cash),
        external_flow=tuple(moves.flow),
        contribution=tuple(moves.contribution),
    )


def _movements(
    events: Sequence[LedgerEvent], book: PriceBook, listings: set[str], start: date, end: date
) -> _Movements:
    """Each event's cash, units, external flow and contribution on its day (events after ``end``
    ignored, those before ``start`` folded into the opening balances)."""
    n_days = (end - start).days + 1
    moves = _Movements(
        cash=np.full(n_days, ZERO, dtype=object),
        flow=np.full(n_days, ZERO, dtype=object),
        contribution=np.full(n_days, ZERO, dtype=object),
        units={listing: np.full(n_days, ZERO, dtype=object) for listing in listings},
        opening_cash=ZERO,
        opening_units=dict.fromkeys(listings, ZERO),
    )
    for event in events:
        if event.date > end:
            continue
        moved = event.listing if event.units else None  # an event moving units names its listing
        if event.date < start:
            moves.opening_cash += event.cash
            if moved:
                moves.opening_units[moved] += event.units
            continue
        i = (event.date - start).days
        moves.cash[i] += event.cash
        if moved:
            moves.units[moved][i] += event.units
        if event.entry_type in EXTERNAL_ENTRY_TYPES:
            moves.flow[i] += event.cash + transfer_value(event, book)
        if event.entry_type is EntryType.CONTRIBUTION:
            moves.contribution[i] += event.cash
    return moves


def _holdings_value(
    moves: _Movements, book: PriceBook, listings: set[str], start: date, n_days: int
) -> np.ndarray:
    """Each day's units of every listing at that day's (carried-forward) close, summed."""
    holdings = np.full(n_days, ZERO, dtype=object)
    for listing in sorted(listings):
        deltas = moves.units[listing]
        deltas[0] += moves.opening_units[listing]
        units = np.cumsum(deltas)
        held = units != ZERO
        if not held.any():
            continue
        # Closes carry forward, so a close on the first day held covers every later one.
        first = start + timedelta(days=int(np.argmax(held)))
        book.require(listing, first, why=f"valuing holdings on {first}")
        holdings[held] += units[held] * book.dense(listing, start, n_days)[held]
    return holdings


def transfer_value(event: LedgerEvent, book: PriceBook) -> Decimal:
    """The units of an in-specie TRANSFER at the day's close (zero for any other event)."""
    if event.entry_type is not EntryType.TRANSFER or not event.units:
        return ZERO
    assert event.listing is not None  # an event moving units names its listing
    return event.units * book.require(event.listing, event.date, why=f"TRANSFER on {event.date}")


def units_held(events: Sequence[LedgerEvent], listing: str, day: date) -> Decimal:
    """Units of ``listing`` held at the end of ``day``."""
    return sum((e.units for e in events if e.listing == listing and e.date <= day), ZERO)
