"""``income``: dividends and interest per listing and per UK tax year (6 April to 5 April)."""

from __future__ import annotations

import typer

from ..core.money import format_gbp
from .context import JSON_OPTION, emit_json, emit_table, work

COLUMNS = [
    "tax_year",
    "portfolio",
    "tax_treatment",
    "kind",
    "ticker",
    "exchange",
    "isin",
    "payer",
    "amount",
    "entries",
]


def income_command(
    portfolio: str = typer.Option(
        None, "--portfolio", help="One portfolio (default: every one you may read)."
    ),
    tax_year: str = typer.Option(
        None, "--tax-year", help="A UK tax year, e.g. 2023-24 (6 April 2023 to 5 April 2024)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Dividends and interest per tax year, portfolio and listing (GBP, exact).

    A dividend is a DIVIDEND entry, or an INTEREST entry whose notes start "dividend:" (how
    imports recorded dividends before DIVIDEND existed). A dividend whose listing is unknown
    shows the payer its notes name.
    """
    from ..services import income  # lazy: keeps start-up fast

    with work(readonly=True) as (session, actor):
        rows = income.income(session, actor=actor, portfolio=portfolio, tax_year=tax_year)
    if as_json:
        emit_json([row.as_dict() for row in rows])
        return
    emit_table([row.as_dict() for row in rows], COLUMNS)
    for (year, name), sums in income.totals(rows).items():
        dividends, interest = format_gbp(sums["DIVIDEND"]), format_gbp(sums["INTEREST"])
        typer.echo(f"{year} {name}: dividends {dividends}, interest {interest}")


def register(app: typer.Typer) -> None:
    app.command("income")(income_command)
