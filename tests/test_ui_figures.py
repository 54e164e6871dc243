"""Dashboard figures, structurally: which traces, named what, with points where the inputs say;
and the dashboard's gathering on the demo (both backends), before and after a bad price."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pandas as pd
import plotly.graph_objects as go
import pytest
from sqlalchemy.engine import Engine

from tests.conftest import DEMO_AS_OF, DEMO_END
from tradeassist.core.enums import CorporateActionType, EntryType
from tradeassist.core.timeutil import end_of_london_day
from tradeassist.db.engine import unit_of_work
from tradeassist.engine import book as bk
from tradeassist.engine.value_series import LedgerEvent, value_series
from tradeassist.policy import DriftBands
from tradeassist.presentation import figures
from tradeassist.providers.prices.base import PriceBar, PriceSeries
from tradeassist.services import identity, prices, registry
from tradeassist.services.dashboard import PriceHistory, SleeveRow
from tradeassist.ui import dashboard

D = Decimal
BANDS = DriftBands(absolute="0.05", relative="0.25")


def _traces(fig: go.Figure) -> dict[str, go.BaseTraceType]:
    return {t.name: t for t in fig.data}


def _values() -> pd.DataFrame:
    events = [
        LedgerEvent(date(2024, 1, 2), EntryType.CONTRIBUTION, None, D(0), D("1000")),
        LedgerEvent(date(2024, 1, 2), EntryType.BUY, "VWRP:XLON", D(9), D("-900")),
        LedgerEvent(date(2024, 1, 5), EntryType.CONTRIBUTION, None, D(0), D("500")),
        LedgerEvent(date(2024, 1, 6), EntryType.WITHDRAWAL, None, D(0), D("-50")),
    ]
    closes = {
        "VWRP:XLON": {date(2024, 1, 2): D("100"), date(2024, 1, 4): D("110"), date(2024, 1, 8): D("90")}
    }
    return value_series(events, closes)


def test_value_figure_marks_each_contribution_on_the_value_line() -> None:
    values = _values()
    before = values.copy()
    fig = figures.value_figure(values)
    traces = _traces(fig)
    assert list(traces) == [figures.TRACE_VALUE, figures.TRACE_NET_IN, figures.TRACE_CONTRIBUTIONS]
    marks = traces[figures.TRACE_CONTRIBUTIONS]
    assert [pd.Timestamp(x).date() for x in marks.x] == [date(2024, 1, 2), date(2024, 1, 5)]
    # 2 Jan: 9 x 100 + 100 cash; 5 Jan: 9 x 110 carried from the 4th + 600 cash
    assert list(marks.y) == [1000.0, 1590.0]
    assert list(marks.customdata) == [1000.0, 500.0]
    assert marks.mode == "markers"
    # net money in steps with every external flow, withdrawals included
    assert list(traces[figures.TRACE_NET_IN].y) == [1000, 1000, 1000, 1500, 1450, 1450, 1450]
    assert len(traces[figures.TRACE_VALUE].x) == 7  # one point a calendar day, 2..8 Jan
    pd.testing.assert_frame_equal(values, before)  # inputs come back unchanged


SLEEVES = (
    SleeveRow("CORE", D("0.70"), D("6843"), 0.6843, -0.0157, False),
    SleeveRow("ENERGY", D("0.15"), D("1189"), 0.1189, -0.0311, False),
    SleeveRow("SEMIS", D("0.15"), D("1929"), 0.1929, 0.0429, True),
    SleeveRow("OLD", D("0"), D("30"), 0.003, 0.003, False),
)


def test_allocation_figure_has_a_bar_per_sleeve_and_a_target_marker_on_each() -> None:
    fig = figures.allocation_figure(SLEEVES)
    traces = _traces(fig)
    assert list(traces) == [figures.TRACE_WEIGHT, figures.TRACE_TARGET]
    bars, targets = traces[figures.TRACE_WEIGHT], traces[figures.TRACE_TARGET]
    assert isinstance(bars, go.Bar) and isinstance(targets, go.Scatter)
    assert list(bars.x) == list(targets.x) == ["CORE", "ENERGY", "SEMIS", "OLD"]
    assert list(bars.y) == [0.6843, 0.1189, 0.1929, 0.003]
    assert list(targets.y) == [0.7, 0.15, 0.15, 0.0]
    assert list(bars.marker.color) == [figures.BLUE, figures.BLUE, figures.RED, figures.BLUE]
    assert fig.layout.yaxis.tickformat == ".0%"


def test_drift_figure_shades_the_absolute_band_and_the_relative_one_where_tighter() -> None:
    fig = figures.drift_figure(SLEEVES, BANDS)
    traces = _traces(fig)
    assert list(traces) == [figures.TRACE_ABSOLUTE_BAND, figures.TRACE_RELATIVE_BAND, figures.TRACE_DRIFT]
    absolute = traces[figures.TRACE_ABSOLUTE_BAND]
    assert list(absolute.base) == [-0.05] * 4 and list(absolute.y) == [0.1] * 4
    relative = traces[figures.TRACE_RELATIVE_BAND]
    # 0.25 x 0.70 = 0.175 is wider than 0.05 and a zero target has no relative band: only the 15 % sleeves
    assert list(relative.x) == ["ENERGY", "SEMIS"]
    assert list(relative.base) == [-0.0375, -0.0375] and list(relative.y) == [0.075, 0.075]
    drift = traces[figures.TRACE_DRIFT]
    assert list(drift.y) == [-0.0157, -0.0311, 0.0429, 0.003]
    assert list(drift.marker.color) == [figures.BLUE, figures.BLUE, figures.RED, figures.BLUE]
    assert fig.layout.barmode == "overlay"
    low, high = fig.layout.yaxis.range
    assert low < -0.05 and high > 0.05  # the whole band is in view


def _history() -> PriceHistory:
    days = pd.DatetimeIndex(
        pd.to_datetime(["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"]), name="date"
    )
    frame = pd.DataFrame(
        {
            "price": [D("100"), D("1.01"), D("102"), D("50")],
            "price_adjusted": [D("50"), D("0.505"), D("51"), D("50")],
            "price_gbp": [D("1.00"), None, D("1.02"), D("0.50")],
            "usable": [True, False, True, True],
            "flags": ["", "scale_suspect", "", "stale"],
            "source": ["demo"] * 4,
        },
        index=days,
    )
    return PriceHistory("SMGB", "XLON", "GBX", frame)


def test_price_figure_draws_usable_closes_and_flagged_points_in_red() -> None:
    fig = figures.price_figure(_history())
    traces = _traces(fig)
    assert list(traces) == [figures.TRACE_CLOSE, figures.TRACE_FLAGGED]
    close, flagged = traces[figures.TRACE_CLOSE], traces[figures.TRACE_FLAGGED]
    assert list(close.y) == [100.0, 102.0, 50.0]  # the unusable point is not on the line
    assert [pd.Timestamp(x).date() for x in flagged.x] == [date(2024, 1, 3), date(2024, 1, 5)]
    assert list(flagged.y) == [1.01, 50.0]
    assert list(flagged.customdata) == ["scale_suspect", "stale"]
    assert flagged.marker.color == figures.RED and flagged.mode == "markers"
    assert fig.layout.yaxis.title.text == "GBX (pence)"

    adjusted = _traces(figures.price_figure(_history(), split_adjusted=True))
    assert list(adjusted[figures.TRACE_CLOSE].y) == [50.0, 51.0, 50.0]
    assert list(adjusted[figures.TRACE_FLAGGED].y) == [0.505, 50.0]


def test_performance_figure_shows_three_indicators_over_the_drawdown_area() -> None:
    performance = dashboard.performance_of(_values())
    fig = figures.performance_figure(performance)
    indicators = [t for t in fig.data if isinstance(t, go.Indicator)]
    assert [t.name for t in indicators] == ["TWR (period)", "XIRR", "Max drawdown"]
    assert indicators[0].value == pytest.approx(performance.twr.total * 100)
    assert indicators[1].value == pytest.approx(performance.xirr * 100)
    assert indicators[2].value == pytest.approx(performance.drawdown.depth * 100)
    area = _traces(fig)[figures.TRACE_DRAWDOWN]
    assert area.fill == "tozeroy"
    assert min(area.y) == pytest.approx(performance.drawdown.depth)
    assert max(area.y) == 0.0
    # the fall from 4 Jan (110) to 8 Jan (90) on the 9 units held: the TWR index falls with it
    assert performance.drawdown.peak == date(2024, 1, 4) and performance.drawdown.trough == date(2024, 1, 8)


def test_alerts_figure_says_frozen_and_lists_every_open_alert() -> None:
    alerts = [
        {
            "severity": "CRITICAL",
            "code": "PRICE_SCALE_SUSPECT",
            "message": "100x off",
            "created_at": datetime(2026, 1, 2, tzinfo=UTC),
        },
        {"severity": "WARN", "code": "PRICE_STALE", "message": "old", "created_at": None},
    ]
    frozen = {"is_frozen": True, "reason_code": "PRICE_SCALE_SUSPECT", "set_at": datetime(2026, 1, 2, 9, 30)}
    fig = figures.alerts_figure(alerts, frozen)
    table = fig.data[0]
    assert isinstance(table, go.Table)
    assert list(table.cells.values[1]) == ["PRICE_SCALE_SUSPECT", "PRICE_STALE"]
    assert "FROZEN" in fig.layout.title.text and "02 Jan 2026 09:30" in fig.layout.title.text
    calm = figures.alerts_figure([], {"is_frozen": False})
    assert "not frozen" in calm.layout.title.text
    assert list(calm.data[0].cells.values[2]) == ["no open alerts"]


def test_nothing_to_draw_says_why_instead_of_failing() -> None:
    for fig in (
        figures.value_figure(None),
        figures.allocation_figure(()),
        figures.drift_figure((), None),
        figures.performance_figure(None),
    ):
        assert not fig.data and fig.layout.annotations[0].text


def test_split_puts_units_and_prices_on_todays_basis_so_value_is_continuous() -> None:
    # A 2-for-1 split effective 4 Jan: the feed quotes 100 before and 50 after; 10 units bought
    # on 2 Jan are 20 after. Value is 1000 throughout, never 500 or 2000.
    split = bk.Action(1, date(2024, 1, 4), CorporateActionType.SPLIT, 7, D(2), D(1))
    raw = [(date(2024, 1, 2), D("100")), (date(2024, 1, 3), D("100")), (date(2024, 1, 4), D("50"))]
    rows = [
        {
            "as_of": d,
            "raw_price": p,
            "normalized_price_base": p,
            "usable": True,
            "quality_flags": [],
            "source": "x",
        }
        for d, p in raw
    ]
    history = dashboard._history("ABC", "XLON", "GBP", rows, [split], 7)
    assert list(history.frame["price_adjusted"]) == [D("50"), D("50"), D("50")]
    listings = {1: bk_listing(1, "ABC", "XLON", 7)}
    entries = [
        {"entry_time": datetime(2024, 1, 2, 12, tzinfo=UTC), "entry_type": "CONTRIBUTION", "ticker": None,
         "exchange": None, "units": None, "cash_amount_base": D("1000")},
        {"entry_time": datetime(2024, 1, 2, 13, tzinfo=UTC), "entry_type": "BUY", "ticker": "ABC",
         "exchange": "XLON", "units": D("10"), "cash_amount_base": D("-1000")},
    ]  # fmt: skip
    events = dashboard._events(entries, listings, [split])
    assert events[1].units == D("20")
    values = value_series(events, dashboard._closes({"ABC:XLON": history}))
    assert list(values["total_value"]) == [1000.0, 1000.0, 1000.0]


def bk_listing(listing_id: int, ticker: str, exchange: str, instrument_id: int):  # type: ignore[no-untyped-def]
    from tradeassist.services.ledger import ListingInfo

    return ListingInfo(listing_id, ticker, exchange, "GB0000000000", bk.Quote(instrument_id, "GBP", 0), True)


# --- gathered from the demo -------------------------------------------------------------------


def _gather(engine: Engine) -> dashboard.DashboardData:
    # at the end of the demo's last London day: its close counts (at DEMO_AS_OF, 22:00 UTC in
    # summer, it is not yet: a close stands at the end of its day, as the services count it)
    return dashboard.load("Demo SIPP", engine=engine, as_of=end_of_london_day(DEMO_END))


def test_dashboard_on_the_demo_then_a_bad_price_is_flagged_alerted_and_freezes(demo_engine: Engine) -> None:
    early = dashboard.load("Demo SIPP", engine=demo_engine, as_of=DEMO_AS_OF)
    assert early.values.index[-1].date() < DEMO_END  # the day's close is not known before its end
    data = _gather(demo_engine)
    assert data.notes == ()
    assert [s.sleeve for s in data.sleeves] == ["CORE", "ENERGY", "SEMIS"]
    assert [s.target for s in data.sleeves] == [D("0.7"), D("0.15"), D("0.15")]
    assert data.bands == BANDS
    last = data.values.iloc[-1]
    assert data.values.index[-1].date() == DEMO_END
    # the value series and the engine's valuation agree on the last day
    assert last["total_value"] == pytest.approx(
        float(sum(s.value_gbp for s in data.sleeves) + data.cash), abs=0.01
    )
    assert data.values["contribution"].sum() == pytest.approx(1000.0 * data.values["has_contribution"].sum())
    assert sorted(data.prices) == ["ISF:XLON", "SMGB:XLON", "VWRP:XLON", "XLE:ARCX"]
    assert data.prices["ISF:XLON"].unit == "GBX" and data.prices["XLE:ARCX"].unit == "USD"
    assert all(h.flagged.empty for h in data.prices.values())
    assert data.performance is not None and data.performance.xirr is not None
    assert data.alerts == [] and data.freeze["is_frozen"] is False
    charts = dashboard.figures_for(data)
    assert list(charts)[:5] == ["value", "allocation", "drift", "performance", "alerts"]
    assert len(charts) == 9

    with unit_of_work(demo_engine) as session:  # a second feed sends SMGB's close in pounds
        listing = registry.get_listing(session, "SMGB", "XLON")
        close = prices.list_prices(session, ticker="SMGB", exchange="XLON", start=DEMO_END)[-1]["raw_price"]
        bar = PriceBar(as_of=DEMO_END, close=close.scaleb(-2), currency=None, quote_scale=None, source="feed")
        prices.ingest_series(
            session,
            actor=identity.bootstrap_admin(session),
            listing=listing,
            series=PriceSeries(source="feed", source_name="feed.csv", bars=(bar,), symbol="SMGB"),
        )
    data = _gather(demo_engine)
    flagged = data.prices["SMGB:XLON"].flagged
    assert list(flagged.index.date) == [DEMO_END] and "scale_suspect" in flagged["flags"].iloc[0]
    assert [a["code"] for a in data.alerts] == ["PRICE_SCALE_SUSPECT"]
    assert data.freeze["is_frozen"] is True
    # the flagged point is neither on the line nor in the value
    fig = figures.price_figure(data.prices["SMGB:XLON"])
    assert len(_traces(fig)[figures.TRACE_FLAGGED].x) == 1
    assert data.values.iloc[-1]["total_value"] == pytest.approx(last["total_value"])
