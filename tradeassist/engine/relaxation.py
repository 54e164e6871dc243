"""The continuous relaxation behind the optimizer's bound, solved exactly by water filling.

Problem: minimise ``sum_s (values_s + y_s - targets_s)**2`` over real spends ``y_s`` in
``[lows_s, highs_s]`` with ``sum_s y_s <= budget``; all inputs are integers. Each sleeve first
takes its cheapest best spend (reach its target, or as near as its range allows). If that
overspends the budget, spending is cut where the squared shortfall grows least: every sleeve
that is cut ends at one common shortfall, the water level ``L``, unless its range stops it
first. ``L`` is rational with a small denominator (the number of sleeves at the level), so the
optimum comes back exactly as ``(numerator, denominator)``.

``relaxed_spends`` gives the search its sleeve order, the warm start its sleeve spends and the
recommendation its unconstrained ideal. The optimizer's bound itself is Lagrangian over the
budget and needs only each sleeve's least cost at a water level: ``level_interval``,
``level_counts`` and ``level_fit`` at the end of this module. ``activation_bound`` and
``relaxed_value_and_slope`` (the continuous fixed-charge bound and its scan in the number of
lines, which the optimizer used before it searched one number of lines at a time) are no
longer called by it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from fractions import Fraction

Shortfalls = list[tuple[int, int]]  # (shortfall at the sleeve's best spend, shortfall at its lowest)


def _best_spends(
    values: list[int], lows: list[int], highs: list[int], targets: list[int]
) -> tuple[int, int, Shortfalls, list[int]]:
    """Fixed cost, total spend, the sleeves that can be cut, and each sleeve's spend."""
    fixed = spend = 0
    reducible: Shortfalls = []
    spends = []
    for value, low, high, target in zip(values, lows, highs, targets, strict=True):
        want = target - value
        if want <= low:
            want = low
            over = value + low - target
            fixed += over * over
        elif want >= high:
            if high > low:
                reducible.append((want - high, want - low))
            else:  # nothing to cut: a fixed shortfall
                fixed += (want - high) * (want - high)
            want = high
        else:
            reducible.append((0, want - low))
        spend += want
        spends.append(want)
    return fixed, spend, reducible, spends


def water_level(reducible: Shortfalls, excess: int) -> tuple[int, int] | None:
    """The level ``L = P / n`` at which cutting spends to shortfalls ``clamp(L, g0, g1)`` saves
    exactly ``excess``, as ``(P, n)``; None when even cutting everything saves too little."""
    if not reducible:
        return None
    # At equal points a start (0) sorts before an end (1), so the slope never dips below 0.
    events = sorted([(g0, 0) for g0, _ in reducible] + [(g1, 1) for _, g1 in reducible])
    slope, level, saved = 0, events[0][0], 0
    for point, end in events:
        gain = slope * (point - level)
        if slope and saved + gain >= excess:
            break
        saved += gain
        level = point
        slope += -1 if end else 1
    else:
        return None
    return level * slope + excess - saved, slope


def relaxed_value(
    values: list[int], lows: list[int], highs: list[int], targets: list[int], budget: int
) -> tuple[int, int] | None:
    """The relaxation's minimum as ``(numerator, denominator)``, or None when infeasible."""
    found = relaxed_value_and_slope(values, lows, highs, targets, budget, [0] * len(values), 0)
    return None if found is None else found[:2]


