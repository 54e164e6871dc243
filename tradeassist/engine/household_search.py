"""The exact household search: branch and bound over every account's listings at once.

The search is split into runs by the number of lines ``K``: within a run the line penalty is a
constant and the total after fees lies in a narrow range (from the least to the most fee per
line: a point when every account pays the same), so the objective is bounded by the squared
drift ``N``. Each run is a depth-first branch and bound, sleeve by sleeve (a sleeve's listings
in every account together), listing by listing: no trade, a buy range, a sell range, ranges
halved until one value, children taken best bound first.

The bound (``household_bound``) prices each account's money with its own multiplier (and the
turnover with one more) and shares the run's lines out exactly among the sleeves not reached (a
small dynamic programme); a sleeve the policy keeps never sells to nothing in it. The
multipliers live on a grid (``household_nodes``), so the tables of the sleeves not reached are
computed once per grid point and run and shared by every node; each node climbs the grid from
its parent's point and stops as soon as the bound rises above the best list. That is what lets
the bound see an account whose money is spent: only its multiplier can price what it must still
raise by selling. The last listing's count is computed, not searched: with everything else
fixed the objective is a convex quadratic in it. Every rule is a constraint: a range never
exceeds what its account's money (with the sales still possible in that account), the turnover
or the lines left allow, and a sale is at least what its account must still raise; a sleeve
does not sell and buy in one account unless the policy lets it; a kept sleeve closing at
nothing, a gain over the allowance, a wrong number of lines are cut where they arise; leaves
are scored exactly (``HouseholdProblem.evaluate``) and compared in the total order
(``order_key``). Floats in the bound prune only with a relative margin far above their
rounding.

The incumbent starts from the better of no trade and a block descent, improved by moves and
swaps (``household_primal``); a better list the search stops with at its limit is polished by
the same descent, moves and swaps.
Runs are taken in order of root bound, in rounds of growing node budgets, and skipped when the
root cannot tie the best list. ``max_nodes`` counts bound evaluations; at the limit the best
list is returned with ``proven_optimal=False`` and the least root bound of the runs not
finished.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from fractions import Fraction

from .household_bound import gap
from .household_nodes import LEVELS, Levels, NodeBounds, NodeLimit, Run
from .household_primal import Best, block_descent, improve
from .household_problem import HouseholdEvaluation, HouseholdProblem

FIRST_SLICE = 2_000  # a run's nodes in the first round; each round gives four times more
ROOT_STEPS = (64, 32, 16, 8, 4, 2, 1)  # the root's pattern search, in grid points


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


class _Search(NodeBounds):
    def solve(self) -> tuple[bool, Fraction | None]:
        """Every run, best root first, in rounds: each round gives every unfinished run four
        times the nodes of the last, so one hard run cannot starve the rest. Returns (proven,
        the least root bound left unfinished)."""
        problem = self.problem
        if not self.order:
            return True, None
        runs = [Run(self, lines) for lines in self.line_counts()]
        try:
            lines = self.best.found.lines if self.best.found is not None else 0
            first = next((r for r in runs if r.lines == lines), runs[0])
            self.tune(first, first.levels, ROOT_STEPS)
            for run in runs:  # a first root bound each, at that run's grid point
                if run is not first:
                    self.reset(run)
                    run.levels = first.levels
                    run.root = self.evaluate(0, self.idle_cost(run), None, run.levels)
        except NodeLimit:
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
                except NodeLimit:
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

    def tune(self, run: Run, start: Levels, steps: tuple[int, ...]) -> None:
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

    # -- the branch and bound ---------------------------------------------------------------
    def search(self, run: Run) -> None:
        self.reset(run)
        self.visit(0, self.idle_cost(run), run.levels)

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
    with contextlib.suppress(NodeLimit):
        block_descent(problem, best)
        improve(problem, best)
    started_from = best.units
    search = _Search(problem, best, max_nodes)
    proven, unfinished = search.solve()
    if best.units is None or best.found is None:
        return None
    if not proven and best.units != started_from:  # polish a better list the search stopped with
        with contextlib.suppress(NodeLimit):
            improve(problem, best)
    bound = best.found.objective if unfinished is None else min(best.found.objective, unfinished)
    return HouseholdSolution(
        units=best.units,
        evaluation=best.found,
        proven_optimal=proven,
        nodes=min(search.nodes, max_nodes + 1),
        bound=bound,
    )
