"""The dashboard never lies about holdings without a price.

Observed: a SIPP holding XDWL and XMUK with no prices. Its value chart said "no ledger entries
yet" (there were 12), the performance block printed a raw tuple
``('value series: TRANSFER on 2022-09-04: XDWL:XLON has no close …',)`` and the notebook a bare
``()``. Built here through the services in a real database: every missing or flagged price is
said in words (which listing, how many units, since when, what to do); the value chart is
drawn over the days that have prices, or says why there is none; the notebook shows the
sentence, never a tuple.
"""

from __future__ import annotations

import json
import os
from datetime import date
from decimal import Decimal
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import pytest
from sqlalchemy.engine import Engine

from tests.support.sipp import add_closes, build_sipp, weekdays
from tradeassist.core.enums import EntryType
from tradeassist.core.timeutil import end_of_london_day
from tradeassist.db.engine import create_db_engine
from tradeassist.engine.value_series import (
    LedgerEvent,
    MissingClose,
    PriceGap,
    daily_values,
    price_gaps,
    value_series,
    value_series_where_priced,
)
from tradeassist.presentation import figures
from tradeassist.services.dashboard import PriceHistory
from tradeassist.ui import dashboard

D = Decimal
E = EntryType
XDWL_SENTENCE = (
    "XDWL on XLON (12 units) has no price from 4 September 2022: import prices with "
    "`tradeassist prices import FILE --ticker XDWL --exchange XLON --format csv`; it has no price "
    "provider, so `tradeassist prices refresh` skips it."
)
XMUK_SENTENCE = "XMUK on XLON (30 units) has no price from 4 September 2022: import prices with"


def flat(text: str) -> str:
    return " ".join(text.replace("<br>", " ").split())


def said(fig: go.Figure) -> str:
    """Every word a chart shows: its title and its annotations."""
    words = [fig.layout.title.text or ""] + [a.text or "" for a in fig.layout.annotations]
    return flat(" ".join(words))


AS_OF = end_of_london_day(date(2023, 6, 30))  # the day's close counts


# --------------------------------------------------------------------------------------------
# The observed SIPP, then the same with some prices
# --------------------------------------------------------------------------------------------
def test_a_sipp_without_prices_says_what_is_missing_instead_of_an_empty_chart(engine: Engine) -> None:
    build_sipp(engine)
    data = dashboard.load("SIPP", engine=engine, as_of=AS_OF)
    assert data.values is None and data.performance is None
    assert [(g.listing, g.units, g.since, g.first_close) for g in data.value_gaps] == [
        ("XDWL:XLON", D(12), date(2022, 9, 4), None),
        ("XMUK:XLON", D(30), date(2022, 9, 4), None),
    ]
    assert data.notes[0] == XDWL_SENTENCE
    assert data.notes[1].startswith(XMUK_SENTENCE)
    assert data.value_note.startswith("No value chart: no stretch of days has a price for every holding.")
    assert XDWL_SENTENCE in data.value_note

    charts = dashboard.figures_for(data)
    value = charts["value"]
    assert not value.data  # no misleading empty axis...
    assert XDWL_SENTENCE in said(value) and "no ledger entries" not in said(value)  # ...but the reason
    performance = charts["performance"]
    assert not performance.data and "No returns" in said(performance)
    assert "no value series yet" not in said(performance)
    assert "tradeassist prices import FILE --ticker XDWL" in said(charts["price XDWL:XLON"])

    text = dashboard.notes_markdown(data)
    assert XDWL_SENTENCE in text
    for raw in ("('", "',)", "()", "value series:"):
        assert raw not in text


