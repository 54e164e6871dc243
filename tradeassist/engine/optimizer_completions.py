"""Whole-unit completions of a sleeve, listed rather than branched on, and the leaf.

``pair_options`` lists the counts of two listings whose joint spend lands within a window of
the sleeve's target (it serves ``enter``, ``optimizer_tree.py``, and the last sleeve). The
last sleeve, untouched, with one or two lines left is completed directly (``finish``): its
best completion whatever the money is the same on every path of a run (cached per run), and
when the money or the turnover binds, the run's completions sorted by spend give the best one
in a binary search (``below``); else every pair is looked at again, for each count of one the
nearest counts of the other (``pair``, ``pair_loop``). ``leaf`` scores a complete list
exactly and keeps it when it is before the best in the total order.
"""

from __future__ import annotations

import bisect
import math

from .optimizer_bounds import _SearchBounds
from .optimizer_incumbent import _better, _Incumbent
from .optimizer_state import _Run

ENTER_LIMIT = 4000  # most completions of a sleeve ``enter`` lists; beyond, it branches
LOOP_NODE = 16  # counts tried in a pair loop per node counted (the node limit bounds the work)
UNLIMITED = 10**60  # money enough for any trade list (the last sleeve's unconstrained best)


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


class _SearchCompletions(_SearchBounds):
    """Listed completions of ``_Search``: pairs of counts, the last sleeve, the leaf."""

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
