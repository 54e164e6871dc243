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

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal, localcontext
from types import MappingProxyType

import numpy as np
import pandas as pd

from ..core.enums import EntryType
from ..core.errors import ValidationError
from ..core.money import CONTEXT, ZERO, to_decimal

# Only these entries may move units; anything else moving units is a malformed event.
UNIT_ENTRY_TYPES = frozenset({EntryType.BUY, EntryType.SELL, EntryType.TRANSFER})
EXTERNAL_ENTRY_TYPES = frozenset({EntryType.CONTRIBUTION, EntryType.WITHDRAWAL, EntryType.TRANSFER})

PriceInput = pd.DataFrame | Mapping[str, Mapping[date, object] | pd.Series]
Day = date  # the field below is named ``date``; annotating it as ``date`` would resolve to itself


def as_date(value: object, *, what: str = "date") -> date:
    """A plain ``date``; datetimes and Timestamps keep their calendar date (no zone shifting)."""
    if isinstance(value, datetime):  # includes pd.Timestamp; check before date (a subclass)
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ValidationError(f"{what}: {value!r} is not a date")


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


EPOCH = date(1970, 1, 1)
ONE_DAY = timedelta(days=1)


class MissingClose(ValidationError):
    """A listing is held (or moved in specie) on a day before its first known close."""

    def __init__(self, listing: str, day: date, why: str) -> None:
        super().__init__(f"{why}: {listing} has no close on or before {day}", listing=listing, day=day)
        self.listing = listing
        self.day = day


def day_number(day: date) -> int:
    """Days since 1970-01-01: what ``datetime64[D]`` holds, so dates compare as plain ints."""
    return (day - EPOCH).days


@dataclass(frozen=True, slots=True)
class PriceBook:
    """Closing prices per listing, looked up with carry-forward.

    ``days`` holds ascending day numbers (int64), ``closes`` the Decimal close of each; arrays
    and mappings are read-only, so a book can be shared safely.
    """

    days: Mapping[str, np.ndarray]
    closes: Mapping[str, np.ndarray]

    @classmethod
    def build(cls, prices: PriceInput, listings: Iterable[str]) -> PriceBook:
        """Read only the ``listings`` needed; missing cells (None/NaN) are gaps, not zeros.

        ``prices`` is a wide DataFrame (index: dates, one column per listing) or a mapping
        listing -> {date: close} or date-indexed Series. Closes are GBP (convert pence and other
        currencies first). They must be Decimal, int or str:
        floats are refused, as everywhere money enters. A time of day in the index is dropped.
        """
        wanted = sorted(set(listings))
        days: dict[str, np.ndarray] = {}
        closes: dict[str, np.ndarray] = {}
        if isinstance(prices, pd.DataFrame):
            index_days = _index_days(prices.index) if wanted else None
            for listing in wanted:
                if listing in prices.columns:
                    days[listing], closes[listing] = _clean(
                        index_days, prices[listing].to_numpy(object), listing
                    )
        else:
            for listing in wanted:
                series = prices.get(listing)
                if series is None:
                    continue
                if not isinstance(series, pd.Series):
                    series = pd.Series(list(series.values()), index=list(series.keys()), dtype=object)
                days[listing], closes[listing] = _clean(
                    _index_days(series.index), series.to_numpy(object), listing
                )
        return cls(days=MappingProxyType(days), closes=MappingProxyType(closes))

    def close_on(self, listing: str, day: date) -> Decimal | None:
        """The last close on or before ``day``, or None before the first one."""
        days = self.days.get(listing)
        i = 0 if days is None else int(np.searchsorted(days, day_number(day), side="right"))
        return self.closes[listing][i - 1] if i else None

    def require(self, listing: str, day: date, *, why: str) -> Decimal:
        """``close_on``, refusing a day before the first close (``why`` says what needed it)."""
        close = self.close_on(listing, day)
        if close is None:
            raise MissingClose(listing, day, why)
        return close

    def first_day(self, listing: str) -> date | None:
        """The listing's first close, or None when it has none."""
        days = self.days.get(listing)
        return EPOCH + timedelta(days=int(days[0])) if days is not None and days.size else None

    def last_day(self) -> date | None:
        """The latest close of any listing in the book."""
        ends = [int(days[-1]) for days in self.days.values() if days.size]
        return EPOCH + timedelta(days=max(ends)) if ends else None

    def dense(self, listing: str, start: date, n_days: int) -> np.ndarray:
        """Closes for ``n_days`` calendar days from ``start``, carried forward (object array, None before)."""
        out = np.full(n_days, None, dtype=object)
        days = self.days.get(listing)
        if days is None:
            return out
        first = day_number(start)
        lo = max(int(np.searchsorted(days, first, side="right")) - 1, 0)  # seeds day 0
        hi = int(np.searchsorted(days, first + n_days - 1, side="right"))
        if hi <= lo:
            return out
        pos = np.maximum(days[lo:hi] - first, 0)
        out[pos] = self.closes[listing][lo:hi]
        # Forward fill by index: each day takes the most recent position that has a close.
        has = np.zeros(n_days, dtype=bool)
        has[pos] = True
        idx = np.maximum.accumulate(np.where(has, np.arange(n_days), -1))
        filled = out[np.maximum(idx, 0)]
        filled[idx < 0] = None
        return filled


