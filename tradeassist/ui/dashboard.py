"""One account's dashboard data from the configured database, then drawn.

``load(portfolio)`` opens one read-only unit of work as the acting user (``ui.common.work``)
and returns ``services.dashboard.gather``'s ``DashboardData``; ``figures_for`` and
``notes_markdown`` (``presentation.dashboard``) draw it. The names scripts and the tests use
stay importable from here; the dashboard notebook shows ``ui.dashboard_app`` (a portfolio
picker over all accounts together and each account, holdings and income included).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.engine import Engine

from ..presentation.dashboard import figures_for, notes_markdown, performance_note
from ..services.dashboard import (
    DashboardData,
    Performance,
    PriceHistory,
    SleeveRow,
    gather,
    gbp_closes,
    last_close_day,
    ledger_events,
    long_date,
    missing_price_sentence,
    performance_of,
    price_histories,
    price_history,
)
from .common import work

# The assembly's former private names, which the tests reach through this module.
_history, _events, _closes = price_history, ledger_events, gbp_closes

__all__ = [
    "DashboardData",
    "Performance",
    "PriceHistory",
    "SleeveRow",
    "figures_for",
    "gather",
    "last_close_day",
    "load",
    "long_date",
    "missing_price_sentence",
    "notes_markdown",
    "performance_note",
    "performance_of",
    "price_histories",
]


def load(
    portfolio: str, *, engine: Engine | str | None = None, as_of: datetime | None = None
) -> DashboardData:
    """Gather the dashboard in one read-only transaction (the configured database by default)."""
    with work(engine, readonly=True) as (session, actor):
        return gather(session, actor=actor, portfolio=portfolio, as_of=as_of)
