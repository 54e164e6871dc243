"""Lower bounds for the household search: a sleeve's least cost under budget multipliers.

With a multiplier ``mu_a >= 0`` on each account's budget and ``gamma >= 0`` on the turnover cap
(and a run's number of lines fixed, so each sleeve's deviation ``D`` lies in a range set by the
least and most fees those lines can pay: a point when every account pays the same fee), every
feasible completion costs at least the sum over sleeves of

    gap(D + ts * y_s)**2 + sum over its lines of (mu_a * (amount + fee_a) + gamma * sold)

(``gap``: how far zero lies outside the range; each sleeve may take its own total, a relaxation)

less ``sum_a mu_a * money left_a + gamma * turnover left`` (both terms are never positive for a
feasible list), so any multipliers give a valid bound. A sleeve's cost with ``r`` lines is exact
for ``r = 0`` and ``r = 1`` (its best single line in whole units) and, for ``r >= 2``, the
continuous least cost over every amount its listings can reach plus ``r`` of its cheapest fees.
Floats: the search prunes only with a relative margin far above their rounding.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

INF = float("inf")
Deviation = tuple[float, float]  # a sleeve's deviation: a range when the fees paid are not known
GOLDEN = (math.sqrt(5) - 1) / 2


@dataclass(frozen=True)
class Line:
    """One listing as the bound sees it: units ``q`` in ``[low, high]`` (one side of zero, or
    both sides for a free listing: ``low <= 0 <= high`` with ``0`` allowed), its price ``step``,
    the slopes of its Lagrangian cost per money unit bought (``buy``) and sold (``sell``), and
    the fixed cost of a line (``fixed``: ``mu_a * fee_a``)."""

    low: int
    high: int
    step: int
    buy: float
    sell: float
    fixed: float
    min_units: int = 1


def gap(low: float, high: float) -> float:
    """How far zero lies outside ``[low, high]`` (signed: positive when the range is above)."""
    return max(0.0, low) + min(0.0, high)


def single(line: Line, low: int, high: int, deviation: Deviation, ts: int, floor: int | None = None) -> float:
    """Least ``gap(D + ts*q*step)**2 + slope*q*step + fixed`` over whole ``q`` in ``[low, high]``,
    one side of zero (``low >= 1`` buys, ``high <= -1`` sells), spending at least ``floor``
    (a kept sleeve's sale leaves it some value); INF when the range is empty."""
    if floor is not None:
        low = max(low, -(-floor // line.step))
    if low > high:
        return INF
    slope = line.buy if low > 0 else line.sell
    unit = ts * line.step
    below, above = deviation
    shift = slope / (2 * ts)
    # The real minimiser of this convex function is one of these four points.
    points = (-(below + shift) / unit, -(above + shift) / unit, -below / unit, -above / unit)
    result = INF
    for point in points:
        for q in (math.floor(point), math.ceil(point)):
            q = min(max(q, low), high)
            x = gap(below + unit * q, above + unit * q)
            result = min(result, x * x + slope * q * line.step + line.fixed)
    return result


def best_single(lines: Sequence[Line], deviation: Deviation, ts: int, floor: int | None = None) -> float:
    """The best one-line completion over free listings (each side of each)."""
    result = INF
    for line in lines:
        if line.high >= line.min_units:
            result = min(result, single(line, max(line.min_units, line.low), line.high, deviation, ts))
        if line.low <= -line.min_units:
            result = min(
                result, single(line, line.low, min(-line.min_units, line.high), deviation, ts, floor)
            )
    return result


def continuous(
    segments: Sequence[tuple[float, float, float, float]],
    deviation: Deviation,
    ts: int,
    floor: float | None = None,
) -> float:
    """Least ``gap(D + ts*Y)**2 + cost(Y)`` over real amounts: each listing's amount ``y`` in
    ``[lo, hi]`` at ``slope_below`` per unit below zero and ``slope_above`` above (convex:
    ``slope_below <= slope_above``); ``segments`` holds ``(lo, hi, slope_below, slope_above)``.
    With ``floor``, the amounts add up to at least it."""
    below, above = deviation
    least = -INF if floor is None else floor
    start = cost = 0.0
    pieces: list[tuple[float, float]] = []
    for lo, hi, down, up in segments:
        start += lo
        if hi <= 0:
            cost += down * lo
            pieces.append((down, hi - lo))
        elif lo >= 0:
            cost += up * lo
            pieces.append((up, hi - lo))
        else:
            cost += down * lo
            pieces.append((down, -lo))
            pieces.append((up, hi))
    pieces.sort()
    y = start
    for slope, length in pieces:
        if slope + 2 * ts * gap(below + ts * y, above + ts * y) >= 0 and y >= least:
            break
        wanted = -slope / (2 * ts)  # the gap at which this piece stops paying
        target = (wanted - (above if wanted <= 0 else below)) / ts
        step = min(length, max(0.0, target - y, least - y))
        y += step
        cost += slope * step
        if step < length:
            break
    x = gap(below + ts * y, above + ts * y)
    return x * x + cost


def segment(line: Line, low: int, high: int) -> tuple[float, float, float, float]:
    return (low * line.step, high * line.step, line.sell, line.buy)


def sleeve_costs(
    lines: Sequence[Line],
    deviation: Deviation,
    ts: int,
    most: int,
    forced: tuple[int, int] | None = None,
    floor: int | None = None,
) -> list[float]:
    """The sleeve's least cost with exactly ``r`` lines, ``r = 0..most``. With ``forced``
    (``(low, high)`` for ``lines[0]``, one side of zero), ``lines[0]`` is a line in that range;
    with ``floor``, the lines spend at least that (a kept sleeve keeps some value)."""
    costs = [INF] * (most + 1)
    free = lines[1:] if forced is not None else lines
    if forced is None:
        costs[0] = gap(*deviation) ** 2
        if most >= 1:
            costs[1] = best_single(free, deviation, ts, floor)
    elif most >= 1:
        costs[1] = single(lines[0], forced[0], forced[1], deviation, ts, floor)
    if most >= 2 and len(lines) >= 2:
        parts = [segment(line, line.low, line.high) for line in free]
        if forced is not None:
            parts.append(segment(lines[0], *forced))
        relaxed = continuous(parts, deviation, ts, floor)
        fixed = sorted(line.fixed for line in lines)
        total = relaxed + fixed[0]
        for r in range(2, min(most, len(lines)) + 1):
            total += fixed[r - 1]  # the r cheapest fixed costs
            costs[r] = total
    return costs


def combine(costs: Sequence[Sequence[float]], most: int) -> list[list[float]]:
    """``tables[k][r]``: the least total cost of sleeves ``k, k+1, ...`` with exactly ``r``
    lines between them (``r <= most``); ``tables[len(costs)]`` is ``[0, INF, ...]``."""
    tables = [[INF] * (most + 1) for _ in range(len(costs) + 1)]
    tables[len(costs)][0] = 0.0
    for k in range(len(costs) - 1, -1, -1):
        after, own, row = tables[k + 1], costs[k], tables[k]
        for r_own, c in enumerate(own):
            if c == INF:
                continue
            for r_rest in range(most + 1 - r_own):
                value = after[r_rest]
                if value != INF and c + value < row[r_own + r_rest]:
                    row[r_own + r_rest] = c + value
    return tables


def climb(
    at, point: list[float], directions: list[list[float]], top: float, steps: int, sweeps: int
) -> list[float]:
    """Climb a concave function of non-negative multipliers from ``point`` by golden-section
    searches along ``directions``; leaves ``at`` evaluated at the point returned."""
    best = at(point)
    for _ in range(sweeps):
        before = best
        for e in directions:
            low = -min(point[k] for k in range(len(point)) if e[k])
            base = list(point)

            def along(t: float, e: list[float] = e, base: list[float] = base) -> float:
                return at([max(0.0, x + t * d) for x, d in zip(base, e, strict=True)])

            t, value = golden(along, low, top, steps)
            if value > best:
                best = value
                point = [max(0.0, x + t * d) for x, d in zip(base, e, strict=True)]
        if best - before <= 1e-7 * abs(best):
            break
    at(point)
    return point


def golden(at, low: float, high: float, steps: int) -> tuple[float, float]:
    """The maximum of a concave function on [low, high] by golden-section search."""
    a, b = low, high
    c, d = b - GOLDEN * (b - a), a + GOLDEN * (b - a)
    fc, fd = at(c), at(d)
    for _ in range(steps):
        if fc >= fd:
            b, d, fd = d, c, fc
            c = b - GOLDEN * (b - a)
            fc = at(c)
        else:
            a, c, fc = c, d, fd
            d = a + GOLDEN * (b - a)
            fd = at(d)
    candidates = [(fc, c), (fd, d), (at(0.0), 0.0)]
    value, x = max(candidates)
    return x, value
