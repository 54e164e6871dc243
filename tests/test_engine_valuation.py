"""Valuation, weights over holdings plus cash, drift bands, and applying trades."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest

from tradeassist.core.errors import ValidationError
from tradeassist.engine.model import PortfolioState, Position
from tradeassist.engine.valuation import (
    apply_trades,
    breaches,
    drift_report,
    objective,
    sleeve_values,
    sleeve_weights,
    total_value,
)
from tradeassist.policy import parse_policy

POLICY = parse_policy(
    {
        "sleeve_targets": {"CORE": "0.70", "SEMIS": "0.15", "ENERGY": "0.15"},
        "drift_bands": {"absolute": "0.05", "relative": "0.25"},
        "min_trade_base": "100",
        "fee_per_trade_base": "1.50",
        "cash_buffer_base": "50",
        "allow_sells": {"QUARTERLY_REBAL": True},
    }
)

STATE = PortfolioState(
    cash_gbp=Decimal("500"),
    contribution_gbp=Decimal("500"),
    positions=(
        Position("VWRP", "LSE", "CORE", Decimal("60"), Decimal("100")),
        Position("SEMI", "LSE", "SEMIS", Decimal("100"), Decimal("15.0000")),  # a GBX quote: 1500p
        Position("INRG", "LSE", "ENERGY", Decimal("100"), Decimal("10")),
        Position("DEAD", "LSE", "ENERGY", Decimal("5"), None),  # no good price: not valued
        Position("OLD", "LSE", "LEGACY", Decimal("3"), Decimal("100"), include_in_calcs=False),
        Position("GOLD", "LSE", "GOLD", Decimal("2"), Decimal("50"), tradeable=False),  # untargeted
    ),
)


def test_cash_and_contribution_sit_in_the_denominator_only() -> None:
    assert total_value(STATE) == Decimal("6000") + Decimal("1500") + Decimal("1000") + Decimal("100") + 1000
    values = sleeve_values(STATE, POLICY)
    assert dict(values) == {
        "CORE": Decimal("6000"),
        "ENERGY": Decimal("1000"),
        "GOLD": Decimal("100"),
        "SEMIS": Decimal("1500.0000"),
    }
    weights = sleeve_weights(STATE, POLICY)
    assert weights["CORE"] == Fraction(6000, 9600)
    assert sum(weights.values()) == 1 - Fraction(1000, 9600)  # the cash share


def test_an_untargeted_sleeve_has_target_zero() -> None:
    rows = {row.sleeve: row for row in drift_report(STATE, POLICY)}
    assert rows["GOLD"].target == 0
    assert rows["GOLD"].drift == rows["GOLD"].weight


def test_band_breaches_absolute_or_relative() -> None:
    bands = POLICY.drift_bands
    assert not breaches(Fraction(70, 100), Decimal("0.70"), bands)
    assert not breaches(Fraction(75, 100), Decimal("0.70"), bands)  # exactly on the band: inside
    assert breaches(Fraction(7501, 10000), Decimal("0.70"), bands)
    assert breaches(Fraction(11, 100), Decimal("0.15"), bands)  # |0.04| / 0.15 > 0.25
    assert not breaches(Fraction(12, 100), Decimal("0.15"), bands)  # 0.03 / 0.15 = 0.2
    assert breaches(Fraction(6, 100), Decimal("0"), bands)  # a zero target: absolute only
    assert not breaches(Fraction(5, 100), Decimal("0"), bands)


def test_nothing_to_value_means_zero_weights() -> None:
    empty = PortfolioState(cash_gbp=Decimal("0"))
    assert set(sleeve_weights(empty, POLICY).values()) == {0}
    assert objective(empty, POLICY) == Fraction(70**2 + 15**2 + 15**2, 100**2)


def test_apply_trades_moves_cash_by_consideration_and_fees() -> None:
    after = apply_trades(STATE, {("VWRP", "LSE"): 5, ("SEMI", "LSE"): -10}, Decimal("1.50"))
    assert after.cash_gbp == Decimal("1000") - 500 + 150 - 3
    assert after.contribution_gbp == 0
    assert {p.ticker: p.units for p in after.positions}["VWRP"] == 65
    assert {p.ticker: p.units for p in after.positions}["SEMI"] == 90
    assert total_value(after) == total_value(STATE) - 3  # only fees leave
    assert STATE.positions[0].units == 60  # the input is untouched


def test_apply_trades_refuses_unpriced_listings() -> None:
    with pytest.raises(ValidationError, match="not a priced position"):
        apply_trades(STATE, {("DEAD", "LSE"): 1}, Decimal("0"))


def test_objective_is_the_sum_of_squared_deviations() -> None:
    weights = sleeve_weights(STATE, POLICY)
    expected = (
        (weights["CORE"] - Fraction(7, 10)) ** 2
        + (weights["SEMIS"] - Fraction(15, 100)) ** 2
        + (weights["ENERGY"] - Fraction(15, 100)) ** 2
        + weights["GOLD"] ** 2
    )
    assert objective(STATE, POLICY) == expected
