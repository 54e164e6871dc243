"""The dashboard drawn: ``services.dashboard.DashboardData`` in, charts and words out.

``figures_for(data)`` builds every chart the dashboard notebook shows (``figures``), by a short
name; ``notes_markdown(data)`` says in Markdown what the dashboard cannot show, and why, then
this tax year's income (``income_markdown``); ``performance_note(data)`` says over which days
the returns are measured. Pure: no database.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..services.dashboard import DashboardData, long_date
from . import figures


def income_markdown(data: DashboardData) -> str | None:
    """This tax year's dividends and interest as a Markdown paragraph (None when not gathered)."""
    if not data.income_note:
        return None
    head, _, rest = data.income_note.partition(":")
    return f"**{head}:**{rest}"


def notes_markdown(data: DashboardData) -> str:
    """Every note of the dashboard as Markdown for the notebook: words, never a Python tuple.
    This tax year's income follows, as its own paragraph, when it was gathered."""
    said = "Nothing is missing: every holding has a price on every day shown."
    if data.notes:
        lines = "\n".join(f"- {note}" for note in data.notes)
        said = f"**What the dashboard cannot show, and why**\n\n{lines}"
    income = income_markdown(data)
    return f"{said}\n\n{income}" if income else said


def performance_note(data: DashboardData) -> str | None:
    """Over which days the returns are measured when that is not every day of the ledger, or why
    there are none."""
    if data.performance is None:
        if data.value_gaps:
            return (
                "No returns: they need a value on every day, and no stretch of days has a price "
                "for every holding (see the value chart)."
            )
        return data.value_note
    if not data.value_gaps or data.values is None:
        return None
    first, last = (pd.Timestamp(data.values.index[i]).date() for i in (0, -1))
    return (
        f"Measured from {long_date(first)} to {long_date(last)} only, the days on which every holding "
        f"has a price; see the value chart for what is missing."
    )


def figures_for(data: DashboardData, *, split_adjusted: bool = False) -> dict[str, Any]:
    """Every dashboard chart, in the order the notebook shows them, by a short name."""
    charts = {
        "value": figures.value_figure(
            data.values,
            title=f"{data.portfolio}: value over time",
            note=data.value_note,
            start_value_as_paid_in=data.values_start_late,
        ),
        "allocation": figures.allocation_figure(data.sleeves, note=data.allocation_note),
        "drift": figures.drift_figure(data.sleeves, data.bands, note=data.allocation_note),
        "performance": figures.performance_figure(data.performance, note=performance_note(data)),
        "alerts": figures.alerts_figure(data.alerts, data.freeze),
    }
    for key, history in data.prices.items():
        charts[f"price {key}"] = figures.price_figure(history, split_adjusted=split_adjusted)
    return charts
