"""Value series, TWR, XIRR, drawdown and sleeve contribution against hand-worked figures and
independent solvers (numpy-financial's irr, scipy's brentq)."""

from __future__ import annotations

import copy
from datetime import date, timedelta
from decimal import Decimal

import numpy as np
import numpy_financial as npf
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import brentq

from tradeassist.core.enums import EntryType as E
from tradeassist.core.errors import ValidationError
from tradeassist.engine.performance import (
    CASH_SLEEVE,
    max_drawdown,
    money_weighted_return,
    sleeve_contributions,
    time_weighted_return,
    twr_index,
    xirr,
)
from tradeassist.engine.value_series import LedgerEvent, daily_values, value_series

D = Decimal


def ev(day: str, kind: E, listing: str | None, units: str, cash: str) -> LedgerEvent:
    return LedgerEvent(date.fromisoformat(day), kind, listing, D(units), D(cash))


# A small hand-built ledger: two listings, a weekend, a gap in IGLT's feed (9 Jan), an
# in-specie transfer, a fee, interest, a sale and a withdrawal.
PRICES = pd.DataFrame(
    {
        "VWRP": [D("100"), D("101"), D("102"), D("100"), D("103")],
        "IGLT": [None, D("10"), D("10.5"), None, D("11")],
    },
    index=pd.to_datetime(["2024-01-04", "2024-01-05", "2024-01-08", "2024-01-09", "2024-01-10"]),
)
EVENTS = (
    ev("2024-01-04", E.CONTRIBUTION, None, "0", "1000"),
    ev("2024-01-04", E.BUY, "VWRP", "5", "-501.50"),  # 5 at 100 plus 1.50 commission
    ev("2024-01-06", E.CONTRIBUTION, None, "0", "200"),  # a Saturday
    ev("2024-01-08", E.BUY, "IGLT", "20", "-210"),
    ev("2024-01-09", E.TRANSFER, "IGLT", "10", "0"),  # in specie, valued at 10.5 carried forward
    ev("2024-01-09", E.FEE, None, "0", "-5"),
    ev("2024-01-10", E.SELL, "VWRP", "-2", "206"),
    ev("2024-01-10", E.WITHDRAWAL, None, "0", "-100"),
    ev("2024-01-10", E.INTEREST, None, "0", "1.25"),
)

# Worked by hand, day by day (holdings = units x close carried forward):
#   4 Jan  VWRP 5x100=500           cash 1000-501.50=498.50     flow +1000
#   5 Jan  VWRP 5x101=505           cash 498.50                 flow 0
#   6 Jan  VWRP 5x101=505 (Sat)     cash 498.50+200=698.50      flow +200
#   7 Jan  VWRP 5x101=505 (Sun)     cash 698.50                 flow 0
#   8 Jan  5x102 + 20x10.5 = 720    cash 698.50-210=488.50      flow 0
#   9 Jan  5x100 + 30x10.5 = 815    cash 488.50-5=483.50        flow +10x10.5=+105
#  10 Jan  3x103 + 30x11 = 639      cash 483.50+206-100+1.25=590.75   flow -100
EXPECTED = pd.DataFrame(
    {
        "holdings_value": [500, 505, 505, 505, 720, 815, 639],
        "cash": [498.50, 498.50, 698.50, 698.50, 488.50, 483.50, 590.75],
        "external_flow": [1000, 0, 200, 0, 0, 105, -100],
        "contribution": [1000, 0, 200, 0, 0, 0, 0],
    },
    index=pd.date_range("2024-01-04", "2024-01-10", freq="D", name="date", unit="us"),
    dtype=float,
)


def test_value_series_matches_the_hand_worked_ledger():
    frame = value_series(EVENTS, PRICES)
    pd.testing.assert_index_equal(frame.index, EXPECTED.index)
    for column in EXPECTED.columns:
        np.testing.assert_allclose(frame[column].to_numpy(), EXPECTED[column].to_numpy(), err_msg=column)
    np.testing.assert_allclose(frame["total_value"], EXPECTED["holdings_value"] + EXPECTED["cash"])
    assert frame["has_contribution"].tolist() == [True, False, True, False, False, False, False]


def test_daily_values_are_exact_decimals():
    exact = daily_values(EVENTS, PRICES)
    assert exact.total_value[-1] == D("1229.75")
    assert exact.external_flow[5] == D("105.0")
    assert all(isinstance(v, Decimal) for v in exact.cash)


