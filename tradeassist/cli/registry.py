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
            "name",
        ],
    )


def register(app: typer.Typer) -> None:
    app.add_typer(instrument_app, name="instrument")
    app.add_typer(listing_app, name="listing")
