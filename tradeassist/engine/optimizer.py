"""Exact whole-unit rebalancing: branch and bound over listings, one run per number of lines.

The problem (integer units in ``problem.py``). Choose whole units ``q_i`` per tradeable
listing such that

* each executed line (``q_i != 0``) has consideration ``|q_i| * p_i >= min_trade`` and, under
  ``max_trade_base``, at most that; ``never_buy`` / ``never_sell`` names take no buy / sell;
* ``sum_i q_i * p_i + fee * K <= money available`` (``K`` executed lines; sells fund buys);
* ``0 <= q_i`` where sells are not allowed, ``-floor(units held) <= q_i`` where they are;
* the sell consideration in total is at most ``max_turnover * T`` (``T`` the total before);
* unless the policy allows it, no sleeve both sells one listing and buys another;
* no sleeve has more executed lines than the policy's ``max_lines_per_sleeve`` (if set);
* no sleeve with a positive target that holds value is sold to nothing;

minimising ``J = sum_s (w_s - t_s)**2 + K * (P / T)**2``: the weights taken over post-trade
holdings plus the cash left after fees, ``P`` the policy's line penalty (a line is worth its
place only if it corrects about ``P`` of misallocation; ``P = 0`` is the plain squared drift).
Ties go to fewer lines (so lower fees), then the trade list closest to the policy's constituent
split (sum over listings of ``(a_i - share_i * A_s)**2``, ``a_i`` a listing's signed
consideration, ``A_s`` its sleeve's net), then the smallest vector of units in listing-key
order. That order is total, so the answer is unique and does not depend on the search.

Method. The search is split by the number of lines ``K``: with ``K`` fixed, the total after
fees ``T_K``, every sleeve's target ``t_s * T_K``, the money left for trades and the penalty
are constants, and the objective is the squared drift ``N`` over ``T_K**2``. Each such run is
a depth-first branch and bound, sleeve by sleeve. Entering a sleeve, the search lists its
completions with no line, one line or two (per listing the counts in a window around the
sleeve's target, per pair of listings each count of one with the window of the other: the
window is where the bound can still tie the best list) and visits them best first; three lines
or more, or a sleeve with too many completions to list, is branched listing by listing (no
trade, a buy range, a sell range, ranges halved until one value). The last sleeve is
completed directly: its best completion whatever the money is the same on every path of a
run, and when the money binds the run's completions sorted by spend give the best one in a
binary search. Every hard rule is a constraint of the ranges (turnover: a sell range shrinks
to what the committed sells leave) or a check when a sleeve closes (no kept sleeve at zero),
so no answer ever breaks one.

The bound at a node is Lagrangian. For a budget level ``h`` (the water level: the budget's
multiplier is ``2h``) and a turnover level ``g``, every completion costs at least ``closed +
current + sum over untouched sleeves of c_s(r_s) - 2h * money left - 2g * turnover left``,
where an untouched sleeve's ``c_s(r)`` is its least ``(x + y - target)**2 + 2h y + 2g
max(0, -y)`` with ``r`` further lines: its own value (``r = 0``), its best single line in whole
units at or above the minimum trade (``r = 1``, exact, by rounding per listing), or any real
spend its ``r`` largest lines can reach (``r >= 2``); the current sleeve counts its line being
decided in whole units and its next line in whole units too (``relaxation.level_fit``). The
lines are shared out exactly: ``tables[k][r]`` is the least cost of the untouched sleeves
``k, k+1, ...`` making exactly ``r`` lines (a small dynamic programme per level, cached), so a
sleeve that moves pays for its line and a run with too few lines pays for the sleeves that
cannot move. Any ``h, g >= 0`` give a valid bound (both terms are never positive for a
feasible completion). ``g`` is fixed per run (0 unless the turnover cap may bind); ``h`` is
climbed at each node from its parent's on a grid around the run's best root level (every
quarter of a pound within £32, doubling out to £4,096), and a node is pruned as soon as one
level lifts its bound above the best list (or to it, with more lines). Whole units inside the
untouched sleeves are what a continuous relaxation cannot see; with them a rebalance's root
bound sits within a few hundredths of a percent of its optimum. Leaves are exact, every
comparison is between integers, ties are real ties.

Runs are taken best first by root bound, each sharpened before it is searched (its bound
climbed on the shared grid, then its levels centred on its own best ``h``, and ``g``, by
golden-section search: the root bound is concave in them), and skipped when the root cannot
tie the best list; with a positive penalty no run has more lines than
``J(best) / (P / T)**2``, and a buy-only search no more than the money pays for. Sleeves are
searched in order of their relaxed spend, smallest first, except that sleeves no single
listing can serve (two lines or more) go last, where their many whole-unit combinations
absorb what the single-line sleeves leave.

Nodes: every node visited, every completion listed and every 16 counts tried in a pair loop
count, so ``max_nodes`` bounds the work (a count, not a clock: the answer is deterministic).
``solve`` starts from the better of "no trades" (when affordable) and ``warm_start``'s list and
gives the branch and bound a tenth of the nodes (at least 20,000); if that does not finish,
``primal.large_neighbourhood`` (every pair of sleeves re-optimised exactly with the rest
fixed, up to a third of the nodes) and ``primal.local_search`` improve the list, and the branch
and bound starts again from it with what is left. At the limit it returns the best list found
with ``proven_optimal=False`` and the least root bound of the runs not finished, so the gap is
visible.

Cost (``bench/bench_engine.py``, 50 listings in 10 sleeves, £100 line penalty, CPU time on a
shared, busy machine). Monthly allocations (£500-£2,000): every case proven, medians 20-40 ms,
p95 under 200 ms, a median of 44-211 nodes. Rebalances selling one sleeve up 60%: every case
proven, median about 40 ms, a few hundred nodes. Rebalances where every sleeve drifted up to
40%: every case proven, median about 50 ms, p95 about 350 ms; the hardest (three or four
sleeves each selling two listings, 13-14 lines) take up to 19,000 nodes. Before (the
continuous fixed-charge bound, no penalty) no rebalance was proven in 200,000 nodes (about
10 s each) and its lists held a median of 20 lines. With ``line_penalty_base: "0"`` (the plain
squared drift) rebalances still meet the node limit (about 5 s each): the list returned is
within 0.4% of the reported bound, with 20-24 lines. Binding hard rules cost more: a 1%
turnover cap or a £1,500 max trade on the rebalance is proven in under 3 s; a 3% cap took
71,000 nodes (about 20 s). ``--scip``: the independent MIQP oracle agrees exactly on monthly
allocations (1-4 s each); on the rebalances it does not finish in 60 s, and its best list is
14 to 1,400 times worse.
"""

from __future__ import annotations

import bisect
import contextlib
import heapq
import math
from dataclasses import dataclass
from fractions import Fraction

from . import primal
from .problem import AllocationProblem, Item
from .relaxation import level_counts as _discrete
from .relaxation import level_interval as _continuous

DEFAULT_MAX_NODES = 200_000
SHORT_RANGE = 6
ENTER_LIMIT = 4000  # most completions of a sleeve ``enter`` lists; beyond, it branches
FIRST_TRY_MIN = 20_000  # the first branch and bound's share of the nodes: a tenth, at least this
LNS_NODES = 500  # most nodes one large-neighbourhood re-optimisation may take
LOOP_NODE = 16  # counts tried in a pair loop per node counted (the node limit bounds the work)
UNLIMITED = 10**60  # money enough for any trade list (the last sleeve's unconstrained best)
INF = float("inf")
Bound = int | float  # an exact integer bound on N, or INF where no completion exists


@dataclass(frozen=True)
class Solution:
    units: tuple[int, ...]  # per problem item
    objective: Fraction  # J: squared drift after the trades plus the line penalty, exact
    lines: int
    net_spend: int  # money units
    proven_optimal: bool
    nodes: int
    bound: Fraction  # no trade list does better than this


class _NodeLimit(Exception):
    pass


