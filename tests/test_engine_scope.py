"""Advice is safe by construction: untargeted holdings left alone, nothing valued at zero for lack
of a price, sleeves the portfolio cannot hold shared out, hard rules always kept."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradeassist.core.enums import TradeAction
from tradeassist.core.money import ONE
from tradeassist.engine.model import PortfolioState, Position
from tradeassist.engine.recommend import left_alone_summary, recommend
from tradeassist.engine.scope import (
    NO_SLEEVE_HELD,
    SLEEVE_NOT_HELD,
    UNPRICED_HOLDING,
    UNTARGETED,
    rescaled_targets,
    scope,
)
from tradeassist.policy import Policy, parse_policy

BASE = {
    "sleeve_targets": {"EQUITY": "0.60", "BONDS": "0.40"},
    "drift_bands": {"absolute": "0.05", "relative": "0.25"},
    "min_trade_base": "100",
    "fee_per_trade_base": "1.50",
    "cash_buffer_base": "50",
    "whole_units": True,
    "allow_sells": {"MONTHLY_ALLOC": False, "QUARTERLY_REBAL": True},
}


def policy(**changes: object) -> Policy:
    return parse_policy({**BASE, **changes})


def lines_of(reco) -> dict[tuple[str, str], int]:
    sign = {TradeAction.BUY: 1, TradeAction.SELL: -1}
    return {
        (line.ticker, line.exchange): sign[line.action] * int(line.estimated_units)
        for line in reco.executed_lines
    }


def after_a_strategy_change() -> PortfolioState:
    """Holdings mapped to the old strategy's sleeves (CORE, SEMIS) plus one unmapped, priced."""
    return PortfolioState(
        cash_gbp=Decimal("500"),
        positions=(
            Position("VWRP", "XLON", "CORE", Decimal(300), Decimal("110")),
            Position("SEMI", "XLON", "SEMIS", Decimal(100), Decimal("45.5")),
            Position("ODD", "XLON", "UNMAPPED", Decimal(10), Decimal("12")),
            Position("EQQQ", "XLON", "EQUITY", Decimal(0), Decimal("400")),
            Position("IGLT", "XLON", "BONDS", Decimal(0), Decimal("12.5")),
        ),
    )


def test_a_new_strategy_never_liquidates_the_holdings_it_does_not_name() -> None:
    state = after_a_strategy_change()
    reco = recommend(state, policy(), "QUARTERLY_REBAL")
    sold = [line for line in reco.executed_lines if line.action is TradeAction.SELL]
    assert sold == []
    left = {(e["ticker"], e["reason"]): e["value_base"] for e in reco.rationale["left_alone"]}
    assert left == {
        ("VWRP", UNTARGETED): Decimal(33000),
        ("SEMI", UNTARGETED): Decimal("4550.0"),
        ("ODD", UNTARGETED): Decimal(120),
    }
    assert reco.rationale["excluded_value_base"] == Decimal("37670.0")
    # The base is the cash alone: the weights are measured without the untargeted holdings.
    assert reco.constraints_report["base_value"] == Decimal(500)
    summary = left_alone_summary(reco.to_json_dict()["rationale"])
    assert summary is not None and "VWRP:XLON (not in the strategy, £33,000.00)" in summary


def test_untargeted_sell_lets_a_rebalance_sell_them_within_the_turnover_limit() -> None:
    state = after_a_strategy_change()
    reco = recommend(state, policy(untargeted="sell"), "QUARTERLY_REBAL")
    trades = lines_of(reco)
    assert trades and any(units < 0 for units in trades.values())
    sold = sum(
        (line.amount_base for line in reco.executed_lines if line.action is TradeAction.SELL), Decimal(0)
    )
    assert sold <= Decimal("0.25") * reco.constraints_report["base_value"]


def unpriced_state(*, stale: bool = False) -> PortfolioState:
    return PortfolioState(
        cash_gbp=Decimal("2000"),
        positions=(
            Position("VWRL", "XLON", "EQUITY", Decimal(100), Decimal("100")),
            Position(
                "XDWL", "XLON", "EQUITY", Decimal(50), Decimal("80") if stale else None, price_stale=stale
            ),
            Position("XMUK", "XLON", "EQUITY", Decimal(40), None),
            Position("IGLT", "XLON", "BONDS", Decimal(100), Decimal("12.5")),
        ),
    )


def test_an_unpriced_holding_blocks_the_recommendation_and_is_named() -> None:
    for stale in (False, True):
        reco = recommend(unpriced_state(stale=stale), policy(), "QUARTERLY_REBAL")
        assert reco.lines == ()
        assert UNPRICED_HOLDING in reco.rationale["rules_fired"]
        assert "XDWL:XLON, XMUK:XLON" in reco.headline and "never valued at zero" in reco.headline
        positions = {p["ticker"]: p for p in reco.rationale["positions"]}
        assert positions["XMUK"]["value_base"] is None and not positions["XMUK"]["in_base"]


def test_unpriced_exclude_leaves_it_out_of_the_base_instead_of_counting_it_at_zero() -> None:
    reco = recommend(unpriced_state(), policy(unpriced="exclude"), "QUARTERLY_REBAL")
    left = {e["ticker"]: (e["reason"], e["value_base"]) for e in reco.rationale["left_alone"]}
    assert left == {"XDWL": ("NO_GOOD_PRICE", None), "XMUK": ("NO_GOOD_PRICE", None)}
    assert reco.constraints_report["base_value"] == Decimal(10000) + Decimal("1250.0") + Decimal(2000)


