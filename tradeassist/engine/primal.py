"""Primal heuristics: good trade lists found fast, for the branch and bound to prune against.

The search proves a list optimal by showing nothing beats it; the better the list it starts
from, the less it has to look at. Where it stops at its node limit, the list it returns is the
best these heuristics and the search found. Everything here respects every constraint (a move
is kept only when ``AllocationProblem``'s rules all hold for the result) and is deterministic.

* ``local_search``: descent on the exact objective. Moves, tried listing by listing, the first
  improvement kept: one listing to its best count with the others fixed (none, which drops the
  line, one unit either way, or the counts either side of the one that puts its sleeve on
  target); a line moved to another listing of its sleeve; and, with ``exchanges``, one unit
  more or less on one line together with the best count of a line in another sleeve (a sell
  funding a buy, or two buys trading money). Sweeps repeat until one improves nothing.
* ``large_neighbourhood``: frees the listings of two sleeves at a time (every pair, in the
  order given), re-optimises them exactly with everything else fixed (``reoptimise``: the
  branch and bound on those listings, with a node cap), keeps any improvement, and repeats
  rounds while a round improves and the budget lasts.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from fractions import Fraction

from .problem import AllocationProblem

MAX_ROUNDS = 30

Key = tuple[Fraction, int]  # (objective, lines): smaller is better


class Tally:
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

    def key(self) -> Key | None:
        """(objective, lines) of the current list, or None when it breaks a rule."""
        p = self.p
        for s in range(len(p.sleeves)):
            if not p.switches and self.buys[s] and self.sells[s]:
                return None
            if p.max_lines_per_sleeve is not None and self.buys[s] + self.sells[s] > p.max_lines_per_sleeve:
                return None
            if p.keeps[s] and p.values[s] + self.spends[s] <= 0:
                return None
        if p.turnover_cap is not None and self.sold > p.turnover_cap:
            return None
        lines = sum(self.buys) + sum(self.sells)
        total = p.total_after(lines)
        if sum(self.spends) + p.fee * lines > p.budget or total <= 0:
            return None
        return p.objective_of(p.scaled(p.numerator(self.spends, lines), lines), total), lines

    def key_after(self, i: int, q: int) -> Key | None:
        """The key with listing ``i`` at ``q`` units (the list itself unchanged)."""
        old = self.units[i]
        self.set(i, q)
        try:
            return self.key()
        finally:
            self.set(i, old)

    def set(self, i: int, q: int) -> None:
        item, old = self.p.items[i], self.units[i]
        if q == old:
            return
        self.add(item.sleeve, old * item.price, old, -1)
        self.add(item.sleeve, q * item.price, q, 1)
        self.units[i] = q


def candidates(tally: Tally, i: int) -> list[int]:
    """Unit counts worth trying for listing ``i`` with the others fixed: none, one unit either
    way, and the whole units either side of the count that would put its sleeve exactly on
    target (each side of the market), clipped to what it may trade and the money allows."""
    p, item = tally.p, tally.p.items[i]
    s, q = item.sleeve, tally.units[i]
    others = sum(tally.buys) + sum(tally.sells) - (1 if q else 0)
    total = p.total_after(others + 1)
    rest = tally.spends[s] - q * item.price
    ideal = Fraction(p.targets[s] * total, p.target_scale) - p.values[s] - rest
    room = p.budget - (sum(tally.spends) - q * item.price) - p.fee * (others + 1)
    cap = min(item.max_buy, room // item.price)
    sides = ((item.min_units, cap), (-item.max_sell, -item.min_units))
    found = {0}
    for guess in (ideal // item.price, ideal // item.price + 1):
        for low, high in sides:
            if low <= high:
                found.add(int(min(max(guess, low), high)))
    for near in (q - 1, q + 1):
        if any(low <= near <= high for low, high in sides):
            found.add(near)
    found.discard(q)
    return sorted(found)


def local_search(
    problem: AllocationProblem, units: Sequence[int], *, exchanges: bool = False
) -> tuple[int, ...]:
    """Descend from a feasible ``units`` (see the module docstring); returns a list at least as good."""
    current_units = list(units)
    tally = Tally(problem, current_units)
    current = tally.key()
    if current is None:
        return tuple(units)
    n = len(problem.items)
    by_sleeve: dict[int, list[int]] = {}
    for i, item in enumerate(problem.items):
        by_sleeve.setdefault(item.sleeve, []).append(i)

    def moves_of(i: int):
        """One listing to a better count, or its line moved to another listing of the sleeve."""
        yield from ([(i, q)] for q in candidates(tally, i))
        q = current_units[i]
        if q:
            for j in by_sleeve[problem.items[i].sleeve]:
                if j != i and not current_units[j]:
                    tally.set(i, 0)
                    found = [r for r in candidates(tally, j) if r]
                    tally.set(i, q)
                    yield from ([(i, 0), (j, r)] for r in found)

    def exchanges_of(i: int):
        """One unit more or less on line i, with the best count of a line in another sleeve."""
        q = current_units[i]
        if not q:
            return
        sleeve = problem.items[i].sleeve
        for step in (1, -1):
            moved = q + step
            item = problem.items[i]
            if not (item.min_units <= moved <= item.max_buy or item.min_units <= -moved <= item.max_sell):
                moved = 0
            for j in range(n):
                if current_units[j] and problem.items[j].sleeve != sleeve:
                    tally.set(i, moved)
                    found = candidates(tally, j)
                    tally.set(i, q)
                    yield from ([(i, moved), (j, r)] for r in found)

    for _ in range(MAX_ROUNDS):
        improved = False
        for i in range(n):
            for move in itertools.chain(moves_of(i), exchanges_of(i) if exchanges else ()):
                saved = [(j, current_units[j]) for j, _ in move]
                for j, r in move:
                    tally.set(j, r)
                key = tally.key()
                if key is not None and key < current:
                    current, improved = key, True
                    break
                for j, r in reversed(saved):
                    tally.set(j, r)
        if not improved:
            break
    return tuple(current_units)


def large_neighbourhood(
    sleeves: Sequence[int],
    units: tuple[int, ...],
    reoptimise: Callable[[tuple[int, ...], tuple[int, ...]], tuple[int, ...] | None],
    *,
    rounds: int = MAX_ROUNDS,
) -> tuple[int, ...]:
    """Re-optimise every pair of ``sleeves`` in turn with the rest fixed (see the module
    docstring). ``reoptimise(pair, units)`` returns a strictly better list or None; it raises
    when the node budget runs out, and the caller keeps the best list it saw."""
    for _ in range(rounds):
        improved = False
        for pair in itertools.combinations(sleeves, 2):
            found = reoptimise(pair, units)
            if found is not None:
                units, improved = found, True
        if not improved:
            break
    return units
