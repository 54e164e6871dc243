"""Exact whole-unit rebalancing: branch and bound over listings, one run per number of lines.

The problem (integer units in ``problem.py``). Choose whole units ``q_i`` per tradeable
listing such that

* each executed line (``q_i != 0``) has consideration ``|q_i| * p_i >= min_trade`` and, under
  ``max_trade_base``, at most that; ``never_buy`` / ``never_sell`` names take no buy / sell;
* ``sum_i q_i * p_i + fee * K <= money available`` (``K`` executed lines; sells fund buys);
* ``0 <= q_i`` where sells are not allowed, ``-floor(units held) <= q_i`` where they are;
* the sell consideration in total is at most ``max_turnover * T`` (``T`` the total before);
* unless the policy allows it, no sleeve both sells one listing and buys another;
* no sleeve has more executed lines than the policy's ``max_lines_per_sleeve`` (if set);
* no sleeve with a positive target that holds value is sold to nothing;

minimising ``J = sum_s (w_s - t_s)**2 + K * (P / T)**2``: the weights taken over post-trade
holdings plus the cash left after fees, ``P`` the policy's line penalty (a line is worth its
place only if it corrects about ``P`` of misallocation; ``P = 0`` is the plain squared drift).
Ties go to fewer lines (so lower fees), then the trade list closest to the policy's constituent
split (sum over listings of ``(a_i - share_i * A_s)**2``, ``a_i`` a listing's signed
consideration, ``A_s`` its sleeve's net), then the smallest vector of units in listing-key
order. That order is total, so the answer is unique and does not depend on the search.

Method. The search is split by the number of lines ``K``: with ``K`` fixed, the total after
fees ``T_K``, every sleeve's target ``t_s * T_K``, the money left for trades and the penalty
are constants, and the objective is the squared drift ``N`` over ``T_K**2``. Each such run is
a depth-first branch and bound, sleeve by sleeve: a sleeve's completions with no line, one
line or two are listed and visited best first, the rest branched listing by listing, and the
last sleeve completed directly (``optimizer_tree.py`` and ``optimizer_completions.py`` say
how). Every hard rule is a constraint of the ranges or a check when a sleeve closes, so no
answer ever breaks one.

The bound at a node is Lagrangian, over the budget's multiplier (the water level ``h``) and
the turnover cap's (``g``), with whole units inside the untouched sleeves and the lines shared
out exactly between them (``optimizer_bounds.py``, which explains it); a node is pruned as
soon as one level lifts its bound above the best list (or to it, with more lines). Leaves are
exact, every comparison is between integers, ties are real ties.

Runs are taken best first by root bound, each sharpened before it is searched, and skipped
when the root cannot tie the best list (``optimizer_runs.py``); with a positive penalty no
run has more lines than ``J(best) / (P / T)**2``, and a buy-only search no more than the
money pays for. Sleeves are searched in order of their relaxed spend, smallest first,
except that sleeves no single listing can serve (two lines or more) go last, where their many
whole-unit combinations absorb what the single-line sleeves leave.

Nodes: every node visited, every completion listed and every 16 counts tried in a pair loop
count, so ``max_nodes`` bounds the work (a count, not a clock: the answer is deterministic).
``solve`` starts from the better of "no trades" (when affordable) and ``warm_start``'s list and
gives the branch and bound a tenth of the nodes (at least 20,000); if that does not finish,
``primal.large_neighbourhood`` (every pair of sleeves re-optimised exactly with the rest
fixed, up to a third of the nodes) and ``primal.local_search`` improve the list, and the branch
and bound starts again from it with what is left. At the limit it returns the best list found
with ``proven_optimal=False`` and the least root bound of the runs not finished, so the gap is
visible.

Cost (``bench/bench_engine.py``, 50 listings in 10 sleeves, £100 line penalty, CPU time on a
shared, busy machine). Monthly allocations (£500-£2,000): every case proven, medians 20-40 ms,
p95 under 200 ms, a median of 44-211 nodes. Rebalances selling one sleeve up 60%: every case
proven, median about 40 ms, a few hundred nodes. Rebalances where every sleeve drifted up to
40%: every case proven, median about 50 ms, p95 about 350 ms; the hardest (three or four
sleeves each selling two listings, 13-14 lines) take up to 19,000 nodes. Before (the
continuous fixed-charge bound, no penalty) no rebalance was proven in 200,000 nodes (about
10 s each) and its lists held a median of 20 lines. With ``line_penalty_base: "0"`` (the plain
squared drift) rebalances still meet the node limit (about 5 s each): the list returned is
within 0.4% of the reported bound, with 20-24 lines. Binding hard rules cost more: a 1%
turnover cap or a £1,500 max trade on the rebalance is proven in under 3 s; a 3% cap took
71,000 nodes (about 20 s). ``--scip``: the independent MIQP oracle agrees exactly on monthly
allocations (1-4 s each); on the rebalances it does not finish in 60 s, and its best list is
14 to 1,400 times worse.

The code, by concern: this module holds the public ``solve`` and ``Solution``, the search
order and the primal improvement between the two branch and bounds; ``optimizer_runs.py`` the
runs and their root bounds (``_Search``, built on ``optimizer_tree.py``'s branching,
``optimizer_completions.py``'s listed completions, ``optimizer_bounds.py``'s bound and
``optimizer_state.py``'s data); ``optimizer_levels.py`` the searches over the bound's levels;
``optimizer_incumbent.py`` the incumbent, the total order and the node counter.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from fractions import Fraction

from . import primal
from .optimizer_incumbent import _better, _Counter, _Incumbent, _incumbent, _NodeLimit
from .optimizer_runs import _Search
from .problem import AllocationProblem

DEFAULT_MAX_NODES = 200_000
FIRST_TRY_MIN = 20_000  # the first branch and bound's share of the nodes: a tenth, at least this
LNS_NODES = 500  # most nodes one large-neighbourhood re-optimisation may take


@dataclass(frozen=True)
class Solution:
    units: tuple[int, ...]  # per problem item
    objective: Fraction  # J: squared drift after the trades plus the line penalty, exact
    lines: int
    net_spend: int  # money units
    proven_optimal: bool
    nodes: int
    bound: Fraction  # no trade list does better than this


def _search_order(problem: AllocationProblem) -> list[int]:
    """Sleeves by relaxed spend (smallest first), dear listings first within a sleeve."""
    spends = problem.relaxed_spends(*problem.sleeve_ranges()) or [Fraction(0)] * len(problem.sleeves)
    by_sleeve: dict[int, list[int]] = {}
    for index, item in enumerate(problem.items):
        by_sleeve.setdefault(item.sleeve, []).append(index)
    ts = problem.target_scale

    def one_line_short(s: int) -> bool:
        """Does no single listing reach the sleeve's relaxed spend? Then it needs two lines or
        more: many whole-unit combinations, fine enough to absorb what the others leave."""
        spend = spends[s]
        if spend < 0:
            return all(
                ts * item.max_sell * item.price < -spend for item in (problem.items[i] for i in by_sleeve[s])
            )
        return all(
            ts * item.max_buy * item.price < spend for item in (problem.items[i] for i in by_sleeve[s])
        )

    order: list[int] = []
    for sleeve in sorted(by_sleeve, key=lambda s: (one_line_short(s), abs(spends[s]), s)):
        order.extend(sorted(by_sleeve[sleeve], key=lambda i: (-problem.items[i].price, i)))
    return order


def solve(problem: AllocationProblem, *, max_nodes: int = DEFAULT_MAX_NODES) -> Solution | None:
    """The optimal whole-unit trade list, or None when nothing (not even no trade) is affordable.

    Three phases share the node budget: the branch and bound from the better of no trade and
    the warm start, with a tenth of it; if that does not finish, the primal heuristics (pairs
    of sleeves re-optimised exactly, then local search with exchanges) with up to a third; then
    the branch and bound again, from the best list so far, with what is left."""
    from .warm_start import warm_start

    counter = _Counter(max_nodes)
    n = len(problem.items)
    best = _incumbent(problem, (0,) * n)
    warm = warm_start(problem)
    if warm is not None:
        candidate = _incumbent(problem, warm)
        if candidate is not None and (best is None or _better(problem, candidate, best)):
            best = candidate
    order = _search_order(problem)
    counter.limit = min(max_nodes, max(FIRST_TRY_MIN, max_nodes // 10))
    search = _Search(problem, counter, order, best=best)
    proven = True
    try:
        search.run_all()
    except _NodeLimit:
        proven = False
    if not proven and search.best is not None and counter.nodes < max_nodes:
        best = _improve(problem, counter, order, search.best, min(max_nodes, counter.nodes + max_nodes // 3))
        counter.limit = max_nodes
        search = _Search(problem, counter, order, best=best)
        proven = True
        try:
            search.run_all()
        except _NodeLimit:
            proven = False
    best = search.best
    if best is None:
        return None
    objective = problem.objective_of(best.numerator, best.total)
    bound = objective
    if not proven:
        lower = search.lower_bound()
        if lower is not None:
            bound = min(bound, lower)
    return Solution(
        units=best.units,
        objective=objective,
        lines=best.lines,
        net_spend=best.net,
        proven_optimal=proven,
        nodes=min(counter.nodes, max_nodes + 1),
        bound=bound,
    )


def _improve(
    problem: AllocationProblem, counter: _Counter, order: list[int], best: _Incumbent, limit: int
) -> _Incumbent:
    """The primal heuristics, within ``limit`` nodes on ``counter``: every pair of sleeves
    re-optimised exactly with the rest fixed (each with at most ``LNS_NODES`` nodes, numbers of
    lines within one of the best list's), then local search with exchanges."""
    sleeves = list(dict.fromkeys(problem.items[i].sleeve for i in order))
    holder = [best]

    def reoptimise(pair: tuple[int, ...], units: tuple[int, ...]) -> tuple[int, ...] | None:
        current = holder[0]
        if counter.nodes >= limit:
            raise _NodeLimit
        sub = _Counter(min(LNS_NODES, limit - counter.nodes))
        search = _Search(
            problem, sub, [i for i in order if problem.items[i].sleeve in pair], current.units, current
        )
        search.lines_window = (current.lines - 1, current.lines + 1)
        with contextlib.suppress(_NodeLimit):
            search.run_all()
        counter.nodes += min(sub.nodes, sub.limit)
        found = search.best
        if found is current or found is None or not _better(problem, found, current):
            return None
        holder[0] = found
        return found.units

    with contextlib.suppress(_NodeLimit):
        primal.large_neighbourhood(sleeves, best.units, reoptimise)
    polished = _incumbent(problem, primal.local_search(problem, holder[0].units, exchanges=True))
    if polished is not None and _better(problem, polished, holder[0]):
        holder[0] = polished
    return holder[0]
