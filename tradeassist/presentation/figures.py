"""Plotly figure builders: plain values and DataFrames in, a ``plotly.graph_objects.Figure`` out.

Pure: no database, no clock, inputs left unchanged. Money arrives as exact ``Decimal`` and is
turned into floats only here, for drawing. Weights and drifts are fractions (0.05 is 5 %)
and the axes format them as percentages. Every trace has a ``name`` that tests and legends
rely on: see the ``TRACE_*`` constants.

A chart never hides what it leaves out: each builder takes a ``note`` (words, shown under the
title: which holdings have no price, since when, what to do), and a chart with nothing to
draw says why in its place (``note``, else a short default), never an empty axis.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..core.money import format_gbp
from ..policy import DriftBands
from .chart_style import BLUE, GREEN, GREY, RED, UNIT_TITLES, empty, floats, layout, note_height
from .html import freeze_words

# Trace names (the legend's words, and what tests look for).
TRACE_VALUE = "portfolio value"
TRACE_NET_IN = "net money in"
TRACE_CONTRIBUTIONS = "contributions"
TRACE_WEIGHT = "weight"
TRACE_TARGET = "target"
TRACE_ABSOLUTE_BAND = "band (absolute)"
TRACE_RELATIVE_BAND = "band (relative, tighter)"
TRACE_DRIFT = "drift"
TRACE_CLOSE = "close"
TRACE_FLAGGED = "flagged"
TRACE_DRAWDOWN = "drawdown"

# --- value over time ------------------------------------------------------------------------


def value_figure(
    values: pd.DataFrame | None,
    *,
    title: str = "Portfolio value",
    note: str | None = None,
    start_value_as_paid_in: bool = False,
) -> go.Figure:
    """Total value (holdings plus cash) by day, the money put in so far as a step line, and a
    marker on the value line at each contribution (hover: the amount).

    ``values`` is ``engine.value_series.value_series``'s frame. ``note`` says what the chart
    leaves out (or, with no values, why there is no chart). ``start_value_as_paid_in``: the
    frame starts after the ledger does (earlier days lack a price), so the money put in starts
    from the value on its first day rather than from nothing.
    """
    fig = go.Figure()
    if values is None or values.empty:
        return empty(fig, title, note or "no ledger entries yet")
    index = pd.DatetimeIndex(values.index)
    net_in = values["external_flow"].cumsum()
    paid_in = "paid in"
    if start_value_as_paid_in:
        opening = float(values["total_value"].iloc[0] - values["external_flow"].iloc[0])
        net_in = net_in + opening
        paid_in = f"paid in, counting the £{opening:,.2f} there on {index[0]:%d %b %Y}"
    fig.add_trace(
        go.Scatter(
            x=index,
            y=values["total_value"],
            name=TRACE_VALUE,
            mode="lines",
            line={"color": BLUE, "width": 2},
            hovertemplate="%{x|%d %b %Y}: £%{y:,.2f}<extra></extra>",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=index,
            y=net_in,
            name=TRACE_NET_IN,
            mode="lines",
            line={"color": GREY, "width": 1.5, "shape": "hv", "dash": "dot"},
            hovertemplate=f"%{{x|%d %b %Y}}: £%{{y:,.2f}} {paid_in}<extra></extra>",
        )
    )
    marked = values[values["has_contribution"]]
    fig.add_trace(
        go.Scatter(
            x=pd.DatetimeIndex(marked.index),
            y=marked["total_value"],
            customdata=marked["contribution"],
            name=TRACE_CONTRIBUTIONS,
            mode="markers",
            marker={"color": GREEN, "size": 7, "symbol": "triangle-up"},
            hovertemplate="%{x|%d %b %Y}: contribution £%{customdata:,.2f}<extra></extra>",
        )
    )
    fig.update_yaxes(title_text="GBP", tickprefix="£", tickformat=",.0f")
    return layout(fig, title, note=note)


# --- allocation and drift -------------------------------------------------------------------


def allocation_figure(
    sleeves: Sequence[Any], *, title: str = "Allocation against target", note: str | None = None
) -> go.Figure:
    """One bar per sleeve (its weight of holdings plus cash; red when outside its band) and a
    target marker on each. ``sleeves`` are ``services.dashboard.SleeveRow`` (or anything with
    ``sleeve``, ``weight``, ``target``, ``value_gbp`` (a Decimal) and ``breached``); ``note``
    says what the weights leave out (holdings without a price)."""
    fig = go.Figure()
    if not sleeves:
        return empty(fig, title, "no approved strategy: no targets to compare with")
    names = [s.sleeve for s in sleeves]
    fig.add_trace(
        go.Bar(
            x=names,
            y=[float(s.weight) for s in sleeves],
            name=TRACE_WEIGHT,
            marker_color=[RED if s.breached else BLUE for s in sleeves],
            customdata=[format_gbp(s.value_gbp) for s in sleeves],
            text=[f"{float(s.weight):.1%}" for s in sleeves],
            textposition="inside",
            insidetextanchor="start",
            textfont={"color": "white"},
            hovertemplate="%{x}: %{y:.2%} (%{customdata})<extra></extra>",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=names,
            y=[float(s.target) for s in sleeves],
            name=TRACE_TARGET,
            mode="markers",
            marker={"color": "black", "size": 28, "symbol": "line-ew", "line": {"width": 3}},
            hovertemplate="%{x}: target %{y:.1%}<extra></extra>",
        )
    )
    top = max(max(float(s.weight), float(s.target)) for s in sleeves)
    fig.update_yaxes(title_text="share of the portfolio", tickformat=".0%", range=[0, top * 1.2])
    fig.update_layout(showlegend=True)
    return layout(fig, title, note=note)


def drift_figure(
    sleeves: Sequence[Any],
    bands: DriftBands | None,
    *,
    title: str = "Drift from target",
    note: str | None = None,
) -> go.Figure:
    """Each sleeve's drift (weight - target) as a bar over its band: the absolute band, and
    the relative band (relative × target) where that is tighter. A bar outside its band is red."""
    fig = go.Figure()
    if not sleeves or bands is None:
        return empty(fig, title, "no approved strategy: no bands to compare with")
    names = [s.sleeve for s in sleeves]
    widths = [s.band(bands) for s in sleeves]
    absolute = [a for a, _ in widths]
    fig.add_trace(
        go.Bar(
            x=names,
            y=[2 * a for a in absolute],
            base=[-a for a in absolute],
            name=TRACE_ABSOLUTE_BAND,
            marker_color="rgba(21,101,192,0.12)",
            width=0.8,
            hovertemplate=f"%{{x}}: ±{float(bands.absolute):.1%}<extra></extra>",
        )
    )
    tighter = [(n, r) for n, (_, r) in zip(names, widths, strict=True) if r is not None]
    if tighter:
        fig.add_trace(
            go.Bar(
                x=[n for n, _ in tighter],
                y=[2 * r for _, r in tighter],
                base=[-r for _, r in tighter],
                name=TRACE_RELATIVE_BAND,
                marker_color="rgba(239,108,0,0.22)",
                width=0.8,
                hovertemplate="%{x}: ±%{base:.1%}<extra></extra>",
            )
        )
    fig.add_trace(
        go.Bar(
            x=names,
            y=[s.drift for s in sleeves],
            name=TRACE_DRIFT,
            marker_color=[RED if s.breached else BLUE for s in sleeves],
            width=0.35,
            text=[f"{s.drift:+.1%}" for s in sleeves],
            textposition="outside",
            hovertemplate="%{x}: %{y:+.2%}<extra></extra>",
        )
    )
    reach = max(max(abs(s.drift) for s in sleeves), max(absolute)) * 1.35
    fig.update_layout(barmode="overlay")
    fig.update_yaxes(title_text="weight - target", tickformat="+.0%", range=[-reach, reach], zeroline=True)
    return layout(fig, title, note=note)


# --- prices ---------------------------------------------------------------------------------


def price_figure(history: Any, *, split_adjusted: bool = False, title: str | None = None) -> go.Figure:
    """A listing's closes in its quote unit: usable points as a line, flagged points (whatever
    their flags, usable or not) as red markers whose hover names the flags.

    ``history`` is a ``services.dashboard.PriceHistory``; ``split_adjusted`` draws every close on
    today's unit basis (earlier prices divided by later splits)."""
    column = "price_adjusted" if split_adjusted else "price"
    frame = history.frame
    label = f"{history.ticker}:{history.exchange}"
    fig = go.Figure()
    heading = title or f"{label} closes" + (" (split-adjusted)" if split_adjusted else "")
    if frame.empty:
        return empty(
            fig,
            heading,
            f"no prices stored: import them with `tradeassist prices import FILE --ticker {history.ticker} "
            f"--exchange {history.exchange} --format csv`",
        )
    good = frame[frame["usable"]]
    fig.add_trace(
        go.Scatter(
            x=pd.DatetimeIndex(good.index),
            y=floats(list(good[column])),
            name=TRACE_CLOSE,
            mode="lines",
            line={"color": BLUE, "width": 1.5},
            hovertemplate="%{x|%d %b %Y}: %{y:,.4~f}<extra></extra>",
        )
    )
    flagged = frame[frame["flags"] != ""]
    fig.add_trace(
        go.Scatter(
            x=pd.DatetimeIndex(flagged.index),
            y=floats(list(flagged[column])),
            name=TRACE_FLAGGED,
            mode="markers",
            marker={"color": RED, "size": 9, "symbol": "x"},
            customdata=list(flagged["flags"]),
            hovertemplate="%{x|%d %b %Y}: %{y:,.4~f} flagged: %{customdata}<extra></extra>",
        )
    )
    fig.update_yaxes(title_text=UNIT_TITLES.get(history.unit, history.unit))
    return layout(fig, heading, height=320)


