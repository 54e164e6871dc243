"""The ``tradeassist`` command line.

Global options: ``--db URL`` (else ``TRADEASSIST_DB_URL``, else the embedded default) and
``--as EMAIL`` (else ``TRADEASSIST_USER``, else the bootstrap admin). Listing commands take
``--json`` and then print only JSON. Errors a user can cause print one line on stderr and
exit non-zero.

Start-up is kept short: each command's module (and the services, SQLAlchemy and the rest behind
it) is imported only when that command runs, so ``COMMANDS`` below names each top-level command's
module and one-line help for ``tradeassist --help`` (``cli.lazy``). A new command goes there.
"""

from __future__ import annotations

import csv
import sys
from typing import Any, NoReturn

import typer

from ..core.errors import TradeAssistError
from .context import state
from .lazy import LazyCommand, LazyGroup

# Each top-level command: its module's register(app) adds it. In the order --help lists them.
COMMANDS = {
    "init": LazyCommand(
        "identity", "Create or upgrade the database schema; create the bootstrap admin once."
    ),
    "setup": LazyCommand(
        "setup", "A broker account's first steps, one command each: listings, strategy, imports, prices."
    ),
    "holdings": LazyCommand(
        "ledger",
        "The holdings valued: units, latest usable price, market value, book cost (Section 104, fees "
        "included), unrealised gain and weight of the account (holdings plus cash).",
    ),
    "cash": LazyCommand("ledger", "The cash balance: currency, cash_balance (a JSON object with --json)."),
    "recommend": LazyCommand(
        "advice",
        "Compute a recommendation with the strategy governing the portfolio and print it"
        " (nothing is stored).",
    ),
    "income": LazyCommand(
        "income", "Dividends and interest per tax year, portfolio and listing (GBP, exact)."
    ),
    "demo": LazyCommand(
        "demo", "Load the demo SIPP (once), then run each of its tasks and print where the reports are."
    ),
    "ui": LazyCommand(
        "ui",
        "Serve the approval view (Voilà) on 127.0.0.1 behind a login and open it in a browser; the "
        "dashboard is served beside it at /dashboard.",
    ),
    "user": LazyCommand("identity", "Users."),
    "portfolio": LazyCommand("identity", "Portfolios."),
    "instrument": LazyCommand("registry", "Instruments (ISIN)."),
    "listing": LazyCommand("registry", "Listings: ticker, exchange, currency, quote scale."),
    "ledger": LazyCommand("ledger", "The book of record: import, post, correct, list, rebuild."),
    "corporate-action": LazyCommand("ledger", "Corporate actions: SPLIT, MERGE, ISIN_CHANGE."),
    "prices": LazyCommand("market", "Prices: import, refresh, list, latest good close, accepted levels."),
    "fx": LazyCommand("market", "FX rates (GBP crosses)."),
    "alerts": LazyCommand("market", "Alerts: list them (no subcommand) or resolve one."),
    "freeze": LazyCommand("market", "Portfolio freezes: status, set, clear."),
    "strategy": LazyCommand("strategy", "Strategy versions: policy + manifesto."),
    "constituent": LazyCommand("strategy", "Which listings implement which sleeve, per portfolio."),
    "reco": LazyCommand("recommendations", "Recommendations: list, show, review, approve, ignore, execute."),
    "tasks": LazyCommand("tasks", "Scheduled tasks: add, list, see what is due, run."),
    "runs": LazyCommand("runs", "Task runs: list, show, replay."),
    "notify": LazyCommand("notify", "Notifications: send what is pending, list the outbox."),
    "report": LazyCommand("reports", "Run reports."),
    "reports": LazyCommand("reports", "Run reports: email one now, prune old ones."),
    "tax": LazyCommand("tax", "UK tax from the book: capital gains, pools, allowances, the tax-year report."),
}


class TradeAssistGroup(LazyGroup):
    lazy_commands = COMMANDS


app = typer.Typer(
    name="tradeassist",
    help="An exact book of record and an audited rebalance assistant.",
    cls=TradeAssistGroup,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    # Click's own help and error layout, not Rich's: Rich's help formatter (and the Markdown
    # parser it loads) took 0.1-0.2 s of every `tradeassist --help`, half its start-up.
    rich_markup_mode=None,
)


@app.callback()
def _global_options(
    db: str = typer.Option(None, "--db", help="Database URL (else TRADEASSIST_DB_URL, else the default)."),
    as_user: str = typer.Option(None, "--as", help="Acting user's email (else TRADEASSIST_USER)."),
) -> None:
    state.db_url = db
    state.acting_email = as_user


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


def _database_failure(detail: str) -> NoReturn:
    from ..core.config import redact_url

    _fail(f"database: {detail} ({redact_url(state.url)})", 2)


def _statement_error(exc: Exception) -> None:
    """Fail with one line for a SQLAlchemy StatementError; return for anything else. (Only a
    command that imported SQLAlchemy can raise one: it is not imported to check.)"""
    sa_exc: Any = sys.modules.get("sqlalchemy.exc")
    if sa_exc is None or not isinstance(exc, sa_exc.StatementError):
        return
    # A column type refusing a value before the database (ExactDecimal, UTCDateTime):
    # SQLAlchemy wraps the ValidationError it raised.
    if isinstance(exc.orig, TradeAssistError):
        _fail(str(exc.orig), exc.orig.exit_code)
    if isinstance(exc, sa_exc.DBAPIError):
        _database_failure(str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc))


def _driver_error(exc: BaseException) -> bool:
    """A psycopg error raised outside SQLAlchemy (a COPY through the driver's own cursor)."""
    psycopg = sys.modules.get("psycopg")
    return psycopg is not None and isinstance(exc, psycopg.Error)


def main() -> None:
    try:
        app()
    except TradeAssistError as exc:
        _fail(str(exc), exc.exit_code)
    except INPUT_ERRORS as exc:
        _fail(f"the input could not be read ({type(exc).__name__}: {exc}); please report this bug", 1)
    except Exception as exc:
        _statement_error(exc)
        if _driver_error(exc):
            _database_failure((str(exc).strip().splitlines() or [type(exc).__name__])[0])
        raise
