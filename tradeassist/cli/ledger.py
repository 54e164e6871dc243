"""ledger, holdings, cash and corporate-action commands."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import typer

from ..core.errors import ValidationError
from ..core.money import format_gbp
from ..providers.brokers.canonical import HEADER as CANONICAL_HEADER
from ..services import corporate_actions, imports, ledger
from .context import (
    AS_OF_OPTION,
    FORMAT_OPTION_HELP,
    JSON_OPTION,
    PORTFOLIO_OPTION,
    emit,
    emit_json,
    format_options,
    info,
    work,
)
from .progress import progress, stages

ledger_app = typer.Typer(
    help="The book of record: import, post, correct, list, rebuild.", no_args_is_help=True
)
action_app = typer.Typer(help="Corporate actions: SPLIT, MERGE, ISIN_CHANGE.", no_args_is_help=True)

ENTRY_COLUMNS = ["ledger_entry_id", *CANONICAL_HEADER]


FORCE_OPTION = typer.Option(
    False, "--force", help="Record ISA subscriptions even over the tax year's allowance (refused otherwise)."
)


@ledger_app.command("import")
def ledger_import(
    file: Path = typer.Argument(..., help="The broker export (AJ Bell: the transaction history)."),
    portfolio: str = PORTFOLIO_OPTION,
    fmt: str = typer.Option(
        ..., "--format", help="canonical, ajbell, trading212, freetrade or investengine."
    ),
    mapping: Path = typer.Option(None, "--mapping", help="AJ Bell: description,ticker,exchange CSV."),
    cash_statement: Path = typer.Option(None, "--cash-statement", help="AJ Bell: the cash statement CSV."),
    label: str = typer.Option(None, "--label", help="The batch label (default: import FILE)."),
    force: bool = FORCE_OPTION,
    option: list[str] = typer.Option(None, "--option", help=FORMAT_OPTION_HELP),
) -> None:
    """Import a broker file as one batch: all of it or nothing; importing it again adds nothing."""
    if fmt.strip().lower() not in imports.FORMATS:
        raise ValidationError(f"--format {fmt!r}: expected one of {', '.join(imports.FORMATS)}")
    options = format_options(option)
    with work() as (session, actor), stages([f"reading {file.name}", "checking and writing"]) as done:

        def parsed(found: imports.ParsedFile) -> None:
            done(f"checking and writing {len(found.entries):,} entries")

        result = imports.import_file(
            session,
            actor=actor,
            portfolio=portfolio,
            path=file,
            format=fmt.strip().lower(),
            mapping=mapping,
            cash_statement=cash_statement,
            label=label,
            force=force,
            options=options,
            on_parsed=parsed,
        )
        done()
    if result.already_imported:
        typer.echo(f"{result.file}: imported before; nothing added (cash {format_gbp(result.cash_balance)})")
        return
    extra = f", {result.skipped} already recorded" if result.skipped else ""
    extra += f", {result.absorbed} left to recorded corporate actions" if result.absorbed else ""
    batch = f"batch {result.batch_id}" if result.batch_id else "no new batch"
    cash = format_gbp(result.cash_balance)
    typer.echo(f"{result.file}: {result.added} entries added ({batch}{extra}); cash {cash}")


@ledger_app.command("list")
def ledger_list(portfolio: str = PORTFOLIO_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Every entry of the portfolio, oldest first (all of them)."""
    with work(readonly=True) as (session, actor):
        rows = ledger.list_entries(session, actor=actor, portfolio=portfolio)
    emit(rows, as_json, ENTRY_COLUMNS)


