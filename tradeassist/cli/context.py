"""What every command shares: the database, the acting user, output in text or JSON."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import typer

from ..core import jsonutil
from ..core.errors import ConfigError
from ..core.money import decimal_str

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlmodel import Session

    from ..services.workbench import Actor

# The database, its settings and the services are imported where a command first needs them:
# `tradeassist --help` starts without SQLAlchemy or pydantic (cli.lazy).


@dataclass
class State:
    db_url: str | None = None
    acting_email: str | None = None

    @property
    def url(self) -> str:
        from ..core.config import resolve_db_url

        return resolve_db_url(self.db_url)

    def engine(self) -> Engine:
        from ..db.engine import get_engine

        return get_engine(self.url)

    def initialised_engine(self) -> Engine:
        from ..services.workbench import has_schema

        engine = self.engine()
        if not has_schema(engine):
            raise ConfigError("the database has no schema yet: run `tradeassist init` first")
        return engine


state = State()


def actor(session: Session) -> Actor:
    """The acting user: on a person's own PostgreSQL login, that person (``--as`` another is
    refused, but for the administrator); otherwise ``--as``, else ``TRADEASSIST_USER``, else
    the bootstrap admin (``identity.acting_user``). The notebooks a command runs (task runs)
    inherit the environment: ``--as`` is handed to them as ``TRADEASSIST_USER``."""
    from ..core.config import settings
    from ..services import identity

    if state.acting_email:
        user = identity.acting_user(session, state.acting_email, named_by=f"--as {state.acting_email}")
        os.environ["TRADEASSIST_USER"] = user.email
        return user
    return identity.acting_user(session, settings().user)


@contextmanager
def work(readonly: bool = False) -> Iterator[tuple[Session, Actor]]:
    """One transaction for one command, with the acting user."""
    from ..db.engine import unit_of_work

    with unit_of_work(state.initialised_engine(), readonly=readonly) as session:
        yield session, actor(session)


def emit_json(value: Any) -> None:
    typer.echo(jsonutil.dumps(value, indent=2))


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return decimal_str(value) or ""
    if isinstance(value, list | dict):
        return jsonutil.dumps(value)
    return str(value)


def emit_table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> None:
    """Plain aligned columns for people; ``--json`` is for scripts."""
    if not rows:
        typer.echo("(none)")
        return
    columns = list(columns or rows[0].keys())
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    typer.echo("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for r in cells:
        typer.echo("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())


def emit(rows: Sequence[dict[str, Any]], as_json: bool, columns: Sequence[str] | None = None) -> None:
    if as_json:
        emit_json(list(rows))
    else:
        emit_table(rows, columns)


FORMAT_OPTION_HELP = "The format's own option, KEY=VALUE (repeatable; see docs/ledger.md)."


def format_options(texts: Sequence[str] | None) -> dict[str, str]:
    """``--option KEY=VALUE`` (repeatable) as a dict; a text without ``=`` or a key is refused."""
    from ..core.errors import ValidationError

    options = {}
    for text in texts or []:
        key, equals, value = text.partition("=")
        if not equals or not key.strip():
            raise ValidationError(f"--option {text!r}: expected KEY=VALUE")
        options[key.strip()] = value.strip()
    return options


def fail(message: str, code: int = 1) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def info(message: str) -> None:
    """Progress and notes go to stderr so stdout stays parseable."""
    typer.echo(message, err=True)


JSON_OPTION = typer.Option(False, "--json", help="Print JSON only (every row, no limit).")
PORTFOLIO_OPTION = typer.Option(..., "--portfolio", help="Portfolio name.")
AS_OF_OPTION = typer.Option(
    None, "--as-of", help="DATE, YYYY-MM-DD or DD/MM/YYYY (end of that day, Europe/London), or ISO timestamp."
)


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()
