"""Exact whole-unit rebalancing: depth-first branch and bound with a convex relaxation bound.

The problem (see ``problem.py`` for the integer units). Choose whole units ``q_i`` per
tradeable listing such that

* each executed line (``q_i != 0``) has consideration ``|q_i| * p_i >= min_trade``;
* ``sum_i q_i * p_i + fee * K <= money available`` (``K`` executed lines; sells fund buys);
* ``q_i >= 0`` where sells are not allowed, ``q_i >= -floor(units held)`` where they are;

minimising ``sum_s (w_s - t_s)**2`` over sleeves, the weights taken over post-trade holdings
plus the cash left after fees. Ties go to fewer lines, then lower fees, then the trade list
closest to the policy's constituent split (sum over listings of ``(a_i - share_i * A_s)**2``,
``a_i`` a listing's signed consideration, ``A_s`` its sleeve's), then the smallest vector of
units in listing-key order. That order is total, so the answer is unique.

Method. Listings are decided one at a time (sleeve by sleeve). At each node the objective of
every completion is bounded below by a relaxation that

1. lets each undecided listing trade any real amount between its most negative and most
   positive consideration (dropping whole units and the minimum trade),
2. drops the fees of future lines from the budget, and
3. replaces the unknown final line count ``K`` by the interval of counts still possible,
   so each sleeve's target value ``t_s * T_K`` becomes an interval and its cost the squared
   distance to that interval, divided by the largest ``T_K**2``.

Each relaxation only enlarges the feasible set or lowers the cost, so its minimum is a valid
lower bound. It is a separable convex problem with one budget constraint and is solved in
closed form by water filling (``relaxation_bound``), exactly, in integers and one small
denominator. A child is pruned when its bound exceeds the incumbent's objective, or equals it
with more lines already committed. The bound is convex in the units of the listing being
decided (a convex problem's value is convex in a fixed variable), so the units worth trying
form an interval, found from the relaxed optimum and scanned outward until the bound exceeds
the incumbent. At a leaf the relaxation is exact: every comparison between solutions is
between integers, so ties are real ties.

The search starts from "no trades" (when affordable). It stops after ``max_nodes`` nodes (a
count, not a clock, so the answer stays deterministic) and then reports the best trade list
found, ``proven_optimal=False`` and the root bound, so the gap is visible. Sleeves whose
achievable spends are coarse (one dear listing) are decided first: the continuous relaxation
is loosest for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from .problem import AllocationProblem, Item

DEFAULT_MAX_NODES = 200_000


@dataclass(frozen=True)
class Solution:
    units: tuple[int, ...]  # per problem item
    objective: Fraction  # sum over sleeves of (weight - target)**2 after the trades, exact
    lines: int
    net_spend: int  # money units
    proven_optimal: bool
    nodes: int
    bound: Fraction  # no trade list does better than this (the root relaxation's value)


def _waterfill(reducible: list[tuple[int, int]], excess: int) -> tuple[int, int] | None:
    """min sum g_s**2 with g_s in [g0_s, g1_s] and sum (g_s - g0_s) = excess, as (num, den).

    The optimum is g_s = clamp(L, g0_s, g1_s) for one water level L.
    """
    if sum(g1 - g0 for g0, g1 in reducible) < excess:
        return None
    points = sorted({g for pair in reducible for g in pair})
    previous = points[0]
    for level in points[1:]:
        if sum(min(max(level, g0), g1) - g0 for g0, g1 in reducible) >= excess:
            break
        previous = level
    active, rest, level_sum = 0, 0, excess
    for g0, g1 in reducible:
        if g1 <= previous:  # saturated: cut all the way down
            level_sum -= g1 - g0
            rest += g1 * g1
        elif g0 >= level:  # below the water: untouched
            rest += g0 * g0
        else:  # at the water level L = level_sum / active
            active += 1
            level_sum += g0
    return active * rest + level_sum * level_sum, active


def relaxation_bound(
    values: list[int],
    lows: list[int],
    highs: list[int],
    targets_low: list[int],
    targets_high: list[int],
    budget: int,
) -> tuple[int, int] | None:
    """min sum_s dist(values_s + y_s, [targets_low_s, targets_high_s])**2 over real y_s in
    [lows_s, highs_s] with sum y_s <= budget, as (numerator, denominator); None if infeasible.

    Each sleeve first takes its cheapest best spend (reach the bottom of its target interval,
    or as near as its range allows); if that overspends the budget, spending is cut where the
    squared shortfall grows least: water filling on the shortfalls.
    """
    fixed, spend = 0, 0
    reducible: list[tuple[int, int]] = []
    for value, low, high, a, b in zip(values, lows, highs, targets_low, targets_high, strict=False):
        want = a - value
        if want <= low:
            spend += low
            over = value + low - b
            if over > 0:
                fixed += over * over
        elif want >= high:
            spend += high
            reducible.append((want - high, want - low))
        else:
            spend += want
            reducible.append((0, want - low))
    if spend <= budget:
        return fixed + sum(g0 * g0 for g0, _ in reducible), 1
    result = _waterfill(reducible, spend - budget)
    if result is None:
        return None
    num, den = result
    return fixed * den + num, den


def relaxed_spends(
    values: list[int],
    lows: list[int],
    highs: list[int],
    targets: list[int],
    budget: int,
) -> list[Fraction] | None:
    """The relaxation's optimal spend per sleeve for point targets (the unconstrained ideal)."""
    wants = [min(max(t - v, lo), hi) for v, lo, hi, t in zip(values, lows, highs, targets, strict=True)]
    excess = sum(wants) - budget
    if excess <= 0:
        return [Fraction(w) for w in wants]
    # Shortfall g = t - v - y for the sleeves that can cut; find the level by bisection on
    # the sorted breakpoints, as in _waterfill, but keep the level itself.
    pairs = [
        (t - v - w, t - v - lo) if w > lo else None
        for v, lo, w, t in zip(values, lows, wants, targets, strict=True)
    ]
    reducible = [p for p in pairs if p is not None]
    if sum(g1 - g0 for g0, g1 in reducible) < excess:
        return None
    lo_level, hi_level = Fraction(min(g0 for g0, _ in reducible)), Fraction(max(g1 for _, g1 in reducible))
    points = sorted({g for pair in reducible for g in pair})
    previous = points[0]
    for level in points[1:]:
        if sum(min(max(level, g0), g1) - g0 for g0, g1 in reducible) >= excess:
            hi_level = Fraction(level)
            break
        previous = level
    lo_level = Fraction(previous)
    active = [(g0, g1) for g0, g1 in reducible if g0 <= lo_level and g1 >= hi_level]
    cut = sum(g1 - g0 for g0, g1 in reducible if g1 <= lo_level)
    level = (excess - cut + sum(g0 for g0, _ in active)) / Fraction(len(active))
    return [
        Fraction(w) if pair is None else Fraction(t - v) - min(max(level, pair[0]), pair[1])
        for v, w, t, pair in zip(values, wants, targets, pairs, strict=True)
    ]


