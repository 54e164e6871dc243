"""Benchmark: the rebalance engine on 50 listings in 10 sleeves; prints CPU times, proofs, lines.

Run: ``.venv/bin/python bench/bench_engine.py [CASES] [--scip]`` (default 20 cases per scenario).

Each case is a seeded, realistic portfolio of about £250,000: a CORE sleeve of 8 listings and
nine satellite sleeves of 4-5, half of the listings quoted in pence (so their GBP prices carry
four decimal places), sleeves drifted up to 6% (relative) from target as a portfolio kept by
monthly allocations would be. MONTHLY_ALLOC invests £212.37 of cash plus a contribution,
buy-only, for three contribution sizes; QUARTERLY_REBAL rebalances, selling allowed, the same
portfolios after one satellite sleeve has risen 60% (so it breaches its band), and portfolios
whose every sleeve has drifted independently by up to 40% (relative) either way, so that
several bands breach at once (seeds where none breaches, which would not trade, are skipped).

Every scenario runs twice: with the policy's line penalty (the default, ``min_trade_base``:
£100) and with ``line_penalty_base: "0"``, the plain squared drift the engine minimised before
the penalty existed ("before"), to show what the penalty does to the number of lines. Then the
penalised scenarios again with ``max_lines_per_sleeve = 1``.

Times are for the whole ``recommend`` call (valuation, search, report), one run per case, as
CPU time of this process (``time.process_time``): on a shared machine wall time also counts
other people's work. Each row: median and p95 CPU milliseconds, how many cases the search
proved optimal, the median and largest number of executed lines, the median nodes, and the
largest relative gap between the objective returned and the lower bound reported.

``--scip`` also solves every case with the independent MIQP oracle
(``tests/support/miqp_oracle.py``, needs ``pyscipopt``) and prints, per case, our objective
over SCIP's (1 means equal; below 1, ours is better) and both times.
"""

from __future__ import annotations

import itertools
import random
import statistics
import sys
import time
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from tradeassist.core.enums import TradeAction
from tradeassist.engine.model import PortfolioState, Position, Recommendation
from tradeassist.engine.recommend import recommend
from tradeassist.engine.valuation import drift_report
from tradeassist.policy import Policy, parse_policy

SLEEVES = ("CORE", "TECH", "SEMIS", "ENERGY", "HEALTH", "SMALLCAP", "EM", "PROPERTY", "GOLD", "BONDS")
LISTINGS = (8, 5, 5, 5, 5, 5, 5, 4, 4, 4)  # 50
TARGETS = ("0.28", *["0.08"] * 9)
PORTFOLIO = Decimal(250_000)
SCIP_SECONDS = 60.0


def policy(**extra: object) -> Policy:
    return parse_policy(
        {
            **extra,
            "sleeve_targets": dict(zip(SLEEVES, TARGETS, strict=True)),
            "drift_bands": {"absolute": "0.05", "relative": "0.25"},
            "min_trade_base": "100",
            "fee_per_trade_base": "1.50",
            "cash_buffer_base": "50",
            "whole_units": True,
            "allow_sells": {"MONTHLY_ALLOC": False, "QUARTERLY_REBAL": True},
        }
    )


def price(rng: random.Random) -> Decimal:
    if rng.random() < 0.5:  # quoted in pence with 2 dp: 300.00p to 15,000.00p
        return Decimal(rng.randint(300_00, 15_000_00)) / 10_000
    return Decimal(rng.randint(5_00, 250_00)) / 100


def portfolio(
    seed: int, contribution: Decimal, *, shocked: str | None = None, drift: float = 0.06
) -> PortfolioState:
    """Sleeves drifted by up to ``drift`` (relative) from target; ``shocked`` then rises 60%."""
    rng = random.Random(seed)
    positions = []
    for sleeve, count, target in zip(SLEEVES, LISTINGS, TARGETS, strict=True):
        sleeve_value = PORTFOLIO * Decimal(target) * Decimal(1 + rng.uniform(-drift, drift))
        for k in range(count):
            quoted = price(rng)
            units = (sleeve_value / count / quoted).to_integral_value()
            if sleeve == shocked:
                quoted = (quoted * Decimal("1.6")).quantize(Decimal("0.0001"))
            positions.append(Position(f"{sleeve[:3]}{k}", "LSE", sleeve, units, quoted))
    return PortfolioState(
        cash_gbp=Decimal("212.37"), contribution_gbp=contribution, positions=tuple(positions)
    )


@dataclass(frozen=True)
class Scenario:
    label: str
    kind: str
    states: list[PortfolioState]