# --- performance ----------------------------------------------------------------------------


def performance_figure(performance: Any, *, title: str = "Performance", note: str | None = None) -> go.Figure:
    """Three indicators (time-weighted return, XIRR, maximum drawdown) over the drawdown of the
    time-weighted index as an area. ``performance`` is a ``services.dashboard.Performance``; ``note``
    says over which days it is measured when that is not the whole ledger (or, without
    ``performance``, why there are no returns)."""
    if performance is None:
        return empty(go.Figure(), title, note or "no value series yet")
    fig = make_subplots(
        rows=2,
        cols=3,
        specs=[
            [{"type": "indicator"}, {"type": "indicator"}, {"type": "indicator"}],
            [{"type": "xy", "colspan": 3}, None, None],
        ],
        row_heights=[0.32, 0.68],
        vertical_spacing=0.12,
    )
    twr = performance.twr
    twr_value = twr.annualised if twr.annualised is not None else twr.total
    twr_label = "TWR a year" if twr.annualised is not None else "TWR (period)"
    indicators = [
        (twr_label, twr_value, f"{twr.start:%d %b %Y} – {twr.end:%d %b %Y}; total {twr.total:.1%}"),
        ("XIRR", performance.xirr, "money-weighted, a year"),
        ("Max drawdown", performance.drawdown.depth, _drawdown_note(performance.drawdown)),
    ]
    for col, (name, value, detail) in enumerate(indicators, start=1):
        fig.add_trace(
            go.Indicator(
                mode="number",
                value=value * 100 if value is not None else None,
                number={"suffix": " %", "valueformat": ".2f", "font": {"size": 40}},
                title={
                    "text": f"{name}<br><span style='font-size:0.75em;color:#666'>{detail}</span>",
                    "font": {"size": 15},
                },
                name=name,
            ),
            row=1,
            col=col,
        )
    series = performance.drawdown_series
    fig.add_trace(
        go.Scatter(
            x=pd.DatetimeIndex(series.index),
            y=series.to_numpy(dtype=float),
            name=TRACE_DRAWDOWN,
            mode="lines",
            fill="tozeroy",
            line={"color": RED, "width": 1},
            fillcolor="rgba(198,40,40,0.25)",
            hovertemplate="%{x|%d %b %Y}: %{y:.2%}<extra></extra>",
        ),
        row=2,
        col=1,
    )
    fig.update_yaxes(title_text="below the high", tickformat=".0%", row=2, col=1)
    layout(fig, title, height=480, note=note)
    fig.update_layout(showlegend=False, margin={"t": 90 + note_height(note)})
    return fig


