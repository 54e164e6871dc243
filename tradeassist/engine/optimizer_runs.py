"""The runs of a branch and bound, one per number of lines, and their root bounds (``_Search``).

Runs are taken best first by root bound, each sharpened before it is searched (its bound
climbed on the shared grid, then its levels centred on its own best ``h``, and ``g``, by
golden-section search: the root bound is concave in them), and skipped when the root cannot
tie the best list. ``g`` is fixed per run (0 unless the turnover cap may bind); ``h`` is
climbed at each node from its parent's on a grid around the run's best root level (every
quarter of a pound within £32, doubling out to £4,096). ``lower_bound`` is the least root
bound of the runs not finished, what the gap reports when the node limit stops the search.
"""

from __future__ import annotations

import heapq
from fractions import Fraction

from .optimizer_levels import _climb, _golden
from .optimizer_state import INF, Bound, _Run
from .optimizer_tree import _SearchTree


class _Search(_SearchTree):
    """One branch and bound over ``order`` (item indices, sleeves contiguous), the other items
    fixed at ``fixed``; shares its node counter and incumbent with the caller."""

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
