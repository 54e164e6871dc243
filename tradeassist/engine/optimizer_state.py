"""What one branch and bound holds: its fixed data per depth and sleeve, its node state, its runs.

``_SearchState`` is the base of ``_Search`` (``optimizer_runs.py``): the items in search
order (sleeves contiguous) with the other items fixed, per depth what the rest of the sleeve
can still sell, buy and make, per sleeve of the sequence its members, ranges and most lines,
and the mutable state of the node being searched (sleeve values, units, lines per side). A
``_Run`` is the search with exactly ``K`` lines: its total after fees ``T_K``, targets,
budget, turnover left, cached bound tables and levels. ``lines_range`` is every ``K`` worth a
run: a buy-only search makes no more lines than the money pays for, and with a positive line
penalty no run has more lines than ``J(best) / (P / T)**2``.
"""

from __future__ import annotations

from fractions import Fraction

from .optimizer_incumbent import _Counter, _Incumbent
from .problem import AllocationProblem, Item

INF = float("inf")
Bound = int | float  # an exact integer bound on N, or INF where no completion exists


class _Run:
    """What a search with exactly ``lines`` executed lines needs: its targets, budget, bounds."""

    def __init__(self, search: _SearchState, lines: int) -> None:
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


class _SearchState:
    """One branch and bound over ``order`` (item indices, sleeves contiguous), the other items
    fixed at ``fixed``; shares its node counter and incumbent with the caller."""

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
