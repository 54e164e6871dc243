"""Price quality checks: staleness, and the pence/pound (scale) errors feeds make.

``check_points`` walks one listing's normalised points in date order and returns
``(checked_points, new_level_state, issues)``:

* ``non_positive``: a price ≤ 0. It is never scale-checked and never sets the level.
* ``scale_suspect``: a point whose local price (``price_local``, see ``normalize``) is off the
  *accepted level* by a factor of 20 or more either way, that no recorded split explains.
  Exact thresholds, with E the expected price (the accepted level scaled by every split
  effective after the level's date and on or before the point's date):
  ``price >= 20 × E`` or ``price <= E / 20``; the inclusive band [20, 200] is where unit
  mix-ups live (pounds read as pence is ×100, a pence/dollar mix-up about ×60 or ×80), and a
  factor beyond 200 is flagged too: it is no plausible market move either, and letting it
  become the level would make every correct point after it look wrong. Day-to-day moves,
  even a −60% crash (×0.4) or a doubling, are far inside the band.
* The **accepted level** is the local price of the last accepted point, however old. A flagged
  (or non-positive, or currency-mismatched) point never moves it, so a feed that stays in the
  wrong unit for months stays flagged for months: a level change becomes accepted only when
  the user records the corporate action (:class:`Split`) or accepts the new level
  (:class:`Acceptance`) from a date. With no level yet, the first positive point sets it.
* Points with no ``price_local`` (currency mismatch) are skipped by the scale check.

The state between calls is a :class:`LevelState` (level, date), so checking a series in chunks
gives the same points and final state as checking it in one go. Splits and acceptances
recorded later apply to points checked from then on; to re-judge points already checked,
re-check them from a state before the effective date (or from None).

Speed: flags are rare, so a vectorised pass (floats) marks where the previous point, taken as
the level, may not explain the next one, with a safety margin; only those points are judged
one by one, exactly, in Decimal. Every decision is therefore the exact Decimal one.

Issues: one :class:`PriceIssue` per flag present in the checked points (including the flags
``normalize`` set), not one per point, for a service to persist as alerts (``price_issues``
words them).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import cast

import numpy as np

from ..core.enums import QualityFlag
from ..core.errors import ValidationError
from ..core.money import CONTEXT
from ..core.timeutil import business_days_between
from .normalize import Listing, PricePoint
from .price_issues import ISSUE_CODES, UNIT_MIXUP_MAX, PriceIssue, issues_for

__all__ = [
    "SCALE_FACTOR",
    "UNIT_MIXUP_MAX",
    "Acceptance",
    "LevelState",
    "PriceIssue",
    "Split",
    "check_points",
    "stale_issue",
    "staleness",
]

SCALE_FACTOR = Decimal(20)  # a factor of this or more, either way, is a scale error
# The fast path only waves through ratios this safely inside (1/20, 20); float error is ~1e-15.
_SAFE_HIGH = 20.0 * (1 - 1e-9)
_SAFE_LOW = (1 / 20.0) * (1 + 1e-9)

_CHECK_FLAGS = frozenset({QualityFlag.SCALE_SUSPECT, QualityFlag.NON_POSITIVE})
_RATIO_DIGITS = 6
_RATIO_CONTEXT = Context(prec=_RATIO_DIGITS, rounding=ROUND_HALF_EVEN)


@dataclass(frozen=True, slots=True)
class LevelState:
    """The accepted level (local price of the last accepted point) and that point's date."""

    level: Decimal
    as_of: date


@dataclass(frozen=True, slots=True)
class Split:
    """A split or merge: ``ratio_num`` new shares for every ``ratio_den`` old, from ``effective_date``.

    A 10:1 split (num 10, den 1) divides the expected price by 10; a 1:10 merge multiplies it by 10.
    """

    effective_date: date
    ratio_num: Decimal
    ratio_den: Decimal

    def __post_init__(self) -> None:
        for value in (self.ratio_num, self.ratio_den):
            valid = isinstance(value, Decimal | int) and not isinstance(value, bool)
            if not (valid and Decimal(value).is_finite() and value > 0):
                raise ValidationError(f"split on {self.effective_date}: ratio {value!r} must be positive")


@dataclass(frozen=True, slots=True)
class Acceptance:
    """The user accepts the listing's new price level from ``effective_date`` on."""

    listing_key: str
    effective_date: date


def staleness(
    last_close_date: date | None,
    as_of_date: date,
    max_business_days: int,
    *,
    holidays: Iterable[date] = (),
) -> bool:
    """True when more than ``max_business_days`` weekdays (not in ``holidays``) have passed.

    Counted are the weekdays after the last close up to and including ``as_of_date``: a Friday
    close is 1 business day old on Monday. No close at all is stale.
    """
    if last_close_date is None:
        return True
    if as_of_date <= last_close_date:
        return False
    days_off = {
        day
        for day in (h.date() if isinstance(h, datetime) else h for h in holidays)
        if last_close_date < day <= as_of_date and day.weekday() < 5
    }
    return business_days_between(last_close_date, as_of_date) - len(days_off) > max_business_days