def _index_days(index: pd.Index) -> np.ndarray:
    try:
        stamps = pd.DatetimeIndex(index)
    except (TypeError, ValueError):
        raise ValidationError("price dates: the index must hold dates") from None
    if stamps.tz is not None:
        stamps = stamps.tz_localize(None)  # keep the wall-clock date, do not shift to UTC
    if stamps.hasnans:
        raise ValidationError("price dates: the index has a missing date")
    return stamps.to_numpy().astype("datetime64[D]").astype(np.int64)


def _clean(days: np.ndarray, values: np.ndarray, listing: str) -> tuple[np.ndarray, np.ndarray]:
    """Drop gaps, check every close is an exact finite number, sort by date; read-only arrays."""
    present = ~pd.isna(values)
    days, values = days[present], values[present]
    closes = np.array(
        [
            v if type(v) is Decimal and v.is_finite() else to_decimal(v, what=f"close of {listing}")
            for v in values
        ]
        + [None],  # keeps numpy from turning a Decimal list into anything but objects
        dtype=object,
    )[:-1]
    order = np.argsort(days, kind="stable")
    days, closes = days[order], closes[order]
    days.flags.writeable = False
    closes.flags.writeable = False
    return days, closes


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
    listings = {e.listing for e in events if e.units}
    book = PriceBook.build(prices, listings)
    start, end = _bounds(events, book, start, end)
    return _daily_values(events, book, listings, start, end)


def _bounds(
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


def _daily_values(
    events: Sequence[LedgerEvent], book: PriceBook, listings: set[str | None], start: date, end: date
) -> DailyValues:
    n_days = (end - start).days + 1

    with localcontext(CONTEXT):
        unit_deltas = {listing: np.full(n_days, ZERO, dtype=object) for listing in listings}
        opening_units = dict.fromkeys(listings, ZERO)
        cash_delta = np.full(n_days, ZERO, dtype=object)
        flow = np.full(n_days, ZERO, dtype=object)
        contribution = np.full(n_days, ZERO, dtype=object)
        opening_cash = ZERO
        for event in events:
            if event.date > end:
                continue
            if event.date < start:
                opening_cash += event.cash
                if event.units:
                    opening_units[event.listing] += event.units
                continue
            i = (event.date - start).days
            cash_delta[i] += event.cash
            if event.units:
                unit_deltas[event.listing][i] += event.units
            if event.entry_type in EXTERNAL_ENTRY_TYPES:
                flow[i] += event.cash + transfer_value(event, book)
            if event.entry_type is EntryType.CONTRIBUTION:
                contribution[i] += event.cash

        cash_delta[0] += opening_cash
        cash = np.cumsum(cash_delta)
        holdings = np.full(n_days, ZERO, dtype=object)
        for listing in sorted(listings):
            deltas = unit_deltas[listing]
            deltas[0] += opening_units[listing]
            units = np.cumsum(deltas)
            held = units != ZERO
            if not held.any():
                continue
            # Closes carry forward, so a close on the first day held covers every later one.
            first = start + timedelta(days=int(np.argmax(held)))
            book.require(listing, first, why=f"valuing holdings on {first}")
            holdings[held] += units[held] * book.dense(listing, start, n_days)[held]

    dates = tuple(start + timedelta(days=i) for i in range(n_days))
    return DailyValues(
        dates=dates,
        holdings_value=tuple(holdings),
        cash=tuple(cash),
        external_flow=tuple(flow),
        contribution=tuple(contribution),
    )


def transfer_value(event: LedgerEvent, book: PriceBook) -> Decimal:
    """The units of an in-specie TRANSFER at the day's close (zero for any other event)."""
    if event.entry_type is not EntryType.TRANSFER or not event.units:
        return ZERO
    return event.units * book.require(event.listing, event.date, why=f"TRANSFER on {event.date}")


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
    start, end = _bounds(events, book, start, end)
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
    start, end = _bounds(events, book, start, end)
    gaps = _gaps(events, book, listings, start, end)
    stretch = _stretch_to_show(events, gaps, start, end) if gaps else (start, end)
    if stretch is None:
        return ValuedSeries(values=None, gaps=gaps, start=start, end=end)
    frame = _daily_values(events, book, listings, *stretch).to_frame()
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


def units_held(events: Sequence[LedgerEvent], listing: str, day: date) -> Decimal:
    """Units of ``listing`` held at the end of ``day``."""
    return sum((e.units for e in events if e.listing == listing and e.date <= day), ZERO)
