"""What every view shares: the database and the acting user, and errors as lines.

Views find the database the way the CLI and the notebooks do (``TRADEASSIST_DB_URL``, else
the embedded default), unless a view is given an engine (tests do). The acting user is
``TRADEASSIST_USER``, else the bootstrap admin, as on the command line.

Only plain helpers live here; a view's callbacks stay one- to three-line adapters over
services. Nothing here touches the database beyond ``work``, ``acting_user`` and
``portfolio_names``. Tables and coloured lines are ``tradeassist.presentation.html``'s, the
charts' renderer ``tradeassist.presentation.charts``'s.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session

from ..core.config import settings
from ..core.errors import TradeAssistError
from ..db.engine import get_engine, unit_of_work
from ..services import access, identity
from ..services.workbench import Actor


def resolve_engine(engine: Engine | str | None = None) -> Engine:
    """The given engine, else the shared one for a URL, else the configured database."""
    return engine if isinstance(engine, Engine) else get_engine(engine)


def acting_user(session: Session) -> Actor:
    """``TRADEASSIST_USER``, else the bootstrap admin (as the CLI without ``--as``)."""
    return identity.acting_user(session, settings().user)


@contextmanager
def work(engine: Engine | str | None = None, *, readonly: bool = False) -> Iterator[tuple[Session, Actor]]:
    """One transaction with the acting user: commits on success unless ``readonly``."""
    with unit_of_work(resolve_engine(engine), readonly=readonly) as session:
        yield session, acting_user(session)


def portfolio_names(session: Session, actor: Actor) -> list[str]:
    """The names of the portfolios the user may see, oldest first (for a dropdown)."""
    return [p.name for p in access.accessible_portfolios(session, actor)]


def use_database(db_url: str | None = None) -> str:
    """Point this process (a notebook's kernel) at ``db_url``, or at a fresh SQLite file in a
    new temporary directory when it is None; returns the URL. Every later ``work()``, view and
    service call then finds it as ``TRADEASSIST_DB_URL``, as the CLI would."""
    url = db_url or f"sqlite:///{Path(tempfile.mkdtemp(prefix='tradeassist-')) / 'tradeassist.db'}"
    os.environ["TRADEASSIST_DB_URL"] = url
    return url


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
