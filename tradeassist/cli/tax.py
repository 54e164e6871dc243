"""``tradeassist tax``: capital gains for the return, Section 104 pools, allowances, a report to file from."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from ..core.timeutil import parse_as_of
from ..presentation import tax as tax_text
from ..presentation import tax_report
from ..services.tax import allowances, cgt
from .context import AS_OF_OPTION, JSON_OPTION, emit_json, fail, work

tax_app = typer.Typer(
    help="UK tax from the book: capital gains, pools, allowances, the tax-year report.", no_args_is_help=True
)

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


@tax_app.command("allowances")
def allowances_command(
    tax_year: str = TAX_YEAR_OPTION,
    owner: str = OWNER_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """ISA, pension, dividend, savings and CGT allowances for a tax year: used and left."""
    with work(readonly=True) as (session, actor):
        result = allowances.allowances_report(session, actor=actor, tax_year=tax_year, owner_email=owner)
    if as_json:
        emit_json(result)
        return
    for line in tax_text.allowances_lines(result):
        typer.echo(line)


REPORT_FORMATS = (".html", ".csv")


def report_target(out: str) -> Path:
    """Where ``tax report`` writes: a .html or .csv file in a directory that exists."""
    path = Path(out).expanduser().absolute()
    if path.suffix.lower() not in REPORT_FORMATS:
        fail(f"--out {out}: the name must end in .html or .csv (the ending chooses the format)")
    if not path.parent.is_dir():
        fail(f"--out {out}: the directory {path.parent} does not exist; create it first")
    if path.is_dir():
        fail(f"--out {out}: that is a directory; give a file name ending in .html or .csv")
    return path


@tax_app.command("report")
def report_command(
    tax_year: str = TAX_YEAR_OPTION,
    owner: str = OWNER_OPTION,
    out: str = typer.Option(
        ..., "--out", help="The file to write: FILE.html (to read and print) or FILE.csv."
    ),
) -> None:
    """A tax-year report to file from: the decision, the SA108 figures, every disposal's working,
    the allowances. FILE.html is one page that reads offline and prints; FILE.csv is the working."""
    path = report_target(out)
    with work(readonly=True) as (session, actor):
        report = cgt.cgt_report(session, actor=actor, tax_year=tax_year, owner_email=owner)
        if path.suffix.lower() == ".csv":
            text = tax_report.report_csv(report)
        else:
            used = allowances.allowances_report(session, actor=actor, tax_year=tax_year, owner_email=owner)
            text = tax_report.report_html(report, used)
    partial = path.with_name(f".{path.name}.partial")
    try:
        partial.write_text(text, encoding="utf-8", newline="")
        os.replace(partial, path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        fail(f"could not write {path}: {exc.strerror or exc}")
    typer.echo(str(path.resolve()))


def register(app: typer.Typer) -> None:
    app.add_typer(tax_app, name="tax")
