"""The exact household search: branch and bound over every account's listings at once.

The search is split into runs by the number of lines per fee (with one fee across the
household, by the number of lines ``K``): within a run the total after fees, every sleeve's
target and the line penalty are constants, so the objective is the squared drift ``N``. Each
run is a depth-first branch and bound, sleeve by sleeve (a sleeve's listings in every account
together), listing by listing: no trade, a buy range, a sell range, ranges halved until one
value, children taken best bound first. The bound (``household_bound``) prices each account's
money with its own multiplier, fixed per run at the values that maximise the run's root bound
(coordinate ascent, golden section: the bound is concave in them), and shares the run's lines
out exactly among the sleeves not yet reached (a small dynamic programme). Every rule is a
constraint: a range never exceeds what its account's money (with the sales still possible in
that account), the turnover or the lines left allow; a sleeve does not sell and buy in one
account unless the policy lets it; a kept sleeve closing at nothing, a gain over the allowance,
a wrong number of lines are cut where they arise; leaves are scored exactly
(``HouseholdProblem.evaluate``) and compared in the total order (``order_key``).

The incumbent starts from the better of no trade and a block descent: each account re-solved
exactly by the single-portfolio engine with the other accounts' trades fixed, in turn, until
no account improves. Runs are taken in order of root bound and skipped when the root cannot tie
the best list. ``max_nodes`` counts bound evaluations; at the limit the best list is returned
with ``proven_optimal=False`` and the least root bound of the runs not finished.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from fractions import Fraction

from .household_bound import INF, Line, climb, combine, sleeve_costs
from .household_primal import Best, block_descent
from .household_problem import HouseholdEvaluation, HouseholdProblem

FIRST_SLICE = 2_000  # a run's nodes in the first round
ROOT_STEPS = 24  # golden-section steps per direction at a run's root
NODE_STEPS = 10  # and entering a sleeve
MARGIN = 1e-9  # relative slack on float bounds before pruning: far above their rounding


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


# --------------------------------------------------------------------------------------------
# The branch and bound
# --------------------------------------------------------------------------------------------
class _Run:
    """One number of lines per fee: its total after fees, deviations, multipliers and tables."""

    def __init__(self, search: _Search, profile: tuple[int, ...]) -> None:
        problem, base = search.problem, search.problem.base
        self.profile = profile
        self.lines = sum(profile)
        self.total = problem.total_after(sum(n * f for n, f in zip(profile, search.fee_levels, strict=True)))
        ts = base.target_scale
        self.deviations = [ts * v - t * self.total for v, t in zip(base.values, base.targets, strict=True)]
        self.mu = [0.0] * problem.accounts
        self.gamma = 0.0
        self.tables: list[list[float]] = []
        self.root = INF

    def penalty(self, problem: HouseholdProblem) -> Fraction:
        base = problem.base
        return Fraction(self.lines * base.penalty**2, base.total**2)

    def objective(self, problem: HouseholdProblem, drift: float) -> Fraction:
        ts = problem.base.target_scale
        return (
            Fraction(drift) / (ts * self.total) ** 2 + self.penalty(problem)
            if drift != INF
            else Fraction(10**30)
        )


class _Search:
    def __init__(self, problem: HouseholdProblem, best: Best, max_nodes: int) -> None:
        self.problem = problem
        self.best = best
        self.nodes = 0
        self.max_nodes = max_nodes
        base = problem.base
        items = base.items
        self.fee_levels = tuple(sorted({problem.fees[problem.account_of[i]] for i in range(len(items))}))
        self.fee_class = [
            self.fee_levels.index(problem.fees[problem.account_of[i]]) for i in range(len(items))
        ]
        # Sleeves fewest accounts can trade first (what only one account can hold decides how
        # that account's money goes), then the most misallocated.
        holders: dict[int, set[int]] = {}
        for i, item in enumerate(items):
            holders.setdefault(item.sleeve, set()).add(problem.account_of[i])
        ts = base.target_scale
        gap = {s: abs(ts * base.values[s] - base.targets[s] * base.total) for s in holders}
        sleeves = sorted(holders, key=lambda s: (len(holders[s]), -gap[s], s))
        self.sleeve_order = sleeves
        self.order = sorted(
            range(len(items)),
            key=lambda i: (sleeves.index(items[i].sleeve), problem.account_of[i], -items[i].price, i),
        )
        self.idle = [s for s in range(len(base.sleeves)) if s not in sleeves]  # sleeves nothing trades
        self.slot_of_sleeve = {s: k for k, s in enumerate(sleeves)}
        n = len(self.order)
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
            members = [i for i in range(len(items)) if items[i].sleeve == s]
            most = len(members)
            if base.max_lines_per_sleeve is not None:
                accounts = {problem.account_of[i] for i in members}
                most = min(most, base.max_lines_per_sleeve * len(accounts))
            self.max_per_sleeve[s] = most
        self.most_lines = n
        self.can_sell = any(item.max_sell for item in items)
        self.node_directions: list[list[float]] = []

    # -- counting --------------------------------------------------------------------------
    def count(self) -> None:
        self.nodes += 1
        if self.nodes > self.max_nodes:
            raise _Limit

    # -- the bound ---------------------------------------------------------------------------
    def line(self, run: _Run, i: int, money: int | None = None, sold: int = 0) -> Line:
        """Listing ``i`` for the bound; ``money``: the most its account can still spend (the
        buy range shrinks to it), ``sold``: the sales already committed (the turnover left)."""
        problem, item = self.problem, self.problem.base.items[i]
        mu = run.mu[problem.account_of[i]]
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
            sell=mu - run.gamma,
            fixed=mu * problem.fees[problem.account_of[i]],
            min_units=item.min_units,
        )

    def prepare(self, run: _Run) -> float:
        """The run's tables for its multipliers, and its root bound."""
        self.lines_of = [self.line(run, i) for i in range(len(self.problem.base.items))]
        run.tables = self.tables_from(run, 0)
        closed = sum(float(run.deviations[s]) ** 2 for s in self.idle)
        return closed + run.tables[0][run.lines] + self.money_term(run, [0] * self.problem.accounts, 0)

    def tables_from(self, run: _Run, slot: int) -> list[list[float]]:
        """``combine`` over the sleeves from ``slot`` on (earlier rows are left infinite), with
        the listings as ``self.lines_of`` has them."""
        ts = self.problem.base.target_scale
        items = self.problem.base.items
        costs = [[INF] for _ in range(slot)]
        for s in self.sleeve_order[slot:]:
            members = [self.lines_of[i] for i in self.order if items[i].sleeve == s]
            most = min(run.lines, self.max_per_sleeve[s])
            costs.append(sleeve_costs(members, float(run.deviations[s]), ts, most))
        return combine(costs, run.lines)

    def narrow(self, j: int, closed: int) -> None:
        """Entering a sleeve at ``j``: every listing from ``j`` on can now buy no more than its
        account's money left (with every sale still possible in it) and sell no more than the
        turnover left; the tables of the sleeves after this one are recomputed with them."""
        problem, run = self.problem, self.run
        money = [
            problem.budgets[a] - self.spent[a] - problem.fees[a] + self.sell_after[j][a]
            for a in range(problem.accounts)
        ]
        slot = self.slot_of_sleeve[self.sleeve_at(j)] + 1

        def at(point: list[float]) -> float:
            run.mu, run.gamma = point[:-1], point[-1]
            for k in range(j, len(self.order)):
                i = self.order[k]
                self.lines_of[i] = self.line(run, i, money[problem.account_of[i]], self.sold)
            run.tables = self.tables_from(run, slot)
            return self.bound(j, closed)

        if self.node_directions:
            climb(at, [*run.mu, run.gamma], self.node_directions, self.top(run), NODE_STEPS, 1)
        else:
            at([*run.mu, run.gamma])

    def money_term(self, run: _Run, spent: list[int], sold: int) -> float:
        problem = self.problem
        value = sum(m * (s - b) for m, s, b in zip(run.mu, spent, problem.budgets, strict=True) if m)
        if run.gamma and problem.base.turnover_cap is not None:
            value += run.gamma * (sold - problem.base.turnover_cap)
        return value

    def directions(self, run: _Run) -> list[list[float]]:
        """The directions the multipliers are climbed along: each account's, every account's
        together (coordinate steps alone cannot climb where selling in one account to buy in
        another is what the multipliers must price), and the turnover's where it may bind."""
        problem, base = self.problem, self.problem.base
        owners = [a for a in range(problem.accounts) if self.account_has_items(a)]
        size = problem.accounts + 1  # the last is the turnover's
        found = [[1.0 if k == a else 0.0 for k in range(size)] for a in owners]
        if len(owners) > 1:
            found.append([1.0 if k in owners else 0.0 for k in range(size)])
        if self.can_sell and base.turnover_cap is not None and self.sell_capacity() > base.turnover_cap:
            found.append([1.0 if k == problem.accounts else 0.0 for k in range(size)])
            found.append([1.0 if k in owners or k == problem.accounts else 0.0 for k in range(size)])
        return found

    def top(self, run: _Run) -> float:
        problem, ts = self.problem, self.problem.base.target_scale
        return 2.0 * ts * (max(abs(d) for d in run.deviations) + ts * max(max(problem.budgets), 0) + 1)

    def tune(self, run: _Run, start: tuple[list[float], float] | None) -> None:
        """The multipliers that maximise the run's root bound."""
        point = [*start[0], start[1]] if start is not None else [0.0] * (self.problem.accounts + 1)

        def at(values: list[float]) -> float:
            run.mu, run.gamma = values[:-1], values[-1]
            return self.prepare(run)

        point = climb(at, point, self.directions(run), self.top(run), ROOT_STEPS, 4)
        run.root = at(point)

    def account_has_items(self, a: int) -> bool:
        return a in self.problem.account_of

    def sell_capacity(self) -> int:
        return sum(item.max_sell * item.price for item in self.problem.base.items)

    # -- the search --------------------------------------------------------------------------
    def solve(self) -> tuple[bool, Fraction | None]:
        """Every run, best root first, in rounds: each round gives every unfinished run four
        times the nodes of the last (from ``FIRST_SLICE``), so one hard run cannot starve the
        rest. Returns (proven, the least root bound left unfinished)."""
        problem = self.problem
        runs = [_Run(self, profile) for profile in self.profiles()]
        start = None
        try:
            for run in runs:
                self.tune(run, start)
                start = (list(run.mu), run.gamma)
        except _Limit:
            return False, None
        runs.sort(key=lambda r: (r.objective(problem, r.root), r.lines))
        open_runs = list(runs)
        budget = FIRST_SLICE
        while open_runs:
            left = []
            for run in open_runs:
                bound = run.objective(problem, run.root * (1 - MARGIN) - 1)
                if self.best.found is not None and bound > self.best.found.objective:
                    continue
                if self.nodes >= self.max_nodes:
                    left.append(run)
                    continue
                limit, self.max_nodes = self.max_nodes, min(self.max_nodes, self.nodes + budget)
                try:
                    self.prepare(run)
                    self.node_directions = self.directions(run)
                    self.search(run)
                except _Limit:
                    left.append(run)
                finally:
                    self.max_nodes = limit
            if left and self.nodes >= self.max_nodes:
                alive = [
                    r.objective(problem, r.root * (1 - MARGIN) - 1)
                    for r in left
                    if self.best.found is None
                    or r.objective(problem, r.root * (1 - MARGIN) - 1) <= self.best.found.objective
                ]
                return (False, min(alive)) if alive else (True, None)
            open_runs = left
            budget *= 4
        return True, None

    def profiles(self) -> list[tuple[int, ...]]:
        """Every number of lines per fee level worth a run: with a line penalty, no more lines
        than the best list's objective pays for."""
        base = self.problem.base
        most = self.most_lines
        if base.penalty and self.best.found is not None:
            step = Fraction(base.penalty**2, base.total**2)
            most = min(most, int(self.best.found.objective / step))
        per_level = [sum(1 for c in self.fee_class if c == level) for level in range(len(self.fee_levels))]
        found: list[tuple[int, ...]] = [()]
        for count in per_level:
            found = [(*p, n) for p in found for n in range(count + 1) if sum(p) + n <= most]
        return found

    def threshold(self, run: _Run) -> float:
        """The largest drift ``N`` a list of this run may have and still tie the best."""
        if self.best.found is None:
            return INF
        ts = self.problem.base.target_scale
        room = (self.best.found.objective - run.penalty(self.problem)) * (ts * run.total) ** 2
        if room < 0:
            return -INF
        return float(room) * (1 + MARGIN) + 1

    def search(self, run: _Run) -> None:
        problem = self.problem
        n = len(self.order)
        self.run = run
        self.units = [0] * len(problem.base.items)
        self.spent = [0] * problem.accounts
        self.class_lines = [0] * len(self.fee_levels)
        self.group_sides: dict[tuple[int, int], int] = {}  # (account, sleeve) -> +1 buys, -1 sells
        self.group_lines: dict[tuple[int, int], int] = {}
        self.sold = 0
        self.gain = Fraction(0)
        self.sleeve_spend = [0] * len(problem.base.sleeves)
        closed = sum(run.deviations[s] ** 2 for s in self.idle)
        if n == 0:
            self.leaf()
            return
        self.visit(0, closed)

    def sleeve_at(self, j: int) -> int:
        return self.problem.base.items[self.order[j]].sleeve

    def bound(
        self, j: int, closed: int, forced: tuple[int, int] | None = None, counted: bool = True
    ) -> float:
        """The least drift of any completion from position ``j`` (its listing in ``forced``'s
        range, when given), with what is committed."""
        if counted:
            self.count()
        run, base = self.run, self.problem.base
        ts = base.target_scale
        lines_left = run.lines - sum(self.class_lines)
        if forced is not None:
            lines_left -= 0  # the forced line is one of the sleeve's own lines below
        s = self.sleeve_at(j)
        end = self.sleeve_end(j)
        members = [self.lines_of[self.order[k]] for k in range(j, end)]
        if forced is not None:
            members[0] = self.ranged(self.order[j])
        deviation = float(run.deviations[s] + ts * self.sleeve_spend[s])
        most = min(lines_left, self.max_per_sleeve[s])
        own = sleeve_costs(members, deviation, ts, most, forced)
        after = run.tables[self.slot_of_sleeve[s] + 1]
        best = INF
        for r, c in enumerate(own):
            if c != INF and lines_left - r >= 0 and after[lines_left - r] != INF:
                best = min(best, c + after[lines_left - r])
        if best == INF:
            return INF
        return closed + best + self.money_term(run, self.spent, self.sold)

    def ranged(self, i: int) -> Line:
        return self.lines_of[i]

    def sleeve_end(self, j: int) -> int:
        s, n = self.sleeve_at(j), len(self.order)
        k = j
        while k < n and self.sleeve_at(k) == s:
            k += 1
        return k

    def visit(self, j: int, closed: int) -> None:
        """Decide the listing at position ``j``: no trade, a buy range or a sell range."""
        n = len(self.order)
        if j == n:
            self.leaf()
            return
        if j == 0 or self.sleeve_at(j - 1) != self.sleeve_at(j):
            run = self.run
            saved = (list(self.lines_of), run.tables, run.mu, run.gamma)
            self.narrow(j, closed)
            try:
                self.decide(j, closed)
            finally:
                self.lines_of, run.tables, run.mu, run.gamma = saved
            return
        self.decide(j, closed)

    def decide(self, j: int, closed: int) -> None:
        limit = self.threshold(self.run)
        options: list[tuple[float, int, int, int]] = []  # (bound, kind, low, high)
        zero = self.after_zero(j, closed)
        if zero is not None:
            options.append((zero, 0, 0, 0))
        for low, high in self.ranges(j):
            b = self.bound(j, closed, (low, high))
            if b <= limit:
                options.append((b, 1, low, high))
        options.sort()
        for b, kind, low, high in options:
            if b > self.threshold(self.run):
                break
            if kind == 0:
                self.step(j, closed, 0)
            else:
                self.split(j, closed, low, high)

    def after_zero(self, j: int, closed: int) -> float | None:
        """The bound with no trade at ``j`` (closing the sleeve when ``j`` is its last)."""
        n = len(self.order)
        s = self.sleeve_at(j)
        if j + 1 < n and self.sleeve_at(j + 1) == s:
            b = self.bound(j + 1, closed)
        else:
            shut = self.close(s, closed)
            if shut is None:
                return None
            if j + 1 == n:
                self.count()
                return float(shut) if self.class_lines == list(self.run.profile) else None
            b = self.bound(j + 1, shut)
        return b if b <= self.threshold(self.run) else None

    def close(self, s: int, closed: int) -> int | None:
        base = self.problem.base
        if base.keeps[s] and base.values[s] + self.sleeve_spend[s] <= 0:
            return None
        deviation = self.run.deviations[s] + base.target_scale * self.sleeve_spend[s]
        return closed + deviation * deviation

    def ranges(self, j: int) -> list[tuple[int, int]]:
        """The buy range and the sell range the listing at ``j`` may take (each possibly none)."""
        problem, base = self.problem, self.problem.base
        i = self.order[j]
        item, account = base.items[i], problem.account_of[i]
        level = self.fee_class[i]
        if self.class_lines[level] >= self.run.profile[level]:
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

    def split(self, j: int, closed: int, low: int, high: int) -> None:
        if low == high:
            self.step(j, closed, low)
            return
        middle = (low + high) // 2
        halves = []
        for a, b in ((low, middle), (middle + 1, high)):
            bound = self.bound(j, closed, (a, b))
            if bound <= self.threshold(self.run):
                halves.append((bound, a, b))
        halves.sort()
        for bound, a, b in halves:
            if bound <= self.threshold(self.run):
                self.split(j, closed, a, b)

    def step(self, j: int, closed: int, q: int) -> None:
        """Commit ``q`` units at position ``j`` and go on."""
        problem, base = self.problem, self.problem.base
        i = self.order[j]
        item, account = base.items[i], problem.account_of[i]
        s = item.sleeve
        undo = None
        if q:
            amount = q * item.price
            group = (account, s)
            undo = (self.group_sides.get(group), self.group_lines.get(group, 0), self.gain)
            self.units[i] = q
            self.spent[account] += amount + problem.fees[account]
            self.class_lines[self.fee_class[i]] += 1
            self.group_sides[group] = 1 if q > 0 else -1
            self.group_lines[group] = undo[1] + 1
            self.sleeve_spend[s] += amount
            if q < 0:
                self.sold -= amount
                self.gain -= q * problem.gains[i]
        try:
            if self.feasible(j):
                n = len(self.order)
                if j + 1 < n and self.sleeve_at(j + 1) == s:
                    self.visit(j + 1, closed)
                else:
                    shut = self.close(s, closed)
                    if shut is not None:
                        self.visit(j + 1, shut)
        finally:
            if q and undo is not None:
                amount = q * item.price
                group = (account, s)
                self.units[i] = 0
                self.spent[account] -= amount + problem.fees[account]
                self.class_lines[self.fee_class[i]] -= 1
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
        if self.class_lines != list(self.run.profile):
            return
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
