"""Returns: time-weighted, money-weighted (XIRR), maximum drawdown, per-sleeve contribution.

All functions read the daily value frame of ``value_series`` (or plain flows) and never modify it.

Timing convention, the same everywhere: a period runs from the *close* of ``start`` to the close
of ``end``; flows on ``start`` belong to the opening value and flows on days after it count in
the period. An external flow is valued at the close of its day (see ``value_series``), so it is
taken to happen at the *end* of the day: the day's return is that of the capital present at the
previous close,

    r_t = (V_t - F_t) / V_{t-1} - 1

which needs no guess at intraday timing, gives the first funding day no spurious return, and
keeps a full withdrawal from looking like a -100 % day. A day with no capital at the previous
close (V_{t-1} <= 0) has no return to measure and links as 0 %.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, localcontext

import numpy as np
import pandas as pd

from ..core.errors import ValidationError
from ..core.money import CONTEXT, ZERO
from .daily_values import EXTERNAL_ENTRY_TYPES, LedgerEvent, transfer_value
from .price_book import PriceBook, PriceInput, as_date

DAYS_PER_YEAR = 365  # Actual/365 fixed, for annualising and for XIRR
CASH_SLEEVE = "(cash)"

# XIRR searches x = ln(1 + r) for a sign change over a grid: wide enough for any rate a real
# portfolio can show, even annualised over a few days (a 10 % gain in one day is x ~ 35), and
# fine (0.001, about 0.1 % a year) between -63 % and +172 %, where two rates of flows that
# change sign several times can lie close together. Roots closer than a step are not told apart.
_X_LOW, _X_HIGH = -60.0, 60.0
_X_GRID = np.union1d(np.linspace(_X_LOW, _X_HIGH, 601), np.linspace(-1.0, 1.0, 2001))


@dataclass(frozen=True, slots=True)
class PeriodReturn:
    """A return from the close of ``start`` to the close of ``end``.

    ``annualised`` is None for periods shorter than a year: extrapolating a part-year return
    invents performance that has not happened (the GIPS rule).
    """

    start: date
    end: date
    days: int
    total: float
    annualised: float | None


@dataclass(frozen=True, slots=True)
class Drawdown:
    """The deepest fall from a running high; ``depth`` is negative (-0.25 is a 25 % fall).

    ``peak`` is the day the high was first reached, ``trough`` the low, ``recovery`` the first
    day back at or above the high (None if not yet). All three are None when there is no fall.
    """

    depth: float
    peak: date | None
    trough: date | None
    recovery: date | None


@dataclass(frozen=True, slots=True)
class SleeveContribution:
    """A sleeve's gain in GBP over a period: end value - start value - net flows into the sleeve."""

    sleeve: str
    start_value: Decimal
    end_value: Decimal
    net_flow: Decimal
    gain: Decimal
    share: Decimal | None  # of the total gain; None when the total gain is zero


def _window(values: pd.DataFrame, start: date | None, end: date | None) -> pd.DataFrame:
    for column in ("total_value", "external_flow"):
        if column not in values.columns:
            raise ValidationError(f"value frame has no {column!r} column (build it with value_series)")
    if values.empty:
        raise ValidationError("value frame is empty")
    index = pd.DatetimeIndex(values.index)
    if not index.is_monotonic_increasing or index.has_duplicates:
        raise ValidationError("value frame: dates must be unique and ascending")
    first, last = index[0].date(), index[-1].date()
    start = as_date(start) if start is not None else first
    end = as_date(end) if end is not None else last
    if not first <= start <= end <= last:
        raise ValidationError(f"period {start}..{end} is not within the series {first}..{last}")
    day = index.normalize()
    return values.set_axis(index).loc[(day >= pd.Timestamp(start)) & (day <= pd.Timestamp(end))]


def _daily_growth(window: pd.DataFrame) -> np.ndarray:
    """Growth factor of each day after the first (end-of-day flows; see the module docstring)."""
    value = window["total_value"].to_numpy(dtype=float)
    flow = window["external_flow"].to_numpy(dtype=float)
    prev, now, now_flow = value[:-1], value[1:], flow[1:]
    safe_prev = np.where(prev > 0, prev, 1.0)
    growth = np.where(prev > 0, (now - now_flow) / safe_prev, 1.0)
    if (growth < 0).any():
        # Capital cannot be lost more than once: the ledger overdraws cash beyond the holdings.
        day = window.index[1 + int(np.argmax(growth < 0))].date()
        raise ValidationError(f"the portfolio is worth less than nothing on {day}: check the ledger")
    return growth


def twr_index(values: pd.DataFrame, *, start: date | None = None, end: date | None = None) -> pd.Series:
    """Chain-linked time-weighted index, 1.0 at the close of ``start``: growth without the flows."""
    window = _window(values, start, end)
    growth = np.concatenate(([1.0], np.cumprod(_daily_growth(window))))
    return pd.Series(growth, index=window.index, name="twr_index")