def test_prices_as_a_mapping_give_the_same_series():
    mapping = {
        name: {ts.date(): v for ts, v in PRICES[name].items() if v is not None} for name in PRICES.columns
    }
    pd.testing.assert_frame_equal(value_series(EVENTS, mapping), value_series(EVENTS, PRICES))


def test_window_folds_earlier_events_into_the_opening_balance():
    frame = value_series(EVENTS, PRICES, start=date(2024, 1, 8), end=date(2024, 1, 9))
    assert frame.index[0] == pd.Timestamp("2024-01-08")
    np.testing.assert_allclose(frame["total_value"], [1208.50, 1298.50])
    np.testing.assert_allclose(frame["external_flow"], [0, 105])


def test_a_close_before_the_window_seeds_the_carry_forward():
    prices = pd.DataFrame({"X": [D("2"), D("3")]}, index=pd.to_datetime(["2023-12-29", "2024-01-03"]))
    events = (ev("2023-12-29", E.TRANSFER, "X", "10", "0"),)
    frame = value_series(events, prices, start=date(2024, 1, 1), end=date(2024, 1, 4))
    np.testing.assert_allclose(frame["holdings_value"], [20, 20, 30, 30])


def test_inputs_come_back_unchanged():
    prices, events = PRICES.copy(deep=True), copy.deepcopy(EVENTS)
    values = value_series(EVENTS, PRICES)
    before = values.copy(deep=True)
    time_weighted_return(values)
    money_weighted_return(values)
    max_drawdown(twr_index(values))
    sleeve_contributions(
        EVENTS, PRICES, {"VWRP": "eq", "IGLT": "bd"}, start=date(2024, 1, 5), end=date(2024, 1, 10)
    )
    pd.testing.assert_frame_equal(PRICES, prices)
    pd.testing.assert_frame_equal(values, before)
    assert events == EVENTS


@pytest.mark.parametrize(
    ("events", "message"),
    [
        ((ev("2024-01-04", E.BUY, "IGLT", "1", "-10"),), "IGLT has no close on or before 2024-01-04"),
        ((ev("2024-01-04", E.TRANSFER, "IGLT", "1", "0"),), "TRANSFER on 2024-01-04"),
    ],
)
def test_holding_or_transferring_before_the_first_close_is_refused(events, message):
    with pytest.raises(ValidationError, match=message):
        value_series(events, PRICES)


def test_malformed_events_and_float_prices_are_refused():
    with pytest.raises(ValidationError, match="cannot move units"):
        ev("2024-01-04", E.CONTRIBUTION, "VWRP", "1", "100")
    with pytest.raises(ValidationError, match="names no listing"):
        ev("2024-01-04", E.BUY, None, "1", "-100")
    with pytest.raises(ValidationError, match="floats are not accepted"):
        value_series(EVENTS, PRICES.astype(float))


def frame(values: list[float], flows: list[float], start: str = "2024-01-01", step: int = 1) -> pd.DataFrame:
    index = pd.DatetimeIndex([pd.Timestamp(start) + pd.Timedelta(days=step * i) for i in range(len(values))])
    return pd.DataFrame({"total_value": values, "external_flow": flows}, index=index)


def test_twr_hand_worked():
    # Flows are valued at the close, so day t returns (V_t - F_t) / V_{t-1}:
    #   day 1: (1100 - 0) / 1000    = 1.1
    #   day 2: (1710 - 500) / 1100  = 1210 / 1100 = 1.1   (a 500 contribution)
    #   day 3: (1039 + 500) / 1710  = 1539 / 1710 = 0.9   (a 500 withdrawal)
    #   TWR = 1.1 x 1.1 x 0.9 - 1 = 0.089
    values = frame([1000, 1100, 1710, 1039], [1000, 0, 500, -500])
    result = time_weighted_return(values)
    assert result.total == pytest.approx(0.089, abs=1e-12)
    assert result.days == 3 and result.annualised is None  # no annualising a part-year return
    np.testing.assert_allclose(twr_index(values), [1, 1.1, 1.21, 1.089])
    # A sub-period starts from the close of its first day: 1.1 x 0.9 - 1
    assert time_weighted_return(values, start=date(2024, 1, 2)).total == pytest.approx(-0.01, abs=1e-12)


