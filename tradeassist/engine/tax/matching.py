"""Share matching for capital gains: which acquisitions a disposal is set against, and at what cost.

UK rules for shares and fund units (TCGA 1992 s.104, s.105, s.106A; HMRC's HS284), applied to
one taxpayer's holdings in taxable (general) accounts, per share class:

1. **Same day.** All acquisitions of a class on one day are one acquisition, all disposals one
   disposal, and they are matched first.
2. **Bed and breakfast.** What is left of a disposal is matched with acquisitions in the 30
   days after it, earliest first; an acquisition already matched (by its own day's disposals,
   or by an earlier disposal) is not matched again.
3. **Section 104 pool.** The rest comes from the pool of everything else acquired before, at
   the pool's average cost. Acquisitions not matched under 1 or 2 join the pool, fees included.

Reorganisations (splits, consolidations, ISIN changes) keep the pool's cost and change its
units: internally every quantity is counted in the units of the class's first day, so a split
changes nothing in the matching, and an ISIN change carries the pool to the new ISIN. Units
moved between accounts without a disposal (``PoolTransfer``) go in or out of the pool.

Exact: quantities and costs are kept as fractions, never rounded on the way. Each disposal's
gain is rounded to the penny once, half up (as HMRC's examples and the common UK calculators
do), and its allowable cost is its proceeds less that gain, so the three figures agree exactly.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction

from ...core.money import CONTEXT, ZERO

BED_AND_BREAKFAST_DAYS = 30


class Rule(StrEnum):
    SAME_DAY = "SAME_DAY"
    BED_AND_BREAKFAST = "BED_AND_BREAKFAST"
    SECTION_104 = "SECTION_104"


# --- what goes in -----------------------------------------------------------------------


@dataclass(frozen=True)
class Trade:
    """An acquisition or a disposal in one of the taxpayer's general accounts.

    ``amount``: for an acquisition, what it cost in GBP with its fees; for a disposal, the
    gross proceeds in GBP (before fees). ``fees``: for a disposal, its costs (allowable); for an
    acquisition, the part of ``amount`` that was fees (shown in the working only).
    """

    day: date
    isin: str
    units: Decimal
    amount: Decimal
    disposal: bool
    fees: Decimal = ZERO
    ref: int = 0
    ticker: str = ""


@dataclass(frozen=True)
class PoolTransfer:
    """Units moved into (+) or out of (−) the taxpayer's general accounts without a disposal:
    from or to an ISA or SIPP, or another broker's account not kept here.

    In: the pool gains ``cost`` (the units' cost as the taxpayer acquired them), or, with
    ``carries``, the cost that the transfer out with that ``ref`` took from the pool (the two
    halves of a reorganisation recorded as a transfer out and in). Out: the pool gives up
    the units at its average cost. Units carried in are taken in before the day's trades;
    units going out leave after them.
    """

    day: date
    isin: str
    units: Decimal
    cost: Decimal | None = None
    ref: int = 0
    carries: int | None = None
    ticker: str = ""


@dataclass(frozen=True)
class Reorganisation:
    """From the start of ``day``, each unit of ``isin`` is ``num``/``den`` units of ``new_isin``
    (the same ISIN for a split or consolidation) with the same cost."""

    day: date
    isin: str
    new_isin: str
    num: Decimal = Decimal(1)
    den: Decimal = Decimal(1)


# --- what comes out ---------------------------------------------------------------------


@dataclass(frozen=True)
class Match:
    """Part of a disposal set against acquisitions under one rule. ``units`` are in the units
    of the disposal's day; ``cost`` is those acquisitions' cost (penny, half up).
    ``acquisition_date`` is the day acquired (None for the pool). For the pool, the pool
    after the disposal is shown too."""

    rule: Rule
    units: Decimal
    cost: Decimal
    acquisition_date: date | None
    refs: tuple[int, ...] = ()
    pool_units_after: Decimal | None = None
    pool_cost_after: Decimal | None = None


@dataclass(frozen=True)
class Disposal:
    """One disposal for tax: every sale of the class on the day, together."""

    day: date
    isin: str
    ticker: str
    units: Decimal
    proceeds: Decimal  # gross, GBP
    fees: Decimal  # the costs of disposal, part of the allowable cost
    allowable_cost: Decimal
    gain: Decimal  # negative for a loss
    matches: tuple[Match, ...]
    refs: tuple[int, ...]
    exact_gain: Fraction = field(repr=False, compare=False, default=Fraction(0))


@dataclass(frozen=True)
class Pool:
    """A Section 104 holding: units (in today's units) and its allowable cost (GBP, exact)."""

    isin: str
    ticker: str
    units: Decimal
    cost: Decimal
    exact_cost: Fraction = field(repr=False, compare=False, default=Fraction(0))


@dataclass(frozen=True)
class Matching:
    disposals: tuple[Disposal, ...]
    pools: tuple[Pool, ...]
    issues: tuple[str, ...]


# --- rounding ---------------------------------------------------------------------------

_PENNY = Fraction(1, 100)


def to_pennies(value: Fraction) -> Decimal:
    """``value`` rounded to the penny, half away from zero (exact: no intermediate rounding)."""
    hundredths = abs(value) * 100
    whole = math.floor(hundredths)
    if hundredths - whole >= Fraction(1, 2):
        whole += 1
    pennies = Decimal(whole).scaleb(-2)
    return -pennies if value < 0 and whole else pennies


def _units(value: Fraction) -> Decimal:
    """Units as a Decimal: exact when they terminate, else to 10 places."""
    den = value.denominator
    for prime in (2, 5):
        while den % prime == 0:
            den //= prime
    exact = CONTEXT.divide(Decimal(value.numerator), Decimal(value.denominator))
    return exact if den == 1 else exact.quantize(Decimal("1E-10"), context=CONTEXT)


def _frac(value: Decimal) -> Fraction:
    return Fraction(value)


# --- the classes and their unit scale ---------------------------------------------------


class _Classes:
    """Which share class each ISIN belongs to, and each class's unit factor over time."""

    def __init__(self, reorganisations: Sequence[Reorganisation]) -> None:
        self._root: dict[str, str] = {}
        self._steps: dict[str, list[tuple[date, Fraction]]] = defaultdict(list)
        for r in sorted(reorganisations, key=lambda r: r.day):
            root = self.root(r.isin)
            if r.new_isin != r.isin:
                self._root[r.new_isin] = root
            ratio = Fraction(_frac(r.num), _frac(r.den))
            if ratio != 1:
                self._steps[root].append((r.day, ratio))

    def root(self, isin: str) -> str:
        while isin in self._root:
            isin = self._root[isin]
        return isin

    def factor(self, root: str, day: date) -> Fraction:
        """Today's units per first-day unit on ``day`` (reorganisations take effect at its start)."""
        result = Fraction(1)
        for when, ratio in self._steps.get(root, ()):
            if when <= day:
                result *= ratio
        return result


@dataclass
class _Day:
    acquired: Fraction = Fraction(0)
    acquired_cost: Fraction = Fraction(0)
    acquired_refs: list[int] = field(default_factory=list)
    disposed: Fraction = Fraction(0)
    proceeds: Fraction = Fraction(0)
    fees: Fraction = Fraction(0)
    disposed_refs: list[int] = field(default_factory=list)
    isin: str = ""
    ticker: str = ""
    same_day: Fraction = Fraction(0)
    matched_later: Fraction = Fraction(0)  # of this day's acquisition, by earlier disposals


@dataclass
class _Pool:
    units: Fraction = Fraction(0)
    cost: Fraction = Fraction(0)
    isin: str = ""
    ticker: str = ""

    def take(self, units: Fraction) -> Fraction:
        """Remove ``units`` at the average cost; return the cost removed."""
        if units >= self.units:
            cost, self.units, self.cost = self.cost, Fraction(0), Fraction(0)
            return cost
        cost = self.cost * units / self.units
        self.units -= units
        self.cost -= cost
        return cost


# --- the matching -----------------------------------------------------------------------


def match_shares(
    trades: Iterable[Trade],
    transfers: Iterable[PoolTransfer] = (),
    reorganisations: Sequence[Reorganisation] = (),
    *,
    until: date | None = None,
) -> Matching:
    """Every disposal in ``trades`` matched under the three rules, and the pools afterwards.

    Only events on or before ``until`` count, if given: what was known that day. The order of
    ``trades`` does not matter, within a day or across days.
    """
    classes = _Classes([r for r in reorganisations if until is None or r.day <= until])
    days: dict[str, dict[date, _Day]] = defaultdict(dict)
    for t in trades:
        if until is not None and t.day > until:
            continue
        root = classes.root(t.isin)
        scale = classes.factor(root, t.day)
        day = days[root].setdefault(t.day, _Day())
        units = _frac(t.units) / scale
        if t.disposal:
            day.disposed += units
            day.proceeds += _frac(t.amount)
            day.fees += _frac(t.fees)
            day.disposed_refs.append(t.ref)
            day.isin, day.ticker = t.isin, t.ticker or day.ticker
        else:
            day.acquired += units
            day.acquired_cost += _frac(t.amount)
            day.acquired_refs.append(t.ref)
            if not day.isin:
                day.isin, day.ticker = t.isin, t.ticker
    moves = [m for m in transfers if until is None or m.day <= until]

    bnb = _match_same_day_and_later(days)
    return _run_pools(days, bnb, moves, classes, until)


def _match_same_day_and_later(
    days: Mapping[str, dict[date, _Day]],
) -> dict[tuple[str, date], list[tuple[date, Fraction]]]:
    """Rules 1 and 2; returns, per (class, disposal day), the later acquisitions matched."""
    later: dict[tuple[str, date], list[tuple[date, Fraction]]] = {}
    for root, by_day in days.items():
        for d in by_day.values():
            d.same_day = min(d.acquired, d.disposed)
        for when in sorted(by_day):
            d = by_day[when]
            left = d.disposed - d.same_day
            matched: list[tuple[date, Fraction]] = []
            for offset in range(1, BED_AND_BREAKFAST_DAYS + 1):
                if not left:
                    break
                a = by_day.get(when + timedelta(days=offset))
                if a is None:
                    continue
                free = a.acquired - a.same_day - a.matched_later
                if free > 0:
                    take = min(left, free)
                    a.matched_later += take
                    left -= take
                    matched.append((when + timedelta(days=offset), take))
            if matched:
                later[(root, when)] = matched
    return later


def _run_pools(
    days: Mapping[str, dict[date, _Day]],
    later: Mapping[tuple[str, date], list[tuple[date, Fraction]]],
    moves: Sequence[PoolTransfer],
    classes: _Classes,
    until: date | None,
) -> Matching:
    """Rule 3, day by day across every class (a reorganisation's transfer pair may cross classes)."""
    pools: dict[str, _Pool] = defaultdict(_Pool)
    moves_by_day: dict[date, list[PoolTransfer]] = defaultdict(list)
    for m in moves:
        moves_by_day[m.day].append(m)
    carried_refs = {m.carries for m in moves if m.carries is not None}
    removed: dict[int, Fraction] = {}
    disposals: list[Disposal] = []
    issues: list[str] = []
    all_days = sorted({d for by_day in days.values() for d in by_day} | set(moves_by_day))

    def move(m: PoolTransfer) -> None:
        root = classes.root(m.isin)
        pool = pools[root]
        units = _frac(m.units) / classes.factor(root, m.day)
        if units < 0:
            if -units > pool.units:
                scale = classes.factor(root, m.day)
                issues.append(
                    f"{m.day.isoformat()}: {m.ticker or m.isin}: {_units(-units * scale)} units moved out of "
                    f"the general accounts, more than their pool holds ({_units(pool.units * scale)})"
                )
            removed[m.ref] = pool.take(min(-units, pool.units))
            return
        cost = removed.get(m.carries, Fraction(0)) if m.carries is not None else _frac(m.cost or ZERO)
        pool.units += units
        pool.cost += cost
        pool.isin, pool.ticker = m.isin, m.ticker or pool.ticker

    for when in all_days:
        todays = moves_by_day.get(when, [])
        for m in todays:  # a reorganisation's halves first, then units coming in
            if m.ref in carried_refs or (m.carries is not None):
                move(m)
        for m in todays:
            if m.units > 0 and m.carries is None:
                move(m)
        for root, by_day in days.items():
            d = by_day.get(when)
            if d is None:
                continue
            pool = pools[root]
            pool.isin, pool.ticker = d.isin or pool.isin, d.ticker or pool.ticker
            joining = d.acquired - d.same_day - d.matched_later
            if joining > 0:
                pool.units += joining
                pool.cost += d.acquired_cost * joining / d.acquired
            if d.disposed:
                disposals.append(
                    _dispose(root, when, d, later.get((root, when), []), by_day, pool, classes, issues)
                )
        for m in todays:
            if m.units < 0 and m.ref not in carried_refs:
                move(m)

    end = until or (all_days[-1] if all_days else date.min)
    result_pools = tuple(
        Pool(p.isin, p.ticker, _units(p.units * classes.factor(root, end)), to_pennies(p.cost), p.cost)
        for root, p in sorted(pools.items(), key=lambda kv: kv[1].isin)
        if p.units
    )
    disposals.sort(key=lambda d: (d.day, d.isin))
    return Matching(tuple(disposals), result_pools, tuple(issues))


def _dispose(
    root: str,
    when: date,
    d: _Day,
    later: Sequence[tuple[date, Fraction]],
    by_day: Mapping[date, _Day],
    pool: _Pool,
    classes: _Classes,
    issues: list[str],
) -> Disposal:
    scale = classes.factor(root, when)
    matches: list[Match] = []
    exact_cost = Fraction(0)
    if d.same_day:
        cost = d.acquired_cost * d.same_day / d.acquired
        exact_cost += cost
        matches.append(
            Match(Rule.SAME_DAY, _units(d.same_day * scale), to_pennies(cost), when, tuple(d.acquired_refs))
        )
    for acquired_on, units in later:
        a = by_day[acquired_on]
        cost = a.acquired_cost * units / a.acquired
        exact_cost += cost
        matches.append(
            Match(
                Rule.BED_AND_BREAKFAST,
                _units(units * scale),
                to_pennies(cost),
                acquired_on,
                tuple(a.acquired_refs),
            )
        )
    from_pool = d.disposed - d.same_day - sum((u for _, u in later), Fraction(0))
    if from_pool > 0:
        if from_pool > pool.units:
            issues.append(
                f"{when.isoformat()}: {d.ticker or d.isin}: {_units(from_pool * scale)} units sold, but the "
                f"general accounts held {_units(pool.units * scale)} in the pool"
            )
        cost = pool.take(min(from_pool, pool.units))
        exact_cost += cost
        matches.append(
            Match(
                Rule.SECTION_104,
                _units(from_pool * scale),
                to_pennies(cost),
                None,
                (),
                _units(pool.units * scale),
                to_pennies(pool.cost),
            )
        )
    exact_gain = d.proceeds - d.fees - exact_cost
    gain = to_pennies(exact_gain)
    proceeds = to_pennies(d.proceeds)
    return Disposal(
        day=when,
        isin=d.isin,
        ticker=d.ticker,
        units=_units(d.disposed * scale),
        proceeds=proceeds,
        fees=to_pennies(d.fees),
        allowable_cost=proceeds - gain,
        gain=gain,
        matches=tuple(matches),
        refs=tuple(d.disposed_refs),
        exact_gain=exact_gain,
    )
