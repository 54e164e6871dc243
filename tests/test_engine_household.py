"""The household recommendation (engine): one strategy over several accounts.

The issue's observation first: a 10% CREDIT target in a SIPP that has no CREDIT fund left
about 10% of the SIPP in cash, because each account was rebalanced alone; the household puts
CREDIT in the ISA that can hold it. Then the rules that make it safe: money never moves between
accounts, each account trades only what it can hold, a frozen account is never traded, the
per-account fee, the CGT allowance as a hard rule, ties to ISA/SIPP sales before the GIA's, and
a replay from the joint snapshot. The small cases are checked against plain enumeration of
every trade vector (the independent MIQP check is ``test_household_vs_scip.py``).
"""

from __future__ import annotations

import itertools
from decimal import Decimal as D

import pytest

from tradeassist.core.enums import TradeAction
from tradeassist.engine.household import (
    Account,
    _scoped_accounts,
    combined_state,
    household_snapshot,
    recommend_household,
    recommend_household_from_snapshot,
)
from tradeassist.engine.household_problem import build_household
from tradeassist.engine.household_search import solve_household
from tradeassist.engine.model import PortfolioState, Position
from tradeassist.engine.recommend import recommend
from tradeassist.engine.scope import scope
from tradeassist.policy import parse_policy

POLICY = {
    "sleeve_targets": {"EQUITY": "0.6", "BONDS": "0.3", "CREDIT": "0.1"},
    "drift_bands": {"absolute": "0.05", "relative": "0.25"},
    "min_trade_base": "100",
    "fee_per_trade_base": "0",
    "cash_buffer_base": "0",
    "allow_sells": {"QUARTERLY_REBAL": True},
}


def _sipp(cash: str = "10000") -> Account:
    return Account(
        "AJ Bell SIPP",
        PortfolioState(
            cash_gbp=D(cash),
            positions=(
                Position("VWRP", "LSE", "EQUITY", D("300"), D("100")),
                Position("IGLT", "LSE", "BONDS", D("1500"), D("10")),
            ),
        ),
    )


def _isa(cash: str = "500") -> Account:
    return Account(
        "AJ Bell ISA",
        PortfolioState(
            cash_gbp=D(cash),
            positions=(
                Position("VWRP", "LSE", "EQUITY", D("100"), D("100")),
                Position("CORP", "LSE", "CREDIT", D("0"), D("50")),
                Position("IGLT", "LSE", "BONDS", D("0"), D("10")),
            ),
        ),
    )


def _bought(rec, ticker: str) -> D:
    return sum(
        (x.amount_base for x in rec.executed_lines if x.ticker == ticker and x.action is TradeAction.BUY),
        D(0),
    )


def _net(rec) -> D:
    return sum(
        (x.amount_base if x.action is TradeAction.BUY else -x.amount_base for x in rec.executed_lines), D(0)
    )


def test_the_sipp_alone_leaves_credit_in_cash_and_the_household_does_not():
    """The observation: rebalanced alone, the SIPP (no CREDIT fund) keeps its CREDIT share idle
    (the single engine rescales targets, but the household's CREDIT then stays unheld); the
    household buys CREDIT in the ISA and spends the SIPP's cash on what it can hold."""
    policy = {**POLICY, "sleeve_targets": {"EQUITY": "0.6", "BONDS": "0.3", "CREDIT": "0.1"}}
    household = recommend_household([_sipp(), _isa()], policy, "QUARTERLY_REBAL")
    assert household.rationale["proven_optimal"] is True  # within the default node limit
    isa, sipp = household.for_account("AJ Bell ISA"), household.for_account("AJ Bell SIPP")
    assert _bought(isa, "CORP") > D("5000")  # most of CREDIT's £6,550 target, in the ISA
    assert not [x for x in sipp.executed_lines if x.ticker == "CORP"]
    # Money never moves: each account spends no more than its own cash.
    assert _net(sipp) <= D("10000") and _net(isa) <= D("500")
    # No more cash idle than whole units need: under 1% of the household's £65,500.
    left = sum((r.constraints_report["cash_left"] for r in household.recommendations), D(0))
    assert left < D("655"), left
    rows = household.rationale["sleeves"]
    assert rows["CREDIT"]["weight_before"] == D("0") and rows["CREDIT"]["weight_after"] > D("0.08")
    why = " ".join(isa.rationale["why"])
    assert "only account that can hold it" in why and "CREDIT" in why


def test_monthly_contributions_stay_in_their_account():
    isa = Account(
        "AJ Bell ISA", _isa("0").state.__class__(**{**_isa("0").state.__dict__, "contribution_gbp": D("500")})
    )
    sipp = Account(
        "AJ Bell SIPP",
        PortfolioState(cash_gbp=D("0"), contribution_gbp=D("300"), positions=_sipp().state.positions),
    )
    household = recommend_household([sipp, isa], POLICY, "MONTHLY_ALLOC")
    assert household.rationale["proven_optimal"] is True
    assert _net(household.for_account("AJ Bell ISA")) <= D("500")
    assert _net(household.for_account("AJ Bell SIPP")) <= D("300")
    assert _bought(household.for_account("AJ Bell ISA"), "CORP") > 0  # CREDIT only fits there
    assert all(x.action is TradeAction.BUY for r in household.recommendations for x in r.executed_lines)


