"""The branch and bound's incumbent, the total order on trade lists, and its node counter.

A trade list is scored by ``J = M / (target_scale * T * T_K)**2`` (``problem.py``); ties go
to fewer lines, then the list closest to the policy's constituent split, then the smallest
vector of units in listing-key order (``_better``). The order is total, so the best list is
unique. ``_Counter`` counts nodes and raises ``_NodeLimit`` past its limit: the work is
bounded by a count, not a clock, so the answer is deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from .problem import AllocationProblem


class _NodeLimit(Exception):
    pass


@dataclass
class _Incumbent:
    numerator: int  # M (see problem.py): J = M / (target_scale * T * T_K)**2
    total: int  # T_K
    lines: int
    units: tuple[int, ...]
    net: int


class _Counter:
    def __init__(self, limit: int) -> None:
        self.nodes = 0
        self.limit = limit

    def count(self, amount: int = 1) -> None:
        self.nodes += amount
        if self.nodes > self.limit:
            self.nodes = self.limit + 1
            raise _NodeLimit


def _split_distance(problem: AllocationProblem, units: tuple[int, ...]) -> Fraction:
    amounts = [q * item.price for q, item in zip(units, problem.items, strict=True)]
    sleeve_spend = [0] * len(problem.sleeves)
    for amount, item in zip(amounts, problem.items, strict=True):
        sleeve_spend[item.sleeve] += amount
    pairs = zip(amounts, problem.items, strict=True)
    return sum(((a - item.share * sleeve_spend[item.sleeve]) ** 2 for a, item in pairs), Fraction(0))


def _better(problem: AllocationProblem, a: _Incumbent, b: _Incumbent) -> bool:
    """Is ``a`` strictly before ``b`` in the total order (objective, lines, split, units)?"""
    diff = a.numerator * b.total * b.total - b.numerator * a.total * a.total
    if diff != 0:
        return diff < 0
    if a.lines != b.lines:
        return a.lines < b.lines
    split_a, split_b = _split_distance(problem, a.units), _split_distance(problem, b.units)
    if split_a != split_b:
        return split_a < split_b
    return a.units < b.units


def _incumbent(problem: AllocationProblem, units) -> _Incumbent | None:
    found = problem.evaluate(units)
    if found is None:
        return None
    return _Incumbent(found.numerator, found.total, found.lines, tuple(units), found.net)