def relaxed_value_and_slope(
    values: Sequence[int],
    lows: Sequence[int],
    highs: Sequence[int],
    targets: Sequence[int],
    budget: int,
    weights: Sequence[int],
    budget_weight: int,
    base_cost: int = 0,
    base_slope: int = 0,
    *,
    scale: int = 1,
    indices: Iterable[int] | None = None,
) -> tuple[int, int, int] | None:
    """The minimum as ``(numerator, denominator, slope)``, or None when infeasible.

    ``slope`` has the sign of the minimum's right derivative when each target moves down by
    ``weights_s`` and the budget by ``budget_weight`` per unit of a parameter: by the envelope
    theorem it is ``sum_s weights_s * d_s + budget_weight * L``, with ``d_s`` the optimal
    deviations and ``L`` the water level just beyond (the budget's shadow price, halved).
    ``base_cost`` and ``base_slope`` are the same quantities for sleeves with nothing left to
    decide, added in by the caller. Targets are ``targets_s * scale``; only the sleeves in
    ``indices`` (default all) take part. One pass, no helpers: this is the optimizer's hot loop.
    """
    fixed, slope, spend = base_cost, base_slope, 0
    cut: list[tuple[int, int, int]] = []  # (g0, g1, weight) of the sleeves whose spend can be cut
    for s in range(len(values)) if indices is None else indices:
        value, low, high, weight = values[s], lows[s], highs[s], weights[s]
        want = targets[s] * scale - value
        if want <= low:  # over target even at its lowest: deviation value + low - target >= 0
            deviation = -want + low
            fixed += deviation * deviation
            slope += weight * deviation
            spend += low
        elif want >= high:  # short even at its highest
            shortfall = want - high
            spend += high
            if high > low:
                cut.append((shortfall, want - low, weight))
            else:
                fixed += shortfall * shortfall
                slope -= weight * shortfall
        else:  # reaches its target exactly
            spend += want
            cut.append((0, want - low, weight))
    if spend < budget:
        for g0, _, weight in cut:
            fixed += g0 * g0
            slope -= weight * g0
        return fixed, 1, slope
    if spend == budget and not cut:
        # Exactly affordable with nothing to cut: a smaller budget is infeasible, so the
        # value only rises in the parameter's direction (when budget_weight > 0).
        return fixed, 1, (1 if budget_weight else slope)
    # A budget that binds exactly still takes the water-level branch: the derivative in the
    # direction of a smaller budget starts cutting at the smallest shortfall.
    found = water_level([(g0, g1) for g0, g1, _ in cut], spend - budget)
    if found is None:
        return None
    top, count = found  # L = top / count
    after = _level_after(cut, top, count)
    if after < 0 and budget_weight:  # no level beyond: a smaller budget is infeasible
        slope_sign = 1
    else:
        slope_sign = 0
    rest, at_level = fixed, 0
    slope = slope * count + budget_weight * max(after, 0)
    for g0, g1, weight in cut:
        if g1 * count <= top:
            rest += g1 * g1
            slope -= weight * g1 * count
        elif g0 * count >= top:
            rest += g0 * g0
            slope -= weight * g0 * count
        else:
            at_level += 1
            slope -= weight * top
    return rest * count * count + at_level * top * top, count * count, slope_sign or slope


def _level_after(reducible: list[tuple[int, int, int]], top: int, count: int) -> int:
    """``count`` times the water level just after a slightly smaller budget (-1 if none).

    The level jumps when the sleeves at it are all cut to their lowest: then cutting more
    starts at the next sleeve's shortfall, and the budget's shadow price jumps with it.
    """
    following = None
    for g0, g1, _ in reducible:
        if g0 * count <= top < g1 * count:
            return top
        if g0 * count > top and (following is None or g0 < following):
            following = g0
    return -1 if following is None else following * count


def relaxed_spends(
    values: list[int], lows: list[int], highs: list[int], targets: list[int], budget: int
) -> list[Fraction] | None:
    """The relaxation's optimal spend per sleeve (exact), or None when infeasible."""
    _, spend, reducible, spends = _best_spends(values, lows, highs, targets)
    if spend <= budget:
        return [Fraction(y) for y in spends]
    found = water_level(reducible, spend - budget)
    if found is None:
        return None
    level = Fraction(*found)
    result = []
    for value, low, target, y in zip(values, lows, targets, spends, strict=True):
        want = target - value
        if y > low:  # a cut sleeve: its shortfall is the level, within its range
            shortfall = min(max(level, Fraction(want - y)), Fraction(want - low))
            result.append(Fraction(want) - shortfall)
        else:
            result.append(Fraction(y))
    return result


# -- the fixed-charge bound ----------------------------------------------------------------
# A sleeve moves beyond what it has already committed only with at least one more line, and
# each line costs a fee. The plain relaxation above lets every open sleeve move for free;
# ``activation_bound`` charges for it, by Lagrangian duality (valid for any multiplier).

Row = tuple[int, int, int, int, int, int]  # x, target, a_lo, a_hi, b_lo, b_hi


def _level(intervals: Iterable[tuple[int, int, int, int]], budget: int) -> tuple[int, int] | None:
    """The water level ``P / n`` (half the budget's shadow price) for sleeves given as
    ``(x, target, lo, hi)``: ``(0, 1)`` when the budget does not bind, None when infeasible."""
    spend = 0
    reducible: Shortfalls = []
    for x, target, low, high in intervals:
        want = target - x
        if want <= low:
            spend += low
        elif want >= high:
            spend += high
            if high > low:
                reducible.append((want - high, want - low))
        else:
            spend += want
            reducible.append((0, want - low))
    if spend <= budget:
        return 0, 1
    return water_level(reducible, spend - budget)