def time_weighted_return(
    values: pd.DataFrame, *, start: date | None = None, end: date | None = None
) -> PeriodReturn:
    """Time-weighted return over the period, with daily chain-linking; annualised Actual/365."""
    window = _window(values, start, end)
    growth = float(np.prod(_daily_growth(window)))
    first, last = window.index[0].date(), window.index[-1].date()
    days = (last - first).days
    annualised = growth ** (DAYS_PER_YEAR / days) - 1 if days >= DAYS_PER_YEAR else None
    return PeriodReturn(start=first, end=last, days=days, total=growth - 1, annualised=annualised)


def _npv_sign(x: np.ndarray, amounts: np.ndarray, years: np.ndarray) -> np.ndarray:
    """Sign of sum(amount * (1 + r) ** -years) for each x = ln(1 + r), without overflow.

    Every term is scaled by the same positive factor exp(-max exponent), which keeps the sign
    and keeps the largest term at 1, so decades of flows at extreme rates stay finite.
    """
    exponents = -np.outer(x, years)
    exponents -= exponents.max(axis=1, keepdims=True)
    return np.sign(np.exp(exponents) @ amounts)


def xirr(flows: Sequence[tuple[date, Decimal | float | int]]) -> float:
    """Annual rate r with sum(amount / (1 + r) ** (days / 365)) = 0 (Actual/365 from the first date).

    Sign convention is the investor's: money paid in is negative, value received (or held at
    the end) positive. The rate is found by bisection on a bracket where the value changes
    sign, so it always converges; with several sign changes in the flows there may be several
    rates, and the one nearest 0 % is returned. Raises ``ValidationError`` when no rate exists.
    """
    if len(flows) < 2:
        raise ValidationError("XIRR needs at least two cash flows")
    days = [as_date(d, what="flow date") for d, _ in flows]
    amounts = np.array([float(a) for _, a in flows])
    if not np.all(np.isfinite(amounts)):
        raise ValidationError("XIRR: cash flows must be finite numbers")
    if not (amounts > 0).any() or not (amounts < 0).any():
        raise ValidationError("XIRR has no solution: the cash flows all have the same sign")
    origin = min(days)
    years = np.array([(d - origin).days for d in days], dtype=float) / DAYS_PER_YEAR

    grid = _X_GRID
    signs = _npv_sign(grid, amounts, years)
    exact = np.flatnonzero(signs == 0)
    changes = np.flatnonzero(signs[:-1] * signs[1:] < 0)
    if exact.size == 0 and changes.size == 0:
        raise ValidationError(
            "XIRR has no solution: the value of the flows does not change sign for any rate "
            f"between {math.expm1(_X_LOW):.6%} and {math.expm1(_X_HIGH):.3g}"
        )
    # (distance from 0 %, grid index, is the grid point itself a root)
    options = [(abs(grid[i]), int(i), True) for i in exact]
    options += [(abs(grid[i] + grid[i + 1]) / 2, int(i), False) for i in changes]
    _, i, on_grid = min(options)
    x = grid[i] if on_grid else _bisect(grid[i], grid[i + 1], signs[i], amounts, years)
    return math.expm1(x)


def _bisect(lo: float, hi: float, lo_sign: float, amounts: np.ndarray, years: np.ndarray) -> float:
    # A bracket at most 0.2 wide: ~50 halvings reach the spacing of doubles; 200 is a safety cap.
    for _ in range(200):
        mid = (lo + hi) / 2
        if mid in (lo, hi):
            break
        sign = _npv_sign(np.array([mid]), amounts, years)[0]
        if sign == 0:
            return mid
        if sign == lo_sign:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def money_weighted_return(
    values: pd.DataFrame, *, start: date | None = None, end: date | None = None
) -> float:
    """XIRR of the period: the opening value paid in at ``start``, each later external flow paid
    in (contributions) or taken out (withdrawals), and the closing value received at ``end``."""
    window = _window(values, start, end)
    value = window["total_value"].to_numpy(dtype=float)
    flow = window["external_flow"].to_numpy(dtype=float)
    dates = [ts.date() for ts in window.index]
    flows: list[tuple[date, float]] = [(dates[0], -value[0])]
    flows += [(dates[i], -flow[i]) for i in np.flatnonzero(flow[1:]) + 1]
    flows.append((dates[-1], value[-1]))
    return xirr(flows)


