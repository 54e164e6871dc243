"""Closing prices per listing, looked up with carry-forward: what values a ledger day by day.

A ``PriceBook`` reads a wide DataFrame (index: dates, one column per listing) or a mapping
listing -> {date: close} or date-indexed Series; closes are exact (``Decimal``, int or text,
never floats) and GBP. A listing held on a day before its first close cannot be valued
(``MissingClose``): it is never valued at zero.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TypeAlias

import numpy as np
import pandas as pd

from ..core.errors import ValidationError
from ..core.frozen import FrozenDict
from ..core.money import to_decimal

PriceInput: TypeAlias = pd.DataFrame | Mapping[str, Mapping[date, object] | pd.Series]


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
            index_days = _index_days(prices.index) if wanted else np.empty(0, dtype=np.int64)
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
        return cls(days=FrozenDict(days), closes=FrozenDict(closes))

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
