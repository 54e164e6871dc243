"""The dashboard as one page with a portfolio picker: every account together, or one account.

``DashboardApp(portfolio=None, engine=None, as_of=None)`` displays itself (or use
``app.widget``): a Dropdown (CSS class ``ta-dashboard-picker``) offering "All accounts" and each
portfolio the acting user may see, over an Output (``ta-dashboard-body``) showing the chosen
view. Choosing reads again, in one read-only unit of work (``ui.common.work``):

* all accounts (``services.dashboard_accounts.household``): the total and each account's value,
  each strategy's allocation and drift across the accounts it governs, income by tax year,
  and each account's holdings with what has no price and what to do;
* one account (``account_dashboard``): what cannot be shown and why, the holdings valued, value
  over time, allocation, drift, returns, income by tax year, prices and alerts.

``app.parts`` holds what the view shows, in order, by a short name (the tests read it); the
Output shows each as its MIME bundle (``output_of``; a chart as plotly's JSON, drawn by the
jupyterlab-plotly extension inside the Output, in JupyterLab and in Voilà alike). A user
error (``TradeAssistError``) is a red line, never a traceback.
"""

from __future__ import annotations

import html
import json
import os
from datetime import datetime
from typing import Any

import ipywidgets as w
from IPython.core.formatters import format_display_data
from IPython.display import HTML, Markdown, display
from sqlalchemy.engine import Engine

from ..core.errors import TradeAssistError
from ..presentation import account_figures, figures
from ..presentation import dashboard_accounts as pa
from ..presentation.dashboard import figures_for, notes_markdown
from ..presentation.html import ERROR, WARN, message_html, messages_html
from ..services.dashboard_accounts import AccountDashboard, Household, account_dashboard, household
from .common import error_lines, portfolio_names, work

ALL_ACCOUNTS = "All accounts"
PLOTLY_MIME = "application/vnd.plotly.v1+json"
Parts = list[tuple[str, Any]]


def approval_link() -> str:
    """Served by ``tradeassist ui``: a link back to the approval view; in JupyterLab, nothing."""
    base = os.environ.get("VOILA_BASE_URL")
    return f"<a class='ta-approval-link' href='{html.escape(base)}'>approvals</a>" if base else ""


def household_parts(house: Household) -> Parts:
    """Every account together: the total, each account, each strategy across its accounts,
    income by tax year, then each account's holdings."""
    parts: Parts = [
        ("summary", HTML(pa.household_html(house))),
        ("accounts", account_figures.accounts_figure(house)),
    ]
    for allocation in house.allocations:
        across = ", ".join(allocation.portfolios)
        parts += [
            (
                f"allocation {allocation.strategy}",
                figures.allocation_figure(
                    allocation.sleeves,
                    title=f"Allocation across {across} against {allocation.strategy}",
                    note=allocation.note,
                ),
            ),
            (
                f"drift {allocation.strategy}",
                figures.drift_figure(
                    allocation.sleeves,
                    allocation.bands,
                    title=f"Drift across {across} from {allocation.strategy}",
                    note=allocation.note,
                ),
            ),
        ]
    if house.notes:
        parts.append(("notes", HTML(pa.notes_html(house.notes))))
    parts += [
        ("income", account_figures.income_figure(house.income, title="Income by tax year, all accounts")),
        ("income table", HTML(pa.income_html(house.income, whose="all accounts"))),
    ]
    parts += [(f"holdings {a.portfolio}", HTML(pa.holdings_html(a))) for a in house.accounts]
    return parts


def account_parts(shown: AccountDashboard, *, split_adjusted: bool = False) -> Parts:
    """One account: what cannot be shown first, then its holdings, charts and income."""
    data, name = shown.data, shown.data.portfolio
    charts = figures_for(data, split_adjusted=split_adjusted)
    parts: Parts = [
        ("notes", Markdown(notes_markdown(data))),
        ("holdings", HTML(pa.holdings_html(shown.holdings))),
        ("holdings chart", account_figures.holdings_figure(shown.holdings)),
    ]
    parts += [(key, charts[key]) for key in ("value", "allocation", "drift", "performance")]
    parts += [
        ("income", account_figures.income_figure(shown.income, title=f"{name}: income by tax year")),
        ("income table", HTML(pa.income_html(shown.income, whose=name))),
    ]
    parts += [(key, chart) for key, chart in charts.items() if key.startswith("price ")]
    parts.append(("alerts", charts["alerts"]))
    return parts


