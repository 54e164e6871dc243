"""The dashboard's accounts tell the truth (issue #18 item 4): every account together, each
holding valued (price, value, book cost, gain, weight) or said to have no price, income by tax
year, and a picker that chooses between them.

Observed before: the dashboard showed one portfolio, fixed by the notebook's parameters cell
(in Voilà there was no way to choose another), nothing of all accounts together, no holding's
value or gain, and only this tax year's income. Built here through the services in a real
database (both backends): the SIPP of ``test_dashboard_unpriced`` (XDWL without a price) and
an ISA beside it, both governed by one strategy.
"""

from __future__ import annotations

import json
import re
from datetime import date
from decimal import Decimal
from fractions import Fraction

import plotly.graph_objects as go
import pytest
from sqlalchemy.engine import Engine

from tests.support.sipp import (
    HOUSEHOLD_POLICY,
    add_closes,
    add_gbp_closes,
    admin_of,
    build_isa,
    build_sipp,
    household_strategy,
    weekdays,
)
from tradeassist.core.enums import TaskKind
from tradeassist.core.timeutil import end_of_london_day
from tradeassist.db.engine import create_db_engine, unit_of_work
from tradeassist.engine.accounts import drift_across
from tradeassist.engine.model import PortfolioState, Position
from tradeassist.engine.valuation import drift_report
from tradeassist.policy import parse_policy
from tradeassist.presentation import account_figures, figures
from tradeassist.presentation import dashboard_accounts as pa
from tradeassist.services import advice, identity, portfolios
from tradeassist.services import dashboard_accounts as da
from tradeassist.ui import dashboard_app

D = Decimal
AS_OF = end_of_london_day(date(2023, 6, 30))
XDWL_SENTENCE = (
    "XDWL on XLON (12 units) has no price from 4 September 2022: import prices with "
    "`tradeassist prices import FILE --ticker XDWL --exchange XLON --format csv`; it has no price "
    "provider, so `tradeassist prices refresh` skips it."
)
SIPP_CASH = D("3258.33")  # 2000 - 211.50 + 500 - 143.50 + 1.23 - 3.50 + 500 + 363.50 + 2.10 + 250
ISA_CASH = D("3011.40")  # 5000 - 2001.50 + 12.34 + 0.56
XMUK_COST = D("2104.29")  # the pool: 2100 + 211.50 + 143.50 for 35 units, 5 sold: 30/35 of 2455


def household_with_prices(engine: Engine) -> None:
    build_sipp(engine)
    build_isa(engine)
    household_strategy(engine)
    add_closes(engine, "XMUK", weekdays(date(2022, 8, 1), date(2023, 6, 30), "7200"))
    add_gbp_closes(engine, "VWRP", weekdays(date(2022, 8, 1), date(2023, 6, 30), "110"))


def read_household(engine: Engine, email: str | None = None) -> da.Household:
    with unit_of_work(engine, readonly=True) as s:
        actor = identity.get_user(s, email) if email else identity.bootstrap_admin(s)
        assert actor is not None
        return da.household(s, actor=actor, as_of=AS_OF)


