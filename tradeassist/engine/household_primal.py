"""Good household lists fast: the incumbent the exact search starts from, and the polish of
a list it stops with.

* The block descent: each account re-solved exactly by the single-portfolio engine with the
  other accounts' trades fixed (their spends in the sleeve values, their fees out of the total,
  their sales out of the turnover), in turn, until no account changes: once from no trade, once
  from the household solved as one pool of money.
* Moves (``move_descent``): money from one line of an account to another (or from its idle
  cash into one line), by about what evens the two sleeves' gaps.
* Swaps (``swap_descent``): two accounts exchange some of what they trade in two sleeves, so
  the sleeves stay where they were and each account's money is used differently.

Every list is scored exactly (``HouseholdProblem.evaluate``); only a better one is kept.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import replace
from fractions import Fraction

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
        # The block descent's account solves, by what they depend on: a descent that ends
        # re-solves every account with the others unchanged, and the kicks repeat solves too.
        self.block_solutions: dict[tuple[object, ...], tuple[int, ...] | None] = {}

    def offer(self, units: tuple[int, ...]) -> bool:
        found = self.problem.evaluate(units)
        if found is None:
            return False
        if self.found is not None and self.units is not None:
            head = (found.objective, found.taxable_sold, found.lines)
            held = (self.found.objective, self.found.taxable_sold, self.found.lines)
            # The full key (its split distance is costly) only on a tie of the cheap part.
            if head > held or (
                head == held
                and self.problem.order_key(units, found) >= self.problem.order_key(self.units, self.found)
            ):
                return False
        self.units, self.found = units, found
        return True


# --------------------------------------------------------------------------------------------
# The block descent: one account at a time, exactly, with the others fixed
# --------------------------------------------------------------------------------------------
def _account_problem(
    problem: HouseholdProblem, units: tuple[int, ...], account: int
) -> tuple[AllocationProblem, tuple[int, ...]]:
    base = problem.base
    values = list(base.values)
    others_fees = sold = 0
    for index, (item, q) in enumerate(zip(base.items, units, strict=True)):
        if q and problem.account_of[index] != account:
            values[item.sleeve] += q * item.price
            others_fees += problem.fees[problem.account_of[index]]
            sold += max(0, -q * item.price)
    own = problem.account_items[account]
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


def _descend(
    problem: HouseholdProblem, best: Best, units: tuple[int, ...], rounds: int, first: int = 0
) -> None:
    """Re-solve each account in turn, from account ``first``, from ``units`` (feasible or not:
    after one pass every account's own list fits its own money), offering each result to
    ``best``."""
    order = [(first + k) % problem.accounts for k in range(problem.accounts)]
    for _ in range(rounds):
        before = units
        for account in order:
            sub, own = _account_problem(problem, units, account)
            if not sub.items:
                continue
            solved = _solve_account(best, account, sub)
            if solved is None:
                continue
            trial = list(units)
            for i, q in zip(own, solved, strict=True):
                trial[i] = q
            units = tuple(trial)
            best.offer(units)
        if units == before:
            return


def _solve_account(best: Best, account: int, sub: AllocationProblem) -> tuple[int, ...] | None:
    """The account's units in the exact solution of ``sub`` (None: none found), solved once per
    distinct sub-problem: it depends on the others' trades only through the sleeve values, the
    total and the turnover left."""
    key = (account, sub.values, sub.total, sub.turnover_cap)
    if key not in best.block_solutions:
        solution = solve(sub, max_nodes=BLOCK_NODES)
        best.block_solutions[key] = None if solution is None else solution.units
    return best.block_solutions[key]


def block_descent(problem: HouseholdProblem, best: Best, rounds: int = 4) -> None:
    """Improve ``best`` by re-solving each account exactly with the others' trades fixed, in
    turn, from no trade (once with each account first) and from the household solved as one
    pool of money (the single-portfolio engine over every account's listings with their money
    together: a plan for the whole household that the first pass then makes fit each account's
    own money)."""
    nothing = (0,) * len(problem.items)
    for first in range(problem.accounts):
        # From no trade, each account first in turn: the first account solved alone takes on
        # the whole rebalance, and which account that is shapes where the descent ends.
        _descend(problem, best, nothing, rounds, first)
    pooled = solve(problem.base, max_nodes=BLOCK_NODES) if problem.items else None
    if pooled is not None:
        _descend(problem, best, pooled.units, rounds)


def kicks(problem: HouseholdProblem, best: Best, rounds: int) -> None:
    """From the best list, each account's trades undone in turn and the descent run again, the
    other accounts first: they may take over part of its work and leave it a better share."""
    if best.units is None or problem.accounts < 2:
        return
    for account in range(problem.accounts):
        assert best.units is not None
        kicked = tuple(0 if problem.account_of[i] == account else q for i, q in enumerate(best.units))
        _descend(problem, best, kicked, rounds, (account + 1) % problem.accounts)


def improve(problem: HouseholdProblem, best: Best, rounds: int = 3, descent_rounds: int = 4) -> None:
    """From ``best``'s list, in turn: the block descent, the kicks, then moves and swaps
    (``swap_descent``); again while a round improves, at most ``rounds`` times."""
    for _ in range(rounds):
        if best.found is None or best.units is None:
            return
        before = best.found.objective
        _descend(problem, best, best.units, descent_rounds)
        kicks(problem, best, descent_rounds)
        swap_descent(problem, best)
        if best.found.objective == before:
            return


# --------------------------------------------------------------------------------------------
# Moves: money from one line to another within an account, scored exactly
# --------------------------------------------------------------------------------------------
def _sleeve_gaps(problem: HouseholdProblem, units: tuple[int, ...]) -> list[Fraction]:
    """Each sleeve's value after the list minus its target value (of the total after fees), in
    money units."""
    base = problem.base
    values = [Fraction(v) for v in base.values]
    fees_paid = 0
    for index, (item, q) in enumerate(zip(base.items, units, strict=True)):
        if q:
            values[item.sleeve] += q * item.price
            fees_paid += problem.fees[problem.account_of[index]]
    total = base.total - fees_paid
    return [v - Fraction(t * total, base.target_scale) for v, t in zip(values, base.targets, strict=True)]


def _steps(amount: Fraction, price: int) -> set[int]:
    """Whole units nearest to ``amount`` of money at ``price``, either side."""
    units = amount / price
    return {math.floor(units), math.ceil(units)}


def _ladder(amount: Fraction, price: int) -> set[int]:
    """The whole units nearest to ``amount`` of money at ``price``, and a half, a quarter and an
    eighth of them, and one unit: a rule (the money left, the gains allowance, the turnover)
    may stop the move short of the even point."""
    units = amount / price
    steps = _steps(amount, price)
    for part in (2, 4, 8):
        steps.add(int(units / part))
    if units:
        steps.add(1 if units > 0 else -1)
    return steps


def _candidates(
    problem: HouseholdProblem, units: tuple[int, ...], gaps: list[Fraction], i: int, j: int | None
) -> Iterator[tuple[int, ...]]:
    """Lists that move money into item ``i``'s sleeve out of item ``j``'s (or out of the
    account's idle cash when ``j`` is None), by about what evens the two sleeves' gaps, and
    lists with line ``i`` closed and its money put in ``j`` (of the same sleeve or another)."""
    items = problem.items
    si = items[i].sleeve
    if j is None:
        sizes = _ladder(-gaps[si], items[i].price) | {-units[i]}
    elif items[j].sleeve == si:
        sizes = {-units[i]}  # two lines of one sleeve: one closed, its money to the other
    else:
        sizes = _ladder((gaps[items[j].sleeve] - gaps[si]) / 2, items[i].price) | {-units[i]}
    for di in sizes:
        if di == 0:
            continue
        qi = units[i] + di
        if j is None:
            trial = list(units)
            trial[i] = qi
            yield tuple(trial)
            continue
        for dj in _steps(Fraction(-di * items[i].price), items[j].price) | {-units[j]}:
            trial = list(units)
            trial[i], trial[j] = qi, units[j] + dj
            yield tuple(trial)


def move_descent(problem: HouseholdProblem, best: Best, passes: int = 20) -> None:
    """Improve ``best`` by moving money between two lines of one account (or from its idle cash
    into one line), whole units either way of what evens the two sleeves' gaps, each list scored
    exactly; every improvement is kept and the moves start again from it, until none improves.

    The block descent re-solves one account with the others fixed and stops where no single
    account can do better alone; these moves find what the exact search would reach given the
    time: a line's size traded against another's, a line opened or closed."""
    if best.units is None:
        return
    for _ in range(passes):
        improved = False
        for own in problem.account_items:
            for i in own:
                units = best.units
                gaps = _sleeve_gaps(problem, units)
                for j in [None, *own]:
                    if j == i:
                        continue
                    if any(best.offer(trial) for trial in _candidates(problem, units, gaps, i, j)):
                        improved = True
                        units = best.units
                        gaps = _sleeve_gaps(problem, units)
        if not improved:
            return


SWAP_EVALUATIONS = 20_000  # the most swapped lists one swap descent scores


def _swaps(problem: HouseholdProblem, units: tuple[int, ...]) -> Iterator[tuple[int, ...]]:
    """Two accounts swap some of what they trade in two sleeves: account A moves money from its
    line ``a_from`` (sleeve x) to its line ``a_to`` (sleeve y), account B about the same money
    from ``b_from`` (y) to ``b_to`` (x), so the sleeves stay about where they were while each
    account's own money is spent differently: a sale taken over by the other account, say, or
    a purchase moved to where it leaves less cash idle. A's lines are ones the list trades; B's
    may be new."""
    items, account_of = problem.items, problem.account_of
    traded = [t for t, q in enumerate(units) if q]
    everything = range(len(items))
    for a_from in traded:
        for a_to in traded:
            if account_of[a_to] != account_of[a_from] or items[a_to].sleeve == items[a_from].sleeve:
                continue
            for b_to in everything:
                if account_of[b_to] == account_of[a_from] or items[b_to].sleeve != items[a_from].sleeve:
                    continue
                for b_from in everything:
                    if account_of[b_from] != account_of[b_to] or items[b_from].sleeve != items[a_to].sleeve:
                        continue
                    yield from _swap(problem, units, (a_from, a_to, b_to, b_from))


def _sizes(units: int) -> list[int]:
    """How many units of a line a swap moves, either way: 1, 2, 4, ... and all of them."""
    sizes, d = {abs(units)}, 1
    while d < abs(units):
        sizes.add(d)
        d *= 2
    return sorted(sizes | {-x for x in sizes})


def _swap(
    problem: HouseholdProblem, units: tuple[int, ...], lines: tuple[int, int, int, int]
) -> Iterator[tuple[int, ...]]:
    a_from, a_to, b_to, b_from = lines
    prices = [problem.items[t].price for t in lines]
    for d in _sizes(units[a_from]):
        moved = Fraction(d * prices[0])
        for to_b in _steps(moved, prices[2]):
            for to_a in _steps(moved, prices[1]):
                for from_b in _steps(Fraction(to_b * prices[2]), prices[3]):
                    trial = list(units)
                    trial[a_from] -= d
                    trial[a_to] += to_a
                    trial[b_to] += to_b
                    trial[b_from] -= from_b
                    yield tuple(trial)


def swap_descent(problem: HouseholdProblem, best: Best, evaluations: int = SWAP_EVALUATIONS) -> None:
    """``move_descent``, then swaps between accounts (``_swaps``), until neither improves or
    ``evaluations`` swapped lists have been scored (a count, not a clock: the same inputs give
    the same list)."""
    left = evaluations
    while left > 0:
        move_descent(problem, best)
        if best.units is None:
            return
        improved = False
        for trial in itertools.islice(_swaps(problem, best.units), left):
            left -= 1
            if best.offer(trial):
                improved = True
                break
        if not improved:
            return