@dataclass
class _Incumbent:
    numerator: int  # M (see problem.py): J = M / (target_scale * T * T_K)**2
    total: int  # T_K
    lines: int
    units: tuple[int, ...]
    net: int


class _Counter:
    def __init__(self, limit: int) -> None:
        self.nodes = 0
        self.limit = limit

    def count(self, amount: int = 1) -> None:
        self.nodes += amount
        if self.nodes > self.limit:
            self.nodes = self.limit + 1
            raise _NodeLimit


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


def _incumbent(problem: AllocationProblem, units) -> _Incumbent | None:
    found = problem.evaluate(units)
    if found is None:
        return None
    return _Incumbent(found.numerator, found.total, found.lines, tuple(units), found.net)


def _nearest(short: int, step: int, first: int, last: int, gone: int | None) -> list[int]:
    """The counts q in [first, last] bringing ``short + q * step`` nearest to 0, skipping the
    one whose spend is ``gone`` (that would empty a kept sleeve); [] when none is left."""
    q = -short // step  # floor of the exact count
    found = set()
    for c in (q, q + 1):
        found.add(first if c < first else last if c > last else c)
    if gone is not None:
        for c in list(found):
            if c * step == gone:
                found.discard(c)
                found.update(n for n in (c - 1, c + 1) if first <= n <= last and n * step != gone)
    return sorted(found)


class _Run:
    """What a search with exactly ``lines`` executed lines needs: its targets, budget, bounds."""

    def __init__(self, search: _Search, lines: int) -> None:
        p = search.p
        self.lines = lines
        self.total = p.total - p.fee * lines  # T_K
        self.budget = p.budget - p.fee * lines  # what the net spend may reach (money units)
        self.targets = [t * self.total for t in p.targets]
        self.left = lines - search.base_lines  # lines the searched items must make
        self.cap = None if search.cap is None else search.cap - search.base_sold  # sells left
        self.sell_level = 0  # the turnover cap's multiplier (halved), when it binds
        self.closed = sum(
            (search.x0[s] - self.targets[s]) ** 2 for s in range(len(p.sleeves)) if s not in search.seq_index
        )
        self.tables: dict[int, list[list[float | int]]] = {}  # level -> suffix tables
        # Lines left -> the last sleeve's best completions whatever the money (search.finish).
        self.finishes: dict[int, tuple[int | None, list[tuple[tuple[int, int], ...]]]] = {}
        self.below: dict[int, tuple[int, tuple[list[int], list] | None]] = {}  # lines -> (cutoff, sorted)
        self.threshold: tuple[int, int] | None = None
        self.root: float | int = INF  # the root's bound on N, once computed
        self.root_index = 0
        self.levels: list[int] = []  # the multipliers (budget levels) the bounds try, ascending
        self.stage = 0  # root bound: 0 at the shared level, 1 climbed, 2 on this run's own levels


