"""The depth-first branch and bound of one run, sleeve by sleeve (``_SearchTree``).

Entering a sleeve, the search lists its completions with no line, one line or two (per
listing the counts in a window around the sleeve's target, per pair of listings each count of
one with the window of the other: the window is where the bound can still tie the best list)
and visits them best first (``enter``); three lines or more, or a sleeve with too many
completions to list, is branched listing by listing (no trade, a buy range, a sell range,
ranges halved until one value: ``branch``, ``visit_range``). The last sleeve is completed
directly (``finish``, ``optimizer_completions.py``). Every hard rule is a constraint of the
ranges (turnover: a sell range shrinks to what the committed sells leave) or a check when a
sleeve closes (no kept sleeve at zero), so no answer ever breaks one.
"""

from __future__ import annotations

import math

from .optimizer_completions import ENTER_LIMIT, _SearchCompletions
from .optimizer_state import INF, Bound

SHORT_RANGE = 6


class _SearchTree(_SearchCompletions):
    """The search proper of ``_Search``: visit a node, enter a sleeve, branch on a listing."""

    # Whole sleeves listed (``enter``) and the last one completed directly (``finish``). Off,
    # every listing is branched on: slower, the same answer (the tests compare the two).
    shortcuts = True

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