def test_all_accounts_together_value_each_holding_and_leave_out_what_has_no_price(engine: Engine) -> None:
    household_with_prices(engine)
    house = read_household(engine)
    sipp, isa = house.accounts
    assert (sipp.portfolio, sipp.tax_treatment, sipp.strategy) == ("SIPP", "SIPP", "household-1")
    assert (isa.portfolio, isa.tax_treatment, isa.strategy) == ("ISA", "ISA", "household-1")

    # each holding: price, value, book cost, gain, weight; no price is no value, never £0
    xdwl, xmuk = sipp.holdings
    assert (xdwl.label, xdwl.units, xdwl.book_cost, xdwl.status) == ("XDWL:XLON", D(12), D(780), da.NO_PRICE)
    assert xdwl.price_gbp is None and xdwl.value is None and xdwl.gain is None and xdwl.weight is None
    assert xdwl.note == XDWL_SENTENCE  # the value chart's words: which listing, since when, what to do
    assert (xmuk.units, xmuk.price_gbp, xmuk.price_day, xmuk.value) == (
        D(30),
        D(72),
        date(2023, 6, 30),
        D(2160),
    )
    assert xmuk.book_cost == XMUK_COST and xmuk.gain == D(2160) - XMUK_COST
    assert (xmuk.status, xmuk.note) == (da.PRICED, None)
    assert sipp.cash == SIPP_CASH and sipp.holdings_value == D(2160) and sipp.total == D(2160) + SIPP_CASH
    assert xmuk.weight == pytest.approx(float(D(2160) / (D(2160) + SIPP_CASH)))
    assert sipp.notes == (XDWL_SENTENCE,) and sipp.unpriced == (xdwl,)

    [vwrp] = isa.holdings
    assert (vwrp.name, vwrp.value, vwrp.book_cost, vwrp.gain) == (
        "All-World",
        D(2200),
        D("2001.50"),
        D("198.50"),
    )
    assert isa.cash == ISA_CASH and isa.total == D(2200) + ISA_CASH
    assert house.total == sipp.total + isa.total == D("10629.73") and house.cash == SIPP_CASH + ISA_CASH

    # one strategy across both accounts: each sleeve over every valued holding plus all the cash
    [allocation] = house.allocations
    assert (allocation.strategy, allocation.portfolios) == ("household-1", ("SIPP", "ISA"))
    assert [(s.sleeve, s.target, s.value_gbp) for s in allocation.sleeves] == [
        ("CORE", D("0.6"), D(2200)),  # VWRP in the ISA; XDWL (CORE, in the SIPP) has no price
        ("UK", D("0.4"), D(2160)),
    ]
    core, uk = allocation.sleeves
    assert core.weight == pytest.approx(2200 / 10629.73) and core.drift == pytest.approx(
        2200 / 10629.73 - 0.6
    )
    assert core.breached and uk.breached
    assert allocation.note == (
        "The allocation leaves out what has no price, never counting it as zero: "
        "XDWL on XLON (12 units) in SIPP."
    )
    assert house.notes == ()  # both accounts are governed

    # income by tax year (6 April to 5 April), all accounts together, exact
    assert house.income == (
        da.IncomeYear("2022-23", D(0), D("3.33")),  # the SIPP's interest, Dec 2022 and 3 Apr 2023
        da.IncomeYear("2023-24", D("12.34"), D("0.56")),  # the ISA's dividend and interest
    )

    # in words and pictures: money in pounds and pence, "no price" where there is none
    page = pa.household_html(house)
    assert "All accounts: £10,629.73, at the end of 30 June 2023" in page
    assert "never counting it as zero: XDWL on XLON in SIPP" in page
    table = pa.holdings_html(sipp)
    assert '<td style="text-align:left">XDWL (XLON)</td><td style="text-align:right">12</td>' in table
    xdwl_row = table.split("XDWL (XLON)")[1].split("</tr>")[0]
    assert xdwl_row.count(pa.NO_PRICE_TEXT) == 4 and "£0.00" not in xdwl_row  # price, value, gain, status
    assert "£2,160.00" in table and "£2,104.29" in table and "£55.71" in table and "+2.6%" in table
    assert "import prices with `tradeassist prices import FILE --ticker XDWL" in table
    bars = {t.name: t for t in account_figures.accounts_figure(house).data}
    assert list(bars[account_figures.TRACE_HOLDINGS].x) == [2160.0, 2200.0]
    assert list(bars[account_figures.TRACE_CASH].customdata) == ["£3,258.33", "£3,011.40"]
    gains = account_figures.holdings_figure(sipp)
    assert list(gains.data[0].y) == ["XMUK"] and "Not drawn, for want of a price: XDWL on XLON" in (
        gains.layout.title.text
    )
    income = {t.name: t for t in account_figures.income_figure(house.income).data}
    assert list(income[account_figures.TRACE_DIVIDENDS].y) == [0.0, 12.34]
    assert '<td style="text-align:right">£3.33</td>' in pa.income_html(house.income)