def test_twr_annualised_actual_365():
    # 100 -> 121 over 730 days: 1.21 ** (365 / 730) - 1 = 0.1
    result = time_weighted_return(frame([100, 121], [100, 0], step=730))
    assert result.total == pytest.approx(0.21)
    assert result.annualised == pytest.approx(0.10)


def test_twr_skips_days_with_no_capital_and_survives_a_full_withdrawal():
    # day 1: nothing invested yet; day 2: funded; day 3: +10 %; day 4: everything withdrawn
    # after a further +10 % ((0 + 121) / 110); day 5: empty.
    values = frame([0, 100, 110, 0, 0], [0, 100, 0, -121, 0])
    assert time_weighted_return(values).total == pytest.approx(0.21)


def test_twr_from_the_hand_worked_ledger_against_decimal_arithmetic():
    exact = daily_values(EVENTS, PRICES)
    total, flow = exact.total_value, exact.external_flow
    growth = D(1)
    for t in range(1, len(total)):
        growth *= (total[t] - flow[t]) / total[t - 1]
    assert time_weighted_return(value_series(EVENTS, PRICES)).total == pytest.approx(
        float(growth - 1), abs=1e-14
    )


def test_a_negative_value_is_refused_rather_than_linked():
    with pytest.raises(ValidationError, match="less than nothing on 2024-01-02"):
        time_weighted_return(frame([100, -20], [100, 0]))


def test_period_outside_the_series_is_refused():
    with pytest.raises(ValidationError, match="not within the series"):
        time_weighted_return(frame([1, 2], [1, 0]), end=date(2025, 1, 1))


def npv(rate: float, flows: list[tuple[date, float]]) -> float:
    origin = min(d for d, _ in flows)
    return sum(a / (1 + rate) ** ((d - origin).days / 365) for d, a in flows)


def test_xirr_equal_spacing_matches_numpy_financial_irr():
    amounts = [-1000.0, -500.0, 200.0, -300.0, 1900.0]
    day0 = date(2019, 3, 1)
    flows = [(day0 + timedelta(days=365 * k), a) for k, a in enumerate(amounts)]  # exactly 1.0 year apart
    assert xirr(flows) == pytest.approx(npf.irr(amounts), abs=1e-10)


def test_xirr_irregular_dates_matches_brentq():
    flows = [
        (date(2020, 1, 15), -10_000.0),
        (date(2020, 3, 2), -2_500.0),
        (date(2020, 11, 30), 1_000.0),
        (date(2021, 6, 17), -4_000.0),
        (date(2022, 2, 28), -750.0),
        (date(2023, 8, 9), 19_500.0),
    ]
    expected = brentq(npv, -0.99, 10, args=(flows,), xtol=1e-14)
    assert xirr(flows) == pytest.approx(expected, abs=1e-10)
    # Decimal amounts give the same rate.
    assert xirr([(d, Decimal(str(a))) for d, a in flows]) == pytest.approx(expected, abs=1e-10)


def test_xirr_extreme_short_period():
    # +10 % in 5 days: (1.1) ** (365 / 5) - 1, about 1,050x a year.
    rate = xirr([(date(2024, 1, 1), -100), (date(2024, 1, 6), 110)])
    assert rate == pytest.approx(1.1 ** (365 / 5) - 1, rel=1e-10)
    assert xirr([(date(2024, 1, 1), -100), (date(2024, 1, 6), 50)]) == pytest.approx(0.5**73 - 1, rel=1e-9)


def test_xirr_picks_the_root_nearest_zero_when_there_are_two():
    # -100 + 230 v - 132 v^2 = 0 with v = 1 / (1 + r): v = 10/11 or 5/6, i.e. r = 10 % or 20 %.
    day0 = date(2021, 1, 1)
    flows = [(day0, -100), (day0 + timedelta(days=365), 230), (day0 + timedelta(days=730), -132)]
    assert xirr(flows) == pytest.approx(0.10, abs=1e-10)


def test_xirr_without_a_solution_says_so():
    day0 = date(2021, 1, 1)
    with pytest.raises(ValidationError, match="same sign"):
        xirr([(day0, -100), (day0 + timedelta(days=30), -50)])
    # 100 - 50 v + 100 v^2 > 0 for every v: signs differ yet no rate exists.
    no_root = [(day0, 100), (day0 + timedelta(days=365), -50), (day0 + timedelta(days=730), 100)]
    with pytest.raises(ValidationError, match="does not change sign"):
        xirr(no_root)
    with pytest.raises(ValidationError, match="at least two"):
        xirr([(day0, -1)])