class _Search:
    """One branch and bound over ``order`` (item indices, sleeves contiguous), the other items
    fixed at ``fixed``; shares its node counter and incumbent with the caller."""

    # Whole sleeves listed (``enter``) and the last one completed directly (``finish``). Off,
    # every listing is branched on: slower, the same answer (the tests compare the two).
    shortcuts = True

    def __init__(
        self,
        problem: AllocationProblem,
        counter: _Counter,
        order: list[int],
        fixed: tuple[int, ...] | None = None,
        best: _Incumbent | None = None,
    ) -> None:
        p = self.p = problem
        self.counter = counter
        self.best = best
        ts = self.ts = problem.target_scale
        n_items = len(problem.items)
        self.fixed = fixed if fixed is not None else (0,) * n_items
        self.order = order
        self.items: list[Item] = [p.items[i] for i in order]
        n = self.n = len(order)
        self.step = [ts * item.price for item in self.items]
        # The fixed items' trades, already made.
        self.x0 = [ts * v for v in p.values]
        self.base_lines = self.base_spent = self.base_sold = 0
        in_order = set(order)
        for i, q in enumerate(self.fixed):
            if q and i not in in_order:
                item = p.items[i]
                self.x0[item.sleeve] += ts * q * item.price
                self.base_lines += 1
                self.base_spent += q * item.price
                if q < 0:
                    self.base_sold -= q * item.price
        # The sleeve sequence of the order; per depth, what the sleeve's later items can do.
        self.seq: list[int] = []
        for item in self.items:
            if not self.seq or self.seq[-1] != item.sleeve:
                self.seq.append(item.sleeve)
        self.seq_index = {s: k for k, s in enumerate(self.seq)}
        self.sp = [self.seq_index[item.sleeve] for item in self.items]
        self.start = [j == 0 or self.sp[j] != self.sp[j - 1] for j in range(n)]
        self.low_after = [0] * (n + 1)  # the rest of item j's sleeve: most it can sell (ts-scaled)
        self.high_after = [0] * (n + 1)  # and buy
        self.count_after = [0] * (n + 1)  # how many items it has left
        self.sells_from = [0] * (n + 1)  # money: most that items j, j+1, ... can sell
        for j in range(n - 1, -1, -1):
            item = self.items[j]
            self.sells_from[j] = self.sells_from[j + 1] + item.max_sell * item.price
            if j + 1 < n and self.items[j + 1].sleeve == item.sleeve:
                self.low_after[j] = self.low_after[j + 1] - self.step[j + 1] * self.items[j + 1].max_sell
                self.high_after[j] = self.high_after[j + 1] + self.step[j + 1] * self.items[j + 1].max_buy
                self.count_after[j] = self.count_after[j + 1] + 1
        # Per sleeve of the sequence: its items, its range, how many lines it may have.
        # Per depth, the sleeve's later items' unit ranges: (step, first, last, is a buy).
        self.later: list[list[tuple[int, int, int, bool]]] = []
        for j in range(n):
            ranges = []
            for i in range(j + 1, n):
                other = self.items[i]
                if other.sleeve != self.items[j].sleeve:
                    break
                if other.max_buy >= other.min_units:
                    ranges.append((self.step[i], other.min_units, other.max_buy, True))
                if other.max_sell >= other.min_units:
                    ranges.append((self.step[i], -other.max_sell, -other.min_units, False))
            self.later.append(ranges)
        self.members: list[list[int]] = [[] for _ in self.seq]
        for j, k in enumerate(self.sp):
            self.members[k].append(j)
        limit = p.max_lines_per_sleeve
        self.most_lines = [len(m) if limit is None else min(len(m), limit) for m in self.members]
        # Per sleeve of the sequence: its full ranges (ts-scaled), all its items' unit ranges.
        self.sleeve_low = [
            self.low_after[m[0]] - self.step[m[0]] * self.items[m[0]].max_sell for m in self.members
        ]
        self.sleeve_high = [
            self.high_after[m[0]] + self.step[m[0]] * self.items[m[0]].max_buy for m in self.members
        ]
        self.sleeve_later: list[list[tuple[int, int, int, bool]]] = []
        for m in self.members:
            first = self.items[m[0]]
            ranges = []
            if first.max_buy >= first.min_units:
                ranges.append((self.step[m[0]], first.min_units, first.max_buy, True))
            if first.max_sell >= first.min_units:
                ranges.append((self.step[m[0]], -first.max_sell, -first.min_units, False))
            self.sleeve_later.append(ranges + self.later[m[0]])
        self.required = [0] * len(p.sleeves)  # lines a sleeve must make (3 in enter's fallback)
        self.x = list(self.x0)
        self.units = [0] * n
        self.bought = [0] * len(p.sleeves)
        self.sold_lines = [0] * len(p.sleeves)
        self.cap = p.turnover_cap
        # Might the turnover cap bind? (the relaxation, which ignores it, sells more than it)
        self.cap_may_bind = False
        if self.cap is not None:
            wanted = problem.relaxed_spends(*problem.sleeve_ranges()) or []
            self.cap_may_bind = sum((max(Fraction(0), -y) for y in wanted), Fraction(0)) > ts * (
                self.cap - self.base_sold
            )
        self.runs: dict[int, _Run] = {}
        self.sell_level = 0  # the turnover level of the run tuned last (a start for the others)
        self.last_index: int | None = None  # where the last root climb on the shared grid ended
        self.lines_window: tuple[int, int] | None = None  # numbers of lines to search (None: all)
        self.run: _Run | None = None
        self.closed = 0

    # -- runs ---------------------------------------------------------------------------
    def lines_range(self) -> range:
        """Every number of lines a completion can have."""
        p = self.p
        most = self.base_lines + sum(self.most_lines)
        while most > self.base_lines and p.total - p.fee * most <= 0:
            most -= 1
        if not any(item.max_sell for item in self.items):
            # Buy only: each line costs at least its minimum trade and a fee.
            money = p.budget - self.base_spent - p.fee * self.base_lines
            for count, cost in enumerate(sorted(item.min_units * item.price + p.fee for item in self.items)):
                money -= cost
                if money < 0:
                    most = min(most, self.base_lines + count)
                    break
        if p.penalty and self.best is not None:
            # K * (P / T)**2 <= J of the best: K * (ts P T_K)**2 <= M / T_best**2 ... in integers
            while most > self.base_lines and self.penalty_alone_loses(most):
                most -= 1
        least = self.base_lines
        if self.lines_window is not None:  # a large-neighbourhood move keeps near the lines it has
            least, most = max(least, self.lines_window[0]), min(most, self.lines_window[1])
        return range(least, most + 1)

    def penalty_alone_loses(self, lines: int) -> bool:
        """Does the line penalty of ``lines`` lines alone exceed the best objective?"""
        best = self.best
        assert best is not None
        p = self.p
        # lines * P**2 / T**2 > M / (ts T T_b)**2  <=>  lines * (ts P T_b)**2 > M
        value = lines * (self.ts * p.penalty * best.total) ** 2
        return value > best.numerator or (value == best.numerator and lines > best.lines)

    def get_run(self, lines: int) -> _Run:
        run = self.runs.get(lines)
        if run is None:
            run = self.runs[lines] = _Run(self, lines)
        return run

    # -- per-sleeve costs at a multiplier -------------------------------------------------
    def sleeve_costs(self, run: _Run, k: int, h: int) -> tuple[int, float | int, list[int]]:
        """Untouched sleeve ``seq[k]`` at level ``h``: least ``(x + y - target)**2 + 2 h y`` (plus
        ``2 g max(0, -y)``, ``g`` the run's turnover level: a net sale uses the cap) with no line,
        one line (whole units, minimum trade), and ``more[r - 2]`` with r >= 2 lines (any real
        spend the r largest lines can reach)."""
        s = self.seq[k]
        x, target = self.x0[s], run.targets[s]
        w = target - x
        stay = w * w
        one = INF
        keep = self.p.keeps[s]
        cap = run.cap
        selling = h - run.sell_level  # a sale also spends the turnover cap (its multiplier)
        sales, buys = [], []  # each item's most (ts-scaled) one line can sell / buy
        for j in self.members[k]:
            item, step = self.items[j], self.step[j]
            most_sold = item.max_sell if cap is None else min(item.max_sell, cap // item.price)
            sales.append(step * max(0, most_sold))
            buys.append(step * item.max_buy)
            for first, last, level in (
                (item.min_units, item.max_buy, h),
                (-most_sold, -item.min_units, selling),
            ):
                if first > last:
                    continue
                value: Bound = _discrete(w, level, step, first, last)
                if value < one:
                    if keep and first < 0 and self._sells_out(x, step, first, last, w, level):
                        value = self._one_line_kept(x, w, level, step, first, last)
                    one = min(one, value)
        # r >= 2 lines: any real spend the r largest lines can reach (never more than the cap).
        sales.sort(reverse=True)
        buys.sort(reverse=True)
        more = []
        low = high = 0
        for r in range(self.most_lines[k]):
            low -= sales[r]
            high += buys[r]
            if r == 0:
                continue
            floor = low if cap is None else max(low, -self.ts * cap)
            value = _continuous(w, h, 0, high)
            if floor < 0:
                value = min(value, _continuous(w, selling, floor, 0))
            more.append(value)
        return stay, one, more

    @staticmethod
    def _sells_out(x: int, step: int, first: int, last: int, w: int, h: int) -> bool:
        """Could the best sell of this line leave the sleeve at zero? (checked exactly after)"""
        return x % step == 0 and first <= -(x // step) <= last

    @staticmethod
    def _one_line_kept(x: int, w: int, h: int, step: int, first: int, last: int) -> int | float:
        """The least cost of one sell line in [first, last] that keeps the sleeve's value positive."""
        out = -(x // step)  # the count that sells the sleeve to zero
        best: int | float = INF
        for lo, hi in ((first, out - 1), (out + 1, last)):
            if lo <= hi:
                best = min(best, _discrete(w, h, step, lo, hi))
        return best

    def tables(self, run: _Run, h: int) -> list[list[float | int]]:
        """Suffix tables: ``tables[k][r]`` least cost of sleeves ``seq[k:]`` with exactly r lines."""
        found = run.tables.get(h)
        if found is not None:
            return found
        width = max(0, run.left) + 1
        suffix: list[list[float | int]] = [[INF] * width for _ in range(len(self.seq) + 1)]
        suffix[len(self.seq)][0] = 0
        reach = 0  # the most lines the sleeves after k can make (entries beyond are INF)
        for k in range(len(self.seq) - 1, -1, -1):
            stay, one, more = self.sleeve_costs(run, k, h)
            after, here = suffix[k + 1], suffix[k]
            most = self.most_lines[k]
            top = min(width - 1, reach + most)
            for r in range(top + 1):
                best = stay + after[r] if r <= reach else INF
                if most and 1 <= r <= reach + 1:
                    value = one + after[r - 1]
                    if value < best:
                        best = value
                for extra in range(2, min(r, most) + 1):
                    if r - extra <= reach:
                        value = more[extra - 2] + after[r - extra]
                        if value < best:
                            best = value
                here[r] = best
            reach = top
        run.tables[h] = suffix
        return suffix

    # -- the bound at a node --------------------------------------------------------------
    def value(
        self,
        run: _Run,
        index: int,
        k: int,
        later: list[tuple[int, int, int, bool]],
        w: int,
        step: int,
        span: int,
        low: int,
        high: int,
        most: int,
        need: int,
        left: int,
        money: int,
        sold_cap: int | None = None,
    ) -> float | int:
        """The node's bound on N at level ``levels[index]`` (INF: no completion has the lines).

        The current sleeve, ``seq[k]``, is ``w`` short of its target; without a further line it
        can still add ``0..span`` times ``step`` (the line being decided, as a range); with one
        further line, one of ``later`` (its undecided items' unit ranges) in whole units (the
        range taken as any real amount); with up to ``most`` further lines anything in
        ``[low, high + span * step]``. It must make at least ``need`` further lines. ``left``
        lines remain to be made, ``money`` the most the remaining spend may reach (money units),
        ``sold_cap`` (ts-scaled) the most its further lines may sell under the turnover cap.
        """
        h = run.levels[index]
        suffix = self.tables(run, h)[k + 1]
        best = INF
        if not need:
            stay = _discrete(w, h, step, 0, span) if span else w * w
            best = stay + suffix[left]
        if most and left:
            if need <= 1 and suffix[left - 1] < INF:
                # One more line, a later item's in whole units (relaxation.level_fit, inlined: hot).
                # A sale sees the level net of the turnover's, g (its 2 g y_stay >= 0 dropped).
                g = run.sell_level if sold_cap is not None else 0
                reach = span * step
                one = INF
                for later_step, first, last, buying in later:
                    if not (high if buying else low):
                        continue
                    level = h
                    if not buying and sold_cap is not None:
                        first = max(first, -(sold_cap // later_step))  # the turnover left
                        if first > last:
                            continue
                        level = h - g
                    a = w - level  # where the sleeve's spend wants to be
                    for q in (-((reach - a) // later_step), a // later_step):
                        q = first if q < first else last if q > last else q
                        y = q * later_step
                        gap = y - a if a < y else a - y - reach if a > y + reach else 0
                        value = gap * gap + 2 * w * level - level * level
                        if value < one:
                            one = value
                if one < INF and one + suffix[left - 1] < best:
                    best = one + suffix[left - 1]
            tail = INF
            for r in range(max(2, need), min(most, left) + 1):
                if suffix[left - r] < tail:
                    tail = suffix[left - r]
            if tail < INF:
                top = high + span * step
                moved = _continuous(w, h, max(low, 0), top) if top >= 0 else INF
                if low < 0:  # a net sale: the further lines sell at least that much
                    g = run.sell_level if sold_cap is not None else 0
                    moved = min(moved, _continuous(w, h - g, low, min(top, 0)))
                moved += tail
                if moved < best:
                    best = moved
        if best == INF:
            return INF
        found = run.closed + self.closed + best - 2 * h * self.ts * money
        if sold_cap is not None and run.sell_level:
            found -= 2 * run.sell_level * sold_cap  # the turnover left, at its multiplier
        return found

    def bound(self, run: _Run, hint: int, *args) -> tuple[int, int] | None:
        """The node's best bound over the run's levels, from ``hint``; None when no completion
        has the lines."""
        found = self.value(run, hint, *args)
        if found == INF:
            return None
        return _climb(
            lambda i: self.value(run, i, *args),
            hint,
            found,
            len(run.levels) - 1,
            lambda v: self.passes(run, v),
        )

    def passes(self, run: _Run, value: Bound) -> bool:
        threshold = run.threshold
        if threshold is None:
            return True
        num, den = threshold
        diff = value * den - num
        return diff < 0 or (diff == 0 and self.best is not None and run.lines <= self.best.lines)

    def set_threshold(self, run: _Run) -> None:
        """N of a completion with ``run.lines`` lines must stay at or below this to tie the best."""
        best = self.best
        if best is None:
            run.threshold = None
            return
        p = self.p
        t_k, t_b = run.total, best.total
        num = best.numerator * t_k * t_k - run.lines * (self.ts * p.penalty * t_k * t_b) ** 2
        run.threshold = (num, p.total * p.total * t_b * t_b)

    def child(self, run: _Run, hint: int, j: int, first: int, last: int, lines: int, spent: int, sold: int):
        """The bound of item j trading between ``first`` and ``last`` units (0, 0: no trade)."""
        p, item = self.p, self.items[j]
        s, step = item.sleeve, self.step[j]
        low, high = self.low_after[j], self.high_after[j]
        used = self.bought[s] + self.sold_lines[s]
        if first:
            used += 1
            lines += 1
            spent += first * item.price
            if first < 0:
                sold -= last * item.price  # the least this line sells
            if not p.switches:
                if first > 0:
                    low = 0
                else:
                    high = 0
        elif not p.switches:
            if self.bought[s]:
                low = 0
            if self.sold_lines[s]:
                high = 0
        most = self.count_after[j]
        if p.max_lines_per_sleeve is not None:
            most = max(0, min(most, p.max_lines_per_sleeve - used))
        need = max(0, self.required[s] - used)
        left = run.lines - lines
        money = run.budget - spent
        sellable = self.sells_from[j + 1]
        if self.cap is not None:
            sellable = min(sellable, self.cap - sold)
        if left < 0 or money + sellable < 0 or need > most:
            return None
        w = run.targets[s] - self.x[s] - first * step
        sold_cap = None
        if self.cap is not None:
            sold_cap = self.ts * (self.cap - sold)
            low = max(low, -sold_cap)
        return self.bound(
            run,
            hint,
            self.sp[j],
            self.later[j],
            w,
            step,
            last - first,
            low,
            high,
            most,
            need,
            left,
            money,
            sold_cap,
        )

    # -- search ---------------------------------------------------------------------------
    def visit(self, j: int, lines: int, spent: int, sold: int, hint: int) -> None:
        self.counter.count()
        run = self.run
        assert run is not None
        cost = 0
        if j > 0 and (j == self.n or self.sp[j] != self.sp[j - 1]):
            s = self.items[j - 1].sleeve
            if self.p.keeps[s] and self.x[s] <= 0:
                return
            if self.required[s] and self.bought[s] + self.sold_lines[s] < self.required[s]:
                return
            cost = (self.x[s] - run.targets[s]) ** 2
            self.closed += cost
        try:
            if j == self.n or lines == run.lines:
                self.leaf(lines, spent, sold)
            elif (
                self.shortcuts
                and self.sp[j] == len(self.seq) - 1
                and self.start[j]
                and run.lines - lines <= 2
            ):
                self.finish(j, lines, spent, sold)
            elif self.shortcuts and self.start[j] and run.threshold is not None:
                self.enter(j, lines, spent, sold, hint)
            else:
                self.branch(j, lines, spent, sold, hint)
        finally:
            self.closed -= cost

    def enter(self, j: int, lines: int, spent: int, sold: int, hint: int) -> None:
        """The first item of an untouched sleeve: list the sleeve's completions with no line,
        one line or two (every one whose bound at the node's level can still tie the best:
        per listing the counts in a window around its target, per pair of listings the counts of
        one and, for each, the window of the other) and visit them best first. Completions with
        three lines or more, or too many to list, are left to the listing-by-listing branching."""
        run = self.run
        assert run is not None and run.threshold is not None
        p, ts = self.p, self.ts
        k, s = self.sp[j], self.items[j].sleeve
        members = self.members[k]
        after = members[-1] + 1
        w = run.targets[s] - self.x[s]
        left, money = run.lines - lines, run.budget - spent
        most = self.most_lines[k]
        low, sold_cap = self.sleeve_low[k], None
        if self.cap is not None:
            sold_cap = ts * (self.cap - sold)
            low = max(low, -sold_cap)
        found = self.bound(
            run,
            hint,
            k,
            self.sleeve_later[k],
            w,
            0,
            0,
            low,
            self.sleeve_high[k],
            most,
            0,
            left,
            money,
            sold_cap,
        )
        if found is None or not self.passes(run, found[0]):
            return
        index = found[1]
        h = run.levels[index]
        suffix = self.tables(run, h)[k + 1]
        num, den = run.threshold
        # An option spending y (ts-scaled) with r lines has the bound base + suffix[left - r] + (y - a)**2.
        base = run.closed + self.closed - 2 * h * ts * money + 2 * w * h - h * h
        if sold_cap is not None and run.sell_level:
            base -= 2 * run.sell_level * sold_cap  # as in ``value``: the turnover left
        a = w - h
        cap = None if self.cap is None else self.cap - sold

        def room(r: int) -> int | None:
            """The largest (y - a)**2 an option with r lines may have and still pass."""
            if r > left or r > most or suffix[left - r] == INF:
                return None
            found = int((num - (base + suffix[left - r]) * den) // den)  # suffix is finite here
            return found if found >= 0 else None

        def ranges(i: int) -> list[tuple[int, int, bool]]:
            item = self.items[i]
            out = []
            if item.max_buy >= item.min_units:
                out.append((item.min_units, item.max_buy, True))
            most_sold = item.max_sell if cap is None else min(item.max_sell, cap // item.price)
            if most_sold >= item.min_units:
                out.append((-most_sold, -item.min_units, False))
            return out

        options: list[tuple[Bound, int, tuple[tuple[int, int], ...]]] = []
        limit = ENTER_LIMIT
        r0, r1, r2 = room(0), room(1), room(2)
        if r0 is not None and a * a <= r0:
            options.append((base + suffix[left] + a * a, 0, ()))
        if r1 is not None:
            d = math.isqrt(r1)
            for i in members:
                step = self.step[i]
                for first, last, _ in ranges(i):
                    for q in range(max(first, -((d - a) // step)), min(last, (a + d) // step) + 1):
                        gap = q * step - a
                        if gap * gap <= r1:
                            options.append((base + suffix[left - 1] + gap * gap, 1, ((i, q),)))
        if r2 is not None:
            d = math.isqrt(r2)
            spans = [(i, ranges(i)) for i in members]
            for x, (i, own) in enumerate(spans):
                for i2, other in spans[x + 1 :]:
                    for first, last, buy in own:
                        for first2, last2, buy2 in other:
                            if buy != buy2 and not p.switches:
                                continue
                            pair = self.pair_options(
                                (i, first, last), (i2, first2, last2), a, d, r2, cap, limit - len(options)
                            )
                            if pair is None:
                                self.branch(j, lines, spent, sold, index)
                                return
                            value = base + suffix[left - 2]
                            options.extend((value + gap2, 2, trade) for gap2, trade in pair)
        if len(options) > limit:
            self.branch(j, lines, spent, sold, index)
            return
        self.counter.count(len(options))  # each listed completion counts as a node
        options.sort(key=lambda o: o[:2])
        side_of = self.bought, self.sold_lines
        for value, _, trade in options:
            if not self.passes(run, value):
                continue
            y = spend = sells = 0
            for i, q in trade:
                self.units[i] = q
                y += q * self.step[i]
                spend += q * self.items[i].price
                if q < 0:
                    sells -= q * self.items[i].price
                side_of[q < 0][s] += 1
            self.x[s] += y
            try:
                if cap is None or sells <= cap:
                    self.visit(after, lines + len(trade), spent + spend, sold + sells, index)
            finally:
                self.x[s] -= y
                for i, q in trade:
                    self.units[i] = 0
                    side_of[q < 0][s] -= 1
        if most >= 3 and left >= 3:
            self.required[s] = 3  # the rest: three lines or more, listing by listing
            try:
                self.branch(j, lines, spent, sold, index)
            finally:
                self.required[s] = 0

    def pair_options(self, one, two, a: int, d: int, room: int, cap: int | None, limit: int):
        """Counts (q, q2) of two items with ``(q * step + q2 * step2 - a)**2 <= room``, as
        ``(that square, ((i, q), (i2, q2)))``; None when more than ``limit``."""
        (i, first, last), (i2, first2, last2) = one, two
        step, step2 = self.step[i], self.step[i2]
        price, price2 = self.items[i].price, self.items[i2].price
        # Loop over the item with fewer counts in its window; the other's window follows.
        lo = max(first, -((d - a + step2 * last2) // step))
        hi = min(last, (a + d - step2 * first2) // step)
        lo2 = max(first2, -((d - a + step * last) // step2))
        hi2 = min(last2, (a + d - step * first) // step2)
        if lo > hi or lo2 > hi2:
            return []
        swap = hi2 - lo2 < hi - lo
        if swap:
            i, i2, step, step2, price, price2 = i2, i, step2, step, price2, price
            lo, hi, first2, last2 = lo2, hi2, first, last
        self.counter.count(1 + (hi - lo) // LOOP_NODE)
        out = []
        for q in range(lo, hi + 1):
            rest = a - q * step
            sold = -q * price if q < 0 else 0
            for q2 in range(max(first2, -((d - rest) // step2)), min(last2, (rest + d) // step2) + 1):
                gap = q2 * step2 - rest
                if gap * gap > room:
                    continue
                if cap is not None and sold + (-q2 * price2 if q2 < 0 else 0) > cap:
                    continue
                trade = ((i2, q2), (i, q)) if swap else ((i, q), (i2, q2))
                out.append((gap * gap, trade))
                if len(out) > limit:
                    return None
        return out

    def finish(self, j: int, lines: int, spent: int, sold: int) -> None:
        """The last sleeve, untouched, with one or two lines left to make: its best whole-unit
        completions found directly (per listing the counts nearest its target; per pair of
        listings, for each count of one the nearest counts of the other), not by branching.
        Every completion with the least drift goes to ``leaf``, which settles ties."""
        run = self.run
        assert run is not None
        p = self.p
        s = self.items[j].sleeve
        x = self.x[s]
        short = x - run.targets[s]  # the sleeve's deviation before its lines (ts-scaled)
        money = run.budget - spent
        cap = None if self.cap is None else self.cap - sold
        gone = -x if p.keeps[s] else None  # the spend that would empty a kept sleeve
        found: list[tuple[tuple[int, int], ...]] = []
        least: list[int] = []
        if run.threshold is not None:
            # Only a completion that can still tie the best matters: its squared deviation.
            num, den = run.threshold
            cutoff = (num - (run.closed + self.closed) * den) // den
            if cutoff < 0:
                return
            least.append(cutoff)

        def offer(cost: int, trade: tuple[tuple[int, int], ...]) -> None:
            if not least or cost < least[0]:
                least[:] = [cost]
                found[:] = [trade]
            elif cost == least[0]:
                found.append(trade)

        left = run.lines - lines
        # The sleeve's best completions whatever the money and turnover (the same for every
        # path into it in this run): when one of them fits, it is the answer.
        free = run.finishes.get(left)
        if free is None:
            free_least: list[int] = []
            free_found: list[tuple[tuple[int, int], ...]] = []

            def keep(cost: int, trade: tuple[tuple[int, int], ...]) -> None:
                if not free_least or cost < free_least[0]:
                    free_least[:] = [cost]
                    free_found[:] = [trade]
                elif cost == free_least[0]:
                    free_found.append(trade)

            self.complete(j, left, short, UNLIMITED, None, gone, keep, free_least)
            free = run.finishes[left] = (free_least[0] if free_least else None, free_found)
        fits = [t for t in free[1] if self.affordable(t, money, cap)]
        if fits:
            if not least or (free[0] is not None and free[0] <= least[0]):  # fits: free[0] is set
                found = fits
        else:
            # The money binds (or the turnover): walk the run's completions sorted by spend
            # down from what the money allows; else look at every pair again.
            below = self.below(run, j, left, short, money, cap, gone, least[0]) if least else None
            if below is not None:
                found = below
            else:
                self.complete(j, left, short, money, cap, gone, offer, least)
        self.counter.count()
        for trade in found:
            y = spend = sells = 0
            for i, q in trade:
                self.units[i] = q
                y += q * self.step[i]
                spend += q * self.items[i].price
                if q < 0:
                    sells -= q * self.items[i].price
            self.x[s] += y
            try:
                self.leaf(lines + len(trade), spent + spend, sold + sells)
            finally:
                self.x[s] -= y
                for i, _ in trade:
                    self.units[i] = 0

    def complete(
        self, j: int, left: int, short: int, money: int, cap: int | None, gone, offer, least
    ) -> None:
        """Offer the last sleeve's best completions with ``left`` (1 or 2) lines (see ``finish``)."""
        p = self.p
        if left == 1:
            for i in range(j, self.n):
                step = self.step[i]
                for first, last, _ in self.line_ranges(i, money, cap):
                    for q in _nearest(short, step, first, last, gone):
                        offer((short + q * step) ** 2, ((i, q),))
        elif p.max_lines_per_sleeve is None or p.max_lines_per_sleeve >= 2:
            for a in range(j, self.n):
                for b in range(a + 1, self.n):
                    self.pair(a, b, short, money, cap, gone, offer, least)

    def spend(self, trade: tuple[tuple[int, int], ...]) -> tuple[int, int]:
        """(net spend, sell consideration) of a trade, money units."""
        spend = sells = 0
        for i, q in trade:
            spend += q * self.items[i].price
            if q < 0:
                sells -= q * self.items[i].price
        return spend, sells

    def affordable(self, trade: tuple[tuple[int, int], ...], money: int, cap: int | None) -> bool:
        spend, sells = self.spend(trade)
        return spend <= money and (cap is None or sells <= cap)

    def listed(self, j: int, left: int, short: int, gone, cutoff: int):
        """Every completion of the last sleeve (items j...) with ``left`` lines and a squared
        deviation at most ``cutoff``, as (spends, [(spend, cost, trade)]) sorted by spend; None
        when there are more than ``ENTER_LIMIT``."""
        entries: list[tuple[int, int, tuple[tuple[int, int], ...]]] = []
        d = math.isqrt(cutoff)
        a = -short
        if left == 1:
            for i in range(j, self.n):
                step = self.step[i]
                for first, last, _ in self.line_ranges(i, UNLIMITED, None):
                    for q in range(max(first, -((d - a) // step)), min(last, (a + d) // step) + 1):
                        if (q * step - a) ** 2 <= cutoff and q * step != gone:
                            entries.append((q * self.items[i].price, (q * step - a) ** 2, ((i, q),)))
        elif self.p.max_lines_per_sleeve is None or self.p.max_lines_per_sleeve >= 2:
            for i in range(j, self.n):
                for i2 in range(i + 1, self.n):
                    for first, last, buy in self.line_ranges(i, UNLIMITED, None):
                        for first2, last2, buy2 in self.line_ranges(i2, UNLIMITED, None):
                            if buy != buy2 and not self.p.switches:
                                continue
                            pairs = self.pair_options(
                                (i, first, last),
                                (i2, first2, last2),
                                a,
                                d,
                                cutoff,
                                None,
                                ENTER_LIMIT - len(entries),
                            )
                            if pairs is None:
                                return None
                            for cost, trade in pairs:
                                if sum(q * self.step[k] for k, q in trade) != gone:
                                    entries.append((self.spend(trade)[0], cost, trade))
        entries.sort(key=lambda e: e[0])
        return [e[0] for e in entries], entries

    def below(self, run: _Run, j: int, left: int, short: int, money: int, cap: int | None, gone, cutoff: int):
        """The last sleeve's completions with ``left`` lines spending at most ``money`` (and
        selling at most ``cap``) with the least squared deviation, none above ``cutoff``: walking
        down the run's completions sorted by spend from what the money allows, the deviation
        falls to the target and rises past it. The list holds every completion within the
        widest cutoff asked so far (a path whose other sleeves cost less allows a wider one);
        None when that is more than ``ENTER_LIMIT``."""
        built = run.below.get(left)
        if built is None or built[0] < cutoff:  # (re)built for the widest cutoff asked so far
            built = run.below[left] = (cutoff, self.listed(j, left, short, gone, cutoff))
        table = built[1]
        if table is None:
            return None
        spends, listed = table
        at = bisect.bisect_right(spends, money) - 1
        found: list[tuple[tuple[int, int], ...]] = []
        least = None
        while at >= 0:
            _, cost, trade = listed[at]
            if least is not None and cost > least:
                break  # spends below cost more: the sleeve is short of its target down there
            if cost <= cutoff and (cap is None or self.spend(trade)[1] <= cap):
                if least is None or cost < least:
                    least, found = cost, [trade]
                elif cost == least:
                    found.append(trade)
            at -= 1
        return found

    def line_ranges(self, i: int, money: int, cap: int | None) -> list[tuple[int, int, bool]]:
        """Item i's counts for one line that money (and the turnover left) allow: buy, sell."""
        item = self.items[i]
        out = []
        top = min(item.max_buy, money // item.price)
        if top >= item.min_units:
            out.append((item.min_units, top, True))
        most = item.max_sell if cap is None else min(item.max_sell, cap // item.price)
        bottom = min(-item.min_units, money // item.price)
        if most >= item.min_units and -most <= bottom:
            out.append((-most, bottom, False))
        return out

    def pair(self, a: int, b: int, short: int, money: int, cap: int | None, gone, offer, least) -> None:
        """Offer the best two-line completions on items a and b (see ``finish``): for each side
        of each, loop over the counts of the one with fewer worth trying, round the other."""

        def sale(i: int) -> int:  # the most item i's line can raise
            item = self.items[i]
            most = item.max_sell if cap is None else min(item.max_sell, cap // item.price)
            return item.price * max(0, most)

        reach = least[0] if least else None
        for first_a, last_a, buy_a in self.line_ranges(a, money + sale(b), cap):
            for first_b, last_b, buy_b in self.line_ranges(b, money + sale(a), cap):
                if not self.p.switches and buy_a != buy_b:
                    continue
                step_a, step_b = self.step[a], self.step[b]
                window_a = self.window(
                    short, step_a, first_a, last_a, step_b * first_b, step_b * last_b, reach
                )
                window_b = self.window(
                    short, step_b, first_b, last_b, step_a * first_a, step_a * last_a, reach
                )
                if window_a is None or window_b is None:
                    continue
                if window_b[1] - window_b[0] < window_a[1] - window_a[0]:
                    self.pair_loop(b, a, window_b, buy_a, short, money, cap, gone, offer)
                else:
                    self.pair_loop(a, b, window_a, buy_b, short, money, cap, gone, offer)

    @staticmethod
    def window(short: int, step: int, first: int, last: int, low: int, high: int, reach: int | None):
        """Counts q in [first, last] for which ``short + q * step + y`` can come within
        ``sqrt(reach)`` of 0 with y in [low, high]; None when none can."""
        if reach is not None:
            d = math.isqrt(reach) + 1
            lo = -((short + high + d) // step)  # ceil((-short - high - d) / step)
            hi = (-short - low + d) // step
            first, last = max(first, lo), min(last, hi)
        return (first, last) if first <= last else None

    def pair_loop(self, outer: int, inner: int, window, buying: bool, short, money, cap, gone, offer) -> None:
        """For each count q of ``outer`` in ``window``, the nearest counts of ``inner`` (on the
        side ``buying``) that the money and turnover left allow (the hot loop: inlined)."""
        step_o, step_i = self.step[outer], self.step[inner]
        price_o = self.items[outer].price
        item = self.items[inner]
        price_i, least = item.price, item.min_units
        self.counter.count(1 + (window[1] - window[0]) // LOOP_NODE)
        for q in range(window[0], window[1] + 1):
            rest = short + q * step_o
            left_money = money - q * price_o
            if buying:
                first, last = least, min(item.max_buy, left_money // price_i)
            else:
                most = item.max_sell
                if cap is not None:
                    left_cap = cap + q * price_o if q < 0 else cap
                    if left_cap < 0:
                        continue
                    most = min(most, left_cap // price_i)
                first, last = -most, min(-least, left_money // price_i)
            if first > last:
                continue
            r = -rest // step_i
            out = None if gone is None else gone - q * step_o
            for c in (r, r + 1):
                c = first if c < first else last if c > last else c
                if out is not None and c * step_i == out:
                    for n in _nearest(rest, step_i, first, last, out):
                        offer((rest + n * step_i) ** 2, ((outer, q), (inner, n)))
                    break
                offer((rest + c * step_i) ** 2, ((outer, q), (inner, c)))

    def full(self, sleeve: int, more: int) -> bool:
        limit = self.p.max_lines_per_sleeve
        return limit is not None and self.bought[sleeve] + self.sold_lines[sleeve] + more >= limit

    def branch(self, j: int, lines: int, spent: int, sold: int, hint: int) -> None:
        run = self.run
        assert run is not None
        p, item = self.p, self.items[j]
        s = item.sleeve
        children = []
        zero = self.child(run, hint, j, 0, 0, lines, spent, sold)
        if zero is not None and self.passes(run, zero[0]):
            children.append((zero[0], 0, 0, 0, zero))
        if lines < run.lines and not self.full(s, 0):
            sellable = self.sells_from[j + 1]
            cap_left = None if self.cap is None else self.cap - sold
            if cap_left is not None:
                sellable = min(sellable, cap_left)
            room = (run.budget - spent + sellable) // item.price
            most_sold = item.max_sell if cap_left is None else min(item.max_sell, cap_left // item.price)
            for first, last in (
                (item.min_units, min(item.max_buy, room)),
                (-most_sold, min(-item.min_units, room)),
            ):
                if first > last or (not p.switches and (self.sold_lines if first > 0 else self.bought)[s]):
                    continue
                found = self.child(run, hint, j, first, last, lines, spent, sold)
                if found is not None and self.passes(run, found[0]):
                    children.append((found[0], 1, first, last, found))
        children.sort(key=lambda c: c[:2])
        for value, _, first, last, found in children:
            if not self.passes(run, value):
                continue
            if first == 0 and last == 0:
                self.visit(j + 1, lines, spent, sold, found[1])
            else:
                self.visit_range(j, first, last, lines, spent, sold, found)

    def visit_range(self, j: int, first: int, last: int, lines: int, spent: int, sold: int, found) -> None:
        run = self.run
        assert run is not None
        if not self.passes(run, found[0]):
            return
        if first == last:
            item = self.items[j]
            step = self.step[j]
            side = self.bought if first > 0 else self.sold_lines
            self.units[j] = first
            self.x[item.sleeve] += first * step
            side[item.sleeve] += 1
            try:
                self.visit(
                    j + 1, lines + 1, spent + first * item.price, sold - min(0, first) * item.price, found[1]
                )
            finally:
                side[item.sleeve] -= 1
                self.x[item.sleeve] -= first * step
                self.units[j] = 0
            return
        self.counter.count()
        if last - first < SHORT_RANGE:
            parts = [(q, q) for q in range(first, last + 1)]
        else:
            middle = (first + last) // 2
            parts = [(first, middle), (middle + 1, last)]
        children = []
        for low, high in parts:
            part = self.child(run, found[1], j, low, high, lines, spent, sold)
            if part is not None and self.passes(run, part[0]):
                children.append((part[0], abs(low), low, high, part))
        children.sort(key=lambda c: c[:2])
        for _, _, low, high, part in children:
            self.visit_range(j, low, high, lines, spent, sold, part)

    def leaf(self, lines: int, spent: int, sold: int) -> None:
        run = self.run
        assert run is not None
        p = self.p
        if lines != run.lines or spent > run.budget or (self.cap is not None and sold > self.cap):
            return
        drift = 0
        for x, target, keep in zip(self.x, run.targets, p.keeps, strict=True):
            if keep and x <= 0:
                return
            drift += (x - target) ** 2
        units = list(self.fixed)
        for position, q in zip(self.order, self.units, strict=True):
            units[position] = q
        candidate = _Incumbent(p.scaled(drift, lines), run.total, lines, tuple(units), spent)
        if self.best is None or _better(p, candidate, self.best):
            self.best = candidate
            self.set_threshold(run)

    # -- the runs -------------------------------------------------------------------------
    def root_value(self, run: _Run, h: int) -> float | int:
        suffix = self.tables(run, h)[0]
        if suffix[run.left] == INF:
            return INF
        found = run.closed + suffix[run.left] - 2 * h * self.ts * (run.budget - self.base_spent)
        if run.cap is not None and run.sell_level:
            found -= 2 * run.sell_level * self.ts * run.cap
        return found

    def centre(self, run: _Run) -> int:
        """The level that (nearly) maximises the run's root bound (concave in the level)."""

        def value(h: int) -> float | int:
            found = self.root_value(run, h)
            run.tables.pop(h, None)
            return found

        return _golden(value, self.ts * self.p.money_scale, 8)  # the grid is in quarter pounds

    def tune(self, run: _Run) -> int:
        """The run's best root level, and, when the turnover cap may bind, its multiplier too:
        for each turnover level the best budget level (the bound is jointly concave in the two,
        so its maximum over the budget level is concave in the turnover level: nested golden
        sections; alternating the two stalls on the bound's kinks). Returns the budget level."""
        if not self.cap_may_bind or run.cap is None:
            return self.centre(run)
        unit = self.ts * self.p.money_scale
        best: dict[int, tuple[float | int, int]] = {}

        def value(g: int) -> float | int:
            if g not in best:
                run.sell_level, run.tables = g, {}
                centre = _golden(lambda h: self.root_value_fresh(run, h), unit, 16)
                best[g] = (self.root_value_fresh(run, centre), centre)
            return best[g][0]

        g = _golden(value, unit, 16)
        value(g)
        run.sell_level, run.tables = g, {}
        return best[g][1]

    def root_value_fresh(self, run: _Run, h: int) -> float | int:
        """The root bound at level h without keeping its table (a search over levels)."""
        found = self.root_value(run, h)
        run.tables.pop(h, None)
        return found

    def grid(self, centre: int) -> list[int]:
        """Levels around ``centre``: every quarter of a pound within £32 of it (where the nodes'
        best levels lie: a few pounds of imbalance shared among the sleeves left), then doubling
        out to £4,096."""
        unit = self.ts * self.p.money_scale
        offsets = {(unit * k) >> 2 for k in range(-128, 129)}
        for power in range(6, 13):
            offsets |= {unit << power, -(unit << power)}
        return sorted({max(0, centre + d) for d in offsets})

    def run_all(self) -> bool:
        """Search every number of lines; True when done (the best is optimal), else _NodeLimit."""
        lines = self.lines_range()
        if self.n == 0:
            if self.base_lines in lines:
                self.run = self.get_run(self.base_lines)
                self.closed = 0
                self.leaf(self.base_lines, self.base_spent, self.base_sold)
            return True
        if not lines:
            return True
        best = self.best
        reference = self.get_run(best.lines if best is not None and best.lines in lines else lines[0])
        centre = self.centre(reference)
        levels = self.grid(centre)
        start = levels.index(centre)
        roots = []
        for k in lines:
            # A first bound per run at the shared level; sharpened only for runs it cannot prune.
            run = self.get_run(k)
            run.levels = levels
            run.root, run.root_index = self.root_value(run, centre), start
            if run.root < INF:
                roots.append((self.objective_bound(run, run.root), k))
        # Best first by root bound, each sharpened (climbed, then on its own levels) before it
        # is searched, so the run that holds the optimum is usually searched first.
        heapq.heapify(roots)
        self.pending = roots
        while roots:
            _, k = roots[0]
            run = self.runs[k]
            if not self.viable(run):
                heapq.heappop(roots)
                continue
            if run.stage < 2:
                if run.stage == 0:
                    if self.sell_level and run.cap is not None:  # the last tuned run's, a guess
                        run.sell_level, run.tables = self.sell_level, {}
                    # Climb from where the last run climbed to: neighbouring runs peak nearby.
                    self.root_bound(run, self.last_index if self.last_index is not None else run.root_index)
                    self.last_index = run.root_index
                else:
                    # Centre the levels on this run's own best level: a bound within a few
                    # pounds of the best multiplier is what prunes runs that cannot win.
                    centre = self.tune(run)
                    self.sell_level = run.sell_level
                    run.levels = self.grid(centre)
                    run.tables = {}
                    self.root_bound(run, run.levels.index(centre))
                run.stage += 1
                heapq.heapreplace(roots, (self.objective_bound(run, run.root), k))
                continue
            self.run = run
            self.closed = 0
            self.visit(0, self.base_lines, self.base_spent, self.base_sold, run.root_index)
            heapq.heappop(roots)
        return True

    def viable(self, run: _Run) -> bool:
        """Could a completion with the run's number of lines still tie or beat the best?"""
        if run.root == INF or (self.best is not None and self.penalty_alone_loses(run.lines)):
            return False
        self.set_threshold(run)
        return self.passes(run, run.root)

    def root_bound(self, run: _Run, start: int) -> None:
        """The run's bound at the root: climb the levels from ``start``."""
        found = self.root_value(run, run.levels[start])
        if found == INF:
            run.root, run.root_index = INF, start
            return
        run.root, run.root_index = _climb(
            lambda i: self.root_value(run, run.levels[i]),
            start,
            found,
            len(run.levels) - 1,
            lambda v: self.passes(run, v),  # stop once the run is pruned
        )

    def objective_bound(self, run: _Run, value: Bound) -> Fraction:
        """J of a bound ``value`` on N for the run's number of lines."""
        p = self.p
        ts = self.ts
        penalty = Fraction(run.lines * p.penalty**2, p.total**2) if p.total else Fraction(0)
        # N is never negative; a finite bound only (int() refuses INF, as Fraction() did)
        return Fraction(max(int(value), 0), (ts * run.total) ** 2) + penalty

    def lower_bound(self) -> Fraction | None:
        """No trade list of a run not yet finished does better than this (the runs' root
        bounds, each climbed to its best level first: this is what the gap reports)."""
        found = []
        for _, k in getattr(self, "pending", []):
            run = self.runs[k]
            if run.stage == 0 and run.root < INF:
                self.root_bound(run, run.root_index)
                run.stage = 1
            if run.root < INF:
                found.append(self.objective_bound(run, run.root))
        return min(found, default=None)


def _golden(value, unit: int, fraction: int = 64) -> int:
    """An integer ``h >= 0`` (nearly) maximising the concave ``value``: doubling from ``unit`` to
    bracket it, then golden-section search to ``unit / fraction``."""
    cache: dict[int, float | int] = {}

    def at(h: int) -> float | int:
        if h not in cache:
            cache[h] = value(h)
        return cache[h]

    if at(0) == INF:
        return 0
    low, h = 0, unit
    while at(h) > at(h // 2 if h > unit else 0) and h < 10**30:
        low = h // 2 if h > unit else 0
        h *= 2
    high = h
    resolution = max(1, unit // fraction)
    a = high - (high - low) * 618 // 1000
    b = low + (high - low) * 618 // 1000
    while high - low > resolution:
        if at(a) < at(b):
            low, a = a, b
            b = low + (high - low) * 618 // 1000
        else:
            high, b = b, a
            a = high - (high - low) * 618 // 1000
        if a > b:
            a, b = b, a
    return max((low, a, b, high), key=lambda c: (at(c), -c))


def _climb(value, hint: int, found, top: int, passes) -> tuple[int, int]:
    """The largest ``value(i)`` for ``i`` in ``0..top``, a concave sequence, starting from
    ``hint`` (whose value is ``found``): gallop (1, 2, 4, ... steps) while it rises, then ternary
    search the bracket. Stops early, returning what it has, once ``passes`` fails."""
    if not passes(found):
        return found, hint
    for direction in (1, -1):
        outer = hint + direction
        if not 0 <= outer <= top:
            continue
        there = value(outer)
        if there <= found:
            continue
        inner, best, where, step = hint, there, outer, 1
        while True:  # the maximum lies beyond ``inner``
            if not passes(best):
                return best, where
            step *= 2
            nxt = min(max(where + direction * step, 0), top)
            if nxt == where:
                outer = where
                break
            there = value(nxt)
            if there <= best:
                outer = nxt
                break
            inner, best, where = where, there, nxt
        low, high = sorted((inner, outer))
        while high - low > 2:
            a, b = low + (high - low) // 3, high - (high - low) // 3
            va, vb = value(a), value(b)
            if va < vb:
                low = a
            else:
                high = b
            for i, v in ((a, va), (b, vb)):
                if v > best:
                    best, where = v, i
            if not passes(best):
                return best, where
        for i in range(low, high + 1):
            if i != where:
                v = value(i)
                if v > best:
                    best, where = v, i
        return best, where
    return found, hint


def _search_order(problem: AllocationProblem) -> list[int]:
    """Sleeves by relaxed spend (smallest first), dear listings first within a sleeve."""
    spends = problem.relaxed_spends(*problem.sleeve_ranges()) or [Fraction(0)] * len(problem.sleeves)
    by_sleeve: dict[int, list[int]] = {}
    for index, item in enumerate(problem.items):
        by_sleeve.setdefault(item.sleeve, []).append(index)
    ts = problem.target_scale

    def one_line_short(s: int) -> bool:
        """Does no single listing reach the sleeve's relaxed spend? Then it needs two lines or
        more: many whole-unit combinations, fine enough to absorb what the others leave."""
        spend = spends[s]
        if spend < 0:
            return all(
                ts * item.max_sell * item.price < -spend for item in (problem.items[i] for i in by_sleeve[s])
            )
        return all(
            ts * item.max_buy * item.price < spend for item in (problem.items[i] for i in by_sleeve[s])
        )

    order: list[int] = []
    for sleeve in sorted(by_sleeve, key=lambda s: (one_line_short(s), abs(spends[s]), s)):
        order.extend(sorted(by_sleeve[sleeve], key=lambda i: (-problem.items[i].price, i)))
    return order


def solve(problem: AllocationProblem, *, max_nodes: int = DEFAULT_MAX_NODES) -> Solution | None:
    """The optimal whole-unit trade list, or None when nothing (not even no trade) is affordable.

    Three phases share the node budget: the branch and bound from the better of no trade and
    the warm start, with a tenth of it; if that does not finish, the primal heuristics (pairs
    of sleeves re-optimised exactly, then local search with exchanges) with up to a third; then
    the branch and bound again, from the best list so far, with what is left."""
    from .warm_start import warm_start

    counter = _Counter(max_nodes)
    n = len(problem.items)
    best = _incumbent(problem, (0,) * n)
    warm = warm_start(problem)
    if warm is not None:
        candidate = _incumbent(problem, warm)
        if candidate is not None and (best is None or _better(problem, candidate, best)):
            best = candidate
    order = _search_order(problem)
    counter.limit = min(max_nodes, max(FIRST_TRY_MIN, max_nodes // 10))
    search = _Search(problem, counter, order, best=best)
    proven = True
    try:
        search.run_all()
    except _NodeLimit:
        proven = False
    if not proven and search.best is not None and counter.nodes < max_nodes:
        best = _improve(problem, counter, order, search.best, min(max_nodes, counter.nodes + max_nodes // 3))
        counter.limit = max_nodes
        search = _Search(problem, counter, order, best=best)
        proven = True
        try:
            search.run_all()
        except _NodeLimit:
            proven = False
    best = search.best
    if best is None:
        return None
    objective = problem.objective_of(best.numerator, best.total)
    bound = objective
    if not proven:
        lower = search.lower_bound()
        if lower is not None:
            bound = min(bound, lower)
    return Solution(
        units=best.units,
        objective=objective,
        lines=best.lines,
        net_spend=best.net,
        proven_optimal=proven,
        nodes=min(counter.nodes, max_nodes + 1),
        bound=bound,
    )


def _improve(
    problem: AllocationProblem, counter: _Counter, order: list[int], best: _Incumbent, limit: int
) -> _Incumbent:
    """The primal heuristics, within ``limit`` nodes on ``counter``: every pair of sleeves
    re-optimised exactly with the rest fixed (each with at most ``LNS_NODES`` nodes, numbers of
    lines within one of the best list's), then local search with exchanges."""
    sleeves = list(dict.fromkeys(problem.items[i].sleeve for i in order))
    holder = [best]

    def reoptimise(pair: tuple[int, ...], units: tuple[int, ...]) -> tuple[int, ...] | None:
        current = holder[0]
        if counter.nodes >= limit:
            raise _NodeLimit
        sub = _Counter(min(LNS_NODES, limit - counter.nodes))
        search = _Search(
            problem, sub, [i for i in order if problem.items[i].sleeve in pair], current.units, current
        )
        search.lines_window = (current.lines - 1, current.lines + 1)
        with contextlib.suppress(_NodeLimit):
            search.run_all()
        counter.nodes += min(sub.nodes, sub.limit)
        found = search.best
        if found is current or found is None or not _better(problem, found, current):
            return None
        holder[0] = found
        return found.units

    with contextlib.suppress(_NodeLimit):
        primal.large_neighbourhood(sleeves, best.units, reoptimise)
    polished = _incumbent(problem, primal.local_search(problem, holder[0].units, exchanges=True))
    if polished is not None and _better(problem, polished, holder[0]):
        holder[0] = polished
    return holder[0]
