"""Benchmark: the rebalance engine on 50 listings in 10 sleeves; prints median / p95 times.

Run: ``.venv/bin/python bench/bench_engine.py [CASES]`` (default 20 cases per scenario).

Each case is a seeded, realistic portfolio of about £250,000: a CORE sleeve of 8 listings and
nine satellite sleeves of 4-5, half of the listings quoted in pence (so their GBP prices carry
four decimal places), sleeves drifted up to 6% (relative) from target as a portfolio kept by
monthly allocations would be. MONTHLY_ALLOC invests £212.37 of cash plus a contribution,
buy-only, for three contribution sizes; QUARTERLY_REBAL rebalances the same portfolios after
one satellite sleeve has risen 60% (so it breaches its band), selling allowed. Times are for
the whole ``recommend`` call (valuation, search, report), one run per case, as CPU time of this
process (``time.process_time``): on a shared machine wall time also counts other people's work.
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from decimal import Decimal

from tradeassist.engine.model import PortfolioState, Position
from tradeassist.engine.recommend import recommend
from tradeassist.policy import Policy, parse_policy

SLEEVES = ("CORE", "TECH", "SEMIS", "ENERGY", "HEALTH", "SMALLCAP", "EM", "PROPERTY", "GOLD", "BONDS")
LISTINGS = (8, 5, 5, 5, 5, 5, 5, 4, 4, 4)  # 50
TARGETS = ("0.28", *["0.08"] * 9)
PORTFOLIO = Decimal(250_000)


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


def portfolio(seed: int, contribution: Decimal, *, shocked: str | None = None) -> PortfolioState:
    rng = random.Random(seed)
    positions = []
    for sleeve, count, target in zip(SLEEVES, LISTINGS, TARGETS, strict=True):
        sleeve_value = PORTFOLIO * Decimal(target) * Decimal(1 + rng.uniform(-0.06, 0.06))
        for k in range(count):
            quoted = price(rng)
            units = (sleeve_value / count / quoted).to_integral_value()
            if sleeve == shocked:
                quoted = (quoted * Decimal("1.6")).quantize(Decimal("0.0001"))
            positions.append(Position(f"{sleeve[:3]}{k}", "LSE", sleeve, units, quoted))
    return PortfolioState(
        cash_gbp=Decimal("212.37"), contribution_gbp=contribution, positions=tuple(positions)
    )


def run(label: str, states: list[PortfolioState], kind: str, rules: Policy) -> None:
    times, nodes, proven, lines = [], [], 0, []
    for state in states:
        started = time.process_time()
        reco = recommend(state, rules, kind)
        times.append((time.process_time() - started) * 1000)
        search = reco.constraints_report["search"]
        nodes.append(search.get("nodes", 0))
        proven += bool(search.get("proven_optimal"))
        lines.append(len(reco.executed_lines))
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    print(
        f"{label:<34} cpu median {statistics.median(times):7.1f} ms  p95 {p95:7.1f}  max {times[-1]:7.1f}"
        f"   | proven optimal {proven}/{len(states)}, nodes median {statistics.median(nodes):,.0f},"
        f" lines median {statistics.median(lines):.0f}"
    )


def main() -> None:
    cases = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    rules = policy()
    print(f"50 listings in 10 sleeves, {cases} seeded portfolios per scenario (about £250,000 each)")
    for contribution in ("500", "1000", "2000"):
        states = [portfolio(seed, Decimal(contribution)) for seed in range(cases)]
        run(f"MONTHLY_ALLOC, £{int(contribution):,} contribution", states, "MONTHLY_ALLOC", rules)
    shocked = [portfolio(seed, Decimal(0), shocked=SLEEVES[2 + seed % 8]) for seed in range(cases)]
    run("QUARTERLY_REBAL, one sleeve +60%", shocked, "QUARTERLY_REBAL", rules)
    print("the same with max_lines_per_sleeve = 1:")
    one_line = policy(max_lines_per_sleeve=1)
    for contribution in ("500", "1000", "2000"):
        states = [portfolio(seed, Decimal(contribution)) for seed in range(cases)]
        run(f"MONTHLY_ALLOC, £{int(contribution):,} contribution", states, "MONTHLY_ALLOC", one_line)
    run("QUARTERLY_REBAL, one sleeve +60%", shocked, "QUARTERLY_REBAL", one_line)


if __name__ == "__main__":
    main()