def test_a_sleeve_the_portfolio_cannot_hold_is_shared_out_not_left_as_cash() -> None:
    state = PortfolioState(
        cash_gbp=Decimal("1440.61"),
        positions=(
            Position("VWRP", "XLON", "EQUITY", Decimal(100), Decimal("100")),
            Position("IGLT", "XLON", "BONDS", Decimal(300), Decimal("12.5")),
        ),
    )
    rules = policy(sleeve_targets={"EQUITY": "0.60", "BONDS": "0.30", "CREDIT": "0.10"})
    reco = recommend(state, rules, "MONTHLY_ALLOC")
    assert SLEEVE_NOT_HELD in reco.rationale["rules_fired"]
    assert list(reco.rationale["sleeves_not_held"]) == ["CREDIT"]
    targets = reco.rationale["targets_used"]
    assert targets["EQUITY"] + targets["BONDS"] == ONE and "CREDIT" not in targets
    assert Fraction(targets["EQUITY"]) - Fraction(2, 3) < Fraction(1, 10**11)
    # The money is invested: what is left is below the buffer plus one minimum line.
    assert reco.constraints_report["cash_left"] < Decimal(100)


def test_no_listing_for_any_sleeve_says_so_instead_of_blaming_affordability() -> None:
    state = PortfolioState(cash_gbp=Decimal("1000"), positions=())
    reco = recommend(state, policy(), "MONTHLY_ALLOC")
    assert NO_SLEEVE_HELD in reco.rationale["rules_fired"]
    assert "constituent add" in reco.headline and "affordable" not in reco.headline


def test_rescaled_targets_sum_to_exactly_one() -> None:
    scaled = rescaled_targets({"A": Decimal("0.7"), "B": Decimal("0.2"), "C": Decimal("0.1")}, {"C"})
    assert sum(scaled.values()) == ONE
    assert scaled == {"A": Decimal("0.777777777778"), "B": Decimal("0.222222222222")}


# -- properties over random portfolios and policies -----------------------------------------

SLEEVES = ("EQUITY", "BONDS", "GOLD", "OLD")


@st.composite
def cases(draw):
    count = draw(st.integers(2, 7))
    positions = []
    for i in range(count):
        price = draw(st.one_of(st.none(), st.integers(50, 40_000).map(lambda c: Decimal(c) / 100)))
        positions.append(
            Position(
                f"T{i}",
                "XLON",
                draw(st.sampled_from([*SLEEVES, "UNMAPPED"])),
                Decimal(draw(st.integers(0, 300))),
                price,
                price_stale=price is not None and draw(st.booleans()),
            )
        )
    targets = draw(
        st.sampled_from([{"EQUITY": "0.6", "BONDS": "0.4"}, {"EQUITY": "0.5", "BONDS": "0.3", "GOLD": "0.2"}])
    )
    rules = policy(
        sleeve_targets=targets,
        untargeted=draw(st.sampled_from(["hold", "sell"])),
        unpriced=draw(st.sampled_from(["block", "exclude"])),
        never_sell=draw(st.lists(st.sampled_from(["EQUITY", "T0:XLON", "T1"]), max_size=2)),
        max_trade_base=draw(st.sampled_from([None, "500", "2000"])),
        max_turnover=draw(st.sampled_from(["0", "0.1", "0.25", "1"])),
        line_penalty_base=draw(st.sampled_from([None, "0", "25"])),
    )
    state = PortfolioState(cash_gbp=Decimal(draw(st.integers(0, 5000))), positions=tuple(positions))
    return state, rules, draw(st.sampled_from(["MONTHLY_ALLOC", "QUARTERLY_REBAL"]))


def _names(position: Position) -> set[str]:
    return {position.sleeve, position.ticker, f"{position.ticker}:{position.exchange}"}


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_advice_is_safe_for_any_portfolio_and_policy(case) -> None:
    state, rules, kind = case
    reco = recommend(state, rules, kind, max_nodes=20_000)
    by_key = {p.key: p for p in state.positions}
    trades = lines_of(reco)
    # Under "hold", no untargeted holding is ever traded.
    if rules.untargeted == "hold":
        assert not any(by_key[key].sleeve not in rules.sleeve_targets for key in trades)
    # No held listing is valued at zero: everything in the base has a good price.
    for row in reco.rationale["positions"]:
        if row["units"] > 0 and row["in_base"]:
            assert row["price_gbp"] is not None and not row["price_stale"] and row["value_base"] > 0
    held_unpriced = [
        p
        for p in state.positions
        if p.units > 0
        and (p.price_gbp is None or p.price_stale)
        and (p.sleeve in rules.sleeve_targets or rules.untargeted == "sell")
    ]
    if held_unpriced and rules.unpriced == "block":
        assert trades == {} and UNPRICED_HOLDING in reco.rationale["rules_fired"]
    # The hard rules always hold.
    sold = Decimal(0)
    for key, units in trades.items():
        position = by_key[key]
        amount = abs(units) * position.price_gbp
        if units < 0:
            assert not _names(position) & set(rules.never_sell)
            sold += amount
        if rules.max_trade_base is not None:
            assert amount <= rules.max_trade_base
    assert sold <= rules.max_turnover * reco.constraints_report["base_value"]
    # No targeted sleeve is sold to zero.
    scoped = scope(state, rules)
    for sleeve, row in reco.rationale["sleeves"].items():
        if row["target"] > 0 and row["value_before"] > 0:
            assert row["value_after"] > 0, sleeve
    assert len(scoped.state.positions) == len(state.positions)