def _dual(
    rows: Sequence[Row], budget: int, further: int, base: int, level: tuple[int, int]
) -> tuple[tuple[int, int], list[int]]:
    """The bound at multiplier ``2 * top / count`` (the level ``top / count``) and the positive
    gains. Each sleeve's part, times ``count**2``, is ``min over y in I`` of
    ``(x + y - target)**2 + 2 * (top / count) * y``: the unconstrained ``y`` is
    ``target - x - top / count``, clipped to ``I``. Written out inline: the hot loop."""
    top, count = level
    stay = 0
    gains = []
    for x, target, a_lo, a_hi, b_lo, b_hi in rows:
        free = count * (target - x) - top
        y = count * a_lo if free < count * a_lo else count * a_hi if free > count * a_hi else free
        deviation = count * (x - target) + y
        still = deviation * deviation + 2 * top * y
        stay += still
        if further and (b_lo != a_lo or b_hi != a_hi):
            y = count * b_lo if free < count * b_lo else count * b_hi if free > count * b_hi else free
            deviation = count * (x - target) + y
            gain = still - deviation * deviation - 2 * top * y
            if gain:
                gains.append(gain)
    gains.sort(reverse=True)
    value = base * count * count + stay - sum(gains[:further]) - 2 * top * count * budget
    return (value, count * count), gains


def activation_bound(
    rows: Sequence[Row], budget: int, further: int, base: int = 0
) -> tuple[tuple[int, int], bool] | None:
    """A lower bound ``(numerator, denominator)`` on ``base + sum_s (x_s + y_s - target_s)**2``
    over spends with ``sum_s y_s <= budget`` and exactly ``further`` more lines, and whether
    it is the plain relaxation's value (every sleeve that gains from moving may move); None
    when no such spends exist even without whole units.

    Each row is an open sleeve: it stays in ``[a_lo, a_hi]`` with no more lines, or moves
    anywhere in ``[b_lo, b_hi]`` (which contains it) with one or more. For any multiplier
    ``m >= 0`` every feasible choice costs at least
    ``base + sum_s f_s(a) - (the further largest gains f_s(a) - f_s(b)) - m * budget``, where
    ``f_s(I) = min over y in I of (x_s + y - target_s)**2 + m * y``: the budget term is not
    positive for a feasible choice, and at most ``further`` sleeves can move. ``m`` is twice
    the water level of the relaxation with everyone moving; when no more than ``further``
    sleeves gain, the bound is that relaxation's value (duality has no gap for a convex
    problem). A second multiplier, from the relaxation with only the sleeves that gain most
    moving, was measured to save under 5% of the nodes and is not worth its time.
    """
    if further == 0:
        level = _level(((x, t, a_lo, a_hi) for x, t, a_lo, a_hi, _, _ in rows), budget)
        return None if level is None else (_dual(rows, budget, 0, base, level)[0], False)
    everyone = _level(((x, t, b_lo, b_hi) for x, t, _, _, b_lo, b_hi in rows), budget)
    if everyone is None:
        return None
    best, gains = _dual(rows, budget, further, base, everyone)
    return best, len(gains) <= further


# -- the per-sleeve costs of the optimizer's Lagrangian bound ---------------------------------
# With the budget's multiplier ``2 h`` (``h`` a water level), a sleeve ``w`` short of its target
# costs at least ``(y - w)**2 + 2 h y`` for a spend ``y``: these are its least values over a real
# interval, over whole counts of one listing, and over one whole-count line on top of a line
# known to within a range. All integers in, the least value out exactly (see optimizer.py).


def level_interval(w: int, h: int, low: int, high: int) -> int:
    """min over real y in [low, high] of (y - w)**2 + 2 h y (an integer: all inputs are)."""
    a = w - h
    y = low if a < low else high if a > high else a
    return (y - a) ** 2 + 2 * w * h - h * h


def level_counts(w: int, h: int, step: int, first: int, last: int) -> int:
    """min over integer q in [first, last] of (q * step - w)**2 + 2 h q step."""
    a = w - h
    q = a // step
    best = None
    for c in (q, q + 1):
        c = first if c < first else last if c > last else c
        value = (c * step - a) ** 2
        if best is None or value < best:
            best = value
    assert best is not None
    return best + 2 * w * h - h * h


def level_fit(w: int, h: int, reach: int, step: int, first: int, last: int) -> int:
    """min over real y in [0, reach] and integer q in [first, last] of
    ``(y + q * step - w)**2 + 2 h (y + q * step)``: one more line in whole units on top of a
    line known only to within ``reach`` (0: known exactly)."""
    a = w - h  # where y + q * step wants to be
    best = None
    for q in (-((reach - a) // step), a // step):  # the counts whose interval reaches a
        q = first if q < first else last if q > last else q
        low = q * step
        gap = low - a if a < low else a - low - reach if a > low + reach else 0
        if best is None or gap * gap < best:
            best = gap * gap
    assert best is not None
    return best + 2 * w * h - h * h
