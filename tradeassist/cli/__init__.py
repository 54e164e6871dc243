"""The ``tradeassist`` command line.

Global options: ``--db URL`` (else ``TRADEASSIST_DB_URL``, else the embedded default) and
``--as EMAIL`` (else ``TRADEASSIST_USER``, else the bootstrap admin). Listing commands take
``--json`` and then print only JSON. Errors a user can cause print one line on stderr and
exit non-zero.
"""

from __future__ import annotations

import importlib
import sys

import typer
from sqlalchemy.exc import DBAPIError

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


def main() -> None:
    try:
        app()
    except TradeAssistError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except DBAPIError as exc:
        detail = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        typer.echo(f"error: database: {detail} ({redact_url(state.url)})", err=True)
        sys.exit(2)
