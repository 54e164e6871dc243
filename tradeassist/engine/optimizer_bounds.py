"""The Lagrangian bound at a node of the branch and bound (``_SearchBounds``).

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

``child`` is the bound of one item trading in a range of units (or not at all), with the
node's lines, money, turnover and per-sleeve line limits; ``passes`` tests a bound against
the run's threshold (what a completion with the run's lines must reach to tie the best list).
"""

from __future__ import annotations

from .optimizer_levels import _climb
from .optimizer_state import INF, Bound, _Run, _SearchState
from .relaxation import level_counts as _discrete
from .relaxation import level_interval as _continuous


class _SearchBounds(_SearchState):
    """The bound of ``_Search`` at a node: per-sleeve costs, suffix tables, the node's value."""

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
