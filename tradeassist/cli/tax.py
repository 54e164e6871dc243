"""``tradeassist tax``: capital gains for the return, Section 104 pools, allowances, a report to file from."""

from __future__ import annotations

import typer

from ..core.timeutil import parse_as_of
from ..presentation import tax as tax_text
from ..services.tax import cgt
from .context import AS_OF_OPTION, JSON_OPTION, emit_json, work

tax_app = typer.Typer(help="UK tax from the book: capital gains, pools, allowances.", no_args_is_help=True)

TAX_YEAR_OPTION = typer.Option(
    ..., "--tax-year", help="The tax year, as 2023-24 (6 April 2023 to 5 April 2024)."
)
OWNER_OPTION = typer.Option(
    None, "--owner", help="The taxpayer's email (whose portfolios these are); else the acting user."
)


@tax_app.command("cgt")
def cgt_command(
    tax_year: str = TAX_YEAR_OPTION,
    owner: str = OWNER_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Capital gains in a tax year across the owner's general accounts (SA108), with the working."""
    with work(readonly=True) as (session, actor):
        report = cgt.cgt_report(session, actor=actor, tax_year=tax_year, owner_email=owner)
    if as_json:
        emit_json(report)
        return
    for line in tax_text.cgt_lines(report):
        typer.echo(line)


@tax_app.command("pools")
def pools_command(
    owner: str = OWNER_OPTION,
    as_of: str = AS_OF_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """The Section 104 pools per ISIN: units and allowable cost, across the owner's general accounts."""
    with work(readonly=True) as (session, actor):
        result = cgt.pools(
            session, actor=actor, owner_email=owner, as_of=parse_as_of(as_of) if as_of else None
        )
    if as_json:
        emit_json(result)
        return
    for line in tax_text.pools_lines(result):
        typer.echo(line)


def register(app: typer.Typer) -> None:
    app.add_typer(tax_app, name="tax")
