"""Benchmark: the household recommendation, one strategy over a SIPP, an ISA and a GIA.

Run: ``.venv/bin/python bench/bench_household.py [--cases N] [--scip]`` (default 20 cases per
scenario).

Each case is a seeded household of about £250,000: 50 listings in 10 sleeves (a CORE sleeve of
8 listings and nine satellites of 4-5, as ``bench_engine.py``; half of the listings quoted in
pence, so their GBP prices carry four decimal places), each listing held in one account (the
SIPP about half the money, the ISA a third, the GIA the rest) and some in two (a fund held in
both the ISA and the SIPP, say), the GIA without a listing in PROPERTY or GOLD (it cannot hold
those two sleeves). The GIA has a gain (or loss) per unit for every listing, from a cost basis
between 60% and 120% of the price. The policy charges £1.50 a line, £3.95 in the GIA
(``fee_per_trade_by_portfolio``), a £100 minimum trade (and line penalty), a £50 buffer.

Scenarios: MONTHLY_ALLOC invests each account's cash and its own contribution (SIPP £800, ISA
£1,000, GIA £250), buy-only, in households drifted up to 6% (relative) per sleeve;
QUARTERLY_REBAL rebalances, selling allowed, households where one satellite has risen 60%,
and households whose every sleeve has drifted by up to 40% (relative) either way, once with
``cgt: ignore`` and once with ``avoid_gains_over_allowance`` and £1,000 of the allowance left.

Times are CPU time of this process (``time.process_time``) for the whole ``recommend_household``
call, one run per case. Each row: median and p95 CPU milliseconds, how many cases the search
proved optimal (``rationale["proven_optimal"]``), the median and largest number of executed
lines (all accounts), the median nodes (``rationale["nodes"]``) and the largest relative gap
between the objective returned and the lower bound reported (``rationale["objective"]`` and
``rationale["lower_bound"]``, when the rationale has them).

``--scip`` also solves every case with the independent household oracle
(``tests/support/household_oracle.py``, needs ``pyscipopt``) and prints, per case, our objective
(re-scored exactly by the oracle's own code) over SCIP's (1 means equal; above 1, SCIP found a
better list), both line counts and both times. At this size SCIP rarely proves its optimum
within ``--scip-seconds`` (default 60): it starts from our list (``--scip-alone``: from nothing)
and either proves it optimal, finds better, or stops with a lower bound, printed as the gap
from our objective to SCIP's bound.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import bench_engine
from bench_engine import LISTINGS, SLEEVES, TARGETS, price  # the single engine's bench portfolio

from tradeassist.engine.household import Account, HouseholdRecommendation, recommend_household
from tradeassist.engine.model import PortfolioState, Position
from tradeassist.policy import Policy

HOUSEHOLD = Decimal(250_000)
ACCOUNTS = ("SIPP", "ISA", "GIA")
SHARES = (0.5, 0.33, 0.17)  # where a listing lives, by account
NOT_IN_GIA = ("PROPERTY", "GOLD")
CASH = (Decimal("212.37"), Decimal("140.05"), Decimal("75.50"))
CONTRIBUTIONS = (Decimal(800), Decimal(1000), Decimal(250))
SHARED_LISTINGS = 6  # listings also held in a second account
ALLOWANCE_LEFT = Decimal(1000)
SCIP_SECONDS = 60.0


def policy(**extra: object) -> Policy:
    """The single engine's bench policy, with a dearer line in the GIA."""
    return bench_engine.policy(fee_per_trade_by_portfolio={"GIA": "3.95"}, **extra)


