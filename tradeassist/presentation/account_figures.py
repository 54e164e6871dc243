"""Small plotly figures for the dashboard's accounts: each account's value, each holding's
gain, income by tax year.

Pure, like ``figures``: plain values in, a ``plotly.graph_objects.Figure`` out, money turned
into floats only for drawing and into words by ``core.money.format_gbp`` for hovers. A chart
never hides what it leaves out (``note`` under the title) and one with nothing to draw says why
(``chart_style.empty``). Trace names are the ``TRACE_*`` constants.
"""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go

from ..core.money import format_gbp
from ..services.dashboard_accounts import AccountHoldings, Household, IncomeYear
from .chart_style import BLUE, GREEN, GREY, RED, empty, layout

TRACE_HOLDINGS = "holdings"
TRACE_CASH = "cash"
TRACE_GAIN = "unrealised gain"
TRACE_DIVIDENDS = "dividends"
TRACE_INTEREST = "interest"
BAR_HEIGHT = 34  # pixels per horizontal bar


def _bars_height(count: int) -> int:
    return 120 + BAR_HEIGHT * max(count, 1)


def accounts_figure(
    house: Household, *, title: str = "Value by account", note: str | None = None
) -> go.Figure:
    """One horizontal bar per account: its valued holdings and its cash, stacked."""
    fig = go.Figure()
    accounts = list(house.accounts)
    if not accounts:
        return empty(fig, title, "no portfolio to show")
    names = [a.portfolio for a in accounts]
    for name, values, colour in (
        (TRACE_HOLDINGS, [a.holdings_value for a in accounts], BLUE),
        (TRACE_CASH, [a.cash for a in accounts], GREY),
    ):
        fig.add_trace(
            go.Bar(
                y=names,
                x=[float(v) for v in values],
                name=name,
                orientation="h",
                marker_color=colour,
                customdata=[format_gbp(v) for v in values],
                hovertemplate=f"%{{y}}: {name} %{{customdata}}<extra></extra>",
            )
        )
    fig.update_layout(barmode="stack", showlegend=True)
    fig.update_xaxes(title_text="GBP", tickprefix="£", tickformat=",.0f")
    fig.update_yaxes(autorange="reversed")
    return layout(fig, title, height=_bars_height(len(accounts)), note=note)


def holdings_figure(account: AccountHoldings, *, title: str | None = None) -> go.Figure:
    """Each priced holding's unrealised gain as a bar (green above its book cost, red below);
    the holdings without a price are named in the note, never drawn as zero."""
    heading = title or f"{account.portfolio}: unrealised gain by holding"
    priced = [row for row in account.holdings if row.gain is not None]
    note = None
    if account.unpriced:
        names = ", ".join(f"{r.ticker} on {r.exchange}" for r in account.unpriced)
        note = f"Not drawn, for want of a price: {names}."
    fig = go.Figure()
    if not priced:
        return empty(fig, heading, note or "no holdings")
    gains = [row.gain for row in priced]
    fig.add_trace(
        go.Bar(
            y=[row.ticker for row in priced],
            x=[float(g) for g in gains if g is not None],
            name=TRACE_GAIN,
            orientation="h",
            marker_color=[GREEN if g is not None and g >= 0 else RED for g in gains],
            customdata=[
                [format_gbp(row.value), format_gbp(row.book_cost), format_gbp(row.gain)] for row in priced
            ],
            hovertemplate=(
                "%{y}: value %{customdata[0]}, book cost %{customdata[1]}, "
                "gain %{customdata[2]}<extra></extra>"
            ),
        )
    )
    fig.update_xaxes(title_text="GBP", tickprefix="£", tickformat=",.0f", zeroline=True)
    fig.update_yaxes(autorange="reversed")
    return layout(fig, heading, height=_bars_height(len(priced)), note=note)


def income_figure(years: Sequence[IncomeYear], *, title: str = "Income by tax year") -> go.Figure:
    """Dividends and interest per UK tax year, stacked."""
    fig = go.Figure()
    if not years:
        return empty(fig, title, "no dividends or interest recorded")
    labels = [y.tax_year for y in years]
    for name, values, colour in (
        (TRACE_DIVIDENDS, [y.dividends for y in years], GREEN),
        (TRACE_INTEREST, [y.interest for y in years], BLUE),
    ):
        fig.add_trace(
            go.Bar(
                x=labels,
                y=[float(v) for v in values],
                name=name,
                marker_color=colour,
                customdata=[format_gbp(v) for v in values],
                hovertemplate=f"%{{x}}: {name} %{{customdata}}<extra></extra>",
            )
        )
    fig.update_layout(barmode="stack", showlegend=True)
    fig.update_xaxes(type="category")
    fig.update_yaxes(title_text="GBP", tickprefix="£", tickformat=",.2f")
    return layout(fig, title, height=300)
