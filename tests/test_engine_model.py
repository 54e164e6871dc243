"""The engine's frozen values: validation, JSON round trips, read-only recommendations."""

from __future__ import annotations

import dataclasses
import json
import re
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeassist.core.enums import TradeAction
from tradeassist.core.errors import ValidationError
from tradeassist.core.jsonutil import dumps, loads_decimal
from tradeassist.engine.model import (
    NO_GOOD_PRICE,
    NOT_IN_CALCS,
    NOT_TRADEABLE,
    PortfolioState,
    Position,
    Recommendation,
    RecommendationLine,
    state_from_dict,
    state_to_dict,
)


def position(**changes: object) -> Position:
    values: dict[str, object] = {
        "ticker": "VWRP",
        "exchange": "LSE",
        "sleeve": "CORE",
        "units": Decimal("10"),
        "price_gbp": Decimal("112.34"),
    }
    values.update(changes)
    return Position(**values)  # type: ignore[arg-type]


def test_positions_say_whether_they_are_valued_and_traded() -> None:
    assert position().can_trade and position().valued
    assert position().value_gbp == Decimal("1123.40")
    unpriced = position(price_gbp=None)
    assert not unpriced.valued and not unpriced.can_trade and unpriced.value_gbp == 0
    assert unpriced.left_alone_because == NO_GOOD_PRICE
    excluded = position(include_in_calcs=False)
    assert not excluded.valued and excluded.left_alone_because == NOT_IN_CALCS
    locked = position(tradeable=False)
    assert locked.valued and not locked.can_trade and locked.left_alone_because == NOT_TRADEABLE


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"units": Decimal("-1")}, "units must not be negative"),
        ({"units": 1.5}, "floats are not accepted"),
        ({"price_gbp": Decimal("0")}, "price_gbp must be positive"),
        ({"sleeve": "core"}, "is not a sleeve code"),
        ({"ticker": ""}, "ticker and exchange are required"),
    ],
)
def test_bad_positions_are_refused(changes: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        position(**changes)


def test_states_refuse_duplicates_and_negative_contributions() -> None:
    with pytest.raises(ValidationError, match="appears twice"):
        PortfolioState(cash_gbp=Decimal("0"), positions=(position(), position()))
    with pytest.raises(ValidationError, match="contribution_gbp must not be negative"):
        PortfolioState(cash_gbp=Decimal("0"), contribution_gbp=Decimal("-1"))


def test_values_are_frozen() -> None:
    state = PortfolioState(cash_gbp="10", positions=[position()])  # type: ignore[arg-type]
    assert isinstance(state.positions, tuple) and state.cash_gbp == Decimal("10")
    with pytest.raises(dataclasses.FrozenInstanceError):
        state.cash_gbp = Decimal("0")  # type: ignore[misc]


decimals = st.decimals(min_value=0, max_value=10**6, places=4, allow_nan=False, allow_infinity=False)


@settings(max_examples=100, deadline=None)
@given(
    cash=st.decimals(min_value=-1000, max_value=10**6, places=2, allow_nan=False, allow_infinity=False),
    contribution=st.decimals(min_value=0, max_value=10**4, places=2, allow_nan=False, allow_infinity=False),
    frozen=st.booleans(),
    rows=st.lists(
        st.tuples(decimals, st.none() | decimals.filter(lambda d: d > 0), st.booleans(), st.booleans()),
        max_size=6,
    ),
)
def test_state_round_trips_through_plain_json(cash, contribution, frozen, rows) -> None:
    state = PortfolioState(
        cash_gbp=cash,
        contribution_gbp=contribution,
        frozen=frozen,
        positions=tuple(
            Position(f"T{i}", "LSE", "CORE", units, price, tradeable, calcs)
            for i, (units, price, tradeable, calcs) in enumerate(rows)
        ),
    )
    text = dumps(state_to_dict(state))
    assert not re.search(r"\d[eE][+-]?\d", text)  # decimals as plain strings, never scientific
    assert state_from_dict(json.loads(text)) == state
    assert state_from_dict(loads_decimal(text)) == state


def test_state_from_dict_refuses_unknown_keys_and_floats() -> None:
    good = state_to_dict(PortfolioState(cash_gbp=Decimal("1"), positions=(position(),)))
    with pytest.raises(ValidationError, match="unknown key"):
        state_from_dict({**good, "note": "x"})
    bad = json.loads(json.dumps(good))
    bad["positions"][0]["units"] = 1.5
    with pytest.raises(ValidationError, match="floats are not accepted"):
        state_from_dict(bad)
    bad = json.loads(json.dumps(good))
    bad["positions"][0]["tradeable"] = "yes"
    with pytest.raises(ValidationError, match="tradeable: expected true or false"):
        state_from_dict(bad)


def test_recommendation_json_has_exactly_four_keys_and_strings_for_decimals() -> None:
    line = RecommendationLine("VWRP", "LSE", TradeAction.BUY, Decimal("224.68"), Decimal("2"), False, "X")
    reco = Recommendation(
        headline="Buy.",
        rationale={"sleeves": {"CORE": {"weight": Decimal("0.5")}}, "rules_fired": ["A"]},
        constraints_report={"fees": Decimal("1.50")},
        lines=[line],
    )
    data = reco.to_json_dict()
    assert list(data) == ["headline", "rationale", "constraints_report", "lines"]
    assert data["rationale"] == {"sleeves": {"CORE": {"weight": "0.5"}}, "rules_fired": ["A"]}
    assert data["constraints_report"] == {"fees": "1.50"}
    assert data["lines"] == [
        {
            "ticker": "VWRP",
            "exchange": "LSE",
            "action": "BUY",
            "amount_base": "224.68",
            "estimated_units": "2",
            "suppressed_by_min_trade": False,
            "reason_code": "X",
        }
    ]
    json.dumps(data)  # plain JSON, no Decimal left
    with pytest.raises(TypeError):
        reco.rationale["sleeves"]["CORE"]["weight"] = Decimal("1")  # type: ignore[index]
    assert reco.executed_lines == (line,) and reco.suppressed_lines == ()