def household(
    seed: int, *, contributions: bool, shocked: str | None = None, drift: float = 0.06
) -> tuple[Account, ...]:
    """Sleeves drifted by up to ``drift`` (relative) from target; ``shocked`` then rises 60%.

    Each listing lives in one account (by ``SHARES``; never the GIA for ``NOT_IN_GIA``), the
    first ``SHARED_LISTINGS`` of a shuffled order also in a second one; a sleeve's money is
    split over its holdings at random (weights 0.5 to 1.5)."""
    rng = random.Random(seed)
    holdings: list[list[Position]] = [[] for _ in ACCOUNTS]
    shared = set(rng.sample(range(sum(LISTINGS)), SHARED_LISTINGS))
    index = 0
    for sleeve, count, target in zip(SLEEVES, LISTINGS, TARGETS, strict=True):
        sleeve_value = HOUSEHOLD * Decimal(target) * Decimal(1 + rng.uniform(-drift, drift))
        places = [a for a in range(len(ACCOUNTS)) if not (ACCOUNTS[a] == "GIA" and sleeve in NOT_IN_GIA)]
        weights = [SHARES[a] for a in places]
        spots = []
        for k in range(count):
            quoted = price(rng)
            home = rng.choices(places, weights)[0]
            homes = [home]
            if index in shared:
                homes.append(rng.choice([a for a in places if a != home]))
            index += 1
            spots.extend((f"{sleeve[:3]}{k}", quoted, a, rng.uniform(0.5, 1.5)) for a in homes)
        scale = sum(w for *_, w in spots)
        for ticker, quoted, a, weight in spots:
            units = (sleeve_value * Decimal(weight / scale) / quoted).to_integral_value()
            now = (quoted * Decimal("1.6")).quantize(Decimal("0.0001")) if sleeve == shocked else quoted
            holdings[a].append(Position(ticker, "LSE", sleeve, units, now))
    accounts = []
    for a, name in enumerate(ACCOUNTS):
        taxable = name == "GIA"
        gains = {
            p.label: (p.price_gbp * Decimal(1 - rng.uniform(0.6, 1.2))).quantize(Decimal("0.0001"))
            for p in holdings[a]
            if taxable and p.price_gbp is not None
        }
        state = PortfolioState(
            cash_gbp=CASH[a],
            contribution_gbp=CONTRIBUTIONS[a] if contributions else Decimal(0),
            positions=tuple(holdings[a]),
        )
        accounts.append(Account(name=name, state=state, taxable=taxable, gain_per_unit=gains))
    return tuple(accounts)


def _breaches(accounts: tuple[Account, ...], rules: Policy) -> bool:
    """Does a sleeve of the combined household breach its band (a rebalance would trade)?"""
    values = dict.fromkeys(SLEEVES, Fraction(0))
    total = Fraction(0)
    for account in accounts:
        total += Fraction(account.state.cash_available_gbp)
        for p in account.state.positions:
            assert p.price_gbp is not None
            values[p.sleeve] += Fraction(p.units) * Fraction(p.price_gbp)
            total += Fraction(p.units) * Fraction(p.price_gbp)
    bands = rules.drift_bands
    for sleeve, value in values.items():
        target = Fraction(rules.sleeve_targets[sleeve])
        gap = abs(value / total - target)
        if gap > Fraction(bands.absolute) or (target > 0 and gap / target > Fraction(bands.relative)):
            return True
    return False


@dataclass(frozen=True)
class Scenario:
    label: str
    kind: str
    rules: Policy
    households: list[tuple[Account, ...]]
    allowance: Decimal | None = None


def scenarios(cases: int) -> list[Scenario]:
    plain = policy()
    drifted = []
    seed = 1000
    while len(drifted) < cases:
        candidate = household(seed, contributions=False, drift=0.40)
        if _breaches(candidate, plain):
            drifted.append(candidate)
        seed += 1
    return [
        Scenario(
            "MONTHLY_ALLOC, £2,050 contributed",
            "MONTHLY_ALLOC",
            plain,
            [household(seed, contributions=True) for seed in range(cases)],
        ),
        Scenario(
            "QUARTERLY_REBAL, one sleeve +60%",
            "QUARTERLY_REBAL",
            plain,
            [household(seed, contributions=False, shocked=SLEEVES[2 + seed % 8]) for seed in range(cases)],
        ),
        Scenario("QUARTERLY_REBAL, every sleeve ±40%", "QUARTERLY_REBAL", plain, drifted),
        Scenario(
            "QUARTERLY_REBAL, ±40%, CGT £1,000 left",
            "QUARTERLY_REBAL",
            policy(cgt="avoid_gains_over_allowance"),
            drifted,
            ALLOWANCE_LEFT,
        ),
    ]


def _lines(reco: HouseholdRecommendation) -> int:
    return sum(len(r.executed_lines) for r in reco.recommendations)


