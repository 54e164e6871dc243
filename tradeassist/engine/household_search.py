"""The exact household search: branch and bound over every account's listings at once.

The search is split into runs by the number of lines ``K``: within a run the line penalty is a
constant and the total after fees lies in a narrow range (from the least to the most fee per
line: a point when every account pays the same), so the objective is bounded by the squared
drift ``N``. Each run is a depth-first branch and bound, sleeve by sleeve (a sleeve's listings
in every account together), listing by listing: no trade, a buy range, a sell range, ranges
halved until one value, children taken best bound first.

The bound (``household_bound``) prices each account's money with its own multiplier (and the
turnover with one more) and shares the run's lines out exactly among the sleeves not reached
(a small dynamic programme). The multipliers live on a grid (zero, then a penny's worth of
misallocation times powers of the square root of 2), so the tables of the sleeves not reached
are computed once per grid point and run and shared by every node; each node climbs the grid
from its parent's point (each account's multiplier, every account's together, the turnover's)
and stops as soon as the bound rises above the best list. That is what lets the bound see an
account whose money is spent: only its multiplier can price what it must still raise by
selling. Every rule is a constraint: a range never exceeds what its account's money (with the
sales still possible in that account), the turnover or the lines left allow, and a sale is at
least what its account must still raise; a sleeve does not sell and buy in one account unless
the policy lets it; a kept sleeve closing at nothing, a gain over the allowance, a wrong number
of lines are cut where they arise; leaves are scored exactly (``HouseholdProblem.evaluate``) and
compared in the total order (``order_key``). Floats in the bound prune only with a relative
margin far above their rounding.

The incumbent starts from the better of no trade and a block descent (``household_primal``).
Runs are taken in order of root bound, in rounds of growing node budgets, and skipped when the
root cannot tie the best list. ``max_nodes`` counts bound evaluations; at the limit the best
list is returned with ``proven_optimal=False`` and the least root bound of the runs not finished.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from fractions import Fraction

from .household_bound import INF, Line, gap, sleeve_costs
from .household_primal import Best, block_descent
from .household_problem import HouseholdEvaluation, HouseholdProblem

FIRST_SLICE = 2_000  # a run's nodes in the first round; each round gives four times more
LEVELS = 288  # grid points per multiplier above zero
RATIO = 2 ** (1 / 8)
ROOT_STEPS = (64, 32, 16, 8, 4, 2, 1)  # the root's pattern search, in grid points
NODE_PASSES = 2  # a node's climbs of one grid point along every direction
MARGIN = 1e-9  # relative slack on float bounds before pruning: far above their rounding

Levels = tuple[int, ...]  # a grid point: one level per account, then the turnover's


@dataclass(frozen=True)
class HouseholdSolution:
    units: tuple[int, ...]  # per item
    evaluation: HouseholdEvaluation
    proven_optimal: bool
    nodes: int
    bound: Fraction  # no trade list does better

    @property
    def objective(self) -> Fraction:
        return self.evaluation.objective


class _Limit(Exception):
    pass


class _Run:
    """One number of lines: the range of its total after fees, each sleeve's range of
    deviations, its root bound and grid point, and its tables per grid point."""

    def __init__(self, search: _Search, lines: int) -> None:
        problem, base = search.problem, search.problem.base
        self.lines = lines
        least, most = min(search.fees, default=0), max(search.fees, default=0)
        low_total = problem.total_after(most * lines)
        self.total = problem.total_after(least * lines)  # the largest it can be
        ts = base.target_scale
        self.deviations = [
            (float(ts * v - t * self.total), float(ts * v - t * low_total))
            for v, t in zip(base.values, base.targets, strict=True)
        ]
        self.penalty = Fraction(lines * base.penalty**2, base.total**2)
        self.root = -INF
        self.levels: Levels = (0,) * (problem.accounts + 1)
        self.tuned = False
        self.rows: dict[tuple[int, Levels], list[float]] = {}

    def objective(self, problem: HouseholdProblem, drift: float) -> Fraction:
        """The least objective of a list of this run whose squared drift is at least ``drift``."""
        if drift == INF:
            return Fraction(10**30)
        ts = problem.base.target_scale
        return Fraction(drift) / (ts * self.total) ** 2 + self.penalty

    def floor(self, problem: HouseholdProblem) -> Fraction:
        return self.objective(problem, self.root * (1 - MARGIN) - 1)


class _Search:
    def __init__(self, problem: HouseholdProblem, best: Best, max_nodes: int) -> None:
        self.problem = problem
        self.best = best
        self.nodes = 0
        self.max_nodes = max_nodes
        base = problem.base
        items = base.items
        self.fees = sorted({problem.fees[problem.account_of[i]] for i in range(len(items))})
        # Sleeves fewest accounts can trade first (what only one account can hold decides how
        # that account's money goes), then the most misallocated.
        holders: dict[int, set[int]] = {}
        for i, item in enumerate(items):
            holders.setdefault(item.sleeve, set()).add(problem.account_of[i])
        ts = base.target_scale
        far = {s: abs(ts * base.values[s] - base.targets[s] * base.total) for s in holders}
        sleeves = sorted(holders, key=lambda s: (len(holders[s]), -far[s], s))
        self.sleeve_order = sleeves
        self.order = sorted(
            range(len(items)),
            key=lambda i: (sleeves.index(items[i].sleeve), problem.account_of[i], -items[i].price, i),
        )
        self.idle = [s for s in range(len(base.sleeves)) if s not in sleeves]  # sleeves nothing trades
        self.slot_of_sleeve = {s: k for k, s in enumerate(sleeves)}
        self.members = {s: [i for i in self.order if items[i].sleeve == s] for s in sleeves}
        n = len(self.order)
        self.ends = [0] * n  # where the sleeve of position j ends
        for j in range(n - 1, -1, -1):
            same = j + 1 < n and items[self.order[j + 1]].sleeve == items[self.order[j]].sleeve
            self.ends[j] = self.ends[j + 1] if same else j + 1
        # Sales still possible in each account from position j of the order on (money units).
        self.sell_after = [[0] * problem.accounts for _ in range(n + 1)]
        self.loss_after = [Fraction(0)] * (n + 1)
        for j in range(n - 1, -1, -1):
            i = self.order[j]
            row = list(self.sell_after[j + 1])
            row[problem.account_of[i]] += items[i].max_sell * items[i].price
            self.sell_after[j] = row
            loss = max(Fraction(0), -problem.gains[i]) * items[i].max_sell
            self.loss_after[j] = self.loss_after[j + 1] + loss
        self.max_per_sleeve = {}
        for s in sleeves:
            most = len(self.members[s])
            if base.max_lines_per_sleeve is not None:
                accounts = {problem.account_of[i] for i in self.members[s]}
                most = min(most, base.max_lines_per_sleeve * len(accounts))
            self.max_per_sleeve[s] = most
        # The grid: a penny's worth of misallocation is worth 2 * ts**2 * penny per money unit.
        penny = Fraction(base.money_scale, 100)
        self.unit = float(2 * ts * ts * penny)
        self.directions = self._directions()

    def _directions(self) -> list[Levels]:
        """Each account's multiplier, every account's together (single steps cannot climb where
        selling in one account to buy in another is what the multipliers must price), and the
        turnover's alone and with them, where the cap may bind."""
        problem, base = self.problem, self.problem.base
        owners = sorted(set(problem.account_of))
        size = problem.accounts + 1
        found = [tuple(1 if k == a else 0 for k in range(size)) for a in owners]
        if len(owners) > 1:
            found.append(tuple(1 if k in owners else 0 for k in range(size)))
        sellable = sum(item.max_sell * item.price for item in base.items)
        if base.turnover_cap is not None and sellable > base.turnover_cap:
            found.append(tuple(1 if k == problem.accounts else 0 for k in range(size)))
            found.append(tuple(1 if k in owners or k == problem.accounts else 0 for k in range(size)))
        return found

    def count(self) -> None:
        self.nodes += 1
        if self.nodes > self.max_nodes:
            raise _Limit

    # -- the bound ---------------------------------------------------------------------------
    def value(self, level: int) -> float:
        return 0.0 if level <= 0 else self.unit * RATIO ** (level - 1)

    def line(self, i: int, levels: Levels, money: int | None = None, sold: int = 0) -> Line:
        """Listing ``i`` at a grid point; ``money``: the most its account can still spend (the
        buy range shrinks to it), ``sold``: the sales already committed (the turnover left)."""
        problem, item = self.problem, self.problem.base.items[i]
        account = problem.account_of[i]
        mu, gamma = self.value(levels[account]), self.value(levels[-1])
        high, low = item.max_buy, -item.max_sell
        if money is not None:
            high = min(high, max(0, money) // item.price)
            if high < item.min_units:
                high = 0
            cap = problem.base.turnover_cap
            if cap is not None:
                low = max(low, -((cap - sold) // item.price))
                if -low < item.min_units:
                    low = 0
        return Line(
            low=low,
            high=high,
            step=item.price,
            buy=mu,
            sell=mu - gamma,
            fixed=mu * problem.fees[account],
            min_units=item.min_units,
        )

    def row(self, run: _Run, slot: int, levels: Levels) -> list[float]:
        """The least cost of the sleeves from ``slot`` on with exactly ``r`` lines, per ``r``
        (cached per run and grid point: every node shares it)."""
        key = (slot, levels)
        found = run.rows.get(key)
        if found is not None:
            return found
        most = run.lines
        if slot == len(self.sleeve_order):
            result = [0.0] + [INF] * most
        else:
            s = self.sleeve_order[slot]
            lines = [self.line(i, levels) for i in self.members[s]]
            floor = self.floor(s, 0)
            own = sleeve_costs(
                lines,
                run.deviations[s],
                self.problem.base.target_scale,
                min(most, self.max_per_sleeve[s]),
                None,
                floor,
            )
            rest = self.row(run, slot + 1, levels)
            result = [INF] * (most + 1)
            for r_own, c in enumerate(own):
                if c == INF:
                    continue
                for r_rest in range(most + 1 - r_own):
                    value = rest[r_rest]
                    if value != INF and c + value < result[r_own + r_rest]:
                        result[r_own + r_rest] = c + value
        run.rows[key] = result
        return result

    def floor(self, s: int, spent: int) -> int | None:
        """The least the rest of sleeve ``s`` may spend when it is kept (its value stays above
        nothing), or None."""
        base = self.problem.base
        return 1 - base.values[s] - spent if base.keeps[s] else None

    def evaluate(self, j: int, closed: float, forced: tuple[int, int] | None, levels: Levels) -> float:
        """The bound at a grid point on every completion from position ``j`` (its listing in
        ``forced``'s range, when given), with what is committed."""
        self.count()
        problem, run = self.problem, self.run
        ts = problem.base.target_scale
        s = self.problem.base.items[self.order[j]].sleeve
        money = [
            problem.budgets[a] - self.spent[a] - problem.fees[a] + self.sell_after[j][a]
            for a in range(problem.accounts)
        ]
        lines = [
            self.line(self.order[k], levels, money[problem.account_of[self.order[k]]], self.sold)
            for k in range(j, self.ends[j])
        ]
        if forced is not None and forced[0] > 0:
            # A forced buy spends at least its least count (and a fee) of its account's money,
            # and does not sell: the other listings of the sleeve there have that much less.
            i = self.order[j]
            a = problem.account_of[i]
            item = problem.base.items[i]
            left = money[a] - forced[0] * item.price - problem.fees[a] - item.max_sell * item.price
            for k in range(j + 1, self.ends[j]):
                other = self.order[k]
                if problem.account_of[other] == a:
                    lines[k - j] = self.line(other, levels, left, self.sold)
        spend = ts * self.sleeve_spend[s]
        deviation = (run.deviations[s][0] + spend, run.deviations[s][1] + spend)
        left = run.lines - self.lines_made
        floor = self.floor(s, self.sleeve_spend[s])
        own = sleeve_costs(lines, deviation, ts, min(left, self.max_per_sleeve[s]), forced, floor)
        after = self.row(run, self.slot_of_sleeve[s] + 1, levels)
        best = INF
        for r, c in enumerate(own):
            if c != INF and after[left - r] != INF:
                best = min(best, c + after[left - r])
        if best == INF:
            return INF
        mus = [self.value(k) for k in levels[:-1]]
        value = (
            closed
            + best
            + sum(m * (sp - b) for m, sp, b in zip(mus, self.spent, problem.budgets, strict=True))
        )
        cap = problem.base.turnover_cap
        if cap is not None and levels[-1]:
            value += self.value(levels[-1]) * (self.sold - cap)
        return value

    def climb(
        self,
        j: int,
        closed: float,
        forced: tuple[int, int] | None,
        levels: Levels,
        steps=(1,),
        passes: int = NODE_PASSES,
    ) -> tuple[float, Levels]:
        """The best bound found climbing the grid from ``levels``; stops once it prunes."""
        limit = self.threshold()
        best = self.evaluate(j, closed, forced, levels)
        for step in steps:
            for _ in range(passes):
                moved = False
                for direction in self.directions:
                    if best > limit:
                        return best, levels
                    for sign in (step, -step):
                        point = tuple(
                            min(LEVELS, max(0, k + sign * d)) for k, d in zip(levels, direction, strict=True)
                        )
                        if point == levels:
                            continue
                        value = self.evaluate(j, closed, forced, point)
                        if value > best:
                            best, levels, moved = value, point, True
                            break
                if not moved:
                    break
        return best, levels

    def threshold(self) -> float:
        """The largest drift ``N`` a list of this run may have and still tie the best."""
        if self.best.found is None:
            return INF
        run = self.run
        ts = self.problem.base.target_scale
        room = (self.best.found.objective - run.penalty) * (ts * run.total) ** 2
        if room < 0:
            return -INF
        return float(room) * (1 + MARGIN) + 1

    # -- runs --------------------------------------------------------------------------------
    def solve(self) -> tuple[bool, Fraction | None]:
        """Every run, best root first, in rounds: each round gives every unfinished run four
        times the nodes of the last, so one hard run cannot starve the rest. Returns (proven,
        the least root bound left unfinished)."""
        problem = self.problem
        if not self.order:
            return True, None
        runs = [_Run(self, lines) for lines in self.line_counts()]
        try:
            lines = self.best.found.lines if self.best.found is not None else 0
            first = next((r for r in runs if r.lines == lines), runs[0])
            self.tune(first, first.levels, ROOT_STEPS)
            for run in runs:  # a first root bound each, at that run's grid point
                if run is not first:
                    self.reset(run)
                    run.levels = first.levels
                    run.root = self.evaluate(0, self.idle_cost(run), None, run.levels)
        except _Limit:
            return False, None
        runs.sort(key=lambda r: (r.floor(problem), r.lines))
        open_runs = list(runs)
        budget = FIRST_SLICE
        while open_runs:
            left = []
            for run in open_runs:
                if self.best.found is not None and run.floor(problem) > self.best.found.objective:
                    continue
                if self.nodes >= self.max_nodes:
                    left.append(run)
                    continue
                limit, self.max_nodes = self.max_nodes, min(self.max_nodes, self.nodes + budget)
                try:
                    if not run.tuned:
                        self.tune(run, run.levels, ROOT_STEPS[2:])
                        if self.best.found is not None and run.floor(problem) > self.best.found.objective:
                            continue
                    self.search(run)
                except _Limit:
                    left.append(run)
                finally:
                    self.max_nodes = limit
            if left and self.nodes >= self.max_nodes:
                alive = [
                    r.floor(problem)
                    for r in left
                    if self.best.found is None or r.floor(problem) <= self.best.found.objective
                ]
                return (False, min(alive)) if alive else (True, None)
            open_runs = left
            budget *= 4
        return True, None

    def idle_cost(self, run: _Run) -> float:
        return sum(gap(*run.deviations[s]) ** 2 for s in self.idle)

    def tune(self, run: _Run, start: Levels, steps: tuple[int, ...]) -> None:
        """The run's root bound, climbed on the grid from ``start``."""
        self.reset(run)
        saved = self.best.found
        self.best.found = None  # climb the root in full: no early stop
        try:
            run.root, run.levels = self.climb(0, self.idle_cost(run), None, start, steps, passes=LEVELS)
        finally:
            self.best.found = saved
        run.tuned = True

    def line_counts(self) -> list[int]:
        """Every number of lines worth a run: with a line penalty, no more lines than the best
        list's objective pays for."""
        base = self.problem.base
        most = len(self.order)
        if base.penalty and self.best.found is not None:
            step = Fraction(base.penalty**2, base.total**2)
            most = min(most, int(self.best.found.objective / step))
        return list(range(most + 1))

    # -- the branch and bound -----------------------------------------------------------------
    def reset(self, run: _Run) -> None:
        problem = self.problem
        self.run = run
        self.units = [0] * len(problem.base.items)
        self.spent = [0] * problem.accounts
        self.lines_made = 0
        self.group_sides: dict[tuple[int, int], int] = {}  # (account, sleeve) -> +1 buys, -1 sells
        self.group_lines: dict[tuple[int, int], int] = {}
        self.sold = 0
        self.gain = Fraction(0)
        self.sleeve_spend = [0] * len(problem.base.sleeves)

    def search(self, run: _Run) -> None:
        self.reset(run)
        self.visit(0, self.idle_cost(run), run.levels)

    def sleeve_at(self, j: int) -> int:
        return self.problem.base.items[self.order[j]].sleeve

    def visit(self, j: int, closed: float, levels: Levels) -> None:
        """Decide the listing at position ``j``: no trade, a buy range or a sell range."""
        if j == len(self.order):
            self.leaf()
            return
        if j == len(self.order) - 1:
            self.last(j, closed, levels)
            return
        options: list[tuple[float, int, int, int, Levels]] = []  # bound, kind, low, high, point
        zero = self.after_zero(j, closed, levels)
        if zero is not None:
            options.append((zero[0], 0, 0, 0, zero[1]))
        for low, high in self.ranges(j):
            bound, point = self.climb(j, closed, (low, high), levels)
            if bound <= self.threshold():
                options.append((bound, 1, low, high, point))
        options.sort(key=lambda o: (o[0], o[1], o[2]))
        for bound, kind, low, high, point in options:
            if bound > self.threshold():
                break
            if kind == 0:
                self.step(j, closed, 0, point)
            else:
                self.split(j, closed, low, high, point)

    def last(self, j: int, closed: float, levels: Levels) -> None:
        """The last listing: with everything else fixed, the objective is a convex quadratic in
        its units (one sleeve moves, the total after fees is fixed once it trades), so its best
        count in each range is the nearest whole count to the real one, clamped; those and no
        trade are scored exactly."""
        problem, base = self.problem, self.problem.base
        i = self.order[j]
        item, account = base.items[i], problem.account_of[i]
        s, ts = item.sleeve, base.target_scale
        candidates = {0}
        fees_paid = sum(self.spent) - sum(q * it.price for q, it in zip(self.units, base.items, strict=True))
        total = problem.total_after(fees_paid + problem.fees[account])
        deviation = ts * (base.values[s] + self.sleeve_spend[s]) - base.targets[s] * total
        best = Fraction(-deviation, ts * item.price)
        for low, high in self.ranges(j):
            for q in (math.floor(best), math.ceil(best)):
                candidates.add(min(max(q, low), high))
        for q in sorted(candidates):
            self.count()
            self.step(j, closed, q, levels)

    def after_zero(self, j: int, closed: float, levels: Levels) -> tuple[float, Levels] | None:
        """The bound with no trade at ``j`` (closing the sleeve when ``j`` is its last)."""
        if j + 1 < self.ends[j]:
            bound, point = self.climb(j + 1, closed, None, levels)
        else:
            shut = self.close(self.sleeve_at(j), closed)
            if shut is None:
                return None
            if j + 1 == len(self.order):
                self.count()
                return (shut, levels) if self.lines_made == self.run.lines else None
            bound, point = self.climb(j + 1, shut, None, levels)
        return (bound, point) if bound <= self.threshold() else None

    def close(self, s: int, closed: float) -> float | None:
        base = self.problem.base
        if base.keeps[s] and base.values[s] + self.sleeve_spend[s] <= 0:
            return None
        spend = base.target_scale * self.sleeve_spend[s]
        low, high = self.run.deviations[s]
        return closed + gap(low + spend, high + spend) ** 2

    def ranges(self, j: int) -> list[tuple[int, int]]:
        """The buy range and the sell range the listing at ``j`` may take (each possibly none)."""
        problem, base = self.problem, self.problem.base
        i = self.order[j]
        item, account = base.items[i], problem.account_of[i]
        if self.lines_made >= self.run.lines:
            return []
        group = (account, item.sleeve)
        if (
            base.max_lines_per_sleeve is not None
            and self.group_lines.get(group, 0) >= base.max_lines_per_sleeve
        ):
            return []
        side = self.group_sides.get(group, 0)
        fee = problem.fees[account]
        found = []
        # What this account must still raise by selling, beyond what its later listings can.
        short = self.spent[account] + fee - problem.budgets[account] - self.sell_after[j + 1][account]
        if item.max_buy and short <= 0 and (base.switches or side >= 0):
            money = problem.budgets[account] - self.spent[account] - fee + self.sell_after[j + 1][account]
            high = min(item.max_buy, money // item.price) if money >= 0 else 0
            if high >= item.min_units:
                found.append((item.min_units, high))
        if item.max_sell and (base.switches or side <= 0):
            high = item.max_sell
            if base.turnover_cap is not None:
                high = min(high, (base.turnover_cap - self.sold) // item.price)
            low = max(item.min_units, -(-short // item.price))
            if high >= low:
                found.append((-high, -low))
        return found

    def split(self, j: int, closed: float, low: int, high: int, levels: Levels) -> None:
        if low == high:
            self.step(j, closed, low, levels)
            return
        middle = (low + high) // 2
        halves = []
        for a, b in ((low, middle), (middle + 1, high)):
            bound, point = self.climb(j, closed, (a, b), levels)
            if bound <= self.threshold():
                halves.append((bound, a, b, point))
        halves.sort()
        for bound, a, b, point in halves:
            if bound <= self.threshold():
                self.split(j, closed, a, b, point)

    def step(self, j: int, closed: float, q: int, levels: Levels) -> None:
        """Commit ``q`` units at position ``j`` and go on."""
        problem, base = self.problem, self.problem.base
        i = self.order[j]
        item, account = base.items[i], problem.account_of[i]
        s = item.sleeve
        group = (account, s)
        undo = (self.group_sides.get(group), self.group_lines.get(group, 0), self.gain)
        amount = q * item.price
        if q:
            self.units[i] = q
            self.spent[account] += amount + problem.fees[account]
            self.lines_made += 1
            self.group_sides[group] = 1 if q > 0 else -1
            self.group_lines[group] = undo[1] + 1
            self.sleeve_spend[s] += amount
            if q < 0:
                self.sold -= amount
                self.gain -= q * problem.gains[i]
        try:
            if self.feasible(j):
                if j + 1 < self.ends[j]:
                    self.visit(j + 1, closed, levels)
                else:
                    shut = self.close(s, closed)
                    if shut is not None:
                        self.visit(j + 1, shut, levels)
        finally:
            if q:
                self.units[i] = 0
                self.spent[account] -= amount + problem.fees[account]
                self.lines_made -= 1
                if undo[0] is None:
                    del self.group_sides[group]
                else:
                    self.group_sides[group] = undo[0]
                self.group_lines[group] = undo[1]
                self.sleeve_spend[s] -= amount
                if q < 0:
                    self.sold += amount
                    self.gain = undo[2]

    def feasible(self, j: int) -> bool:
        """Can what is committed up to ``j`` still be completed within the money and gains?"""
        problem = self.problem
        money_left = self.sell_after[j + 1]
        for a in range(problem.accounts):
            if self.spent[a] > problem.budgets[a] + money_left[a]:
                return False
        return problem.gain_cap is None or self.gain - self.loss_after[j + 1] <= problem.gain_cap

    def leaf(self) -> None:
        self.count()
        if self.lines_made == self.run.lines:
            self.best.offer(tuple(self.units))


def solve_household(problem: HouseholdProblem, *, max_nodes: int) -> HouseholdSolution | None:
    """The optimal household trade list, or None when nothing (not even no trade) is affordable."""
    best = Best(problem)
    n = len(problem.items)
    best.offer((0,) * n)
    with contextlib.suppress(_Limit):
        block_descent(problem, best)
    search = _Search(problem, best, max_nodes)
    proven, unfinished = search.solve()
    if best.units is None or best.found is None:
        return None
    bound = best.found.objective if unfinished is None else min(best.found.objective, unfinished)
    return HouseholdSolution(
        units=best.units,
        evaluation=best.found,
        proven_optimal=proven,
        nodes=min(search.nodes, max_nodes + 1),
        bound=bound,
    )
