"""Good household lists fast: the block descent the exact search starts from.

Each account is re-solved exactly by the single-portfolio engine with the other accounts'
trades fixed (their spends in the sleeve values, their fees out of the total, their sales out
of the turnover), in turn, until no account changes: once from no trade, once from the
household solved as one pool of money.
"""

from __future__ import annotations

from dataclasses import replace

from .household_problem import HouseholdEvaluation, HouseholdProblem
from .optimizer import solve
from .problem import AllocationProblem

BLOCK_NODES = 20_000  # the single-portfolio engine's nodes per account in the block descent


class Best:
    """The best list so far, in the total order (``HouseholdProblem.order_key``)."""

    def __init__(self, problem: HouseholdProblem) -> None:
        self.problem = problem
        self.units: tuple[int, ...] | None = None
        self.found: HouseholdEvaluation | None = None
        self.key: tuple[object, ...] | None = None

    def offer(self, units: tuple[int, ...]) -> bool:
        found = self.problem.evaluate(units)
        if found is None:
            return False
        key = self.problem.order_key(units, found)
        if self.key is None or key < self.key:
            self.units, self.found, self.key = units, found, key
            return True
        return False


# --------------------------------------------------------------------------------------------
# The block descent: one account at a time, exactly, with the others fixed
# --------------------------------------------------------------------------------------------
def _account_problem(
    problem: HouseholdProblem, units: tuple[int, ...], account: int
) -> tuple[AllocationProblem, list[int]]:
    base = problem.base
    values = list(base.values)
    others_fees = sold = 0
    for index, (item, q) in enumerate(zip(base.items, units, strict=True)):
        if q and problem.account_of[index] != account:
            values[item.sleeve] += q * item.price
            others_fees += problem.fees[problem.account_of[index]]
            sold += max(0, -q * item.price)
    own = [i for i in range(len(base.items)) if problem.account_of[i] == account]
    cap = None if base.turnover_cap is None else max(0, base.turnover_cap - sold)
    sub = replace(
        base,
        values=tuple(values),
        total=base.total - others_fees,
        fee=problem.fees[account],
        budget=problem.budgets[account],
        items=tuple(base.items[i] for i in own),
        turnover_cap=cap,
        keeps=base.keeps,
    )
    return sub, own


def _descend(problem: HouseholdProblem, best: Best, units: tuple[int, ...], rounds: int) -> None:
    """Re-solve each account in turn from ``units`` (feasible or not: after one pass every
    account's own list fits its own money), offering each result to ``best``."""
    for _ in range(rounds):
        before = units
        for account in range(problem.accounts):
            sub, own = _account_problem(problem, units, account)
            if not sub.items:
                continue
            solution = solve(sub, max_nodes=BLOCK_NODES)
            if solution is None:
                continue
            trial = list(units)
            for i, q in zip(own, solution.units, strict=True):
                trial[i] = q
            units = tuple(trial)
            best.offer(units)
        if units == before:
            return


def block_descent(problem: HouseholdProblem, best: Best, rounds: int = 4) -> None:
    """Improve ``best`` by re-solving each account exactly with the others' trades fixed, in
    turn, from two starts: no trade, and the household solved as one pool of money (the
    single-portfolio engine over every account's listings with their money together: a plan
    for the whole household that the first pass then makes fit each account's own money)."""
    starts = [(0,) * len(problem.items)]
    pooled = solve(problem.base, max_nodes=BLOCK_NODES) if problem.items else None
    if pooled is not None:
        starts.append(pooled.units)
    for start in starts:
        _descend(problem, best, start, rounds)


def polish(problem: HouseholdProblem, best: Best, rounds: int = 4) -> None:
    """The block descent from ``best``'s list (one the search stopped with)."""
    if best.units is not None:
        _descend(problem, best, best.units, rounds)
