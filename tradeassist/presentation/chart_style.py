"""How every dashboard chart looks: colours, heights, the note under a title, the empty chart.

``layout`` titles a figure (with its ``note`` wrapped beneath, in a top margin grown to hold
it) and sets the common template, margins and legend; ``empty`` draws a chart with nothing to
draw as the reason alone, never an empty axis.
"""

from __future__ import annotations

import html
import textwrap
from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go

BLUE, GREEN, RED, GREY, ORANGE = "#1565c0", "#2e7d32", "#c62828", "#9e9e9e", "#ef6c00"
HEIGHT = 380
UNIT_TITLES = {"GBX": "GBX (pence)", "GBP": "GBP", "USD": "USD", "EUR": "EUR"}


NOTE_WIDTH = 120  # characters per line of a note under a title
NOTE_LINE = 18  # pixels a line of the note adds above the plot
NOTE_COLOUR = "#8a4b00"


def wrapped(text: str, width: int = NOTE_WIDTH) -> list[str]:
    return [html.escape(line, quote=False) for line in textwrap.wrap(text, width)] or [""]


def note_height(note: str | None) -> int:
    return NOTE_LINE * len(wrapped(note)) if note else 0


def layout(fig: go.Figure, title: str, *, height: int = HEIGHT, note: str | None = None) -> go.Figure:
    lines = wrapped(note) if note else []
    title_layout: dict[str, Any] = {"text": title, "x": 0.01, "xanchor": "left"}
    if lines:
        # the note hangs below the title, in a top margin grown to hold it above the legend
        body = "<br>".join(lines)
        title_layout.update(
            text=f"{title}<br><span style='font-size:0.75em;color:{NOTE_COLOUR}'>{body}</span>",
            y=1.0,
            yref="container",
            yanchor="top",
            pad={"t": 12},
        )
    extra = note_height(note)
    fig.update_layout(
        title=title_layout,
        template="plotly_white",
        height=height + extra,
        margin={"l": 60, "r": 20, "t": 60 + extra, "b": 40},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "xanchor": "right", "x": 1.0},
        hovermode="closest",
    )
    return fig


def floats(values: Sequence[Any]) -> list[float | None]:
    return [None if v is None or (isinstance(v, float) and v != v) else float(v) for v in values]


def empty(fig: go.Figure, title: str, why: str) -> go.Figure:
    """No axes, only the reason: wrapped, left-aligned, and as tall as it needs."""
    lines = wrapped(why)
    fig.add_annotation(
        text="<br>".join(lines), showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper", align="left"
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return layout(fig, title, height=200 + 18 * max(0, len(lines) - 2))
