"""HTML tables and coloured lines: the one table builder for the workbench and the run reports.

Pure and light: the standard library and ``core`` only (no pandas, no plotly), so a task
notebook's kernel may import it without paying for either. Everything is escaped.

``table_html`` draws rows of mappings as a ``<table>``: the workbench's tables (class
``ta-table``, numeric columns right-aligned, a word in italics when there are no rows), and,
with ``css_class="dataframe", align=False, empty=None`` and its own ``cell`` text, a run
report's plain table over ``all_columns`` of its rows.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from ..core.money import decimal_str

OK, INFO, WARN, ERROR = "ok", "info", "warn", "error"
COLOURS = {OK: "#2e7d32", INFO: "#1565c0", WARN: "#ef6c00", ERROR: "#c62828"}


# Why a line trades, in words (a stored line keeps its code).
REASON_CODES = {
    "ALLOCATE_CASH": "invests cash",
    "REBALANCE_BUY": "rebalance",
    "REBALANCE_SELL": "rebalance",
}


def reason_words(code: Any) -> str:
    """A line's reason code in words: ``REBALANCE_SELL`` -> ``rebalance``."""
    return _in_words(REASON_CODES, code, "")


# Why a portfolio is frozen, in words (the freeze keeps its code).
FREEZE_CODES = {
    "MANUAL": "frozen by hand",
    "PRICE_SCALE_SUSPECT": "a price looks 100 times off (pence read as pounds, or the reverse)",
    "CURRENCY_MISMATCH": "a price came in another currency than the listing's",
}


def freeze_words(code: Any) -> str:
    """A freeze's reason code in words: ``PRICE_SCALE_SUSPECT`` -> what it means."""
    return _in_words(FREEZE_CODES, code, "no reason given")


def _in_words(table: Mapping[str, str], code: Any, missing: str) -> str:
    """``code`` in ``table``'s words; a code it lacks in lower case without underscores, and
    ``missing`` for none."""
    return table.get(str(code), str(code or missing).lower().replace("_", " "))


def cell_text(value: Any) -> str:
    """How a value reads in a table: exact decimals, ISO dates, empty for None."""
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return decimal_str(value) or "0"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="minutes")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(cell_text(v) for v in value)
    return str(value)


def all_columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Every key of every row, in the order first seen."""
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    return columns


def table_html(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str] | None = None,
    *,
    empty: str | None = "(none)",
    numeric: Sequence[str] = (),
    css_class: str = "ta-table",
    cell: Callable[[Any], str] = cell_text,
    align: bool = True,
) -> str:
    """Rows as an HTML table (escaped); ``columns`` default to the first row's keys.

    ``numeric`` columns align right (the others left) unless ``align`` is off; ``cell`` turns a
    value into its text. No rows: ``empty`` in italics, or with ``empty=None`` an empty table.
    """
    if not rows and empty is not None:
        return f"<div><em>{html.escape(empty)}</em></div>"
    columns = list(columns or (rows[0].keys() if rows else ()))
    right = set(numeric)

    def td(column: str, value: Any) -> str:
        style = f' style="text-align:{"right" if column in right else "left"}"' if align else ""
        return f"<td{style}>{html.escape(cell(value))}</td>"

    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(td(c, row.get(c)) for c in columns) + "</tr>" for row in rows)
    return f'<table class="{css_class}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def message_html(text: str, kind: str = INFO) -> str:
    """One coloured line (escaped)."""
    colour = COLOURS.get(kind, COLOURS[INFO])
    return f'<div class="ta-msg ta-{kind}" style="color:{colour}">{html.escape(text)}</div>'


def messages_html(lines: Sequence[str], kind: str = INFO) -> str:
    return "".join(message_html(line, kind) for line in lines)