def test_a_sleeve_no_account_can_hold_is_named_and_its_target_shared_out():
    policy = {**POLICY, "sleeve_targets": {"EQUITY": "0.6", "BONDS": "0.3", "GOLD": "0.1"}}
    household = recommend_household([_sipp(), _isa()], policy, "MONTHLY_ALLOC")
    assert list(household.rationale["household"]["sleeves_no_account_can_hold"]) == ["GOLD"]
    assert "SLEEVE_NOT_HELD" in household.rationale["rules_fired"]


def test_a_frozen_account_is_never_traded():
    sipp = _sipp()
    frozen = Account(
        sipp.name, PortfolioState(cash_gbp=D("10000"), positions=sipp.state.positions, frozen=True)
    )
    household = recommend_household([frozen, _isa()], POLICY, "QUARTERLY_REBAL", max_nodes=20_000)
    assert household.for_account("AJ Bell SIPP").executed_lines == ()
    assert "PORTFOLIO_FROZEN" in household.for_account("AJ Bell SIPP").rationale["rules_fired"]


def test_per_account_fee_override_is_charged_in_that_account():
    policy = {**POLICY, "fee_per_trade_base": "9.95", "fee_per_trade_by_portfolio": {"AJ Bell ISA": "1.50"}}
    household = recommend_household([_sipp(), _isa()], policy, "MONTHLY_ALLOC")
    isa, sipp = household.for_account("AJ Bell ISA"), household.for_account("AJ Bell SIPP")
    assert isa.constraints_report["fee_per_trade"] == D("1.50")
    assert sipp.constraints_report["fee_per_trade"] == D("9.95")
    assert isa.constraints_report["fees"] == D("1.50") * len(isa.executed_lines)
    assert isa.constraints_report["cash_left"] >= 0 and sipp.constraints_report["cash_left"] >= 0


def _gia(gain: str) -> Account:
    return Account(
        "GIA",
        PortfolioState(cash_gbp=D("0"), positions=(Position("VWRP", "LSE", "EQUITY", D("200"), D("100")),)),
        taxable=True,
        gain_per_unit={"VWRP:LSE": D(gain)},
    )


def _isa_over() -> Account:
    return Account(
        "ISA",
        PortfolioState(
            cash_gbp=D("0"),
            positions=(
                Position("VWRP", "LSE", "EQUITY", D("200"), D("100")),
                Position("IGLT", "LSE", "BONDS", D("0"), D("30")),
            ),
        ),
    )


def _gia_with_bonds(gain: str) -> Account:
    gia = _gia(gain)
    return Account(
        gia.name,
        PortfolioState(
            cash_gbp=D("0"),
            positions=(*gia.state.positions, Position("IGLT", "LSE", "BONDS", D("0"), D("30"))),
        ),
        taxable=True,
        gain_per_unit=gia.gain_per_unit,
    )


TWO_SLEEVES = {
    **POLICY,
    "sleeve_targets": {"EQUITY": "0.7", "BONDS": "0.3"},
    "max_turnover": "1",
}


def test_equal_lists_sell_in_the_isa_before_the_gia():
    """Both accounts hold the same £20,000 of VWRP and can buy IGLT at £30: selling in either is
    as good; the ISA's sale comes first (no capital gains)."""
    household = recommend_household([_gia_with_bonds("40"), _isa_over()], TWO_SLEEVES, "QUARTERLY_REBAL")
    assert household.rationale["proven_optimal"] is True
    gia = household.for_account("GIA")
    assert not [x for x in gia.executed_lines if x.action is TradeAction.SELL]
    assert [x for x in household.for_account("ISA").executed_lines if x.action is TradeAction.SELL]


def test_gains_over_the_allowance_are_a_hard_rule():
    """Only the GIA can sell: with £40 of gain per unit and £400 of allowance left, at most 10
    units are sold, however far from target that leaves the household."""
    isa = Account(
        "ISA", PortfolioState(cash_gbp=D("0"), positions=(Position("IGLT", "LSE", "BONDS", D("0"), D("10")),))
    )
    policy = {**TWO_SLEEVES, "cgt": "avoid_gains_over_allowance"}
    capped = recommend_household(
        [_gia_with_bonds("40"), isa], policy, "QUARTERLY_REBAL", gain_allowance_left=D("400")
    )
    sold = [x for x in capped.for_account("GIA").executed_lines if x.action is TradeAction.SELL]
    assert sold and sum(x.estimated_units for x in sold) <= 10
    free = recommend_household(
        [_gia_with_bonds("40"), isa], TWO_SLEEVES, "QUARTERLY_REBAL", gain_allowance_left=D("400")
    )
    assert (
        sum(x.estimated_units for x in free.for_account("GIA").executed_lines if x.action is TradeAction.SELL)
        > 10
    )


