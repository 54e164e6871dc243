"""Exact whole-unit rebalancing: depth-first branch and bound over listings.

The problem (integer units in ``problem.py``). Choose whole units ``q_i`` per tradeable
listing such that

* each executed line (``q_i != 0``) has consideration ``|q_i| * p_i >= min_trade``;
* ``sum_i q_i * p_i + fee * K <= money available`` (``K`` executed lines; sells fund buys);
* ``0 <= q_i`` where sells are not allowed, ``-floor(units held) <= q_i`` where they are;
* unless the policy allows it, no sleeve both sells one listing and buys another;
* no sleeve has more executed lines than the policy's ``max_lines_per_sleeve`` (if set);

minimising ``sum_s (w_s - t_s)**2`` over sleeves, the weights taken over post-trade holdings
plus the cash left after fees. Ties go to fewer lines, then lower fees, then the trade list
closest to the policy's constituent split (sum over listings of ``(a_i - share_i * A_s)**2``,
``a_i`` a listing's signed consideration, ``A_s`` its sleeve's net), then the smallest vector
of units in listing-key order. That order is total, so the answer is unique and does not
depend on the search.

Method: depth-first branch and bound. Listings are decided one at a time, sleeve by sleeve.
A listing's choices are "no trade", a buy range ``[min_units, max]`` and a sell range; a range
is split in halves until it is one value, so no assumption about the shape of the bound is
needed. Every node (a partial decision, possibly with one listing's units only known to lie in
a range) gets a lower bound on the objective of all its completions, from a relaxation that

1. lets each undecided listing (and the range of the current one) trade any real amount
   between its least and greatest consideration, dropping whole units and the minimum trade;
2. for each possible number ``k`` of further lines puts the targets at ``t_s * T_(K+k)``,
   takes ``fee * k`` from the budget, and lets at most ``k`` of the open sleeves move from
   where they stand (a sleeve moves only with one more line at least: the fixed-charge bound,
   ``relaxation.activation_bound``, by Lagrangian duality over the budget). Once every sleeve
   that gains from moving may move, the value is the plain relaxation's, convex in ``k``, so
   the scan stops as soon as its right derivative (closed form, from the optimal deviations
   and the water level) is not negative;
3. divides by the largest total still possible, ``T_(K+k)**2``.

Each step only enlarges the feasible set or lowers the cost, so the bound is valid. The
relaxations are separable convex problems with one budget constraint, solved in closed form
by water filling (``relaxation.py``), exactly, as ratios of integers. A node is pruned when
its bound exceeds the incumbent's objective, or equals it with more lines already committed.
When a node's bound equals the objective of trading nothing more, that completion is taken at
once (nothing can beat it: equal objective needs more lines). Leaves are exact, and every
comparison between trade lists is between integers: ties are real ties.

The search starts from the better of "no trades" (when affordable) and ``warm_start``'s trade
list (the relaxation rounded to whole units, then coordinate descent), and stops after
``max_nodes`` nodes (a count, not a clock, so the answer stays deterministic); it then returns
the best trade list found with ``proven_optimal=False`` and the root bound, so the gap is
visible. Sleeves are decided in order of the relaxed optimum's spend, smallest first (the
sleeves that want money come last, where the bound is tightest; measured 20x fewer nodes than
largest first; putting the finest-priced sleeve last was tried and blew up on some cases), and
the dearest listing of a sleeve first (3x fewer nodes than cheapest first).

Cost (``bench/bench_engine.py``, 50 listings in 10 sleeves). Charging each moving sleeve its
line is what makes a monthly allocation cheap to prove: without it every open sleeve could
take money for free, and £2,000 over four sleeves took up to 200,000 nodes; with it, a few
thousand (medians of 15-52 ms for £1,000-£2,000, every case proven). What remains loose is
whole units. A rebalance that sells one sleeve to feed nine is the hard case: there the
optimum fine-tunes every sleeve to the pound with extra lines (the objective barely counts a
£1.50 fee), the bound stays about 5x below the best list found, and the search ends at the
node limit with ``proven_optimal: false`` and the gap reported. ``max_lines_per_sleeve``
and ``sell_and_buy_in_same_sleeve: false`` make such lists shorter and the search smaller.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from .problem import AllocationProblem, Item
from .relaxation import activation_bound, relaxed_value_and_slope
from .warm_start import warm_start

DEFAULT_MAX_NODES = 200_000
SHORT_RANGE = 6


@dataclass(frozen=True)
class Solution:
    units: tuple[int, ...]  # per problem item
    objective: Fraction  # sum over sleeves of (weight - target)**2 after the trades, exact
    lines: int
    net_spend: int  # money units
    proven_optimal: bool
    nodes: int
    bound: Fraction  # no trade list does better than this


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
    """Sleeves by relaxed spend (smallest first), dear listings first within a sleeve."""
    spends = problem.relaxed_spends(*problem.sleeve_ranges()) or [Fraction(0)] * len(problem.sleeves)
    by_sleeve: dict[int, list[int]] = {}
    for index, item in enumerate(problem.items):
        by_sleeve.setdefault(item.sleeve, []).append(index)
    order: list[int] = []
    for sleeve in sorted(by_sleeve, key=lambda s: (abs(spends[s]), s)):
        order.extend(sorted(by_sleeve[sleeve], key=lambda i: (-problem.items[i].price, i)))
    return order


class _Search:
    """The mutable state of one search (local to ``solve``; only the Solution escapes)."""

    def __init__(self, problem: AllocationProblem, max_nodes: int) -> None:
        self.p = problem
        self.max_nodes = max_nodes
        self.nodes = 0
        self.ts = problem.target_scale
        self.order = _search_order(problem)
        n, sleeves = len(self.order), len(problem.sleeves)
        self.items: list[Item] = [problem.items[i] for i in self.order]
        # What the listings from depth j on can still do: ranges per sleeve (target-scaled
        # money units), how many they are, their cheapest buy line, whether any may sell.
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
        self.sum_lows_from = [sum(row) for row in self.lows_from]
        self.x = [self.ts * v for v in problem.values]
        # One more line moves every target down by target * fee (the total shrinks by the fee).
        self.fee_weights = [t * problem.fee for t in problem.targets]
        self.units = [0] * n
        self.bought = [0] * sleeves  # lines bought / sold so far, per sleeve
        self.sold = [0] * sleeves
        self.best: _Incumbent | None = None
        # Sleeves still open at depth j: item j's and those after it. The others' costs are
        # quadratics in the total T, kept as running sums so a bound only loops over the open.
        self.open_from: list[list[int]] = [[] for _ in range(n + 1)]
        for j in range(n - 1, -1, -1):
            later = self.open_from[j + 1]
            sleeve = self.items[j].sleeve
            self.open_from[j] = later if later and later[0] == sleeve else [sleeve, *later]
        self.sums = [0, 0, 0]  # sum x**2, sum x * target, sum target**2 over closed sleeves
        for sleeve in set(range(sleeves)) - set(self.open_from[0]):
            self.close(sleeve, 1)

    def close(self, sleeve: int, sign: int) -> None:
        x, t = self.x[sleeve], self.p.targets[sleeve]
        self.sums[0] += sign * x * x
        self.sums[1] += sign * x * t
        self.sums[2] += sign * t * t

    # -- bounds ------------------------------------------------------------------------
    def lines_left(self, j: int, budget: int) -> int:
        """Most lines the listings from depth j on can add, with ``budget`` money units left."""
        count, cheapest = self.count_from[j], self.cheapest_from[j]
        if self.sells_from[j] or cheapest is None or count == 0:
            return count
        return max(0, min(count, budget // (cheapest + self.p.fee)))

    def bound(
        self,
        j: int,
        lows: list[int],
        highs: list[int],
        lines: int,
        future: int,
        budget: int,
        current: tuple[int, int] = (-1, 0),
    ):
        """(num, den, T) with num / (den * T**2) <= the objective of every completion, or None.

        ``j`` names the open sleeves (``open_from[j]``); ``lows``/``highs`` are per sleeve, what
        its undecided listings can add; ``current`` is (sleeve, range) when the listing being
        decided has a line whose size is only known to within ``range`` (no further line needed).
        For each number ``k`` of further lines up to the number of sleeves that could still move,
        the fixed-charge bound counts that at most ``k`` of them do; beyond that every sleeve
        may move and the plain relaxation is convex in ``k``, so its scan stops at its minimum.
        """
        p = self.p
        fee, ts = p.fee, self.ts
        t_high = p.total - fee * lines
        sxx, sxt, stt = self.sums
        moving, extra = current
        open_sleeves = self.open_from[j]
        movable = sum(1 for s in open_sleeves if lows[s] or highs[s])
        best = None

        def keep(value: tuple[int, int], total: int) -> None:
            nonlocal best
            if best is None or value[0] * best[1] * best[2] ** 2 < best[0] * value[1] * total * total:
                best = (value[0], value[1], total)

        # Per open sleeve: x, target weight, then its ranges staying ([0, a_hi]) and moving.
        sleeves = [
            (self.x[s], p.targets[s], extra, lows[s], highs[s] + extra)
            if s == moving
            else (self.x[s], p.targets[s], 0, lows[s], highs[s])
            for s in open_sleeves
        ]
        k = 0
        while k < min(future, movable):
            total = t_high - fee * k
            if total <= 0:
                return best
            rows = [(x, t * total, 0, a_hi, b_lo, b_hi) for x, t, a_hi, b_lo, b_hi in sleeves]
            closed = sxx - 2 * total * sxt + total * total * stt
            found = activation_bound(rows, ts * (budget - fee * k), k, closed)
            if found is None:
                if k:
                    return best  # even moving every sleeve cannot pay for k lines; more cost more
            elif found[1]:
                break  # every sleeve that gains may move: the plain relaxation from here on
            else:
                keep(found[0], total)
            k += 1
        if moving >= 0:
            highs = list(highs)
            highs[moving] += extra
        # Every completion from here has a total of at most the first one's: divide by it.
        t_tail, first = t_high - fee * k, k
        for k in range(first, future + 1):
            total = t_high - fee * k
            if total <= 0:
                break
            value = relaxed_value_and_slope(
                self.x,
                lows,
                highs,
                p.targets,
                ts * (budget - fee * k),
                self.fee_weights,
                ts * fee,
                sxx - 2 * total * sxt + total * total * stt,
                fee * (sxt - total * stt),
                scale=total,
                indices=open_sleeves,
            )
            if value is None:
                break
            keep(value[:2], t_tail)
            if value[2] >= 0 or not fee:
                break  # convex in k and no longer falling: the smallest value is behind us
        return best

    def passes(self, num: int, den: int, t_high: int, lines: int) -> bool:
        best = self.best
        if best is None:
            return True
        diff = num * best.total * best.total - best.numerator * den * t_high * t_high
        return diff < 0 or (diff == 0 and lines <= best.lines)

    # -- search ------------------------------------------------------------------------
    def range_bound(self, j: int, first: int, last: int, lines: int, spent: int):
        """Bound for item j trading between ``first`` and ``last`` units (same sign, not 0)."""
        item = self.items[j]
        s, tsp = item.sleeve, self.ts * item.price
        lows, highs = self.lows_from[j + 1], self.highs_from[j + 1]
        budget = self.p.budget - spent - self.p.fee * (lines + 1) - first * item.price
        saved = lows[s], highs[s]
        self.x[s] += first * tsp
        if not self.p.switches:  # the rest of the sleeve may only trade the same way
            if first > 0:
                lows[s] = 0
            else:
                highs[s] = 0
        if self.full(s, 1):  # this line is the sleeve's last
            lows[s] = highs[s] = 0
        try:
            # Lines still possible: counted with the most money the range can leave.
            return self.bound(
                j, lows, highs, lines + 1, self.lines_left(j + 1, budget), budget, (s, (last - first) * tsp)
            )
        finally:
            self.x[s] -= first * tsp
            lows[s], highs[s] = saved

    def zero_bound(self, j: int, lines: int, spent: int):
        budget = self.p.budget - spent - self.p.fee * lines
        s = self.items[j].sleeve
        lows, highs = self.lows_from[j + 1], self.highs_from[j + 1]
        saved = lows[s], highs[s]
        if not self.p.switches:
            if self.bought[s]:
                lows[s] = 0
            if self.sold[s]:
                highs[s] = 0
        if self.full(s, 0):
            lows[s] = highs[s] = 0
        try:
            return self.bound(j, lows, highs, lines, self.lines_left(j + 1, budget), budget)
        finally:
            lows[s], highs[s] = saved

    def full(self, sleeve: int, more: int) -> bool:
        """Would ``more`` lines bring the sleeve to the policy's limit of lines per sleeve?"""
        limit = self.p.max_lines_per_sleeve
        return limit is not None and self.bought[sleeve] + self.sold[sleeve] + more >= limit

    def count_node(self) -> None:
        self.nodes += 1
        if self.nodes > self.max_nodes:
            raise _NodeLimit

    def visit(self, j: int, lines: int, spent: int, node_bound: tuple[int, int, int] | None) -> None:
        """Decide listings j, j+1, ... given the decisions before j."""
        self.count_node()
        closing = j > 0 and (j == len(self.items) or self.items[j].sleeve != self.items[j - 1].sleeve)
        if closing:
            self.close(self.items[j - 1].sleeve, 1)
        try:
            if j == len(self.items) or (
                node_bound is not None and self.nothing_more_is_best(j, lines, spent, node_bound)
            ):
                self.leaf(lines, spent)
            else:
                self.branch(j, lines, spent)
        finally:
            if closing:
                self.close(self.items[j - 1].sleeve, -1)

    def branch(self, j: int, lines: int, spent: int) -> None:
        item = self.items[j]
        children: list[tuple[float, int, int, tuple[int, int, int]]] = []
        zero = self.zero_bound(j, lines, spent)
        if zero is not None and self.passes(*zero, lines):
            children.append((_approx(zero), 0, 0, zero))
        if not self.full(item.sleeve, 0):
            # The relaxation is infeasible beyond this many units: q * p <= money left - lows after.
            room = self.p.budget - spent - self.p.fee * (lines + 1)
            cap = (self.ts * room - self.sum_lows_from[j + 1]) // (self.ts * item.price)
            one_way = not self.p.switches
            for first, last in (
                (item.min_units, min(item.max_buy, cap)),
                (-item.max_sell, min(-item.min_units, cap)),
            ):
                if first > last or (one_way and (self.sold if first > 0 else self.bought)[item.sleeve]):
                    continue
                found = self.range_bound(j, first, last, lines, spent)
                if found is not None and self.passes(*found, lines + 1):
                    children.append((_approx(found), first, last, found))
        children.sort(key=lambda c: (c[0], c[1] != 0))
        for _, first, last, found in children:
            if first == 0 and last == 0:
                if self.passes(*found, lines):
                    self.visit(j + 1, lines, spent, found)
            else:
                self.visit_range(j, first, last, lines, spent, found)

    def visit_range(self, j: int, first: int, last: int, lines: int, spent: int, found) -> None:
        """Item j trades between ``first`` and ``last`` units; ``found`` is that range's bound."""
        if not self.passes(*found, lines + 1):
            return
        if first == last:
            item = self.items[j]
            tsp = self.ts * item.price
            side = self.bought if first > 0 else self.sold
            self.units[j] = first
            self.x[item.sleeve] += first * tsp
            side[item.sleeve] += 1
            try:
                self.visit(j + 1, lines + 1, spent + first * item.price, found)
            finally:
                side[item.sleeve] -= 1
                self.x[item.sleeve] -= first * tsp
                self.units[j] = 0
            return
        self.count_node()
        # A short range is cheaper to list than to halve (halving costs two bounds per level).
        if last - first < SHORT_RANGE:
            parts = [(q, q) for q in range(first, last + 1)]
        else:
            middle = (first + last) // 2
            parts = [(first, middle), (middle + 1, last)]
        children = []
        for low, high in parts:
            part = self.range_bound(j, low, high, lines, spent)
            if part is not None and self.passes(*part, lines + 1):
                children.append((_approx(part), abs(low), low, high, part))
        children.sort(key=lambda c: c[:2])
        for _, _, low, high, part in children:
            self.visit_range(j, low, high, lines, spent, part)

    def nothing_more_is_best(self, j: int, lines: int, spent: int, node_bound: tuple[int, int, int]) -> bool:
        """Does trading nothing more reach the node's bound? Then it is the subtree's best."""
        p = self.p
        num, den, total = node_bound
        if total != p.total - p.fee * lines or spent + p.fee * lines > p.budget:
            return False
        sxx, sxt, stt = self.sums  # closed sleeves, then the open ones
        exact = sxx - 2 * total * sxt + total * total * stt
        for s in self.open_from[j]:
            exact += (self.x[s] - p.targets[s] * total) ** 2
        return exact * den == num

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