def test_a_flagged_close_and_a_stale_price_are_said_with_what_to_do(engine: Engine) -> None:
    build_sipp(engine)
    add_closes(engine, "XMUK", weekdays(date(2022, 8, 1), date(2023, 6, 29), "7200"))
    add_closes(engine, "XMUK", {date(2023, 6, 30): "72.00"}, source="feed")  # pounds read as pence
    add_closes(engine, "XDWL", weekdays(date(2022, 8, 1), date(2023, 6, 30), "6600"))
    with unit_of_work(engine, readonly=True) as s:
        admin = identity.bootstrap_admin(s)
        assert admin is not None
        now = da.account_holdings(s, actor=admin, portfolio="SIPP", as_of=AS_OF)
        later = da.account_holdings(
            s, actor=admin, portfolio="SIPP", as_of=end_of_london_day(date(2023, 8, 31))
        )
    xdwl, xmuk = now.holdings
    assert (xdwl.status, xdwl.value, xdwl.note) == (da.PRICED, D(792), None)
    assert (xmuk.status, xmuk.price_day, xmuk.value) == (da.FLAGGED, date(2023, 6, 29), D(2160))  # not £21.60
    assert xmuk.note == (
        "XMUK on XLON (30 units): its close of 30 June 2023 is flagged (scale_suspect) and not used, so the "
        "value uses the last usable close before it; check it against the broker, then record the split "
        "with `tradeassist corporate-action add` or accept the new level with "
        "`tradeassist prices accept-level`."
    )
    xdwl, xmuk = later.holdings
    assert (xdwl.status, xdwl.value) == (da.STALE, D(792))  # shown at its last close, and said so
    age = re.fullmatch(
        r"XDWL on XLON \(12 units\): its last usable close, of 30 June 2023, is (\d+) business days old "
        r"\(more than the 5 allowed\), so it is valued at that close and no recommendation will trade it; "
        r"import newer prices with "
        r"`tradeassist prices import FILE --ticker XDWL --exchange XLON --format csv`\.",
        xdwl.note or "",
    )
    assert age is not None and int(age.group(1)) >= 40  # weekdays to 31 August (bank holidays aside)
    assert xmuk.status == da.FLAGGED and f"{int(age.group(1)) + 1} business days old" in (xmuk.note or "")
    assert "stale price" in pa.holdings_html(later) and "flagged close" in pa.holdings_html(later)


def test_an_account_without_a_strategy_is_named_and_another_person_sees_only_theirs(engine: Engine) -> None:
    build_sipp(engine)
    build_isa(engine)
    household_strategy(engine, ("ISA",))
    add_gbp_closes(engine, "VWRP", weekdays(date(2022, 8, 1), date(2023, 6, 30), "110"))
    house = read_household(engine)
    assert [a.portfolio for a in house.accounts] == ["SIPP", "ISA"]
    assert [(a.strategy, a.portfolios) for a in house.allocations] == [("household-1", ("ISA",))]
    assert house.notes == (
        "SIPP has no approved strategy, so no allocation counts it: add one with `tradeassist strategy add "
        '--label LABEL --policy FILE --manifesto FILE --portfolio "SIPP"` and approve it with '
        "`tradeassist strategy approve LABEL`.",
    )
    [core, uk] = house.allocations[0].sleeves
    assert core.weight == pytest.approx(2200 / float(D(2200) + ISA_CASH)) and uk.value_gbp == 0

    with unit_of_work(engine) as s:
        admin = admin_of(s)
        identity.add_user(s, actor=admin, email="bob@example.com", password="bob-password-123")
        portfolios.share_portfolio(s, actor=admin, name="ISA", email="bob@example.com")
    bobs = read_household(engine, "bob@example.com")
    assert [a.portfolio for a in bobs.accounts] == ["ISA"]
    assert bobs.total == D(2200) + ISA_CASH and bobs.notes == ()
    assert bobs.income == (da.IncomeYear("2023-24", D("12.34"), D("0.56")),)  # none of the SIPP's interest