def test_one_account_household_matches_the_single_portfolio_engine():
    """With one account and one fee the household is the single-portfolio problem: the same
    objective as the single engine (proven by both)."""
    for kind in ("MONTHLY_ALLOC", "QUARTERLY_REBAL"):
        single = recommend(_isa("2000").state, POLICY, kind)
        household = recommend_household([_isa("2000")], POLICY, kind)
        assert household.rationale["objective"] == single.rationale["objective"]


def test_the_joint_snapshot_replays_exactly():
    accounts = [_sipp(), _isa()]
    snapshot = household_snapshot(accounts, POLICY, "MONTHLY_ALLOC")
    original = recommend_household(accounts, POLICY, "MONTHLY_ALLOC")
    again = recommend_household_from_snapshot(snapshot)
    assert again == original


# --------------------------------------------------------------------------------------------
# Small households: the search against plain enumeration of every trade vector
# --------------------------------------------------------------------------------------------
def _enumerate(problem):
    ranges = []
    for item in problem.items:
        values = [0, *range(item.min_units, item.max_buy + 1), *range(-item.max_sell, -item.min_units + 1)]
        ranges.append(sorted(set(values)))
    best = None
    for units in itertools.product(*ranges):
        found = problem.evaluate(units)
        if found is None:
            continue
        key = problem.order_key(units, found)
        if best is None or key < best[0]:
            best = (key, units)
    return best


def _tiny(seed: int):
    import random

    rng = random.Random(seed)
    sleeves = ["A", "B", "C"][: rng.choice((2, 3))]
    targets = {s: D(1) / len(sleeves) for s in sleeves}
    targets = {s: D(t).quantize(D("0.01")) for s, t in targets.items()}
    targets[sleeves[0]] += D(1) - sum(targets.values())
    accounts = []
    for a in range(2):
        positions = []
        for k in range(rng.choice((1, 2))):
            sleeve = rng.choice(sleeves)
            positions.append(
                Position(f"L{k}{sleeve}", "LSE", sleeve, D(rng.randint(0, 4)), D(rng.randint(20, 60)))
            )
        unique = {p.key: p for p in positions}
        accounts.append(
            Account(
                f"acct{a}",
                PortfolioState(cash_gbp=D(rng.randint(0, 120)), positions=tuple(unique.values())),
                taxable=a == 1,
            )
        )
    policy = parse_policy(
        {
            "sleeve_targets": {k: str(v) for k, v in targets.items()},
            "drift_bands": {"absolute": "0.01", "relative": "0.01"},
            "min_trade_base": str(rng.choice((0, 30))),
            "fee_per_trade_base": str(rng.choice((0, 1))),
            "cash_buffer_base": "0",
            "line_penalty_base": str(rng.choice((0, 5))),
            "max_turnover": "1",
            "allow_sells": {"QUARTERLY_REBAL": True},
        }
    )
    return accounts, policy, rng.random() < 0.6


@pytest.mark.parametrize("seed", range(16))
def test_the_search_finds_the_first_list_of_the_total_order(seed):
    accounts, policy, sells = _tiny(seed)
    scoped = scope(combined_state(accounts), policy)
    problem = build_household(
        _scoped_accounts(accounts, scoped), scoped.state, scoped.policy, sells=sells, gain_allowance_left=None
    )
    if not problem.items or any(i.max_buy > 8 or i.max_sell > 8 for i in problem.items):
        pytest.skip("too large to enumerate")
    expected = _enumerate(problem)
    solution = solve_household(problem, max_nodes=200_000)
    if expected is None:
        assert solution is None
        return
    assert solution is not None and solution.proven_optimal
    assert solution.units == expected[1]


def test_an_account_below_its_buffer_is_left_alone_and_the_others_still_trade():
    """A GIA with no cash and a £50 buffer cannot buy, and may not sell in a monthly
    allocation: it is left alone (never taken further below its buffer), and the ISA still
    invests its £950. Before, the whole household was "not affordable"."""
    isa = Account(
        "ISA",
        PortfolioState(cash_gbp=D("950"), positions=(Position("VWRP", "LSE", "EQUITY", D("0"), D("100")),)),
    )
    gia = Account(
        "GIA",
        PortfolioState(cash_gbp=D("0"), positions=(Position("IGLT", "LSE", "BONDS", D("100"), D("10")),)),
        taxable=True,
    )
    policy = {**POLICY, "sleeve_targets": {"EQUITY": "0.7", "BONDS": "0.3"}, "cash_buffer_base": "50"}
    household = recommend_household([isa, gia], policy, "MONTHLY_ALLOC")
    assert "NO_AFFORDABLE_TRADE_LIST" not in household.rationale["rules_fired"]
    assert _bought(household.for_account("ISA"), "VWRP") == D("900")
    assert household.for_account("GIA").executed_lines == ()
    assert "CASH_BELOW_BUFFER" in household.for_account("GIA").rationale["rules_fired"]
