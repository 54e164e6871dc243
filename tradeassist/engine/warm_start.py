"""A good first trade list for the optimizer, found fast: round the relaxation, then improve.

The branch and bound prunes against the best trade list it knows, so it proves optimality
sooner from a good one; it does not change the answer when the search completes (the
search still looks at every trade list that could tie or beat it). Without it, a large
rebalance with sells met the node limit holding a list of 30-40 lines.

1. The relaxation (no whole units, no minimum trade) gives each sleeve's net spend, with the
   budget net of one fee per sleeve that moves.
2. Each moving sleeve realises its spend with as few lines as it can: the listing whose whole
   units come closest, or, selling more than one listing holds, the largest holdings first.
3. Coordinate descent on the exact objective: each listing in turn goes to its best whole
   count with the others fixed (none, or either side of the count that puts its sleeve on
   target), or its line moves to another listing of the same sleeve; sweeps repeat until
   one improves nothing (or a fixed number of sweeps).

Pure and deterministic, like the rest of the engine; its result is only ever a candidate.
"""

from __future__ import annotations

from fractions import Fraction

from .problem import AllocationProblem

MAX_ROUNDS = 30


def _key(problem: AllocationProblem, units: list[int]) -> tuple[Fraction, int] | None:
    found = problem.evaluate(units)
    if found is None:
        return None
    return found.objective, found.lines


def _sleeve_spends(problem: AllocationProblem) -> list[Fraction]:
    lows, highs = problem.sleeve_ranges()
    moving = len(problem.sleeves)
    spends: list[Fraction] = []
    for _ in range(2):  # guess the number of lines, then count the sleeves that moved
        found = problem.relaxed_spends(lows, highs, moving)
        if found is None:
            return [Fraction(0)] * len(problem.sleeves)
        spends = [y / problem.target_scale for y in found]
        moving = sum(1 for y in spends if abs(y) >= 1)
    return spends


def _realise(problem: AllocationProblem, sleeve: int, spend: Fraction, units: list[int]) -> None:
    """Set units for one sleeve's listings so that their net consideration is near ``spend``."""
    indices = [i for i, item in enumerate(problem.items) if item.sleeve == sleeve]
    if spend > 0:
        best = None
        for i in indices:
            item = problem.items[i]
            q = min(max(round(spend / item.price), item.min_units), item.max_buy)
            if q >= item.min_units:
                miss = abs(q * item.price - spend)
                if best is None or miss < best[0]:
                    best = (miss, i, q)
        if best is not None:
            units[best[1]] = best[2]
        return
    left = -spend  # to sell, largest holdings first
    for i in sorted(indices, key=lambda i: -problem.items[i].max_sell * problem.items[i].price):
        item = problem.items[i]
        if left < item.min_units * item.price or item.max_sell == 0:
            continue
        q = min(round(left / item.price), item.max_sell)
        if q >= item.min_units:
            units[i] = -q
            left -= q * item.price


class _Tally:
    """Per-sleeve net spend, lines and sides of a trade list, to score one-listing moves fast."""

    def __init__(self, problem: AllocationProblem, units: list[int]) -> None:
        self.p = problem
        self.units = units
        sleeves = len(problem.sleeves)
        self.spends, self.buys, self.sells = [0] * sleeves, [0] * sleeves, [0] * sleeves
        self.sold = 0  # sell consideration
        for item, q in zip(problem.items, units, strict=True):
            self.add(item.sleeve, q * item.price, q, 1)

    def add(self, sleeve: int, amount: int, q: int, sign: int) -> None:
        self.spends[sleeve] += sign * amount
        if q > 0:
            self.buys[sleeve] += sign
        elif q < 0:
            self.sells[sleeve] += sign
            self.sold -= sign * amount

    def key_after(self, i: int, q: int) -> tuple[Fraction, int] | None:
        """The (objective, lines) with listing ``i`` at ``q`` units, or None if infeasible."""
        p, item, old = self.p, self.p.items[i], self.units[i]
        self.add(item.sleeve, old * item.price, old, -1)
        self.add(item.sleeve, q * item.price, q, 1)
        try:
            s = item.sleeve
            if not p.switches and self.buys[s] and self.sells[s]:
                return None
            if p.max_lines_per_sleeve is not None and self.buys[s] + self.sells[s] > p.max_lines_per_sleeve:
                return None
            if p.turnover_cap is not None and self.sold > p.turnover_cap:
                return None
            if p.keeps[s] and p.values[s] + self.spends[s] <= 0:
                return None
            lines = sum(self.buys) + sum(self.sells)
            total = p.total_after(lines)
            if sum(self.spends) + p.fee * lines > p.budget or total <= 0:
                return None
            return p.objective_of(p.scaled(p.numerator(self.spends, lines), lines), total), lines
        finally:
            self.add(item.sleeve, q * item.price, q, -1)
            self.add(item.sleeve, old * item.price, old, 1)

    def set(self, i: int, q: int) -> None:
        item, old = self.p.items[i], self.units[i]
        self.add(item.sleeve, old * item.price, old, -1)
        self.add(item.sleeve, q * item.price, q, 1)
        self.units[i] = q