def _drawdown_note(drawdown: Any) -> str:
    if drawdown.peak is None:
        return "no fall yet"
    back = f"back {drawdown.recovery:%d %b %Y}" if drawdown.recovery else "not yet recovered"
    return f"{drawdown.peak:%d %b %Y} to {drawdown.trough:%d %b %Y}; {back}"


# --- alerts and freeze ----------------------------------------------------------------------


def alerts_figure(
    alerts: Sequence[Mapping[str, Any]], freeze: Mapping[str, Any], *, title: str = "Open alerts"
) -> go.Figure:
    """The open alerts as a table, under a title that says whether the portfolio is frozen (and
    since when, with its reason code; the alerts carry the details)."""
    if freeze.get("is_frozen"):
        since = freeze.get("set_at")
        detail = freeze_words(freeze.get("reason_code")) + (f" since {since:%d %b %Y %H:%M}" if since else "")
        state = f"<span style='color:{RED}'><b>FROZEN</b></span> ({detail})"
    else:
        state = f"<span style='color:{GREEN}'><b>not frozen</b></span>"
    rows = list(alerts)
    columns = ("severity", "code", "message", "created")
    if rows:
        cells = [
            [str(a.get("severity") or "") for a in rows],
            [str(a.get("code") or "") for a in rows],
            [str(a.get("message") or "") for a in rows],
            [f"{a['created_at']:%d %b %Y %H:%M}" if a.get("created_at") else "" for a in rows],
        ]
        colours = [[_severity_colour(a.get("severity")) for a in rows]] + [["white"] * len(rows)] * 3
    else:
        cells = [["—"], ["—"], ["no open alerts"], [""]]
        colours = [["white"]] * 4
    fig = go.Figure(
        go.Table(
            columnwidth=[1, 2, 6, 2],
            header={"values": [f"<b>{c}</b>" for c in columns], "fill_color": "#eeeeee", "align": "left"},
            cells={"values": cells, "fill_color": colours, "align": "left"},
            name="alerts",
        )
    )
    fig.update_layout(margin={"l": 10, "r": 10, "t": 60, "b": 10})
    lines = sum(1 + len(str(a.get("message") or "")) // 80 for a in rows) or 1
    return layout(fig, f"{title} · {state}", height=150 + 22 * lines + 10 * len(rows))


def _severity_colour(severity: Any) -> str:
    return {"CRITICAL": "#ffcdd2", "WARN": "#ffe0b2", "INFO": "#e3f2fd"}.get(str(severity), "white")
