"""Maximising the Lagrangian bound over its multiplier levels: pure functions.

The bound is concave in the budget level ``h`` (and jointly in ``h`` and the turnover level
``g``). ``_golden`` finds a real level's (near) maximum by doubling then golden-section
search (a run's own best level, ``optimizer_runs.py``); ``_climb`` finds the best index on a
grid of levels from a hint (the parent's level), gallop then ternary search, and stops as
soon as the bound prunes.
"""

from __future__ import annotations

from .optimizer_state import INF


def _golden(value, unit: int, fraction: int = 64) -> int:
    """An integer ``h >= 0`` (nearly) maximising the concave ``value``: doubling from ``unit`` to
    bracket it, then golden-section search to ``unit / fraction``."""
    cache: dict[int, float | int] = {}

    def at(h: int) -> float | int:
        if h not in cache:
            cache[h] = value(h)
        return cache[h]

    if at(0) == INF:
        return 0
    low, h = 0, unit
    while at(h) > at(h // 2 if h > unit else 0) and h < 10**30:
        low = h // 2 if h > unit else 0
        h *= 2
    high = h
    resolution = max(1, unit // fraction)
    a = high - (high - low) * 618 // 1000
    b = low + (high - low) * 618 // 1000
    while high - low > resolution:
        if at(a) < at(b):
            low, a = a, b
            b = low + (high - low) * 618 // 1000
        else:
            high, b = b, a
            a = high - (high - low) * 618 // 1000
        if a > b:
            a, b = b, a
    return max((low, a, b, high), key=lambda c: (at(c), -c))


def _climb(value, hint: int, found, top: int, passes) -> tuple[int, int]:
    """The largest ``value(i)`` for ``i`` in ``0..top``, a concave sequence, starting from
    ``hint`` (whose value is ``found``): gallop (1, 2, 4, ... steps) while it rises, then ternary
    search the bracket. Stops early, returning what it has, once ``passes`` fails."""
    if not passes(found):
        return found, hint
    for direction in (1, -1):
        outer = hint + direction
        if not 0 <= outer <= top:
            continue
        there = value(outer)
        if there <= found:
            continue
        inner, best, where, step = hint, there, outer, 1
        while True:  # the maximum lies beyond ``inner``
            if not passes(best):
                return best, where
            step *= 2
            nxt = min(max(where + direction * step, 0), top)
            if nxt == where:
                outer = where
                break
            there = value(nxt)
            if there <= best:
                outer = nxt
                break
            inner, best, where = where, there, nxt
        low, high = sorted((inner, outer))
        while high - low > 2:
            a, b = low + (high - low) // 3, high - (high - low) // 3
            va, vb = value(a), value(b)
            if va < vb:
                low = a
            else:
                high = b
            for i, v in ((a, va), (b, vb)):
                if v > best:
                    best, where = v, i
            if not passes(best):
                return best, where
        for i in range(low, high + 1):
            if i != where:
                v = value(i)
                if v > best:
                    best, where = v, i
        return best, where
    return found, hint
