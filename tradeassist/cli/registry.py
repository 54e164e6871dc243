"""instrument and listing commands."""

from __future__ import annotations

import typer

from ..services import registry, workbench
from .context import JSON_OPTION, emit, work

instrument_app = typer.Typer(help="Instruments (ISIN).", no_args_is_help=True)
listing_app = typer.Typer(help="Listings: ticker, exchange, currency, quote scale.", no_args_is_help=True)


@instrument_app.command("add")
def instrument_add(
    isin: str = typer.Option(..., "--isin"),
    instrument_type: str = typer.Option(..., "--type", help="ETF, STOCK, ETC or FUND."),
    name: str = typer.Option(None, "--name"),
) -> None:
    """Add an instrument by ISIN (the check digit is verified)."""
    with work() as (session, actor):
        instrument = registry.add_instrument(
            session, actor=actor, isin=isin, instrument_type=instrument_type, name=name
        )
        typer.echo(f"instrument added: {instrument.isin} (id {instrument.instrument_id})")


@instrument_app.command("list")
def instrument_list(as_json: bool = JSON_OPTION) -> None:
    """Every instrument."""
    with work(readonly=True) as (session, _actor):
        rows = workbench.list_instruments(session)
    emit(rows, as_json)


@listing_app.command("add")
def listing_add(
    isin: str = typer.Option(..., "--isin"),
    ticker: str = typer.Option(..., "--ticker"),
    exchange: str = typer.Option(..., "--exchange", help="A MIC such as XLON."),
    currency: str = typer.Option(..., "--currency", help="Trading currency, e.g. GBP."),
    quote_scale: str = typer.Option(..., "--quote-scale", help="GBX (pence), GBP, USD, ..."),
    provider_symbol: str = typer.Option(None, "--provider-symbol", help="The market data provider's symbol."),
    provider: str = typer.Option(None, "--provider", help="Price provider for `prices refresh`."),
    primary: bool = typer.Option(False, "--primary", help="The instrument's primary listing."),
) -> None:
    """Add a listing of an instrument on a venue."""
    with work() as (session, actor):
        listing = registry.add_listing(
            session,
            actor=actor,
            isin=isin,
            ticker=ticker,
            exchange=exchange,
            currency=currency,
            quote_scale=quote_scale,
            provider_symbol=provider_symbol,
            price_provider=provider,
            is_primary=primary,
        )
        typer.echo(f"listing added: {listing.ticker} on {listing.exchange} (id {listing.listing_id})")


@listing_app.command("set")
def listing_set(
    ticker: str = typer.Option(..., "--ticker"),
    exchange: str = typer.Option(..., "--exchange", help="A MIC such as XLON."),
    provider: str = typer.Option(
        None, "--provider", help="Price provider for `prices refresh` (none: no provider)."
    ),
    provider_symbol: str = typer.Option(
        None, "--provider-symbol", help="The provider's symbol (none: clear)."
    ),
    primary: bool = typer.Option(
        None, "--primary/--not-primary", help="Make it the instrument's primary listing (or not)."
    ),
    source_priority: str = typer.Option(
        None,
        "--source-priority",
        help="Sources in the order they value the listing, e.g. stooq,yahoo (default: the default order).",
    ),
) -> None:
    """Change a listing's market-data settings (audited). Its ISIN, ticker, exchange, currency and
    quote scale never change: a listing registered with the wrong ones is replaced by a new one."""
    with work() as (session, actor):
        listing, changes = registry.amend_listing(
            session,
            actor=actor,
            ticker=ticker,
            exchange=exchange,
            price_provider=provider,
            provider_symbol=provider_symbol,
            is_primary=primary,
            source_priority=source_priority,
        )
        name = f"{listing.ticker} on {listing.exchange}"
    if not changes:
        typer.echo(f"{name}: nothing to change")
        return
    for field, change in changes.items():
        if field == "no_longer_primary":
            typer.echo(f"{name}: {', '.join(change)} no longer primary")
            continue
        label = field.replace("_", " ")
        typer.echo(f"{name}: {label} {_shown(change['from'])} -> {_shown(change['to'])}")


def _shown(value: object) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, list):
        return ",".join(value)
    return str(value).lower() if isinstance(value, bool) else str(value)


@listing_app.command("list")
def listing_list(as_json: bool = JSON_OPTION) -> None:
    """Every listing."""
    with work(readonly=True) as (session, _actor):
        rows = registry.list_listings(session)
    emit(
        rows,
        as_json,
        [
            "ticker",
            "exchange",
            "isin",
            "trading_currency",
            "quote_scale",
            "provider_symbol",
            "price_provider",
            "source_priority",
            "name",
        ],
    )


def register(app: typer.Typer) -> None:
    app.add_typer(instrument_app, name="instrument")
    app.add_typer(listing_app, name="listing")