def _approx(bound: tuple[int, int, int]) -> float:
    """For ordering children only; pruning compares exactly."""
    num, den, total = bound
    return num / (den * float(total) ** 2)


def _split_distance(problem: AllocationProblem, units: tuple[int, ...]) -> Fraction:
    amounts = [q * item.price for q, item in zip(units, problem.items, strict=True)]
    sleeve_spend = [0] * len(problem.sleeves)
    for amount, item in zip(amounts, problem.items, strict=True):
        sleeve_spend[item.sleeve] += amount
    pairs = zip(amounts, problem.items, strict=True)
    return sum(((a - item.share * sleeve_spend[item.sleeve]) ** 2 for a, item in pairs), Fraction(0))


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
    """The optimal whole-unit trade list, or None when nothing (not even no trade) is affordable."""
    search = _Search(problem, max_nodes)
    n = len(problem.items)
    zero = problem.evaluate([0] * n)
    if zero is not None:
        search.best = _Incumbent(zero[0], zero[1], 0, (0,) * n, 0)
    warm = warm_start(problem)
    found = None if warm is None else problem.evaluate(warm)
    if found is not None:
        assert warm is not None
        candidate = _Incumbent(found[0], found[1], found[2], warm, found[3])
        if search.best is None or _better(problem, candidate, search.best):
            search.best = candidate
    root = search.bound(
        0, search.lows_from[0], search.highs_from[0], 0, search.lines_left(0, problem.budget), problem.budget
    )
    proven = True
    try:
        search.visit(0, 0, 0, root)
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