def max_drawdown(index: pd.Series) -> Drawdown:
    """Deepest peak-to-trough fall of a date-indexed series; use it on ``twr_index`` so that
    contributions do not look like gains. A return to within 1e-12 of the peak counts as
    recovered (floating-point chain-linking can miss the exact level by an ulp)."""
    level = index.to_numpy(dtype=float)
    if level.size == 0:
        raise ValidationError("drawdown of an empty series")
    if not np.all(np.isfinite(level)) or (level <= 0).any():
        raise ValidationError("drawdown needs a positive index (use twr_index, not raw values)")
    running_high = np.maximum.accumulate(level)
    fall = level / running_high - 1
    trough = int(np.argmin(fall))
    depth = float(fall[trough])
    if depth >= 0:
        return Drawdown(depth=0.0, peak=None, trough=None, recovery=None)
    peak = int(np.argmax(level[: trough + 1]))  # first day at the high
    back = np.flatnonzero(level[trough:] >= level[peak] * (1 - 1e-12))
    days = [ts.date() for ts in pd.DatetimeIndex(index.index)[[peak, trough]]]
    recovery = pd.Timestamp(index.index[trough + back[0]]).date() if back.size else None
    return Drawdown(depth=depth, peak=days[0], trough=days[1], recovery=recovery)


def sleeve_contributions(
    events: Sequence[LedgerEvent],
    prices: PriceInput,
    sleeves: Mapping[str, str],
    *,
    start: date,
    end: date,
) -> tuple[SleeveContribution, ...]:
    """Each sleeve's GBP gain from the close of ``start`` to the close of ``end``, and its share.

    ``sleeves`` maps every listing in the ledger to a sleeve name. Values use the last close on
    or before each date. The flow into a sleeve is the cash an event moves between the cash
    account and the sleeve's listings (a BUY's cost in, a SELL's proceeds out, a listing's fee
    in, its dividend out) plus in-specie TRANSFERs at the day's close. Cash is the ``(cash)``
    sleeve: its gain is interest and fees that name no listing. So the gains add up exactly to
    the portfolio's gain, end value - start value - external flows. Sorted by sleeve name.
    """
    start, end = as_date(start), as_date(end)
    if end < start:
        raise ValidationError(f"end {end} is before start {start}")
    if CASH_SLEEVE in sleeves.values():
        raise ValidationError(f"{CASH_SLEEVE!r} is reserved for cash; choose another sleeve name")
    unassigned = sorted({e.listing for e in events if e.listing and e.listing not in sleeves})
    if unassigned:
        raise ValidationError(f"no sleeve given for listing(s): {', '.join(unassigned)}")
    book = PriceBook.build(prices, {e.listing for e in events if e.units and e.listing})

    with localcontext(CONTEXT):
        start_value = _sleeve_values(events, book, sleeves, start)
        end_value = _sleeve_values(events, book, sleeves, end)
        net_flow = _sleeve_flows(events, book, sleeves, start, end)
        names = sorted(start_value.keys() | end_value.keys() | net_flow.keys() | {CASH_SLEEVE})
        gains = {n: end_value.get(n, ZERO) - start_value.get(n, ZERO) - net_flow.get(n, ZERO) for n in names}
        total_gain = sum(gains.values(), ZERO)
        return tuple(
            SleeveContribution(
                sleeve=n,
                start_value=start_value.get(n, ZERO),
                end_value=end_value.get(n, ZERO),
                net_flow=net_flow.get(n, ZERO),
                gain=gains[n],
                share=gains[n] / total_gain if total_gain else None,
            )
            for n in names
        )


def _sleeve_values(
    events: Sequence[LedgerEvent], book: PriceBook, sleeves: Mapping[str, str], day: date
) -> dict[str, Decimal]:
    """Value per sleeve at the close of ``day`` (cash under ``CASH_SLEEVE``)."""
    units: dict[str, Decimal] = {}
    cash = ZERO
    for event in events:
        if event.date <= day:
            cash += event.cash
            if event.units and event.listing:
                units[event.listing] = units.get(event.listing, ZERO) + event.units
    values = {CASH_SLEEVE: cash}
    for listing, held in sorted(units.items()):
        if held:
            close = book.require(listing, day, why=f"valuing holdings on {day}")
            values[sleeves[listing]] = values.get(sleeves[listing], ZERO) + held * close
    return values


def _sleeve_flows(
    events: Sequence[LedgerEvent], book: PriceBook, sleeves: Mapping[str, str], start: date, end: date
) -> dict[str, Decimal]:
    """Net flow into each sleeve over (start, end].

    External events bring their cash into the cash sleeve and their units into the listing's
    sleeve; internal events that name a listing move cash between it and the cash sleeve; the
    rest (interest, fees on the cash account) are the cash sleeve's own gain.
    """
    flows: dict[str, Decimal] = {}

    def add(sleeve: str, amount: Decimal) -> None:
        flows[sleeve] = flows.get(sleeve, ZERO) + amount

    for event in events:
        if not start < event.date <= end:
            continue
        if event.entry_type in EXTERNAL_ENTRY_TYPES:
            add(CASH_SLEEVE, event.cash)
            if event.units and event.listing:
                add(sleeves[event.listing], transfer_value(event, book))
        elif event.listing:
            add(CASH_SLEEVE, event.cash)
            add(sleeves[event.listing], -event.cash)
    return flows
