"""What every view shares: the database and the acting user, messages, tables, charts.

Views find the database the way the CLI and the notebooks do (``TRADEASSIST_DB_URL``, else
the embedded default), unless a view is given an engine (tests do). The acting user is
``TRADEASSIST_USER``, else the bootstrap admin, as on the command line.

Only plain helpers live here; a view's callbacks stay one- to three-line adapters over
services. Nothing here touches the database beyond ``work``, ``acting_user`` and
``portfolio_names``.
"""

from __future__ import annotations

import html
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from ..core.errors import TradeAssistError
from ..core.money import decimal_str
from ..db.engine import get_engine, unit_of_work
from ..db.models import User
from ..services import access, identity

OK, INFO, WARN, ERROR = "ok", "info", "warn", "error"
_COLOURS = {OK: "#2e7d32", INFO: "#1565c0", WARN: "#ef6c00", ERROR: "#c62828"}

NOTEBOOK_RENDERER = "plotly_mimetype+notebook"


def resolve_engine(engine: Engine | str | None = None) -> Engine:
    """The given engine, else the shared one for a URL, else the configured database."""
    return engine if isinstance(engine, Engine) else get_engine(engine)


def acting_user(session: Session) -> User:
    """``TRADEASSIST_USER``, else the bootstrap admin (as the CLI without ``--as``)."""
    return identity.acting_user(session, os.environ.get("TRADEASSIST_USER"))


@contextmanager
def work(engine: Engine | str | None = None, *, readonly: bool = False) -> Iterator[tuple[Session, User]]:
    """One transaction with the acting user: commits on success unless ``readonly``."""
    with unit_of_work(resolve_engine(engine), readonly=readonly) as session:
        yield session, acting_user(session)


def portfolio_names(session: Session, actor: User) -> list[str]:
    """The names of the portfolios the user may see, oldest first (for a dropdown)."""
    return [p.name for p in access.accessible_portfolios(session, actor)]


def use_database(db_url: str | None = None) -> str:
    """Point this process (a notebook's kernel) at ``db_url``, or at a fresh SQLite file in a
    new temporary directory when it is None; returns the URL. Every later ``work()``, view and
    service call then finds it as ``TRADEASSIST_DB_URL``, as the CLI would."""
    import tempfile

    url = db_url or f"sqlite:///{Path(tempfile.mkdtemp(prefix='tradeassist-')) / 'tradeassist.db'}"
    os.environ["TRADEASSIST_DB_URL"] = url
    return url


def use_notebook_charts(renderer: str = NOTEBOOK_RENDERER) -> None:
    """Plotly 7 needs a renderer named: this one draws in JupyterLab and survives an HTML export."""
    import plotly.io as pio

    pio.renderers.default = renderer


# --- text ----------------------------------------------------------------------------------


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


def message_html(text: str, kind: str = INFO) -> str:
    """One coloured line (escaped)."""
    colour = _COLOURS.get(kind, _COLOURS[INFO])
    return f'<div class="ta-msg ta-{kind}" style="color:{colour}">{html.escape(text)}</div>'


def messages_html(lines: Sequence[str], kind: str = INFO) -> str:
    return "".join(message_html(line, kind) for line in lines)


def error_lines(exc: BaseException) -> list[str]:
    """A user error as lines: one per problem when the error lists them, else its message."""
    problems = getattr(exc, "problems", None)
    if isinstance(exc, TradeAssistError) and problems is None:
        problems = exc.context.get("problems")
    if problems:
        out = []
        for problem in problems:
            if isinstance(problem, tuple) and len(problem) == 2:
                line, reason = problem
                file = getattr(exc, "file", None)
                where = " ".join(x for x in (file, f"line {line}" if line is not None else None) if x)
                out.append(f"{where}: {reason}" if where else str(reason))
            else:
                out.append(str(problem))
        return out
    return [str(exc)]


def table_html(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str] | None = None,
    *,
    empty: str = "(none)",
    numeric: Sequence[str] = (),
) -> str:
    """A small HTML table (escaped); ``numeric`` columns align right."""
    if not rows:
        return f"<div><em>{html.escape(empty)}</em></div>"
    columns = list(columns or rows[0].keys())
    right = set(numeric)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td style="text-align:{"right" if c in right else "left"}">'
            f"{html.escape(cell_text(row.get(c)))}</td>"
            for c in columns
        )
        + "</tr>"
        for row in rows
    )
    return f'<table class="ta-table"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def gbp(amount: Decimal | float | int | None) -> str:
    """£1,234.56 (display only; the ledger keeps the exact figure)."""
    if amount is None:
        return ""
    return f"£{Decimal(str(amount)):,.2f}"