def stale_issue(
    listing: Listing,
    last_close_date: date | None,
    as_of_date: date,
    max_business_days: int,
    *,
    holidays: Iterable[date] = (),
) -> PriceIssue | None:
    """A ``PRICE_STALE`` issue when the listing has no close recent enough, else None."""
    if not staleness(last_close_date, as_of_date, max_business_days, holidays=holidays):
        return None
    since = "no close recorded" if last_close_date is None else f"last close {last_close_date}"
    return PriceIssue(
        code=ISSUE_CODES[QualityFlag.STALE],
        flag=QualityFlag.STALE,
        listing_key=listing.key,
        listing_id=listing.listing_id,
        first_date=last_close_date or as_of_date,
        last_date=as_of_date,
        count=1,
        ratio_min=None,
        ratio_max=None,
        message=f"{listing.key}: {since}, more than {max_business_days} business days before {as_of_date}",
    )


def check_points(
    points: Sequence[PricePoint],
    *,
    listing: Listing,
    prior_level: LevelState | None,
    splits: Iterable[Split] = (),
    acceptances: Iterable[Acceptance] = (),
) -> tuple[tuple[PricePoint, ...], LevelState | None, tuple[PriceIssue, ...]]:
    """Flag ``non_positive`` and ``scale_suspect`` points of one listing (dates non-decreasing).

    Returns the points (unchanged objects where their flags do not change), the level state to
    pass to the next call, and the issues for every flag the points carry.
    """
    if prior_level is not None and points and points[0].as_of < prior_level.as_of:
        raise ValidationError(
            f"{listing.key}: the prior level is dated {prior_level.as_of}, after the first point "
            f"({points[0].as_of}); re-check from a state before it"
        )
    accepted_from = _acceptance_ordinals(listing, acceptances)
    split_table = _SplitTable(splits)
    n = len(points)
    ordinals = np.fromiter((p.as_of.toordinal() for p in points), dtype=np.int64, count=n)
    if n > 1 and bool((ordinals[1:] < ordinals[:-1]).any()):
        raise ValidationError(f"{listing.key}: price points must be in date order")
    prices = [p.price_local for p in points]
    calm = _calm_mask(ordinals, prices, split_table, accepted_from)

    walk = _LevelWalk(prior_level, split_table, accepted_from)
    new_flags, ratios = _walk(walk, prices, ordinals.tolist(), np.flatnonzero(~calm))
    already_flagged = [i for i, p in enumerate(points) if p.flags]
    checked = _apply_flags(points, new_flags, already_flagged)
    flagged = sorted(set(already_flagged) | new_flags.keys())
    issues = issues_for(listing, checked, flagged, ratios)
    return checked, walk.state(), issues


def _walk(
    walk: _LevelWalk, prices: list[Decimal | None], ordinals: list[int], not_calm: np.ndarray
) -> tuple[dict[int, QualityFlag], dict[int, Decimal]]:
    """Judge every point; runs of calm points after an accepted one are accepted wholesale."""
    new_flags: dict[int, QualityFlag] = {}
    ratios: dict[int, Decimal] = {}
    n = len(prices)
    i = 0
    level_is_previous = False
    while i < n:
        if level_is_previous:
            cursor = int(np.searchsorted(not_calm, i, side="left"))
            stop = int(not_calm[cursor]) if cursor < len(not_calm) else n
            if stop > i:
                level = prices[stop - 1]
                assert level is not None  # calm points have a positive local price
                walk.accept(level, ordinals[stop - 1])
                i = stop
                if i >= n:
                    break
        accepted, flag, ratio = walk.judge(prices[i], ordinals[i])
        level_is_previous = accepted
        if flag is not None:
            new_flags[i] = flag
        if ratio is not None:
            ratios[i] = ratio
        i += 1
    return new_flags, ratios


class _SplitTable:
    """Splits sorted by date, with cumulative factors to compare prices across them."""

    def __init__(self, splits: Iterable[Split]) -> None:
        ordered = sorted(splits, key=lambda s: s.effective_date)
        self.ordinals = [s.effective_date.toordinal() for s in ordered]
        self.nums = [Decimal(s.ratio_num) for s in ordered]
        self.dens = [Decimal(s.ratio_den) for s in ordered]
        # undo[k]: multiply a price quoted after the first k splits by this to compare it with
        # prices from before any of them (floats: only the fast path's hint uses it).
        undo = [1.0]
        for num, den in zip(self.nums, self.dens, strict=True):
            undo.append(undo[-1] * float(num) / float(den))
        self.undo = np.array(undo)

    def between(self, after_ord: int, upto_ord: int) -> tuple[Decimal, Decimal]:
        """(Π num, Π den) of the splits effective after ``after_ord`` and on or before ``upto_ord``."""
        num = den = Decimal(1)
        for k in range(bisect_right(self.ordinals, after_ord), bisect_right(self.ordinals, upto_ord)):
            num = CONTEXT.multiply(num, self.nums[k])
            den = CONTEXT.multiply(den, self.dens[k])
        return num, den


