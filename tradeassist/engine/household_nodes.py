"""The household search's nodes: what a run fixes, and the bound at a node on a grid of
multipliers (``household_search`` explains the search; ``household_bound`` the sleeve costs).

The multipliers live on a grid (zero, then a penny's worth of misallocation times powers of
``RATIO``), so the tables of the sleeves a node has not reached are computed once per run and
grid point and shared by every node; each node climbs the grid from its parent's point (each
account's multiplier, every account's together, the turnover's) and stops as soon as the bound
rises above the best list.
"""

from __future__ import annotations

from fractions import Fraction

from .household_bound import INF, Line, gap, sleeve_costs
from .household_primal import Best
from .household_problem import HouseholdProblem

LEVELS = 288  # grid points per multiplier above zero
RATIO = 2 ** (1 / 8)
NODE_PASSES = 2  # a node's climbs along every direction, per step size
NODE_STEPS = (4, 1)  # its step sizes, in grid points
MARGIN = 1e-9  # relative slack on float bounds before pruning: far above their rounding

Levels = tuple[int, ...]  # a grid point: one level per account, then the turnover's


class NodeLimit(Exception):
    """The node limit is reached."""


class Run:
    """One number of lines: the range of its total after fees, each sleeve's range of
    deviations, its root bound and grid point, and its tables per grid point."""

    def __init__(self, search: NodeBounds, lines: int) -> None:
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


class NodeBounds:
    """What every node of a household search shares: the order of the listings, what each
    account can still sell after each position, and the bound on the grid."""

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
            raise NodeLimit

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

    def row(self, run: Run, slot: int, levels: Levels) -> list[float]:
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
            floor = self.least_spend(s, 0)
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

    def least_spend(self, s: int, spent: int) -> int | None:
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
        floor = self.least_spend(s, self.sleeve_spend[s])
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
        steps=NODE_STEPS,
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

    # -- a run's state -----------------------------------------------------------------------
    def idle_cost(self, run: Run) -> float:
        """What the sleeves nothing can trade cost in every list of the run."""
        return sum(gap(*run.deviations[s]) ** 2 for s in self.idle)

    def reset(self, run: Run) -> None:
        """Start ``run`` with nothing committed."""
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

    def sleeve_at(self, j: int) -> int:
        return self.problem.base.items[self.order[j]].sleeve