def _candidates(tally: _Tally, i: int) -> list[int]:
    """Unit counts worth trying for listing ``i`` with the others fixed: none, and the whole
    units either side of the count that would put its sleeve exactly on target (each side of
    the market), clipped to what it may trade and what the money allows."""
    p, item = tally.p, tally.p.items[i]
    s, q = item.sleeve, tally.units[i]
    others = sum(tally.buys) + sum(tally.sells) - (1 if q else 0)
    total = p.total_after(others + 1)
    rest = tally.spends[s] - q * item.price
    ideal = Fraction(p.targets[s] * total, p.target_scale) - p.values[s] - rest
    room = p.budget - (sum(tally.spends) - q * item.price) - p.fee * (others + 1)
    cap = min(item.max_buy, room // item.price)
    found = {0}
    for guess in (ideal // item.price, ideal // item.price + 1):
        for low, high in ((item.min_units, cap), (-item.max_sell, -item.min_units)):
            if low <= high:
                found.add(int(min(max(guess, low), high)))
    found.discard(q)
    return sorted(found)


def warm_start(problem: AllocationProblem) -> tuple[int, ...] | None:
    """A feasible trade list, usually near the optimum, or None when it finds none."""
    n = len(problem.items)
    units = [0] * n
    for sleeve, spend in enumerate(_sleeve_spends(problem)):
        if abs(spend) >= 1:
            _realise(problem, sleeve, spend, units)
    while _key(problem, units) is None and any(q > 0 for q in units):
        # Over budget: shed a unit from the dearest buy line.
        i = max((i for i in range(n) if units[i] > 0), key=lambda i: problem.items[i].price)
        units[i] = units[i] - 1 if units[i] > problem.items[i].min_units else 0
    if _key(problem, units) is None:  # e.g. more sell lines than the policy allows a sleeve
        units = [0] * n
    current = _key(problem, units)
    if current is None:
        return None
    tally = _Tally(problem, units)
    by_sleeve: dict[int, list[int]] = {}
    for i, item in enumerate(problem.items):
        by_sleeve.setdefault(item.sleeve, []).append(i)
    for _ in range(MAX_ROUNDS):
        improved = False
        for i in range(n):
            # One listing to its best count; or its line moved to another listing of the sleeve.
            moves = [[(i, q)] for q in _candidates(tally, i)]
            if units[i]:
                for j in by_sleeve[problem.items[i].sleeve]:
                    if j != i and not units[j]:
                        q = units[i]
                        tally.set(i, 0)
                        moves.extend([(i, 0), (j, r)] for r in _candidates(tally, j) if r)
                        tally.set(i, q)
            for move in moves:
                saved = [(j, units[j]) for j, _ in move]
                for j, r in move[:-1]:
                    tally.set(j, r)
                j, r = move[-1]
                key = tally.key_after(j, r)
                if key is not None and key < current:
                    tally.set(j, r)
                    current, improved = key, True
                    break
                for j, r in reversed(saved[:-1]):
                    tally.set(j, r)
        if not improved:
            break
    return tuple(units)
