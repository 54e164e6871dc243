"""The ``tradeassist`` command line.

Global options: ``--db URL`` (else ``TRADEASSIST_DB_URL``, else the embedded default) and
``--as EMAIL`` (else ``TRADEASSIST_USER``, else the bootstrap admin). Listing commands take
``--json`` and then print only JSON. Errors a user can cause print one line on stderr and
exit non-zero.
"""

from __future__ import annotations

import csv
import importlib
import sys
from typing import NoReturn

import typer
from sqlalchemy.exc import DBAPIError, StatementError

from ..core.config import redact_url
from ..core.errors import TradeAssistError
from . import identity
from .context import state

app = typer.Typer(
    name="tradeassist",
    help="An exact book of record and an audited rebalance assistant.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _global_options(
    db: str = typer.Option(None, "--db", help="Database URL (else TRADEASSIST_DB_URL, else the default)."),
    as_user: str = typer.Option(None, "--as", help="Acting user's email (else TRADEASSIST_USER)."),
) -> None:
    state.db_url = db
    state.acting_email = as_user


app.command("init")(identity.init)
app.add_typer(identity.user_app, name="user")
app.add_typer(identity.portfolio_app, name="portfolio")


COMMAND_MODULES = (
    "registry",
    "ledger",
    "market",
    "strategy",
    "advice",
    "recommendations",
    "tasks",
    "runs",
    "notify",
    "reports",
    "income",
    "tax",
    "demo",
    "ui",
)


def _register_optional() -> None:
    """Command groups that live in their own modules."""
    for module_name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"{__name__}.{module_name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{__name__}.{module_name}":
                continue
            raise
        module.register(app)


_register_optional()


# Exceptions bad input can raise deep in a library. Each has a cause fixed where the input
# enters (core.limits, the readers); this is the last line, so that one missed still prints
# one line, not a traceback. A ValueError, TypeError or KeyError is a bug, and keeps its
# traceback. (ArithmeticError covers decimal's InvalidOperation and Overflow.)
INPUT_ERRORS = (UnicodeError, csv.Error, ArithmeticError, RecursionError, MemoryError)
MAX_MESSAGE = 2000  # characters of one error line; a bad 128 KiB cell is not echoed whole


def one_line(message: str) -> str:
    """An error message on one line (a newline from a quoted CSV cell, say), cut short."""
    text = " ".join(message.splitlines())  # \n, \r, \v, \f, \x1c-\x1e, \x85, \u2028, \u2029
    if len(text) > MAX_MESSAGE:
        text = f"{text[:MAX_MESSAGE]}… ({len(text) - MAX_MESSAGE} more characters)"
    return text


def _fail(message: str, code: int) -> NoReturn:
    typer.echo(f"error: {one_line(message)}", err=True)
    sys.exit(code)


def _driver_error(exc: BaseException) -> bool:
    """A psycopg error raised outside SQLAlchemy (a COPY through the driver's own cursor)."""
    psycopg = sys.modules.get("psycopg")
    return psycopg is not None and isinstance(exc, psycopg.Error)


def main() -> None:
    try:
        app()
    except TradeAssistError as exc:
        _fail(str(exc), exc.exit_code)
    except StatementError as exc:
        # A column type refusing a value before the database (ExactDecimal, UTCDateTime):
        # SQLAlchemy wraps the ValidationError it raised.
        if isinstance(exc.orig, TradeAssistError):
            _fail(str(exc.orig), exc.orig.exit_code)
        if isinstance(exc, DBAPIError):
            detail = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            _fail(f"database: {detail} ({redact_url(state.url)})", 2)
        raise
    except INPUT_ERRORS as exc:
        _fail(f"the input could not be read ({type(exc).__name__}: {exc}); please report this bug", 1)
    except Exception as exc:
        if _driver_error(exc):
            detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            _fail(f"database: {detail} ({redact_url(state.url)})", 2)
        raise