def test_prices_from_some_day_on_draw_the_chart_from_that_day_and_say_what_is_missing(engine: Engine) -> None:
    build_sipp(engine)
    add_closes(engine, "XMUK", weekdays(date(2022, 8, 1), date(2023, 6, 30), "7200"))
    add_closes(engine, "XDWL", weekdays(date(2023, 1, 2), date(2023, 6, 30), "6600"))
    data = dashboard.load("SIPP", engine=engine, as_of=AS_OF)

    assert data.values is not None
    assert data.values.index[0].date() == date(2023, 1, 2) and data.values.index[-1].date() == date(
        2023, 6, 30
    )
    assert data.values_start_late
    [gap] = data.value_gaps
    assert (gap.listing, gap.units, gap.since, gap.until) == (
        "XDWL:XLON",
        D(12),
        date(2022, 9, 4),
        date(2023, 1, 1),
    )
    sentence = (
        "XDWL on XLON (12 units) had no price from 4 September 2022 to 1 January 2023 (its first usable "
        "close is on 2 January 2023): import the earlier prices with `tradeassist prices import FILE "
        "--ticker XDWL --exchange XLON --format csv`."
    )
    assert data.notes[0] == sentence
    assert data.value_note == (
        "The value chart starts on 2 January 2023, the first day from which every holding has a price. "
        + sentence
    )
    # the last day's value is every holding at its price plus cash, never a holding at zero
    cash = D("2000") - D("211.50") + D("500") - D("143.50") + D("1.23") - D("3.50") + D("500") + D("363.50")
    cash += D("2.10") + D("250")
    assert data.values["total_value"].iloc[-1] == pytest.approx(float(12 * D("66") + 30 * D("72") + cash))
    assert data.cash == cash
    assert data.performance is not None and data.performance.twr.start == date(2023, 1, 2)

    charts = dashboard.figures_for(data)
    traces = {t.name: t for t in charts["value"].data}
    assert list(traces) == [figures.TRACE_VALUE, figures.TRACE_NET_IN, figures.TRACE_CONTRIBUTIONS]
    assert sentence in said(charts["value"])
    # the money paid in starts from the value there on the first day drawn, not from nothing
    assert traces[figures.TRACE_NET_IN].y[0] == pytest.approx(traces[figures.TRACE_VALUE].y[0])
    assert "Measured from 2 January 2023 to 30 June 2023 only" in said(charts["performance"])


def test_every_price_there_means_nothing_to_say(engine: Engine) -> None:
    build_sipp(engine)
    add_closes(engine, "XMUK", weekdays(date(2022, 8, 1), date(2023, 6, 30), "7200"))
    add_closes(engine, "XDWL", weekdays(date(2022, 8, 1), date(2023, 6, 30), "6600"))
    data = dashboard.load("SIPP", engine=engine, as_of=AS_OF)
    assert data.value_gaps == () and data.values.index[0].date() == date(2022, 9, 1)
    assert not data.values_start_late
    [note] = data.notes
    assert note.startswith("No allocation or drift: no approved strategy")  # the strategy service's words
    charts = dashboard.figures_for(data)
    assert charts["value"].layout.title.text == "SIPP: value over time"  # no note under the title
    net_in = next(t for t in charts["value"].data if t.name == figures.TRACE_NET_IN)
    assert net_in.y[0] == pytest.approx(2000.0)  # from the first contribution


def test_a_flagged_close_that_leaves_a_holding_on_an_older_price_is_named(engine: Engine) -> None:
    build_sipp(engine)
    add_closes(engine, "XMUK", weekdays(date(2022, 8, 1), date(2023, 6, 30), "7200"))
    add_closes(engine, "XDWL", weekdays(date(2022, 8, 1), date(2023, 6, 29), "6600"))
    add_closes(engine, "XDWL", {date(2023, 6, 30): "66.00"}, source="feed")  # pounds read as pence
    data = dashboard.load("SIPP", engine=engine, as_of=AS_OF)
    flagged = data.prices["XDWL:XLON"].unusable()
    assert list(flagged.index.date) == [date(2023, 6, 30)] and "scale_suspect" in flagged["flags"].iloc[0]
    note = next(n for n in data.notes if n.startswith("XDWL on XLON"))
    assert note.startswith(
        "XDWL on XLON (12 units): its close of 30 June 2023 is flagged (scale_suspect) and not used, so "
        "the value uses the last usable close before it; check it against the broker"
    )
    assert "`tradeassist prices accept-level`" in note
    assert note in data.value_note and note in said(dashboard.figures_for(data)["value"])
    # the value on the 30th is 12 x £66 from the 29th, not 12 x £0.66
    assert data.values["total_value"].iloc[-1] == pytest.approx(data.values["total_value"].iloc[-2])


# --------------------------------------------------------------------------------------------
# The sentence, on its own
# --------------------------------------------------------------------------------------------
def _history(rows: list[tuple[str, bool, str]], provider: str | None = None) -> PriceHistory:
    index = pd.DatetimeIndex(pd.to_datetime([day for day, _, _ in rows]), name="date")
    frame = pd.DataFrame(
        {
            "price": [D("6600")] * len(rows),
            "price_adjusted": [D("6600")] * len(rows),
            "price_gbp": [D("66") if usable else None for _, usable, _ in rows],
            "usable": [usable for _, usable, _ in rows],
            "flags": [flags for _, _, flags in rows],
            "source": ["csv"] * len(rows),
        },
        index=index,
    )
    return PriceHistory("XDWL", "XLON", "GBX", frame, provider=provider)