def test_mwr_of_the_hand_worked_ledger_matches_brentq_on_its_flows():
    # From the close of 4 Jan (998.50 paid in) to the close of 10 Jan (1229.75 received),
    # with +200 on 6 Jan, +105 (transfer) on 9 Jan and -100 on 10 Jan, investor's signs.
    flows = [
        (date(2024, 1, 4), -998.50),
        (date(2024, 1, 6), -200.0),
        (date(2024, 1, 9), -105.0),
        (date(2024, 1, 10), 100.0),
        (date(2024, 1, 10), 1229.75),
    ]
    expected = brentq(npv, -0.99, 100, args=(flows,), xtol=1e-14)
    assert money_weighted_return(value_series(EVENTS, PRICES)) == pytest.approx(expected, rel=1e-9)


def test_mwr_equals_annualised_twr_without_intermediate_flows():
    rng = np.random.default_rng(7)
    values = 1000 * np.cumprod(1 + rng.normal(0.0003, 0.01, 800))
    flows = np.zeros(800)
    flows[0] = values[0]
    series = frame(list(values), list(flows))
    twr = time_weighted_return(series)
    assert money_weighted_return(series) == pytest.approx(twr.annualised, rel=1e-9)


def test_drawdown_hand_worked():
    # high 1.2 first on 2 Jan; low 0.9 on 4 Jan: 0.9 / 1.2 - 1 = -25 %; back above 1.2 on 6 Jan.
    index = pd.Series([1.0, 1.2, 1.2, 0.9, 1.0, 1.26, 1.1], index=pd.date_range("2024-01-01", periods=7))
    dd = max_drawdown(index)
    assert dd.depth == pytest.approx(-0.25)
    assert (dd.peak, dd.trough, dd.recovery) == (date(2024, 1, 2), date(2024, 1, 4), date(2024, 1, 6))


def test_drawdown_not_recovered_and_none():
    falling = pd.Series([1.0, 0.8, 0.9], index=pd.date_range("2024-01-01", periods=3))
    dd = max_drawdown(falling)
    assert dd.depth == pytest.approx(-0.2)
    assert (dd.peak, dd.trough, dd.recovery) == (date(2024, 1, 1), date(2024, 1, 2), None)
    rising = max_drawdown(pd.Series([1.0, 1.0, 1.1], index=pd.date_range("2024-01-01", periods=3)))
    assert (rising.depth, rising.peak, rising.trough, rising.recovery) == (0.0, None, None, None)


def test_drawdown_ignores_contributions():
    # The value falls 10 % on day 2, then a large contribution lifts it far above the old high,
    # but the TWR index stays 10 % down until day 4 earns +20 % (13,080 / 10,900 = 1.2).
    values = frame([1000, 900, 10_900, 13_080], [1000, 0, 10_000, 0])
    dd = max_drawdown(twr_index(values))
    assert dd.depth == pytest.approx(-0.10)
    assert (dd.trough, dd.recovery) == (date(2024, 1, 2), date(2024, 1, 4))
    assert max_drawdown(values["total_value"]).recovery == date(2024, 1, 3)  # raw values would mislead


def test_sleeve_contributions_hand_worked():
    # From the close of 5 Jan to the close of 10 Jan:
    #   equity: 3x103 - 5x101 - (-206 sale proceeds) = 309 - 505 + 206 = 10
    #   bonds:  30x11 - 0 - (210 bought + 10x10.5 transferred in) = 330 - 315 = 15
    #   cash:   590.75 - 498.50 - (200 - 210 + 206 - 100) = -3.75  (the 5 fee and 1.25 interest)
    #   total 21.25 = 1229.75 - 1003.50 - (200 + 105 - 100)
    rows = sleeve_contributions(
        EVENTS, PRICES, {"VWRP": "equity", "IGLT": "bonds"}, start=date(2024, 1, 5), end=date(2024, 1, 10)
    )
    by_name = {r.sleeve: r for r in rows}
    assert [r.sleeve for r in rows] == [CASH_SLEEVE, "bonds", "equity"]
    assert by_name["equity"].gain == D("10")
    assert (by_name["bonds"].gain, by_name["bonds"].net_flow) == (D("15"), D("315"))
    assert by_name[CASH_SLEEVE].gain == D("-3.75")
    assert by_name["equity"].share.quantize(D("1e-12")) == D("0.470588235294")  # 10 / 21.25
    assert sum(r.share for r in rows) == pytest.approx(1)