def scenarios(cases: int) -> list[Scenario]:
    found = [
        Scenario(
            f"MONTHLY_ALLOC, £{int(amount):,} contribution",
            "MONTHLY_ALLOC",
            [portfolio(seed, Decimal(amount)) for seed in range(cases)],
        )
        for amount in ("500", "1000", "2000")
    ]
    found.append(
        Scenario(
            "QUARTERLY_REBAL, one sleeve +60%",
            "QUARTERLY_REBAL",
            [portfolio(seed, Decimal(0), shocked=SLEEVES[2 + seed % 8]) for seed in range(cases)],
        )
    )
    drifted = (portfolio(seed, Decimal(0), drift=0.40) for seed in itertools.count(1000))
    breaching = (state for state in drifted if any(row.breached for row in drift_report(state, policy())))
    found.append(
        Scenario(
            "QUARTERLY_REBAL, every sleeve ±40%", "QUARTERLY_REBAL", list(itertools.islice(breaching, cases))
        )
    )
    return found


def trades_of(reco: Recommendation) -> dict[tuple[str, str], int]:
    return {
        (line.ticker, line.exchange): int(line.estimated_units)
        * (1 if line.action is TradeAction.BUY else -1)
        for line in reco.executed_lines
    }


def _gap(reco: Recommendation) -> float:
    """Objective over the lower bound, minus 1 (0 when proven)."""
    found, bound = reco.rationale.get("objective"), reco.rationale.get("lower_bound")
    if found is None or not bound:
        return 0.0
    return float(Fraction(found) / Fraction(bound) - 1)


def run(label: str, scenario: Scenario, rules: Policy, oracle) -> None:
    times, nodes, proven, lines, gaps = [], [], 0, [], []
    ratios = []
    for seed, state in enumerate(scenario.states):
        started = time.process_time()
        reco = recommend(state, rules, scenario.kind)
        times.append((time.process_time() - started) * 1000)
        search = reco.constraints_report["search"]
        nodes.append(search.get("nodes", 0))
        proven += bool(search.get("proven_optimal"))
        lines.append(len(reco.executed_lines))
        gaps.append(_gap(reco))
        if oracle is not None and search.get("ran"):
            ratios.append(compare(seed, state, rules, scenario.kind, reco, times[-1], oracle))
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    searched = sum(1 for n in nodes if n)
    print(
        f"{label:<44} cpu median {statistics.median(times):7.1f} ms  p95 {p95:7.1f}"
        f"  | proven {proven:>2}/{searched:<2}"
        f" lines median {statistics.median(lines):4.1f} max {max(lines):>2}"
        f"  nodes median {statistics.median(nodes):>7,.0f}  max gap {max(gaps):.1e}"
        + (f"  | ours/SCIP max {max(ratios):.9f}" if ratios else ""),
        flush=True,
    )


def compare(seed: int, state, rules: Policy, kind: str, reco: Recommendation, ms: float, oracle) -> float:
    """Solve the case with SCIP too; print both objectives' ratio and both times."""
    from tradeassist.engine.scope import scope

    scip_optimum, exact_objective = oracle
    scoped = scope(state, rules)
    sells = rules.sells_allowed(kind)
    result = scip_optimum(scoped.state, scoped.policy, sells=sells, time_limit=SCIP_SECONDS)
    if result is None:
        print(f"    case {seed:>2}: SCIP finds no feasible list", flush=True)
        return 1.0
    ours = exact_objective(scoped.state, scoped.policy, trades_of(reco))
    ratio = float(ours / result.objective) if result.objective else 1.0
    print(
        f"    case {seed:>2}: ours/SCIP {ratio:.9f}  lines {len(reco.executed_lines):>2} vs {result.lines:>2}"
        f"  ours {ms:8.1f} ms cpu, SCIP {result.seconds * 1000:9.1f} ms wall"
        f"{'' if result.proven else ' (SCIP not proven)'}",
        flush=True,
    )
    return ratio


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    cases = int(args[0]) if args else 20
    oracle = None
    if "--scip" in sys.argv[1:]:
        sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent.parent))
        from tests.support.miqp_oracle import exact_objective, scip_optimum

        oracle = (scip_optimum, exact_objective)
    print(f"50 listings in 10 sleeves, {cases} seeded portfolios per scenario (about £250,000 each)")
    found = scenarios(cases)
    for title, rules in (
        ("line penalty £100 (the default, min_trade_base):", policy()),
        ('before: line_penalty_base "0" (the plain squared drift):', policy(line_penalty_base="0")),
        ("line penalty £100 and max_lines_per_sleeve = 1:", policy(max_lines_per_sleeve=1)),
    ):
        print(title, flush=True)
        for scenario in found:
            run(scenario.label, scenario, rules, oracle)


if __name__ == "__main__":
    main()