GAP = PriceGap("XDWL:XLON", date(2022, 9, 4), date(2023, 6, 30), D(12), None)


def test_the_sentence_says_what_to_do_for_each_cause() -> None:
    assert dashboard.missing_price_sentence(GAP, None, "SIPP") == XDWL_SENTENCE
    assert dashboard.missing_price_sentence(GAP, _history([], provider="stooq"), "SIPP") == (
        "XDWL on XLON (12 units) has no price from 4 September 2022: run `tradeassist prices refresh "
        '--portfolio "SIPP"` (its price provider is stooq) or import prices with `tradeassist prices '
        "import FILE --ticker XDWL --exchange XLON --format csv`."
    )
    flagged = _history(
        [("2022-09-05", False, "scale_suspect"), ("2022-09-06", False, "scale_suspect, stale")]
    )
    assert dashboard.missing_price_sentence(GAP, flagged, "SIPP") == (
        "XDWL on XLON (12 units) has no usable price from 4 September 2022: its 2 closes from "
        "5 September 2022 to 6 September 2022 are flagged (scale_suspect, stale) and not used; check them "
        "against the broker, then record the split with `tradeassist corporate-action add` or accept the "
        "new level with `tradeassist prices accept-level`."
    )
    one = PriceGap("XDWL:XLON", date(2022, 9, 4), date(2022, 9, 4), D(1), date(2022, 9, 5))
    assert dashboard.missing_price_sentence(one, None, "SIPP").startswith(
        "XDWL on XLON (1 unit) had no price from 4 September 2022 to 4 September 2022 (its first usable "
        "close is on 5 September 2022): import the earlier prices"
    )


def test_notes_are_words_never_a_tuple() -> None:
    data = dashboard.DashboardData(
        portfolio="P", as_of=None, values=None, sleeves=(), bands=None, prices={}, performance=None,
        alerts=[], freeze={"is_frozen": False}, holdings=[], cash=D(0),
    )  # fmt: skip
    assert (
        dashboard.notes_markdown(data) == "Nothing is missing: every holding has a price on every day shown."
    )
    noted = dashboard.DashboardData(**{**data.__dict__, "notes": ("One thing.", "Another.")})
    assert dashboard.notes_markdown(noted) == (
        "**What the dashboard cannot show, and why**\n\n- One thing.\n- Another."
    )


# --------------------------------------------------------------------------------------------
# The engine: gaps, and the series where it can be drawn
# --------------------------------------------------------------------------------------------
def ev(day: str, kind: EntryType, listing: str | None, units: str, cash: str) -> LedgerEvent:
    return LedgerEvent(date.fromisoformat(day), kind, listing, D(units), D(cash))


EVENTS = [
    ev("2022-09-01", E.CONTRIBUTION, None, "0", "2000"),
    ev("2022-09-04", E.TRANSFER, "XDWL:XLON", "12", "0"),
    ev("2022-09-04", E.TRANSFER, "XMUK:XLON", "30", "0"),
    ev("2022-10-03", E.BUY, "XMUK:XLON", "3", "-211.50"),
    ev("2022-11-02", E.SELL, "XMUK:XLON", "-3", "210"),  # signed deltas: a SELL takes units out
]


def test_price_gaps_name_the_listing_the_units_and_the_days() -> None:
    closes = {"XMUK:XLON": {date(2022, 8, 1): D("72")}, "XDWL:XLON": {date(2022, 10, 1): D("66")}}
    assert price_gaps(EVENTS, closes) == (
        PriceGap("XDWL:XLON", date(2022, 9, 4), date(2022, 9, 30), D(12), date(2022, 10, 1)),
    )
    assert price_gaps(EVENTS, closes, start=date(2022, 10, 1)) == ()
    # no close at all: the gap runs to the end, with the units held then
    assert price_gaps(EVENTS, {}) == (
        PriceGap("XDWL:XLON", date(2022, 9, 4), date(2022, 11, 2), D(12), None),
        PriceGap("XMUK:XLON", date(2022, 9, 4), date(2022, 11, 2), D(30), None),
    )
    # moved out on the day it came in: that day still needs a close, for the transfer's value
    out = [*EVENTS[:2], ev("2022-09-04", E.TRANSFER, "XDWL:XLON", "-12", "0")]
    assert price_gaps(out, {}) == (PriceGap("XDWL:XLON", date(2022, 9, 4), date(2022, 9, 4), D(12), None),)
    with pytest.raises(
        MissingClose, match="TRANSFER on 2022-09-04: XDWL:XLON has no close on or before 2022-09-04"
    ):
        daily_values(out, {})