def test_sleeve_contributions_refuses_unassigned_listings():
    with pytest.raises(ValidationError, match="IGLT"):
        sleeve_contributions(EVENTS, PRICES, {"VWRP": "eq"}, start=date(2024, 1, 5), end=date(2024, 1, 10))


# --- properties over random ledgers -----------------------------------------------------------

LISTINGS = ("A", "B", "C")
DAY0 = date(2024, 1, 1)
N_DAYS = 40


@st.composite
def ledgers(draw):
    closes = st.decimals(min_value=D("0.5"), max_value=D("50"), places=2)
    price_days = sorted(draw(st.sets(st.integers(0, N_DAYS - 1), min_size=1, max_size=25)) | {0})
    prices = pd.DataFrame(
        {name: [draw(closes) for _ in price_days] for name in LISTINGS},
        index=pd.to_datetime([DAY0 + timedelta(days=d) for d in price_days]),
        dtype=object,
    )
    amount = st.decimals(min_value=D("0.01"), max_value=D("5000"), places=2)
    units = st.decimals(min_value=D("0.001"), max_value=D("100"), places=3)
    events = [LedgerEvent(DAY0, E.CONTRIBUTION, None, D(0), draw(amount))]
    for _ in range(draw(st.integers(0, 25))):
        day = DAY0 + timedelta(days=draw(st.integers(0, N_DAYS - 1)))
        kind = draw(st.sampled_from(list(E)))
        listing = draw(st.sampled_from(LISTINGS))
        sign = 1 if kind in (E.BUY, E.CONTRIBUTION, E.INTEREST) else -1
        if kind in (E.BUY, E.SELL):
            events.append(LedgerEvent(day, kind, listing, sign * draw(units), -sign * draw(amount)))
        elif kind is E.TRANSFER:
            events.append(LedgerEvent(day, kind, listing, draw(st.sampled_from([1, -1])) * draw(units), D(0)))
        else:
            named = listing if kind in (E.FEE, E.INTEREST) and draw(st.booleans()) else None
            events.append(LedgerEvent(day, kind, named, D(0), sign * draw(amount)))
    return tuple(events), prices


@settings(max_examples=60, deadline=None)
@given(ledgers(), st.integers(0, N_DAYS - 1), st.integers(0, N_DAYS - 1))
def test_sleeve_gains_add_up_to_the_portfolio_gain(ledger, a, b):
    events, prices = ledger
    start, end = DAY0 + timedelta(days=min(a, b)), DAY0 + timedelta(days=max(a, b))
    exact = daily_values(events, prices, start=DAY0, end=DAY0 + timedelta(days=N_DAYS - 1))
    i, j = min(a, b), max(a, b)
    portfolio_gain = exact.total_value[j] - exact.total_value[i] - sum(exact.external_flow[i + 1 : j + 1])
    rows = sleeve_contributions(events, prices, {n: f"s{n}" for n in LISTINGS}, start=start, end=end)
    assert sum(r.gain for r in rows) == portfolio_gain
    assert sum(r.end_value for r in rows) == exact.total_value[j]


@settings(max_examples=40, deadline=None)
@given(ledgers())
def test_flat_prices_and_no_income_mean_zero_twr(ledger):
    events, _ = ledger
    # Trades at the close price, no fees or interest: whatever the flows, nothing was earned.
    flat = pd.DataFrame({n: [D("10")] for n in LISTINGS}, index=pd.to_datetime([DAY0]), dtype=object)
    fair = tuple(
        LedgerEvent(e.date, e.entry_type, e.listing, e.units, -e.units * 10)
        if e.entry_type in (E.BUY, E.SELL)
        else e
        for e in events
        if e.entry_type not in (E.FEE, E.INTEREST, E.DIVIDEND)
    )
    values = value_series(fair, flat, end=DAY0 + timedelta(days=N_DAYS - 1))
    # TWR chains daily float ratios: a few ulps each, so 1e-12 is too tight over a year.
    assert time_weighted_return(values).total == pytest.approx(0, abs=1e-9)
