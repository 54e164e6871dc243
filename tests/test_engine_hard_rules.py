"""The optimizer's hard rules, line penalty and bounds, as properties.

Every answer is checked twice: through ``AllocationProblem.evaluate`` (the engine's own
reference) and directly here from the portfolio, the policy and the units, written from the
policy's documentation: never_sell / never_buy names (sleeve, ticker or TICKER:EXCHANGE),
max_trade_base, max_turnover, the minimum trade, the money, one side per sleeve, lines per
sleeve, and no sleeve with a positive target sold to nothing. The objective is recomputed with
``valuation`` (squared drift after the trades) plus ``K * (P / T)**2``.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.test_engine_optimizer import exhaustive, optimizer_units, policy_for, portfolios, vector_count
from tradeassist.engine import optimizer
from tradeassist.engine.model import PortfolioState, Position
from tradeassist.engine.optimizer import DEFAULT_MAX_NODES, solve
from tradeassist.engine.problem import AllocationProblem, build_problem
from tradeassist.engine.valuation import apply_trades, objective, total_value
from tradeassist.policy import Policy

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import bench_engine


def named(names: tuple[str, ...], position: Position) -> bool:
    own = {position.sleeve.upper(), position.ticker.upper(), f"{position.ticker}:{position.exchange}".upper()}
    return any(name.upper() in own for name in names)


def broken_rules(state: PortfolioState, policy: Policy, sells: bool, trades: dict[int, int]) -> list[str]:
    """Every rule the trades (signed units per position index) break, checked from scratch."""
    problems = []
    total = Fraction(total_value(state))
    money = Fraction(state.cash_gbp + state.contribution_gbp - policy.cash_buffer_base)
    net = sold = Fraction(0)
    sides: dict[str, set[bool]] = {}
    per_sleeve: dict[str, int] = {}
    for index, q in trades.items():
        if not q:
            continue
        position = state.positions[index]
        assert position.price_gbp is not None
        amount = Fraction(position.price_gbp) * abs(q)
        if not position.can_trade:
            problems.append(f"{position.label}: not tradeable")
        if amount < Fraction(policy.min_trade_base):
            problems.append(f"{position.label}: below the minimum trade")
        if policy.max_trade_base is not None and amount > Fraction(policy.max_trade_base):
            problems.append(f"{position.label}: above max_trade_base")
        if q > 0 and named(policy.never_buy, position):
            problems.append(f"{position.label}: bought but never_buy")
        if q < 0:
            if not sells:
                problems.append(f"{position.label}: sold where the kind may not sell")
            if named(policy.never_sell, position):
                problems.append(f"{position.label}: sold but never_sell")
            if -q > int(position.units):
                problems.append(f"{position.label}: sells more whole units than held")
            sold += amount
        net += Fraction(position.price_gbp) * q
        sides.setdefault(position.sleeve, set()).add(q > 0)
        per_sleeve[position.sleeve] = per_sleeve.get(position.sleeve, 0) + 1
    lines = sum(1 for q in trades.values() if q)
    if net + Fraction(policy.fee_per_trade_base) * lines > money:
        problems.append("spends more than the money available")
    if sold > Fraction(policy.max_turnover) * total:
        problems.append("sells more than max_turnover of the base")
    if not policy.sell_and_buy_in_same_sleeve and any(len(s) > 1 for s in sides.values()):
        problems.append("a sleeve both sells and buys")
    if policy.max_lines_per_sleeve is not None and any(
        n > policy.max_lines_per_sleeve for n in per_sleeve.values()
    ):
        problems.append("too many lines in a sleeve")
    before: dict[str, Fraction] = {}
    after: dict[str, Fraction] = {}
    for index, position in enumerate(state.positions):
        if position.valued:
            assert position.price_gbp is not None
            before[position.sleeve] = before.get(position.sleeve, Fraction(0)) + Fraction(position.value_gbp)
            units = position.units + trades.get(index, 0)
            after[position.sleeve] = after.get(position.sleeve, Fraction(0)) + Fraction(units) * Fraction(
                position.price_gbp
            )
    for sleeve, value in before.items():
        if value > 0 and policy.sleeve_targets.get(sleeve, 0) > 0 and after[sleeve] <= 0:
            problems.append(f"sleeve {sleeve} sold to nothing")
    return problems


def plain_objective(state: PortfolioState, policy: Policy, trades: dict[int, int]) -> Fraction:
    """J from the valuation module: squared drift after the trades plus K (P / T)**2."""
    after = apply_trades(
        state, {state.positions[i].key: q for i, q in trades.items() if q}, policy.fee_per_trade_base
    )
    lines = sum(1 for q in trades.values() if q)
    base = Fraction(total_value(state))
    return objective(after, policy) + lines * (Fraction(policy.line_penalty) / base) ** 2


def trades_of(problem: AllocationProblem, units: tuple[int, ...]) -> dict[int, int]:
    return {item.position: q for item, q in zip(problem.items, units, strict=True) if q}


@st.composite
def medium(draw: st.DrawFn, most: int = 14) -> tuple[PortfolioState, Policy, bool]:
    """8-``most`` listings in 2-5 sleeves, about £20,000, drifted; every hard rule drawn."""
    rng = random.Random(draw(st.integers(0, 10**9)))
    codes = [f"S{i}" for i in range(rng.randint(2, 5))]
    cuts = sorted(rng.sample(range(5, 96), len(codes) - 1))
    parts = [b - a for a, b in zip([0, *cuts], [*cuts, 100], strict=True)]
    targets = {c: str(Decimal(p) / 100) for c, p in zip(codes, parts, strict=True)}
    positions = []
    for i in range(rng.randint(min(8, most), most)):
        sleeve = codes[i] if i < len(codes) else rng.choice(codes)
        if rng.random() < 0.5:
            price = Decimal(rng.randint(300_00, 15_000_00)) / 10_000
        else:
            price = Decimal(rng.randint(5_00, 250_00)) / 100
        value = Decimal(20_000) * Decimal(targets[sleeve]) * Decimal(str(rng.uniform(0.3, 1.7))) / 3
        positions.append(Position(f"T{i:02d}", "LSE", sleeve, (value / price).to_integral_value(), price))
    sells = rng.random() < 0.7
    names = [*codes, *(p.label for p in positions), *(p.ticker for p in positions)]
    policy = policy_for(
        targets,
        min_trade=rng.choice(["25", "50", "100"]),
        fee=rng.choice(["0", "1.50", "9.95"]),
        buffer=rng.choice(["0", "50"]),
        sells=sells,
        switches=rng.random() < 0.5,
        lines_per_sleeve=rng.choice([None, None, 1, 2]),
        penalty=rng.choice([None, None, "0", "40", "250"]),
        never_sell=tuple(rng.sample(names, rng.choice([0, 0, 1, 2]))),
        never_buy=tuple(rng.sample(names, rng.choice([0, 0, 1]))),
        max_trade=rng.choice([None, None, "300", "1000"]),
        turnover=rng.choice(["1", "0.25", "0.05", "0.01"]),
    )
    cash = Decimal(rng.randint(0, 300_000)) / 100
    state = PortfolioState(
        cash_gbp=cash, contribution_gbp=Decimal(rng.choice([0, 500])), positions=tuple(positions)
    )
    return state, policy, sells


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(medium())
def test_every_answer_keeps_every_hard_rule(case) -> None:
    state, policy, sells = case
    problem = build_problem(state, policy, sells=sells)
    solution = solve(problem, max_nodes=20_000)
    if solution is None:
        assert problem.evaluate([0] * len(problem.items)) is None
        return
    found = problem.evaluate(solution.units)
    assert found is not None, "evaluate refuses the optimizer's own answer"
    assert found.objective == solution.objective and found.lines == solution.lines
    trades = trades_of(problem, solution.units)
    assert broken_rules(state, policy, sells, trades) == []
    assert plain_objective(state, policy, trades) == solution.objective
    assert solution.bound <= solution.objective


@contextmanager
def branching_every_listing() -> Iterator[None]:
    optimizer._Search.shortcuts = False
    try:
        yield
    finally:
        optimizer._Search.shortcuts = True


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(medium(most=9))
def test_listing_sleeves_whole_gives_the_answer_branching_gives(case) -> None:
    """``enter`` / ``finish`` (whole sleeves listed, the last completed directly) against plain
    branching on every listing: the same list, where exhaustive search is out of reach."""
    state, policy, sells = case
    problem = build_problem(state, policy, sells=sells)
    fast = solve(problem, max_nodes=50_000)
    with branching_every_listing():
        plain = solve(problem, max_nodes=100_000)
    assume(fast is None or (fast.proven_optimal and plain is not None and plain.proven_optimal))
    if fast is None:
        assert plain is None
        return
    assert plain is not None
    assert (fast.units, fast.objective) == (plain.units, plain.objective)


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow]
)
@given(portfolios())
def test_penalty_zero_is_the_plain_squared_drift_optimum(case) -> None:
    """line_penalty_base "0": the optimum of the objective the engine had before the penalty
    (the exhaustive reference with no penalty), scored by the valuation module alone."""
    state, policy, sells = case
    plain = policy.model_copy(update={"line_penalty_base": Decimal(0)})
    assume(vector_count(state, plain, sells) <= 2500)
    reference = exhaustive(state, plain, sells)
    units, solution = optimizer_units(state, plain, sells)
    if reference is None:
        assert solution is None
        return
    assert solution is not None and solution.proven_optimal
    assert units == reference[1] and solution.objective == reference[0][0]
    problem = build_problem(state, plain, sells=sells)
    after = apply_trades(
        state,
        {state.positions[i].key: q for i, q in trades_of(problem, solution.units).items()},
        plain.fee_per_trade_base,
    )
    assert solution.objective == objective(after, plain)


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow]
)
@given(portfolios(), st.integers(1, 40))
def test_the_bound_never_exceeds_the_optimum(case, nodes: int) -> None:
    """Also when the search stops early: the bound it reports is below every trade list."""
    state, policy, sells = case
    assume(vector_count(state, policy, sells) <= 2500)
    reference = exhaustive(state, policy, sells)
    assume(reference is not None)
    assert reference is not None
    problem = build_problem(state, policy, sells=sells)
    cut = solve(problem, max_nodes=nodes)
    assert cut is not None
    assert cut.bound <= reference[0][0] <= cut.objective
    assert problem.evaluate(cut.units) is not None


def test_hard_rules_that_bind_change_the_answer_and_hold() -> None:
    """Sleeve A £5,000 over target: with a 5% turnover cap, never_sell on A's largest holding and
    a £600 max trade, the rebalance sells less, elsewhere and in smaller lines, still proven."""
    prices = ["12.50", "48.10", "7.3250", "101.00", "33.33", "64.20", "18.75", "250.00", "5.5500"]
    sleeves = "AAABBBCCC"
    held = [480, 140, 820, 30, 60, 30, 100, 8, 360]
    state = PortfolioState(
        cash_gbp=Decimal("180"),
        positions=tuple(
            Position(f"L{i}", "LSE", sleeve, Decimal(units), Decimal(price))
            for i, (sleeve, units, price) in enumerate(zip(sleeves, held, prices, strict=True))
        ),
    )
    targets = {"A": "0.5", "B": "0.3", "C": "0.2"}
    free = policy_for(targets, sells=True, switches=True, penalty=None)
    tied = policy_for(
        targets,
        sells=True,
        switches=True,
        penalty=None,
        turnover="0.05",
        never_sell=("L0:LSE",),
        max_trade="600",
    )
    found = {}
    for label, policy in (("free", free), ("tied", tied)):
        problem = build_problem(state, policy, sells=True)
        solution = solve(problem)
        assert solution is not None and solution.proven_optimal
        trades = trades_of(problem, solution.units)
        assert broken_rules(state, policy, True, trades) == []
        found[label] = (solution, trades)
    (loose, free_trades), (tight, tied_trades) = found["free"], found["tied"]
    assert tight.objective > loose.objective
    assert any(abs(q) * Decimal(prices[i]) > 600 for i, q in free_trades.items())  # the cap binds
    assert all(abs(q) * Decimal(prices[i]) <= 600 for i, q in tied_trades.items())
    assert tied_trades.get(0, 0) >= 0


@pytest.mark.parametrize("seed", [0, 5])
def test_a_fifty_listing_rebalance_is_proven_within_the_default_node_limit(seed: int) -> None:
    """The bench's quarterly rebalance (50 listings, one sleeve +60%, sells allowed, the default
    £100 line penalty): proven optimal by node count, not by a clock."""
    state = bench_engine.portfolio(seed, Decimal(0), shocked=bench_engine.SLEEVES[2 + seed % 8])
    problem = build_problem(state, bench_engine.policy(), sells=True)
    solution = solve(problem)
    assert solution is not None and solution.proven_optimal
    assert solution.nodes <= DEFAULT_MAX_NODES
    assert solution.bound == solution.objective
    assert broken_rules(state, bench_engine.policy(), True, trades_of(problem, solution.units)) == []