def _gap(reco: HouseholdRecommendation) -> float | None:
    """Objective over the lower bound, minus 1; None when the rationale does not say."""
    found, bound = reco.rationale.get("objective"), reco.rationale.get("lower_bound")
    if found is None or bound is None:
        return None
    if not Fraction(bound):
        return 0.0
    return float(Fraction(found) / Fraction(bound) - 1)


def run(scenario: Scenario, oracle: Any) -> None:
    times, nodes, proven, lines, gaps, ratios = [], [], 0, [], [], []
    for case, accounts in enumerate(scenario.households):
        started = time.process_time()
        reco = recommend_household(
            accounts, scenario.rules, scenario.kind, gain_allowance_left=scenario.allowance
        )
        times.append((time.process_time() - started) * 1000)
        nodes.append(reco.rationale.get("nodes") or 0)
        proven += bool(reco.rationale.get("proven_optimal"))
        lines.append(_lines(reco))
        gap = _gap(reco)
        if gap is not None:
            gaps.append(gap)
        if oracle is not None:
            ratios.append(compare(case, accounts, scenario, reco, times[-1], oracle))
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    print(
        f"{scenario.label:<40} cpu median {statistics.median(times):8.1f} ms  p95 {p95:8.1f}"
        f"  | proven {proven:>2}/{len(times):<2}"
        f" lines median {statistics.median(lines):4.1f} max {max(lines):>2}"
        f"  nodes median {statistics.median(nodes):>8,.0f}"
        + (f"  max gap {max(gaps):.1e}" if gaps else "  max gap n/a")
        + (f"  | ours/SCIP max {max(ratios):.9f}" if ratios else ""),
        flush=True,
    )


def compare(
    case: int, accounts, scenario: Scenario, reco: HouseholdRecommendation, ms: float, oracle
) -> float:
    """Solve the case with SCIP too; print both objectives' ratio, line counts and times."""
    scip_household_optimum, exact_objective, household_trades, scip_seconds, seeded = oracle
    sells = scenario.rules.sells_allowed(scenario.kind)
    trades = household_trades(reco)
    result = scip_household_optimum(
        accounts,
        scenario.rules,
        sells=sells,
        gain_allowance_left=scenario.allowance,
        time_limit=scip_seconds,
        incumbent=trades if seeded else None,
    )
    if result is None:
        print(f"    case {case:>2}: SCIP finds no feasible list", flush=True)
        return 1.0
    ours = exact_objective(accounts, scenario.rules, trades, gain_allowance_left=scenario.allowance)
    ratio = float(ours / result.objective) if result.objective else 1.0
    if result.proven:
        proof = "SCIP proven"
    elif result.bound > 0:
        proof = f"SCIP not proven: ours/SCIP's bound - 1 = {float(ours) / result.bound - 1:.1e}"
    else:
        proof = "SCIP not proven, no bound"
    print(
        f"    case {case:>2}: ours/SCIP {ratio:.9f}  lines {_lines(reco):>2} vs {result.lines:>2}"
        f"  ours {ms:9.1f} ms cpu, SCIP {result.seconds * 1000:9.1f} ms wall"
        f" ({result.solves} MIQPs, {proof})",
        flush=True,
    )
    return ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=20, help="seeded households per scenario (default 20)")
    parser.add_argument("--scip", action="store_true", help="also solve each case with the SCIP oracle")
    parser.add_argument(
        "--scip-seconds",
        type=float,
        default=SCIP_SECONDS,
        help=f"SCIP's time per case (default {SCIP_SECONDS:g})",
    )
    parser.add_argument(
        "--scip-alone",
        action="store_true",
        help="SCIP starts from nothing (default: from our list, which it must then prove optimal or beat)",
    )
    args = parser.parse_args()
    oracle = None
    if args.scip:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        from tests.support.household_oracle import exact_objective, household_trades, scip_household_optimum

        oracle = (
            scip_household_optimum,
            exact_objective,
            household_trades,
            args.scip_seconds,
            not args.scip_alone,
        )
    print(
        f"SIPP + ISA + GIA, 50 listings in 10 sleeves ({SHARED_LISTINGS} in two accounts, the GIA "
        f"without {' or '.join(NOT_IN_GIA)}), {args.cases} seeded households per scenario (about £250,000)"
    )
    for scenario in scenarios(args.cases):
        run(scenario, oracle)


if __name__ == "__main__":
    main()
