"""Recommendations: the rules, the money report, and properties that hold for any portfolio."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradeassist.core.enums import TradeAction
from tradeassist.core.errors import ValidationError
from tradeassist.core.jsonutil import dumps
from tradeassist.engine.model import PortfolioState, Position, state_to_dict
from tradeassist.engine.recommend import (
    BELOW_MIN_TRADE,
    FROZEN,
    NOT_NEEDED,
    recommend,
    recommend_from_snapshot,
    snapshot,
)
from tradeassist.engine.scope import scope
from tradeassist.engine.valuation import apply_trades, objective, total_value
from tradeassist.policy import Policy, canonical_policy_json, parse_policy

EXAMPLE_POLICY = {
    "sleeve_targets": {"CORE": "0.70", "SEMIS": "0.15", "ENERGY": "0.15"},
    "drift_bands": {"absolute": "0.05", "relative": "0.25"},
    "min_trade_base": "100",
    "fee_per_trade_base": "1.50",
    "cash_buffer_base": "50",
    "whole_units": True,
    "allow_sells": {"MONTHLY_ALLOC": False, "QUARTERLY_REBAL": True},
}


def policy(**changes: object) -> Policy:
    """The example policy; DEAD (held, no price) is left out of the base rather than blocking."""
    return parse_policy({**EXAMPLE_POLICY, "unpriced": "exclude", **changes})


def drifted(cash: str = "120.55", contribution: str = "1000", frozen: bool = False) -> PortfolioState:
    return PortfolioState(
        cash_gbp=Decimal(cash),
        contribution_gbp=Decimal(contribution),
        frozen=frozen,
        positions=(
            Position("VWRP", "LSE", "CORE", Decimal(100), Decimal("112.34")),
            Position("SWDA", "LSE", "CORE", Decimal(10), Decimal("95.5")),
            Position("SEMI", "LSE", "SEMIS", Decimal(80), Decimal("45.6789")),  # 4567.89p
            Position("INRG", "LSE", "ENERGY", Decimal(300), Decimal("6.123")),
            Position("DEAD", "LSE", "ENERGY", Decimal(3), None),
            Position("LOCK", "LSE", "SEMIS", Decimal(5), Decimal("20"), tradeable=False),
        ),
    )


def executed_trades(state: PortfolioState, reco) -> dict:
    sign = {TradeAction.BUY: 1, TradeAction.SELL: -1}
    return {
        (line.ticker, line.exchange): sign[line.action] * int(line.estimated_units)
        for line in reco.executed_lines
    }


def test_monthly_allocation_buys_and_reports_money_exactly() -> None:
    state = drifted()
    reco = recommend(state, policy(), "MONTHLY_ALLOC")
    report = reco.constraints_report
    assert report["money_available"] == Decimal("1070.55")
    assert report["total_consideration"] + report["fees"] + report["cash_left"] == report["money_available"]
    assert report["cash_after"] == report["cash_left"] + Decimal("50")
    assert reco.executed_lines and all(line.action is TradeAction.BUY for line in reco.executed_lines)
    assert all(line.amount_base >= 100 for line in reco.executed_lines)
    assert reco.headline.startswith(f"Buy {len(reco.executed_lines)} line(s) for £")
    assert report["search"]["proven_optimal"] is True
    assert reco.rationale["rules_fired"][-1] == "BUY_ONLY"
    tickers = {line.ticker for line in reco.lines}
    assert not tickers & {"DEAD", "LOCK"}
    assert {row["ticker"] for row in reco.rationale["left_alone"]} == {"DEAD", "LOCK"}


def test_quarterly_rebalance_sells_to_fund_buys_and_can_forbid_switches_within_a_sleeve() -> None:
    reco = recommend(drifted(), policy(sell_and_buy_in_same_sleeve=False), "QUARTERLY_REBAL")
    assert "BAND_BREACHED" in reco.rationale["rules_fired"]
    sides: dict[str, set] = {}
    sleeve_of = {p.ticker: p.sleeve for p in drifted().positions}
    for line in reco.executed_lines:
        sides.setdefault(sleeve_of[line.ticker], set()).add(line.action)
    assert any(TradeAction.SELL in s for s in sides.values())
    assert all(len(s) == 1 for s in sides.values())
    assert reco.rationale["breached_after"] == ()


def test_quarterly_within_bands_makes_no_trades() -> None:
    reco = recommend(drifted(), policy(drift_bands={"absolute": "0.5", "relative": "5"}), "QUARTERLY_REBAL")
    assert reco.lines == ()
    assert NOT_NEEDED in reco.rationale["rules_fired"]
    assert reco.headline == "No trades: every sleeve is within its drift band."


def test_weekly_review_recommends_only_when_a_band_is_breached() -> None:
    reco = recommend(drifted(), policy(), "WEEKLY_REVIEW")
    assert reco.headline.startswith("Drift check: 3 sleeve(s) outside their bands (CORE, ENERGY, SEMIS). ")
    assert reco.rationale["sleeves"]["CORE"]["breached_before"] is True
    assert (
        reco.to_json_dict()["lines"]
        == recommend(drifted(), policy(), "QUARTERLY_REBAL").to_json_dict()["lines"]
    )
    calm = recommend(drifted(), policy(drift_bands={"absolute": "0.5", "relative": "5"}), "WEEKLY_REVIEW")
    assert calm.lines == () and calm.headline == "Drift check: every sleeve is within its band."
    assert calm.constraints_report["search"] == {"ran": False}


def test_a_frozen_portfolio_is_never_traded() -> None:
    reco = recommend(drifted(frozen=True), policy(), "MONTHLY_ALLOC")
    assert reco.lines == ()
    assert FROZEN in reco.rationale["rules_fired"]
    assert reco.headline == "No trades: the portfolio is frozen."


def test_cash_short_of_the_buffer_without_sells_is_no_trade() -> None:
    reco = recommend(drifted(cash="10", contribution="0"), policy(), "MONTHLY_ALLOC")
    assert reco.lines == ()
    assert reco.headline == "No trades: cash is £40.00 short of the buffer and nothing can be sold."
    assert reco.constraints_report["cash_left"] == Decimal("-40")


def test_lines_below_the_minimum_are_kept_as_suppressed() -> None:
    state = PortfolioState(
        cash_gbp=Decimal("360"),
        positions=(
            Position("BIG", "LSE", "CORE", Decimal(90), Decimal("100")),
            Position("SMALL", "LSE", "SEMIS", Decimal(9), Decimal("10.0050")),  # 1000.50p
        ),
    )
    rules = policy(sleeve_targets={"CORE": "0.984", "SEMIS": "0.016"}, cash_buffer_base="0")
    reco = recommend(state, rules, "MONTHLY_ALLOC")
    suppressed = reco.suppressed_lines
    assert [line.ticker for line in suppressed] == ["SMALL"]
    line = suppressed[0]
    assert line.reason_code == BELOW_MIN_TRADE and line.action is TradeAction.BUY
    assert line.amount_base == line.estimated_units * Decimal("10.0050") < 100
    assert reco.constraints_report["suppressed_lines"][0]["ticker"] == "SMALL"
    assert all(not done.suppressed_by_min_trade for done in reco.executed_lines)
    assert "SMALL" not in {done.ticker for done in reco.executed_lines}


def test_an_on_target_portfolio_gets_no_trades() -> None:
    state = PortfolioState(
        cash_gbp=Decimal("0"),
        positions=(
            Position("VWRP", "LSE", "CORE", Decimal(70), Decimal("10")),
            Position("SEMI", "LSE", "SEMIS", Decimal(3), Decimal("50")),
            Position("INRG", "LSE", "ENERGY", Decimal(15), Decimal("10")),
        ),
    )
    for kind in ("MONTHLY_ALLOC", "QUARTERLY_REBAL"):
        reco = recommend(
            state, policy(cash_buffer_base="0", min_trade_base="0", fee_per_trade_base="0"), kind
        )
        assert reco.executed_lines == ()
        assert reco.rationale["objective_after"] == 0


def test_unknown_or_non_trading_kinds_are_refused() -> None:
    with pytest.raises(ValidationError, match="does not produce recommendations"):
        recommend(drifted(), policy(), "PRICE_REFRESH")
    with pytest.raises(ValidationError, match="is not a task kind"):
        recommend(drifted(), policy(), "DAILY")


def test_a_snapshot_replays_to_an_equal_recommendation() -> None:
    state, rules = drifted(), policy()
    original = recommend(state, rules, "QUARTERLY_REBAL")
    stored = json.loads(dumps(snapshot(state, rules, "QUARTERLY_REBAL")))
    assert recommend_from_snapshot(stored) == original
    assert recommend_from_snapshot(stored).to_json_dict() == original.to_json_dict()
    with pytest.raises(ValidationError, match="unknown key"):
        recommend_from_snapshot({**stored, "extra": 1})
    with pytest.raises(ValidationError, match="snapshot_version"):
        recommend_from_snapshot({**stored, "snapshot_version": 99})


def test_json_dict_has_exactly_the_four_keys() -> None:
    data = recommend(drifted(), policy(), "MONTHLY_ALLOC").to_json_dict()
    assert list(data) == ["headline", "rationale", "constraints_report", "lines"]
    text = json.dumps(data)  # plain JSON: every Decimal became a string
    assert '"money_available": "1070.55"' in text


# -- properties ---------------------------------------------------------------------------


@st.composite
def cases(draw: st.DrawFn) -> tuple[PortfolioState, Policy, str]:
    codes = draw(st.sampled_from([("A", "B"), ("A", "B", "C"), ("A", "B", "C", "D")]))
    weights = [draw(st.integers(1, 10)) for _ in codes]
    cents = [w * 100 // sum(weights) for w in weights]
    cents[0] += 100 - sum(cents)
    targets = {code: str(Decimal(c) / 100) for code, c in zip(codes, cents, strict=True)}
    positions = []
    for i in range(draw(st.integers(1, 9))):
        if draw(st.booleans()):
            price = Decimal(draw(st.integers(50_00, 2_500_000))) / 10_000  # pence with 2 dp, in GBP
        else:
            price = Decimal(draw(st.integers(1_00, 300_00))) / 100
        flag = draw(st.sampled_from(["ok"] * 6 + ["locked", "unpriced", "excluded"]))
        positions.append(
            Position(
                f"T{i}",
                draw(st.sampled_from(["LSE", "XLON"])),
                draw(st.sampled_from([*codes, "Z"])),
                Decimal(draw(st.integers(0, 400))) / draw(st.sampled_from([1, 1, 1, 2])),
                None if flag == "unpriced" else price,
                tradeable=flag != "locked",
                include_in_calcs=flag != "excluded",
            )
        )
    state = PortfolioState(
        cash_gbp=Decimal(draw(st.integers(-5_000, 300_000))) / 100,
        contribution_gbp=Decimal(draw(st.sampled_from([0, 0, 250, 1000]))),
        frozen=draw(st.booleans()) and draw(st.booleans()),
        positions=tuple(positions),
    )
    rules = parse_policy(
        {
            **EXAMPLE_POLICY,
            "sleeve_targets": targets,
            "min_trade_base": draw(st.sampled_from(["0", "50", "100"])),
            "fee_per_trade_base": draw(st.sampled_from(["0", "1.50", "9.95"])),
            "cash_buffer_base": draw(st.sampled_from(["0", "50"])),
            "drift_bands": {"absolute": draw(st.sampled_from(["0", "0.05"])), "relative": "0.25"},
            "allow_sells": {"MONTHLY_ALLOC": draw(st.booleans()), "QUARTERLY_REBAL": draw(st.booleans())},
            "sell_and_buy_in_same_sleeve": draw(st.booleans()),
            "max_lines_per_sleeve": draw(st.sampled_from([None, 1, 2])),
        }
    )
    kind = draw(st.sampled_from(["MONTHLY_ALLOC", "QUARTERLY_REBAL", "WEEKLY_REVIEW"]))
    return state, rules, kind


NODES = 3_000  # the properties hold for any trade list the search returns, proven or not
PROPERTIES = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


@PROPERTIES
@given(cases())
def test_money_is_conserved_to_the_penny_and_constraints_hold(case) -> None:
    state, rules, kind = case
    reco = recommend(state, rules, kind, max_nodes=NODES)
    report = reco.constraints_report
    assert report["money_available"] == state.cash_gbp + state.contribution_gbp - rules.cash_buffer_base
    assert report["total_consideration"] + report["fees"] + report["cash_left"] == report["money_available"]
    assert report["fees"] == rules.fee_per_trade_base * len(reco.executed_lines)
    prices = {p.key: p.price_gbp for p in state.positions}
    for line in reco.lines:
        assert line.amount_base == line.estimated_units * prices[(line.ticker, line.exchange)]
        assert line.estimated_units > 0 and line.estimated_units == int(line.estimated_units)
    if reco.executed_lines:
        assert report["cash_left"] >= 0 and report["cash_after"] >= rules.cash_buffer_base
        assert all(line.amount_base >= rules.min_trade_base for line in reco.executed_lines)
        assert not state.frozen


@PROPERTIES
@given(cases())
def test_no_negative_holdings_and_only_what_may_be_traded_is(case) -> None:
    state, rules, kind = case
    reco = recommend(state, rules, kind, max_nodes=NODES)
    trades = executed_trades(state, reco)
    by_key = {p.key: p for p in state.positions}
    after = apply_trades(state, trades, rules.fee_per_trade_base)
    assert all(p.units >= 0 for p in after.positions)
    sides: dict[str, set[bool]] = {}
    for key, units in trades.items():
        assert by_key[key].can_trade
        assert units > 0 or rules.sells_allowed(kind)
        sides.setdefault(by_key[key].sleeve, set()).add(units > 0)
    if not rules.sell_and_buy_in_same_sleeve:
        assert all(len(s) == 1 for s in sides.values())
    if rules.max_lines_per_sleeve is not None:
        per_sleeve = [by_key[key].sleeve for key in trades]
        assert all(per_sleeve.count(s) <= rules.max_lines_per_sleeve for s in per_sleeve)
    executed = {(line.ticker, line.exchange) for line in reco.executed_lines}
    assert not executed & {(line.ticker, line.exchange) for line in reco.suppressed_lines}


@PROPERTIES
@given(cases())
def test_trading_never_makes_the_objective_worse_when_no_trade_is_affordable(case) -> None:
    state, rules, kind = case
    reco = recommend(state, rules, kind, max_nodes=NODES)
    # Weights are measured on the scoped base, against the targets used (rescaled when a sleeve
    # cannot be held); each executed line adds the line penalty.
    scoped = scope(state, rules)
    after = apply_trades(scoped.state, executed_trades(state, reco), rules.fee_per_trade_base)
    base = total_value(scoped.state)
    penalty = (Fraction(rules.line_penalty) / Fraction(base)) ** 2 if base > 0 else Fraction(0)
    if state.cash_gbp + state.contribution_gbp >= rules.cash_buffer_base:  # "no trades" is feasible
        cost = objective(after, scoped.policy) + len(reco.executed_lines) * penalty
        assert cost <= objective(scoped.state, scoped.policy)


@PROPERTIES
@given(cases())
@pytest.mark.slow
def test_inputs_come_back_unchanged_and_replays_are_equal(case) -> None:
    state, rules, kind = case
    state_copy, rules_copy, as_dict = copy.deepcopy(state), copy.deepcopy(rules), state_to_dict(state)
    policy_text = canonical_policy_json(rules)
    reco = recommend(state, rules, kind, max_nodes=NODES)
    assert state == state_copy and rules == rules_copy and state_to_dict(state) == as_dict
    assert canonical_policy_json(rules) == policy_text
    stored = json.loads(dumps(snapshot(state, rules, kind, max_nodes=NODES)))
    assert recommend_from_snapshot(stored) == reco


@settings(max_examples=60, deadline=None)
@given(
    weights=st.lists(st.integers(1, 20), min_size=2, max_size=5),
    units=st.lists(st.sampled_from([1, 2, 4, 5, 8, 10, 20, 25, 40, 50]), min_size=5, max_size=5),
    kind=st.sampled_from(["MONTHLY_ALLOC", "QUARTERLY_REBAL"]),
    fee=st.sampled_from(["0", "1.50"]),
    min_trade=st.sampled_from(["0", "100"]),
)
def test_any_on_target_portfolio_gets_no_trades(weights, units, kind, fee, min_trade) -> None:
    """Holdings exactly at target and no spare cash: every trade moves a weight off target."""
    cents = [w * 100 // sum(weights) for w in weights]
    cents[0] += 100 - sum(cents)
    codes = [f"S{i}" for i in range(len(cents))]
    positions = tuple(
        Position(f"T{i}", "LSE", code, Decimal(n), Decimal(c) * 10 / Decimal(n))
        for i, (code, c, n) in enumerate(zip(codes, cents, units, strict=False))
        if c
    )
    state = PortfolioState(cash_gbp=Decimal("0"), positions=positions)
    rules = policy(
        sleeve_targets={code: str(Decimal(c) / 100) for code, c in zip(codes, cents, strict=True)},
        cash_buffer_base="0",
        fee_per_trade_base=fee,
        min_trade_base=min_trade,
        allow_sells={"MONTHLY_ALLOC": True, "QUARTERLY_REBAL": True},
        drift_bands={"absolute": "0", "relative": "0"},
    )
    assert objective(state, rules) == Fraction(0)
    reco = recommend(state, rules, kind)
    assert reco.executed_lines == ()