class _LevelWalk:
    """The exact, one-point-at-a-time rule; the fast path only skips points it would accept."""

    def __init__(self, prior: LevelState | None, splits: _SplitTable, accepted_from: list[int]) -> None:
        self.level: Decimal | None = None if prior is None else prior.level
        self.level_ord: int | None = None if prior is None else prior.as_of.toordinal()
        self.splits = splits
        self.accepted_from = accepted_from

    def accept(self, price: Decimal, ordinal: int) -> None:
        self.level, self.level_ord = price, ordinal

    def judge(self, price: Decimal | None, ordinal: int) -> tuple[bool, QualityFlag | None, Decimal | None]:
        """(accepted, flag, ratio) for one point; an accepted point becomes the level."""
        if price is None:
            return False, None, None  # currency mismatch: nothing to compare, never the level
        if price <= 0:
            return False, QualityFlag.NON_POSITIVE, None
        if self.level is None or self._accepted_since_level(ordinal):
            self.accept(price, ordinal)
            return True, None, None
        assert self.level_ord is not None
        num, den = self.splits.between(self.level_ord, ordinal)
        # price/E with E = level × den/num, compared by cross-multiplying: exact, no division
        scaled_price = CONTEXT.multiply(price, num)
        scaled_level = CONTEXT.multiply(self.level, den)
        if (
            CONTEXT.multiply(SCALE_FACTOR, scaled_level) <= scaled_price
            or CONTEXT.multiply(SCALE_FACTOR, scaled_price) <= scaled_level
        ):
            return False, QualityFlag.SCALE_SUSPECT, _round_ratio(CONTEXT.divide(scaled_price, scaled_level))
        self.accept(price, ordinal)
        return True, None, None

    def _accepted_since_level(self, ordinal: int) -> bool:
        assert self.level_ord is not None  # only asked once there is a level
        return bisect_right(self.accepted_from, ordinal) > bisect_right(self.accepted_from, self.level_ord)

    def state(self) -> LevelState | None:
        if self.level is None or self.level_ord is None:
            return None
        return LevelState(self.level, date.fromordinal(self.level_ord))


def _round_ratio(ratio: Decimal) -> Decimal:
    """``ratio`` to ``_RATIO_DIGITS`` significant digits, for messages and issue fields.

    A ratio too large to write out in ``CONTEXT`` (only from a price beyond the bounds the
    readers hold prices to, ``core.limits.MAX_PRICE``) keeps its exponent rather than
    failing: quantizing 2E+999998 to units would need a million digits."""
    if ratio.adjusted() >= CONTEXT.prec:
        return _RATIO_CONTEXT.plus(ratio)
    places = max(0, _RATIO_DIGITS - 1 - ratio.adjusted())
    return ratio.quantize(Decimal(1).scaleb(-places), context=CONTEXT)


def _calm_mask(
    ordinals: np.ndarray, prices: list[Decimal | None], splits: _SplitTable, accepted_from: list[int]
) -> np.ndarray:
    """calm[i]: if point i-1 is the level, point i is certainly accepted (a hint, never a verdict)."""
    n = len(prices)
    calm = np.zeros(n, dtype=bool)
    if n < 2:
        return calm
    try:
        local = np.fromiter(map(float, cast("list[Decimal]", prices)), dtype=np.float64, count=n)
    except TypeError:  # some points have no local price (currency mismatch)
        local = np.fromiter((np.nan if p is None else float(p) for p in prices), dtype=np.float64, count=n)
    comparable = local * splits.undo[np.searchsorted(splits.ordinals, ordinals, side="right")]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = comparable[1:] / comparable[:-1]
    inside = (ratio < _SAFE_HIGH) & (ratio > _SAFE_LOW) & (local[1:] > 0)
    if accepted_from:
        acc = np.asarray(accepted_from, dtype=np.int64)
        # an acceptance dated in (previous date, this date] resets the level: judge exactly
        window = np.searchsorted(acc, ordinals[1:], side="right") > np.searchsorted(
            acc, ordinals[:-1], side="right"
        )
        inside &= ~window
    calm[1:] = inside
    return calm


def _acceptance_ordinals(listing: Listing, acceptances: Iterable[Acceptance]) -> list[int]:
    result = []
    for acceptance in acceptances:
        if acceptance.listing_key != listing.key:
            raise ValidationError(
                f"acceptance for {acceptance.listing_key} passed to the check of {listing.key}"
            )
        result.append(acceptance.effective_date.toordinal())
    return sorted(result)


def _apply_flags(
    points: Sequence[PricePoint], new_flags: dict[int, QualityFlag], already_flagged: list[int]
) -> tuple[PricePoint, ...]:
    """Points with this check's flags recomputed; points whose flags do not change are kept as is."""
    out = list(points)
    for i in sorted(set(already_flagged) | new_flags.keys()):
        point = points[i]
        flags = point.flags - _CHECK_FLAGS
        if i in new_flags:
            flags = flags | {new_flags[i]}
        if flags != point.flags:
            out[i] = point._replace(flags=frozenset(flags))
    return tuple(out)