@ledger_app.command("batches")
def ledger_batches(portfolio: str = PORTFOLIO_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Every batch of the portfolio."""
    with work(readonly=True) as (session, actor):
        rows = ledger.list_batches(session, actor=actor, portfolio=portfolio)
    emit(rows, as_json)


def _entry_options(
    session: object,
    entry_type: str,
    time: str | None,
    amount: str | None,
    ticker: str | None,
    exchange: str | None,
    units: str | None,
    price: str | None,
    fees: str | None,
    cash: str | None,
    cost: str | None,
    ref: str | None,
    notes: str | None,
    corrects: int | None = None,
) -> ledger.NewEntry:
    return ledger.manual_entry(
        session,  # type: ignore[arg-type]
        entry_type=entry_type,
        entry_time=ledger.parse_entry_time(time),
        amount=amount,
        ticker=ticker,
        exchange=exchange,
        units=units,
        price=price,
        fees=fees,
        cash=cash,
        cost=cost,
        external_ref=ref,
        notes=notes,
        corrects_entry_id=corrects,
    )


TYPE_OPTION = typer.Option(
    ...,
    "--type",
    help="BUY, SELL, CONTRIBUTION, WITHDRAWAL, FEE, INTEREST, DIVIDEND (--ticker: the listing that paid), "
    "TRANSFER.",
)
TIME_OPTION = typer.Option(None, "--time", help="ISO date (midnight UTC) or timestamp; default now.")
AMOUNT_OPTION = typer.Option(None, "--amount", help="Cash-only types: a positive GBP amount.")
TICKER_OPTION = typer.Option(None, "--ticker", help="The listing: BUY, SELL, TRANSFER of units, DIVIDEND.")
EXCHANGE_OPTION = typer.Option(None, "--exchange")
UNITS_OPTION = typer.Option(None, "--units", help="BUY/SELL: > 0; TRANSFER: + in, − out.")
PRICE_OPTION = typer.Option(None, "--price", help="In the listing's quote scale (pence for GBX).")
FEES_OPTION = typer.Option(None, "--fees", help="GBP, ≥ 0.")
CASH_OPTION = typer.Option(None, "--cash", help="Signed GBP cash (default: from units × price and fees).")
COST_OPTION = typer.Option(None, "--cost", help="TRANSFER in: the pooled GBP cost the units bring.")
REF_OPTION = typer.Option(None, "--ref", help="External reference (a contract note id).")
NOTES_OPTION = typer.Option(None, "--notes")


@ledger_app.command("add")
def ledger_add(
    portfolio: str = PORTFOLIO_OPTION,
    entry_type: str = TYPE_OPTION,
    time: str = TIME_OPTION,
    amount: str = AMOUNT_OPTION,
    ticker: str = TICKER_OPTION,
    exchange: str = EXCHANGE_OPTION,
    units: str = UNITS_OPTION,
    price: str = PRICE_OPTION,
    fees: str = FEES_OPTION,
    cash: str = CASH_OPTION,
    cost: str = COST_OPTION,
    ref: str = REF_OPTION,
    notes: str = NOTES_OPTION,
    label: str = typer.Option(None, "--label"),
    force: bool = FORCE_OPTION,
) -> None:
    """Post one entry as a MANUAL batch, e.g. ``--type CONTRIBUTION --amount 1000``."""
    with work() as (session, actor):
        entry = _entry_options(
            session, entry_type, time, amount, ticker, exchange, units, price, fees, cash, cost, ref, notes
        )
        result = ledger.post_entries(
            session,
            actor=actor,
            portfolio=portfolio,
            entries=[entry],
            label=label or f"manual {entry.entry_type}",
            batch_type="MANUAL",
            force=force,
        )
    if result.batch_id is None:
        typer.echo(f"already recorded (reference {ref}); nothing added")
    else:
        typer.echo(f"posted batch {result.batch_id}; cash {format_gbp(result.cash_balance)}")


@ledger_app.command("correct")
def ledger_correct(
    entry_ids: list[int] = typer.Argument(
        ..., help="The entries to reverse, in one batch and in any order (ledger list shows their ids)."
    ),
    portfolio: str = PORTFOLIO_OPTION,
    entry_type: str = typer.Option(
        None, "--type", help="Also post this replacement entry (one ENTRY_ID only: the entry it replaces)."
    ),
    time: str = TIME_OPTION,
    amount: str = AMOUNT_OPTION,
    ticker: str = TICKER_OPTION,
    exchange: str = EXCHANGE_OPTION,
    units: str = UNITS_OPTION,
    price: str = PRICE_OPTION,
    fees: str = FEES_OPTION,
    cash: str = CASH_OPTION,
    cost: str = COST_OPTION,
    ref: str = REF_OPTION,
    notes: str = NOTES_OPTION,
) -> None:
    """Reverse entries (one MANUAL_FIX batch of exact negations), or one entry with a replacement."""
    if entry_type and len(set(entry_ids)) > 1:
        raise ValidationError(
            "--type posts a replacement for one entry: name only that ENTRY_ID with it, and reverse "
            "the others in a `ledger correct` of their own"
        )
    with work() as (session, actor):
        replacements = []
        if entry_type:
            replacements.append(
                _entry_options(
                    session,
                    entry_type,
                    time,
                    amount,
                    ticker,
                    exchange,
                    units,
                    price,
                    fees,
                    cash,
                    cost,
                    ref,
                    notes,
                    entry_ids[0],
                )
            )
        result = ledger.reverse_entries(
            session, actor=actor, portfolio=portfolio, entry_ids=entry_ids, replacements=replacements
        )
    typer.echo(f"correction posted as batch {result.batch_id}; cash {format_gbp(result.cash_balance)}")


@ledger_app.command("transfer")
def ledger_transfer(
    source: str = typer.Option(..., "--from", help="The portfolio the units or cash leave."),
    destination: str = typer.Option(..., "--to", help="The portfolio they arrive in."),
    time: str = TIME_OPTION,
    ticker: str = TICKER_OPTION,
    exchange: str = EXCHANGE_OPTION,
    units: str = typer.Option(None, "--units", help="Units to move in specie (> 0), with --ticker."),
    amount: str = typer.Option(None, "--amount", help="Cash to move (> 0)."),
    notes: str = NOTES_OPTION,
) -> None:
    """Move units (with their pooled cost) or cash between two portfolios."""
    with work() as (session, actor):
        listing_id = ledger._lookup(session, ticker, exchange).listing_id if ticker else None
        sent, received = ledger.transfer_between(
            session,
            actor=actor,
            source=source,
            destination=destination,
            entry_time=ledger.parse_entry_time(time),
            listing_id=listing_id,
            units=units,  # type: ignore[arg-type]
            amount=amount,  # type: ignore[arg-type]
            notes=notes,
        )
    typer.echo(f"transferred: batch {sent.batch_id} in {source}, batch {received.batch_id} in {destination}")


@ledger_app.command("rebuild")
def ledger_rebuild(portfolio: str = PORTFOLIO_OPTION) -> None:
    """Recompute the portfolio's holding and cash snapshots from its ledger."""
    with work() as (session, actor), progress(None, f"rebuilding {portfolio}", unit="step"):
        result = ledger.rebuild(session, actor=actor, portfolio=portfolio)
    state = "changed" if result.changed else "unchanged"
    typer.echo(
        f"rebuilt {result.portfolio} from {result.entries} entries: {result.holdings} holdings, "
        f"cash {format_gbp(result.cash_balance)} ({state})"
    )


@ledger_app.command("verify")
def ledger_verify(
    portfolio: str = typer.Option(
        None, "--portfolio", help="Only this portfolio (default: every portfolio you can see)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Check the holding and cash snapshots against a replay of the ledger: one line per
    snapshot that differs (``--json``: every snapshot), exit status 1 if any does."""
    with work(readonly=True) as (session, actor):
        checks = ledger.verify_snapshots(session, actor=actor, portfolio=portfolio)
    if as_json:
        emit_json([check.as_row() for check in checks])
    else:
        for check in checks:
            if not check.matches:
                typer.echo(check.problem)
        differing = {check.portfolio for check in checks if not check.matches}
        for name in dict.fromkeys(check.portfolio for check in checks):
            if name not in differing:
                typer.echo(f"{name}: every snapshot matches its ledger")
    if any(not check.matches for check in checks):
        raise typer.Exit(1)


HOLDING_COLUMNS = [
    "ticker",
    "exchange",
    "units",
    "price_gbp",
    "market_value",
    "book_cost",
    "unrealised_gain",
    "weight",
]


def holdings_command(
    portfolio: str = PORTFOLIO_OPTION, as_of: str = AS_OF_OPTION, as_json: bool = JSON_OPTION
) -> None:
    """The holdings valued: units, latest usable price, market value, book cost (Section 104,
    fees included), unrealised gain and weight of the account (holdings plus cash). A holding
    without a usable price has no value, gain or weight (never £0), and says why.

    JSON keys: ticker, exchange, isin, units, avg_cost_base, price_gbp, price_date, market_value,
    book_cost, unrealised_gain, weight (a fraction), price_status, note."""
    from ..core.timeutil import parse_as_of
    from ..services import dashboard_accounts  # lazy: keeps start-up fast

    moment = parse_as_of(as_of) if as_of else None
    with work(readonly=True) as (session, actor):
        basic = {
            (r["ticker"], r["exchange"]): r
            for r in ledger.holdings(session, actor=actor, portfolio=portfolio)
        }
        valued = dashboard_accounts.account_holdings(session, actor=actor, portfolio=portfolio, as_of=moment)
    rows = []
    for held in valued.holdings:
        row = dict(
            basic.get((held.ticker, held.exchange), {"ticker": held.ticker, "exchange": held.exchange})
        )
        row |= {
            "units": held.units,
            "price_gbp": held.price_gbp,
            "price_date": held.price_day,
            "market_value": held.value,
            "book_cost": held.book_cost,
            "unrealised_gain": held.gain,
            "weight": None if held.weight is None else Decimal(repr(held.weight)).quantize(Decimal("0.0001")),
            "price_status": held.status,
            "note": held.note,
        }
        rows.append(row)
    if as_json:
        emit_json(rows)
        return
    shown = [
        {
            "ticker": r["ticker"],
            "exchange": r["exchange"],
            "units": r["units"],
            "price_gbp": format_gbp(r["price_gbp"], exact=True) if r["price_gbp"] is not None else "no price",
            "market_value": format_gbp(r["market_value"]),
            "book_cost": format_gbp(r["book_cost"]),
            "unrealised_gain": format_gbp(r["unrealised_gain"]),
            "weight": "—" if r["weight"] is None else f"{r['weight'] * 100:.1f}%",
        }
        for r in rows
    ]
    emit(shown, False, HOLDING_COLUMNS)
    typer.echo(
        f"cash {format_gbp(valued.cash)}; total {format_gbp(valued.total)}"
        + (f" ({len(valued.unpriced)} holding(s) without a price left out)" if valued.unpriced else "")
    )
    for note in valued.notes:
        info(f"note: {note}")


def cash_command(portfolio: str = PORTFOLIO_OPTION, as_json: bool = JSON_OPTION) -> None:
    """The cash balance: currency, cash_balance (a JSON object with --json)."""
    with work(readonly=True) as (session, actor):
        row = ledger.cash(session, actor=actor, portfolio=portfolio)
    if as_json:
        emit_json(row)
    else:
        emit([row], False)


@action_app.command("add")
def action_add(
    isin: str = typer.Option(..., "--isin"),
    action_type: str = typer.Option(..., "--type", help="SPLIT, MERGE or ISIN_CHANGE."),
    effective: str = typer.Option(..., "--effective", help="YYYY-MM-DD: the first day on the new basis."),
    ratio: str = typer.Option(None, "--ratio", help="N:D, N new units for D held (2:1 split, 1:10 merge)."),
    new_isin: str = typer.Option(None, "--new-isin", help="ISIN_CHANGE: the new ISIN."),
    notes: str = NOTES_OPTION,
) -> None:
    """Record a corporate action; every portfolio holding the instrument is replayed."""
    with work() as (session, actor):
        action = corporate_actions.add_corporate_action(
            session,
            actor=actor,
            isin=isin,
            action_type=action_type,
            effective=effective,
            ratio=ratio,
            new_isin=new_isin,
            notes=notes,
        )
        action_id = action.corp_action_id
    typer.echo(f"corporate action {action_id} recorded; the portfolios holding {isin.upper()} were replayed")


@action_app.command("list")
def action_list(
    isin: str = typer.Option(None, "--isin", help="Only this instrument's actions."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Every recorded corporate action."""
    with work(readonly=True) as (session, _actor):
        rows = corporate_actions.list_corporate_actions(session, isin=isin)
    emit(rows, as_json)


def register(app: typer.Typer) -> None:
    app.add_typer(ledger_app, name="ledger")
    app.command("holdings")(holdings_command)
    app.command("cash")(cash_command)
    app.add_typer(action_app, name="corporate-action")