def output_of(part: Any) -> dict[str, Any]:
    """A part as an output of the Output widget. A plotly figure is plotly's own MIME type
    (JupyterLab and Voilà draw it with the jupyterlab-plotly extension), built here: IPython's
    formatters would call the figure's ``_ipython_display_``, which shows it in the running cell
    (or nowhere, in a callback) instead of in the Output, and its ``_repr_mimebundle_`` embeds
    plotly.js (4.6 MB) again with every chart."""
    if hasattr(part, "to_plotly_json"):
        title = (part.layout.title.text or "a chart").split("<br>")[0]
        # plotly's own encoder: dates, numpy arrays and NaN become JSON the kernel can send
        data = {PLOTLY_MIME: json.loads(part.to_json()), "text/plain": f"(chart: {title})"}
        return {"output_type": "display_data", "data": data, "metadata": {}}
    data, metadata = format_display_data(part)
    return {"output_type": "display_data", "data": data, "metadata": metadata}


class DashboardApp:
    """The picker and the view it chooses."""

    def __init__(
        self,
        portfolio: str | None = None,
        *,
        engine: Engine | str | None = None,
        as_of: datetime | None = None,
        split_adjusted: bool = False,
    ) -> None:
        self.engine, self.as_of, self.split_adjusted = engine, as_of, split_adjusted
        with work(engine, readonly=True) as (session, actor):
            names = portfolio_names(session, actor)
            self.actor_email = actor.email
        self.warning = ""
        if portfolio is not None and portfolio not in names:
            self.warning = f"You may see no portfolio named {portfolio!r}: showing all your accounts."
            portfolio = None
        self.picker = w.Dropdown(
            options=[ALL_ACCOUNTS, *names],
            value=portfolio or ALL_ACCOUNTS,
            description="Show",
            style={"description_width": "initial"},
        )
        self.picker.add_class("ta-dashboard-picker")
        self.header = w.HTML(self._header())
        self.body = w.Output()
        self.body.add_class("ta-dashboard-body")
        self.widget = w.VBox([w.HBox([self.picker, self.header]), self.body])
        self.widget.add_class("ta-dashboard")
        self.parts: Parts = []
        self.picker.observe(lambda change: self.show(change["new"]), names="value")
        self.show(self.picker.value)

    def _header(self) -> str:
        said = f"{pa.as_of_text(self.as_of)}; acting as {html.escape(self.actor_email)}"
        link = approval_link()
        return f"<span style='margin-left:1em'>{said}{' · ' + link if link else ''}</span>"

    def read(self, choice: str) -> Parts:
        """The parts of ``choice`` (a portfolio's name or ``ALL_ACCOUNTS``), read again."""
        with work(self.engine, readonly=True) as (session, actor):
            if choice == ALL_ACCOUNTS:
                return household_parts(household(session, actor=actor, as_of=self.as_of))
            shown = account_dashboard(session, actor=actor, portfolio=choice, as_of=self.as_of)
        return account_parts(shown, split_adjusted=self.split_adjusted)

    def show(self, choice: str) -> None:
        try:
            parts = self.read(choice)
        except TradeAssistError as exc:
            parts = [("error", HTML(messages_html(error_lines(exc), ERROR)))]
        if self.warning:
            parts.insert(0, ("warning", HTML(message_html(self.warning, WARN))))
            self.warning = ""
        self.parts = parts
        self.body.outputs = tuple(output_of(part) for _name, part in parts)

    def _ipython_display_(self) -> None:
        display(self.widget)


def app(
    portfolio: str | None = None,
    *,
    engine: Engine | str | None = None,
    as_of: datetime | None = None,
    split_adjusted: bool = False,
) -> DashboardApp:
    """The dashboard notebook's one call: the picker on ``portfolio`` (None: all accounts)."""
    return DashboardApp(portfolio, engine=engine, as_of=as_of, split_adjusted=split_adjusted)