def test_the_series_covers_the_latest_days_every_holding_has_a_price() -> None:
    closes = {"XMUK:XLON": {date(2022, 8, 1): D("72")}, "XDWL:XLON": {date(2022, 10, 1): D("66")}}
    valued = value_series_where_priced(EVENTS, closes)
    assert valued.shown == (date(2022, 10, 1), date(2022, 11, 2)) and valued.starts_late
    pd.testing.assert_frame_equal(valued.values, value_series(EVENTS, closes, start=date(2022, 10, 1)))
    # nothing but a few days of cash before the first unpriced transfer: no chart rather than those
    nothing = value_series_where_priced(EVENTS, {})
    assert nothing.values is None and nothing.shown is None and len(nothing.gaps) == 2
    # everything priced: the whole series, exactly value_series
    both = {**closes, "XDWL:XLON": {date(2022, 9, 1): D("66")}}
    whole = value_series_where_priced(EVENTS, both)
    assert whole.complete and not whole.starts_late
    pd.testing.assert_frame_equal(whole.values, value_series(EVENTS, both))
    # a listing bought later without any price: the history before it is still drawn
    later = [
        *EVENTS,
        ev("2022-12-01", E.CONTRIBUTION, None, "0", "500"),
        ev("2022-12-05", E.BUY, "NEW:XLON", "5", "-100"),
    ]
    earlier = value_series_where_priced(later, both)
    assert earlier.shown == (date(2022, 9, 1), date(2022, 12, 4))
    assert [g.listing for g in earlier.gaps] == ["NEW:XLON"]


# --------------------------------------------------------------------------------------------
# The notebook shows the sentence
# --------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_the_dashboard_notebook_shows_the_sentence_not_a_tuple(tmp_path: Path, sqlite_url: str) -> None:
    from tradeassist.runs.runner import execute_notebook

    engine = create_db_engine(sqlite_url)
    build_sipp(engine)
    engine.dispose()
    repo = Path(__file__).resolve().parents[1]
    env = {
        **os.environ,
        "TRADEASSIST_DB_URL": sqlite_url,
        "TRADEASSIST_HOME": str(tmp_path / "home"),
        "IPYTHONDIR": str(tmp_path / "ipython"),
        "PYTHONPATH": os.pathsep.join(p for p in (str(repo), os.environ.get("PYTHONPATH")) if p),
    }
    output = tmp_path / "dashboard.ipynb"
    execute_notebook(
        repo / "notebooks" / "dashboard.ipynb",
        output,
        {"portfolio": "SIPP", "as_of": "2023-06-30"},
        timeout=120,
        env=env,
    )
    notebook = json.loads(output.read_text(encoding="utf-8"))
    widgets = notebook["metadata"]["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    # the cells' outputs, then what the dashboard's Output widget shows (the picker's view)
    outputs = [out for cell in notebook["cells"] for out in cell.get("outputs", [])]
    outputs += [out for model in widgets.values() for out in model["state"].get("outputs", [])]
    shown = []
    for out in outputs:
        shown += [
            "".join(text) if isinstance(text, list) else str(text) for text in out.get("data", {}).values()
        ]
        shown.append("".join(out.get("text", [])))
    markdown = [text for text in shown if text.startswith("**What the dashboard cannot show")]
    assert markdown and XDWL_SENTENCE in markdown[0]
    assert not any(text.strip() in {"()", "('"} or text.startswith("('") for text in shown)
    assert any(
        "XDWL on XLON (12 units) has no price from 4 September 2022" in flat(text)
        for text in shown
        if not text.startswith("**What the dashboard")  # the value chart says it too
    )
    # the picker: all accounts or each portfolio, opened on the one the parameter names
    [picker] = [m["state"] for m in widgets.values() if m["model_name"] == "DropdownModel"]
    assert picker["_options_labels"] == ["All accounts", "SIPP"] and picker["index"] == 1
    holdings = next(text for text in shown if "Holdings of SIPP" in text)
    assert "XDWL (XLON)" in holdings and "no price" in holdings and "£780.00" in holdings
    assert output.stat().st_size < 500_000  # plotly's JSON only: plotly.js (4.6 MB) is not embedded
