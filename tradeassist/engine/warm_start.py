"""A good first trade list for the optimizer, found fast: round the relaxation, then improve.

The branch and bound prunes against the best trade list it knows, so it proves optimality
sooner from a good one; it does not change the answer when the search completes (the
search still looks at every trade list that could tie or beat it). Without it, a large
rebalance with sells met the node limit holding a list of 30-40 lines.

1. The relaxation (no whole units, no minimum trade) gives each sleeve's net spend, with the
   budget net of one fee per sleeve that moves.
2. Each moving sleeve realises its spend with as few lines as it can: the listing whose whole
   units come closest, or, selling more than one listing holds, the largest holdings first.
3. ``primal.local_search`` on the exact objective: each listing in turn goes to its best
   whole count with the others fixed (none, a unit either way, or either side of the count
   that puts its sleeve on target), or its line moves to another listing of the same sleeve;
   sweeps repeat until one improves nothing (or a fixed number of sweeps).

Pure and deterministic, like the rest of the engine; its result is only ever a candidate.
"""

from __future__ import annotations

from fractions import Fraction

from .primal import local_search
from .problem import AllocationProblem


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
    if _key(problem, units) is None:
        return None
    found = local_search(problem, units)
    # Each line the rounding made may pay its penalty alone; dropping them one at a time can
    # look worse at every step. Never return a list worse than no trade.
    nothing = _key(problem, [0] * n)
    key = _key(problem, list(found))
    if nothing is not None and key is not None and nothing < key:
        return (0,) * n
    return found
