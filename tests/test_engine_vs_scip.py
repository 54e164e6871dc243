"""The engine's exact branch and bound against an independent MIQP solved by SCIP.

First the oracle itself is checked against plain enumeration of every trade vector on tiny
portfolios with every rule in play, so a disagreement below is the engine's, not the MIQP's.

Seeded random portfolios (4-15 listings in 2-5 sleeves, prices with 2-4 decimals, some
pence-like, random holdings, cash, contributions, fees, minimum trades and hard rules). For
each, the engine's trade list must be feasible by the specification (checked by the
oracle's own exact code), its reported objective must equal the oracle's exact re-score of
it, and that must equal the objective of SCIP's optimum, exactly. The oracle
(``tests/support/miqp_oracle.py``) never reads the engine's problem, search or valuation.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from decimal import Decimal

import pytest

pytest.importorskip("pyscipopt")

from tests.support.miqp_oracle import exact_objective, scip_optimum, violations
from tradeassist.engine.model import PortfolioState, Position
from tradeassist.engine.optimizer import solve
from tradeassist.engine.problem import build_problem
from tradeassist.policy import Policy, parse_policy

CASES = 48
TINY_CASES = 24
SCIP_SECONDS = 20.0


@dataclass(frozen=True)
class Case:
    label: str  # the seed, or the name of a hand-made case
    state: PortfolioState
    policy: Policy
    sells: bool
    plain: bool  # no line penalty and no hard rule: the objective the engine had before them

    def describe(self) -> str:
        p = self.policy
        rules = {
            "sells": self.sells,
            "fee": str(p.fee_per_trade_base),
            "min_trade": str(p.min_trade_base),
            "buffer": str(p.cash_buffer_base),
            "line_penalty": str(p.line_penalty),
            "never_sell": list(p.never_sell),
            "never_buy": list(p.never_buy),
            "max_trade": None if p.max_trade_base is None else str(p.max_trade_base),
            "max_turnover": str(p.max_turnover),
            "switches": p.sell_and_buy_in_same_sleeve,
            "max_lines_per_sleeve": p.max_lines_per_sleeve,
            "targets": {k: str(v) for k, v in p.sleeve_targets.items()},
        }
        positions = [
            f"{x.ticker}/{x.sleeve} {x.units}u @{x.price_gbp}"
            + ("" if x.tradeable else " locked")
            + (" stale" if x.price_stale else "")
            for x in self.state.positions
        ]
        return (
            f"case {self.label}: cash={self.state.cash_gbp} contribution={self.state.contribution_gbp} "
            f"{rules} positions={positions}"
        )


def _price(rng: random.Random, sells: bool) -> Decimal:
    """2-4 decimals; some pence-like (fewer where selling: fine prices make rebalances slow)."""
    places = rng.choice((2, 3, 4))
    if rng.random() < (0.1 if sells else 0.3):  # a GBX quote of 40p-£9.99 with 2 decimals of pence
        return Decimal(rng.randint(4000, 99999)) / 10**4
    low, high = ((20 if sells else 5), 400) if rng.random() < 0.7 else (400, 1500)
    return Decimal(rng.randint(low * 10**places, high * 10**places)) / 10**places


def _targets(rng: random.Random, sleeves: list[str]) -> dict[str, str]:
    cuts = sorted(rng.sample(range(1, 100), len(sleeves) - 1))
    parts = [b - a for a, b in zip([0, *cuts], [*cuts, 100], strict=True)]
    if rng.random() < 0.2:  # one sleeve held at target 0
        parts[0], parts[-1] = 0, parts[0] + parts[-1]
    return {s: str(Decimal(p) / 100) for s, p in zip(sleeves, parts, strict=True)}


def make_case(seed: int) -> Case:
    rng = random.Random(seed)
    plain = seed % 3 == 0
    sells = rng.random() < 0.5
    sleeve_count = rng.randint(2, 5)
    sleeves = [f"S{i}" for i in range(sleeve_count)]
    # Rebalances that may sell are the engine's hard case: keep them small (see optimizer.py).
    listings = rng.randint(max(4, sleeve_count), 9 if sells else 15)
    # Sometimes a held sleeve the policy does not target (target 0).
    targeted = sleeves[:-1] if sleeve_count > 2 and rng.random() < 0.15 else sleeves
    positions = []
    for i in range(listings):
        sleeve = sleeves[i] if i < sleeve_count else rng.choice(sleeves)
        price = _price(rng, sells)
        held = rng.random() < 0.6
        units = Decimal(rng.randint(1, max(1, int(3000 / price) + 1))) if held else Decimal(0)
        if held and rng.random() < 0.15:
            units += Decimal(rng.choice(("0.5", "0.25", "0.125")))
        positions.append(
            Position(
                ticker=f"T{i:02d}",
                exchange="LSE",
                sleeve=sleeve,
                units=units,
                price_gbp=price,
                tradeable=plain or rng.random() > 0.08,
                price_stale=not plain and rng.random() < 0.06,
            )
        )
    cash = Decimal(rng.randint(0, 400000)) / 100
    contribution = Decimal(rng.choice((0, 0, 500, 1000, 2000)))
    policy: dict = {
        "sleeve_targets": _targets(rng, targeted),
        "drift_bands": {"absolute": "0.05", "relative": "0.25"},
        "min_trade_base": rng.choice(("0", "25", "50", "100", "150")),
        # Without a fee or a line penalty, lines are free and the engine's search meets a sea of
        # equally good splits (11 listings took its 200,000 nodes): the plain cases pay a fee.
        "fee_per_trade_base": rng.choice(
            ("1.50", "3.99", "9.95") if plain else ("0", "1.50", "3.99", "9.95")
        ),
        "cash_buffer_base": rng.choice(("0", "20", "50")),
        "sell_and_buy_in_same_sleeve": rng.random() < 0.5,
    }
    if rng.random() < (0.8 if sells else 0.3):
        policy["max_lines_per_sleeve"] = rng.choice((1, 1, 2))
    if plain:
        policy["line_penalty_base"] = "0"
        policy["max_turnover"] = "1"
    else:
        policy["line_penalty_base"] = rng.choice((None, None, "0", "40"))
        if policy["line_penalty_base"] is None:
            del policy["line_penalty_base"]
        turnover = rng.choice((None, "0.05", "0.1", "1"))
        if turnover is not None:
            policy["max_turnover"] = turnover
        if rng.random() < 0.35:
            policy["never_sell"] = [rng.choice((rng.choice(sleeves), f"T{rng.randrange(listings):02d}:LSE"))]
        if rng.random() < 0.35:
            policy["never_buy"] = [rng.choice((rng.choice(sleeves), f"T{rng.randrange(listings):02d}"))]
        if rng.random() < 0.35:
            policy["max_trade_base"] = rng.choice(("300", "750", "1500"))
    state = PortfolioState(cash_gbp=cash, contribution_gbp=contribution, positions=tuple(positions))
    return Case(label=f"seed {seed}", state=state, policy=parse_policy(policy), sells=sells, plain=plain)


def make_tiny_case(seed: int) -> Case:
    """3-4 dear listings, few units: small enough to enumerate every trade vector."""
    rng = random.Random(10_000 + seed)
    sleeves = ["S0", "S1", "S2"][: rng.randint(2, 3)]
    positions = []
    for i in range(rng.randint(3, 4)):
        units = Decimal(rng.choice((0, 0, 1, 2, 3, 5)))
        if units and rng.random() < 0.2:
            units += Decimal("0.5")
        positions.append(
            Position(
                ticker=f"T{i:02d}",
                exchange="LSE",
                sleeve=sleeves[i] if i < len(sleeves) else rng.choice(sleeves),
                units=units,
                price_gbp=Decimal(rng.randint(15000, 90000)) / 100,
                tradeable=rng.random() > 0.1,
                price_stale=rng.random() < 0.1,
            )
        )
    policy: dict = {
        "sleeve_targets": _targets(rng, sleeves),
        "drift_bands": {"absolute": "0.05", "relative": "0.25"},
        "min_trade_base": rng.choice(("0", "200", "400")),
        "fee_per_trade_base": rng.choice(("0", "5", "9.95")),
        "cash_buffer_base": rng.choice(("0", "50", "300")),
        "sell_and_buy_in_same_sleeve": rng.random() < 0.5,
        "line_penalty_base": rng.choice(("0", "25", "150", "400")),
        "max_turnover": rng.choice(("0.1", "0.25", "1")),
    }
    if rng.random() < 0.3:
        policy["max_lines_per_sleeve"] = 1
    if rng.random() < 0.4:
        policy["never_sell"] = [rng.choice((rng.choice(sleeves), f"T0{rng.randrange(3)}:LSE"))]
    if rng.random() < 0.4:
        policy["never_buy"] = [rng.choice((rng.choice(sleeves), f"T0{rng.randrange(3)}"))]
    if rng.random() < 0.4:
        policy["max_trade_base"] = rng.choice(("500", "1200"))
    state = PortfolioState(
        cash_gbp=Decimal(rng.randint(0, 250000)) / 100,
        contribution_gbp=Decimal(rng.choice((0, 0, 500))),
        positions=tuple(positions),
    )
    sells = rng.random() < 0.6
    return Case(label=f"tiny seed {seed}", state=state, policy=parse_policy(policy), sells=sells, plain=False)


def _two_sleeves(cash: str) -> PortfolioState:
    return PortfolioState(
        cash_gbp=Decimal(cash),
        positions=(
            Position(ticker="A", exchange="LSE", sleeve="S0", units=Decimal("10"), price_gbp=Decimal("300")),
            Position(ticker="B", exchange="LSE", sleeve="S1", units=Decimal("4"), price_gbp=Decimal("250")),
        ),
    )


# Rules that random cases rarely make bind, each in a portfolio small enough to enumerate:
# name -> (cash beside A (10 x £300, S0) and B (4 x £250, S1), may sell, policy keys).
NAMED: dict[str, tuple[str, bool, dict]] = {
    # S1 (target 1%) holds £1,000 of £10,000: selling all of B is closest to target, but a
    # sleeve with a positive target is never sold to zero, so one unit stays.
    "sleeve_kept_above_zero": ("6000", True, {"sleeve_targets": {"S0": "0.99", "S1": "0.01"}}),
    # Cash below the buffer: the only feasible lists sell, and without sells there is none.
    "negative_budget_sells": ("10", True, {"cash_buffer_base": "50"}),
    "negative_budget_no_sells": ("10", False, {"cash_buffer_base": "50"}),
    "negative_budget_never_sell": ("10", True, {"cash_buffer_base": "50", "never_sell": ["S0", "B"]}),
    # Rebalancing sells two units of B (£500); 5% of £6,000 allows £300: one unit at most.
    "turnover_caps_the_sale": ("2000", True, {"max_turnover": "0.05"}),
    # S0's only listing is never bought, and every line is capped at £700.
    "never_buy_and_max_trade": ("3000", True, {"never_buy": ["A:LSE"], "max_trade_base": "700"}),
}


def named_case(name: str) -> Case:
    cash, sells, rules = NAMED[name]
    policy = {
        "sleeve_targets": {"S0": "0.9", "S1": "0.1"},
        "drift_bands": {"absolute": "0.05", "relative": "0.25"},
        "min_trade_base": "0",
        "fee_per_trade_base": "0",
        "cash_buffer_base": "0",
        "line_penalty_base": "0",
        "max_turnover": "1",
        **rules,
    }
    return Case(label=name, state=_two_sleeves(cash), policy=parse_policy(policy), sells=sells, plain=False)


def engine_trades(case: Case):
    problem = build_problem(case.state, case.policy, sells=case.sells)
    solution = solve(problem)
    if solution is None:
        return None, None
    trades = {
        case.state.positions[item.position].key: q
        for item, q in zip(problem.items, solution.units, strict=True)
        if q != 0
    }
    return solution, trades


def enumerated_optimum(case: Case):
    """The least J over every whole-unit vector the specification allows, by brute force.

    Vectors are built listing by listing; a partial one is dropped only when its spend could not
    come back within cash + contribution even by selling every whole unit of the listings left.
    """
    positions = [p for p in case.state.positions if p.price_gbp is not None]
    cash = case.state.cash_available_gbp
    can_raise = [
        sum((math.floor(p.units) * p.price_gbp for p in positions[i:]), Decimal(0))
        for i in range(len(positions) + 1)
    ]
    best = None

    def visit(i: int, spent: Decimal, trades: dict) -> None:
        nonlocal best
        if spent - can_raise[i] > cash:
            return
        if i == len(positions):
            if not violations(case.state, case.policy, trades, sells=case.sells):
                value = exact_objective(case.state, case.policy, trades)
                if best is None or value < best[0]:
                    best = (value, dict(trades))
            return
        p = positions[i]
        assert p.price_gbp is not None
        most = math.floor((cash + can_raise[0]) / p.price_gbp)
        for q in range(-math.floor(p.units), most + 1):
            if q:
                trades[p.key] = q
            visit(i + 1, spent + q * p.price_gbp, trades)
            trades.pop(p.key, None)

    visit(0, Decimal(0), {})
    return best


@pytest.mark.parametrize("name", [*map(str, range(TINY_CASES)), *NAMED])
def test_oracle_matches_enumeration(name: str) -> None:
    case = named_case(name) if name in NAMED else make_tiny_case(int(name))
    oracle = scip_optimum(case.state, case.policy, sells=case.sells, time_limit=SCIP_SECONDS)
    best = enumerated_optimum(case)
    where = case.describe()
    assert (oracle is None) == (best is None), f"oracle {oracle}, enumeration {best}; {where}"
    if oracle is not None:
        assert best is not None
        assert oracle.proven, where
        assert oracle.objective == best[0], (
            f"SCIP {oracle.trades} J = {oracle.objective}, enumeration {best[1]} J = {best[0]}; {where}"
        )


@pytest.mark.parametrize("name", [*map(str, range(CASES)), *NAMED])
def test_engine_matches_scip(name: str) -> None:
    case = named_case(name) if name in NAMED else make_case(int(name))
    where = case.describe()
    oracle = scip_optimum(case.state, case.policy, sells=case.sells, time_limit=SCIP_SECONDS)
    solution, trades = engine_trades(case)
    assert (solution is None) == (oracle is None), (
        f"feasibility differs: engine {'None' if solution is None else trades}, "
        f"SCIP {'None' if oracle is None else oracle.trades}; {where}"
    )
    if solution is None:
        return
    assert oracle is not None
    assert oracle.proven, f"SCIP did not prove its optimum within {SCIP_SECONDS}s; {where}"
    assert solution.proven_optimal, f"the engine hit its node limit; {where}"
    broken = violations(case.state, case.policy, trades, sells=case.sells)
    assert not broken, f"the engine's list {trades} breaks: {'; '.join(broken)}; {where}"
    engine_value = exact_objective(case.state, case.policy, trades)
    assert solution.objective == engine_value, (
        f"the engine reports J = {solution.objective} for {trades}, the specification gives "
        f"{engine_value} ({float(solution.objective):.12g} vs {float(engine_value):.12g}); {where}"
    )
    if engine_value < oracle.objective:
        pytest.fail(
            f"SCIP reported optimal but the engine's list is better: engine {trades} J = {engine_value} "
            f"({float(engine_value):.12g}), SCIP {oracle.trades} J = {oracle.objective} "
            f"({float(oracle.objective):.12g}): tighten SCIP's tolerances; {where}"
        )
    assert engine_value == oracle.objective, (
        f"the engine's list is worse: engine {trades} J = {float(engine_value):.12g} "
        f"({solution.lines} lines), SCIP {oracle.trades} J = {float(oracle.objective):.12g} "
        f"({oracle.lines} lines); {where}"
    )