def test_one_account_across_accounts_is_its_own_drift_report() -> None:
    policy = parse_policy(HOUSEHOLD_POLICY)
    sipp = PortfolioState(
        cash_gbp=D("100"),
        positions=(
            Position("XMUK", "XLON", "UK", D(30), D(72)),
            Position("XDWL", "XLON", "CORE", D(12), None),  # no price: left out, never zero
        ),
    )
    isa = PortfolioState(cash_gbp=D("40"), positions=(Position("VWRP", "XLON", "CORE", D(20), D(110)),))
    assert drift_across([sipp], policy) == drift_report(sipp, policy)
    core, uk = drift_across([sipp, isa], policy)
    assert (core.value_gbp, uk.value_gbp) == (D(2200), D(2160))
    assert core.weight == Fraction(2200, 4500) and uk.weight == Fraction(2160, 4500)  # 2200 + 2160 + 140
    assert drift_across([], policy) == tuple(
        drift_report(PortfolioState(cash_gbp=D(0)), policy)
    )  # nothing at all: zero weights, the targets still listed


def test_the_allocation_across_one_account_matches_what_its_dashboard_shows(engine: Engine) -> None:
    household_with_prices(engine)
    with unit_of_work(engine, readonly=True) as s:
        admin = identity.bootstrap_admin(s)
        assert admin is not None
        shown = da.account_dashboard(s, actor=admin, portfolio="ISA", as_of=AS_OF)
        inputs = advice.prepare_inputs(
            s, portfolio="ISA", kind=TaskKind.WEEKLY_REVIEW, as_of=AS_OF, actor=admin
        )
    assert [r.sleeve for r in shown.data.sleeves] == ["CORE", "UK"]
    assert [r.value_gbp for r in shown.data.sleeves] == [
        r.value_gbp for r in drift_report(inputs.state, inputs.policy)
    ]
    assert shown.holdings.total == D(2200) + ISA_CASH
    assert shown.income == (da.IncomeYear("2023-24", D("12.34"), D("0.56")),)


# --- the picker ---------------------------------------------------------------------------------
def test_the_picker_offers_all_accounts_and_each_portfolio_and_redraws_on_a_choice(sqlite_url: str) -> None:
    engine = create_db_engine(sqlite_url)
    try:
        household_with_prices(engine)
        app = dashboard_app.DashboardApp(engine=engine, as_of=AS_OF)
        assert list(app.picker.options) == [dashboard_app.ALL_ACCOUNTS, "SIPP", "ISA"]
        assert (
            app.picker.value == dashboard_app.ALL_ACCOUNTS
            and "ta-dashboard-picker" in app.picker._dom_classes
        )
        names = [name for name, _ in app.parts]
        assert names[:4] == ["summary", "accounts", "allocation household-1", "drift household-1"]
        assert names[-4:] == ["income", "income table", "holdings SIPP", "holdings ISA"]
        assert "All accounts: £10,629.73" in dict(app.parts)["summary"].data
        assert len(app.body.outputs) == len(app.parts)  # what the page shows, in order

        app.picker.value = "SIPP"  # a person chooses: the view is read again, for that account
        parts = dict(app.parts)
        assert list(parts)[:3] == ["notes", "holdings", "holdings chart"]
        assert {"value", "allocation", "drift", "performance", "income", "price XDWL:XLON", "alerts"} <= set(
            parts
        )
        assert XDWL_SENTENCE in parts["notes"].data and XDWL_SENTENCE in parts["holdings"].data
        assert isinstance(parts["value"], type(figures.value_figure(None)))
        assert "SIPP: value over time" in parts["value"].layout.title.text
        assert len(app.body.outputs) == len(app.parts)
        json.dumps(app.body.outputs, allow_nan=False)  # what the kernel sends the page: plain JSON
        charts = [out["data"] for out in app.body.outputs if dashboard_app.PLOTLY_MIME in out["data"]]
        assert len(charts) == sum(isinstance(part, go.Figure) for _, part in app.parts) == 9

        started = dashboard_app.app("ISA", engine=engine, as_of=AS_OF)  # the parameter opens on it
        assert started.picker.value == "ISA" and "Holdings of ISA" in dict(started.parts)["holdings"].data
        unknown = dashboard_app.app("Nobody's", engine=engine, as_of=AS_OF)
        assert unknown.picker.value == dashboard_app.ALL_ACCOUNTS
        assert "You may see no portfolio named" in dict(unknown.parts)["warning"].data
    finally:
        engine.dispose()