class _NodeLimit(Exception):
    pass


@dataclass
class _Incumbent:
    numerator: int
    total: int  # T_K
    lines: int
    units: tuple[int, ...]
    net: int


def _search_order(problem: AllocationProblem) -> list[int]:
    """Coarse sleeves first (few, dear listings), dear listings first within a sleeve."""
    by_sleeve: dict[int, list[int]] = {}
    for index, item in enumerate(problem.items):
        by_sleeve.setdefault(item.sleeve, []).append(index)

    def coarseness(sleeve: int) -> Fraction:
        members = by_sleeve[sleeve]
        return Fraction(min(problem.items[i].price for i in members), len(members))

    order: list[int] = []
    for sleeve in sorted(by_sleeve, key=lambda s: (-coarseness(s), s)):
        order.extend(sorted(by_sleeve[sleeve], key=lambda i: (-problem.items[i].price, i)))
    return order


class _Search:
    """The mutable state of one search (local to ``solve``; nothing escapes but the Solution)."""

    def __init__(self, problem: AllocationProblem, max_nodes: int) -> None:
        self.p = problem
        self.max_nodes = max_nodes
        self.nodes = 0
        self.ts = problem.target_scale
        self.order = _search_order(problem)
        n, sleeves = len(self.order), len(problem.sleeves)
        self.items: list[Item] = [problem.items[i] for i in self.order]
        # What the listings from depth j onwards can still do: their ranges per sleeve
        # (target-scaled money units), how many they are, their cheapest buy line, and
        # whether any may sell. Index n is the empty tail.
        self.lows_from = [[0] * sleeves for _ in range(n + 1)]
        self.highs_from = [[0] * sleeves for _ in range(n + 1)]
        self.count_from = [0] * (n + 1)
        self.cheapest_from: list[int | None] = [None] * (n + 1)
        self.sells_from = [False] * (n + 1)
        for j in range(n - 1, -1, -1):
            item = self.items[j]
            self.lows_from[j] = list(self.lows_from[j + 1])
            self.highs_from[j] = list(self.highs_from[j + 1])
            self.lows_from[j][item.sleeve] -= self.ts * item.max_sell * item.price
            self.highs_from[j][item.sleeve] += self.ts * item.max_buy * item.price
            self.count_from[j] = self.count_from[j + 1] + 1
            self.sells_from[j] = self.sells_from[j + 1] or item.max_sell > 0
            cheapest = self.cheapest_from[j + 1]
            if item.max_buy > 0:
                line = item.min_units * item.price
                cheapest = line if cheapest is None else min(cheapest, line)
            self.cheapest_from[j] = cheapest
        self.sum_low_from = [sum(row) for row in self.lows_from]
        self.x = [self.ts * v for v in problem.values]
        self.units = [0] * n
        self.best: _Incumbent | None = None

    # -- bounds ------------------------------------------------------------------------
    def lines_left(self, j: int, budget: int) -> int:
        """Most lines the listings from depth j on can add, with ``budget`` money units left."""
        count = self.count_from[j]
        cheapest = self.cheapest_from[j]
        if self.sells_from[j] or cheapest is None or count == 0:
            return count
        unit = cheapest + self.p.fee
        return max(0, min(count, budget // unit)) if unit > 0 else count

    def bound(self, lows: list[int], highs: list[int], lines: int, future: int, budget: int):
        """(num, den, T_hi) with num / (den * T_hi**2) <= the objective of every completion."""
        p = self.p
        t_high = p.total - p.fee * lines
        t_low = t_high - p.fee * future
        if t_low <= 0:
            t_low = 1  # T_K <= 0 is infeasible; the interval only needs to cover feasible K
            if t_high <= 0:
                return None
        result = relaxation_bound(
            self.x,
            lows,
            highs,
            [t * t_low for t in p.targets],
            [t * t_high for t in p.targets],
            self.ts * budget,
        )
        if result is None:
            return None
        return result[0], result[1], t_high

    def passes(self, num: int, den: int, t_high: int, lines: int) -> bool:
        best = self.best
        if best is None:
            return True
        diff = num * best.total * best.total - best.numerator * den * t_high * t_high
        return diff < 0 or (diff == 0 and lines <= best.lines)

    # -- search ------------------------------------------------------------------------
    def hint(self, j: int, lines: int, budget: int) -> Fraction | None:
        """The relaxed optimum's spend in item j's sleeve, in money units (point targets)."""
        item = self.items[j]
        total = self.p.total - self.p.fee * lines
        spends = relaxed_spends(
            self.x,
            self.lows_from[j],
            self.highs_from[j],
            [t * total for t in self.p.targets],
            self.ts * budget,
        )
        return None if spends is None else spends[item.sleeve] / self.ts

    def candidates(self, j: int, lines: int, spent: int) -> list[tuple[float, int, int, int, int, int]]:
        """Children of depth j worth visiting: (approx bound, q, num, den, T_hi, lines)."""
        item = self.items[j]
        s, price, tsp = item.sleeve, item.price, self.ts * item.price
        lows, highs = self.lows_from[j + 1], self.highs_from[j + 1]
        budget = self.p.budget - spent - self.p.fee * lines
        out: list[tuple[float, int, int, int, int, int]] = []

        def child(q: int, k: int, future: int):
            self.x[s] += q * tsp
            try:
                return self.bound(lows, highs, k, future, budget - price * q - (self.p.fee if q else 0))
            finally:
                self.x[s] -= q * tsp

        def keep(q: int, result, k: int) -> None:
            num, den, t_high = result
            out.append((num / (den * float(t_high) ** 2), q, num, den, t_high, k))

        zero = child(0, lines, self.lines_left(j + 1, budget))
        if zero is not None and self.passes(*zero, lines):
            keep(0, zero, lines)
        # Budget feasibility of the relaxation caps the units: q * p <= budget - fee - lows after.
        cap = (self.ts * (budget - self.p.fee) - self.sum_low_from[j + 1]) // tsp
        ranges = []
        if item.max_buy:
            ranges.append(
                (item.min_units, min(item.max_buy, cap), budget - self.p.fee - item.min_units * price)
            )
        if item.max_sell:
            ranges.append(
                (-item.max_sell, min(-item.min_units, cap), budget - self.p.fee + item.max_sell * price)
            )
        if not ranges:
            return out
        hint = None
        for first, last, best_budget in ranges:
            if first > last:
                continue
            future = self.lines_left(j + 1, best_budget)
            if hint is None:
                hint = self.hint(j, lines, budget)
            start = first if hint is None else min(max(round(hint / price), first), last)
            for q, result in self._scan(
                first, last, start, lambda q, f=future: child(q, lines + 1, f), lines + 1
            ):
                keep(q, result, lines + 1)
        out.sort(key=lambda c: (c[0], c[5], abs(c[1])))
        return out

    def _scan(self, first: int, last: int, start: int, value, lines: int):
        """The q in [first, last] whose bound passes, given the bound is convex in q."""
        cache: dict[int, tuple[int, int, int] | None] = {}

        def at(q: int):
            if q not in cache:
                cache[q] = value(q)
            return cache[q]

        def ok(q: int) -> bool:
            result = at(q)
            return result is not None and self.passes(*result, lines)

        if not ok(start):
            start = self._argmin(first, last, at)
            if start is None or not ok(start):
                return []
        found = [start]
        q = start - 1
        while q >= first and ok(q):
            found.append(q)
            q -= 1
        q = start + 1
        while q <= last and ok(q):
            found.append(q)
            q += 1
        return [(q, at(q)) for q in found]

    @staticmethod
    def _argmin(first: int, last: int, at) -> int | None:
        """A minimiser of a convex bound over [first, last] (None where infeasible is worst)."""

        def less_or_equal(a, b) -> bool:
            if a is None:
                return b is None
            if b is None:
                return True
            return a[0] * b[1] <= b[0] * a[1]  # same T_hi throughout one range

        low, high = first, last
        while low < high:
            mid = (low + high) // 2
            if less_or_equal(at(mid), at(mid + 1)):
                high = mid
            else:
                low = mid + 1
        return low if at(low) is not None else None

    def visit(self, j: int, lines: int, spent: int) -> None:
        self.nodes += 1
        if self.nodes > self.max_nodes:
            raise _NodeLimit
        if j == len(self.items):
            self.leaf(lines, spent)
            return
        item = self.items[j]
        tsp = self.ts * item.price
        for _, q, num, den, t_high, k in self.candidates(j, lines, spent):
            if not self.passes(num, den, t_high, k):
                continue
            self.units[j] = q
            self.x[item.sleeve] += q * tsp
            try:
                self.visit(j + 1, k, spent + q * item.price)
            finally:
                self.x[item.sleeve] -= q * tsp
                self.units[j] = 0

    def leaf(self, lines: int, spent: int) -> None:
        p = self.p
        total = p.total - p.fee * lines
        if spent + p.fee * lines > p.budget or total <= 0:
            return
        numerator = sum((x - t * total) ** 2 for x, t in zip(self.x, p.targets, strict=True))
        units = [0] * len(p.items)
        for position, q in zip(self.order, self.units, strict=True):
            units[position] = q
        candidate = _Incumbent(numerator, total, lines, tuple(units), spent)
        if self.best is None or _better(p, candidate, self.best):
            self.best = candidate


def _split_distance(problem: AllocationProblem, units: tuple[int, ...]) -> Fraction:
    amounts = [q * item.price for q, item in zip(units, problem.items, strict=True)]
    sleeve_spend = [0] * len(problem.sleeves)
    for amount, item in zip(amounts, problem.items, strict=True):
        sleeve_spend[item.sleeve] += amount
    return sum(
        (
            (amount - item.share * sleeve_spend[item.sleeve]) ** 2
            for amount, item in zip(amounts, problem.items, strict=True)
        ),
        Fraction(0),
    )


def _better(problem: AllocationProblem, a: _Incumbent, b: _Incumbent) -> bool:
    """Is ``a`` strictly before ``b`` in the total order (objective, lines, split, units)?"""
    diff = a.numerator * b.total * b.total - b.numerator * a.total * a.total
    if diff != 0:
        return diff < 0
    if a.lines != b.lines:
        return a.lines < b.lines
    split_a, split_b = _split_distance(problem, a.units), _split_distance(problem, b.units)
    if split_a != split_b:
        return split_a < split_b
    return a.units < b.units


def solve(problem: AllocationProblem, *, max_nodes: int = DEFAULT_MAX_NODES) -> Solution | None:
    """The optimal whole-unit trade list, or None when no trade list (not even none) is affordable."""
    search = _Search(problem, max_nodes)
    n = len(problem.items)
    zero = problem.evaluate([0] * n)
    if zero is not None:
        search.best = _Incumbent(zero[0], zero[1], 0, (0,) * n, 0)
    root = search.bound(
        search.lows_from[0], search.highs_from[0], 0, search.lines_left(0, problem.budget), problem.budget
    )
    proven = True
    try:
        search.visit(0, 0, 0)
    except _NodeLimit:
        proven = False
    best = search.best
    if best is None:
        return None
    scale = problem.target_scale**2
    objective = Fraction(best.numerator, scale * best.total**2)
    bound = objective
    if root is not None:
        bound = min(objective, Fraction(root[0], scale * root[1] * root[2] ** 2))
    return Solution(
        units=best.units,
        objective=objective,
        lines=best.lines,
        net_spend=best.net,
        proven_optimal=proven,
        nodes=search.nodes,
        bound=bound,
    )
