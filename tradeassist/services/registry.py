"""The instrument registry: instruments keyed by ISIN, listings keyed by (ticker, exchange)."""

from __future__ import annotations

import re
from typing import Any

from sqlmodel import Session, col, select

from ..core.enums import InstrumentType
from ..core.errors import AlreadyExists, NotFound, ValidationError
from ..core.isin import validate_isin
from ..db.models import Instrument, InstrumentListing, MarketDataSource, User
from ..engine.normalize import parse_quote_unit
from . import access, audit

_MIC = re.compile(r"^[A-Z0-9]{2,16}$")
_TICKER = re.compile(r"^[A-Z0-9][A-Z0-9.\-_/]{0,31}$")


def add_instrument(
    session: Session, *, actor: User, isin: str, instrument_type: str, name: str | None = None
) -> Instrument:
    isin = validate_isin(isin)
    try:
        kind = InstrumentType(instrument_type.upper())
    except ValueError:
        allowed = ", ".join(t.value for t in InstrumentType)
        raise ValidationError(f"instrument type {instrument_type!r}: expected one of {allowed}") from None
    if find_instrument(session, isin) is not None:
        raise AlreadyExists(f"instrument {isin} exists already")
    instrument = Instrument(isin=isin, instrument_type=kind, name=(name or "").strip() or None)
    session.add(instrument)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="INSTRUMENT_ADDED",
        entity_type="instrument",
        entity_id=instrument.instrument_id,
        details={"isin": isin, "type": kind.value, "name": name},
    )
    return instrument


def find_instrument(session: Session, isin: str) -> Instrument | None:
    return session.exec(select(Instrument).where(Instrument.isin == isin.strip().upper())).first()


def get_instrument(session: Session, isin: str) -> Instrument:
    isin = validate_isin(isin)
    instrument = find_instrument(session, isin)
    if instrument is None:
        raise NotFound(f"unknown ISIN {isin.strip().upper()}: add it with `tradeassist instrument add`")
    return instrument


def add_listing(
    session: Session,
    *,
    actor: User,
    isin: str,
    ticker: str,
    exchange: str,
    currency: str,
    quote_scale: str,
    provider_symbol: str | None = None,
    price_provider: str | None = None,
    is_primary: bool = False,
) -> InstrumentListing:
    instrument = get_instrument(session, isin)
    assert instrument.instrument_id is not None  # a stored instrument has its id
    ticker, exchange, currency = ticker.strip().upper(), exchange.strip().upper(), currency.strip().upper()
    if not _TICKER.match(ticker):
        raise ValidationError(f"ticker {ticker!r}: letters, digits and . - _ / only")
    if not _MIC.match(exchange):
        raise ValidationError(f"exchange {exchange!r}: expected a MIC such as XLON")
    if not re.fullmatch(r"[A-Z]{3}", currency):
        raise ValidationError(f"currency {currency!r}: expected a 3-letter ISO code such as GBP")
    unit = parse_quote_unit(quote_scale.strip())
    if unit.currency != currency:
        raise ValidationError(
            f"quote scale {quote_scale!r} is a {unit.currency} unit but the trading currency is {currency}"
        )
    if price_provider is not None:
        _check_provider(price_provider)
    if find_listing(session, ticker, exchange) is not None:
        raise AlreadyExists(f"listing {ticker} on {exchange} exists already")
    listing = InstrumentListing(
        instrument_id=instrument.instrument_id,
        ticker=ticker,
        exchange=exchange,
        trading_currency=currency,
        quote_scale=unit.scale,
        provider_symbol=(provider_symbol or "").strip() or None,
        price_provider=price_provider,
        is_primary=is_primary,
    )
    session.add(listing)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="LISTING_ADDED",
        entity_type="instrument_listing",
        entity_id=listing.listing_id,
        details=listing_row(session, listing),
    )
    return listing


def _check_provider(name: str) -> None:
    # Imported here for start-up speed: the price providers bring httpx (~0.2 s), which only
    # naming a provider needs.
    from ..providers.prices import price_provider_names

    if name not in price_provider_names():
        raise ValidationError(f"price provider {name!r}: expected one of {', '.join(price_provider_names())}")


# The settings ``listing set`` may change; the others are the listing's identity.
AMENDABLE = ("price_provider", "provider_symbol", "is_primary", "source_priority")
_CLEAR = ("", "none", "default")


def amend_listing(
    session: Session,
    *,
    actor: User,
    ticker: str,
    exchange: str,
    price_provider: str | None = None,
    provider_symbol: str | None = None,
    is_primary: bool | None = None,
    source_priority: str | None = None,
) -> tuple[InstrumentListing, dict[str, Any]]:
    """Change a listing's market-data settings (audited as ``LISTING_AMENDED`` with each field's
    old and new value); None leaves a setting as it is, and ``none`` (or an empty text) clears
    the provider, the provider symbol or the source priority (back to the default order).
    Making a listing primary makes the instrument's other listings not primary. The actor must
    be able to use every portfolio the listing's prices value. Returns the listing and the
    changes (empty: nothing changed, nothing recorded)."""
    listing = get_listing(session, ticker, exchange)
    assert listing.listing_id is not None  # read from the database
    wanted: dict[str, Any] = {}
    if price_provider is not None:
        provider = price_provider.strip().lower()
        if provider not in _CLEAR:
            _check_provider(provider)
        wanted["price_provider"] = None if provider in _CLEAR else provider
    if provider_symbol is not None:
        symbol = provider_symbol.strip()
        wanted["provider_symbol"] = None if symbol.lower() in _CLEAR else symbol
    if is_primary is not None:
        wanted["is_primary"] = is_primary
    if source_priority is not None:
        names = [n.strip().lower() for n in source_priority.split(",") if n.strip()]
        if len(set(names)) != len(names):
            raise ValidationError(f"--source-priority {source_priority!r} names a source twice")
        cleared = not names or (len(names) == 1 and names[0] in _CLEAR)
        if not cleared:
            _check_sources(session, names)
        wanted["source_priority"] = None if cleared else names
    changes: dict[str, Any] = {
        name: {"from": getattr(listing, name), "to": value}
        for name, value in wanted.items()
        if getattr(listing, name) != value
    }
    if not changes:
        return listing, {}
    # Making a listing primary makes the instrument's other primary listings not primary.
    unmarked = (
        [o for o in instrument_listings(session, listing.instrument_id) if o.is_primary and o is not listing]
        if changes.get("is_primary", {}).get("to")
        else []
    )
    affected = [o.listing_id for o in (listing, *unmarked) if o.listing_id is not None]
    touched = access.portfolios_using(session, affected)
    access.require_every(
        session, actor, touched, f"change the listing {listing.ticker} on {listing.exchange}"
    )
    for other in unmarked:
        other.is_primary = False
        session.add(other)
        changes.setdefault("no_longer_primary", []).append(f"{other.ticker}:{other.exchange}")
    for name, value in wanted.items():
        setattr(listing, name, value)
    session.add(listing)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="LISTING_AMENDED",
        entity_type="instrument_listing",
        entity_id=listing.listing_id,
        details={"listing": f"{listing.ticker}:{listing.exchange}", "changes": changes},
    )
    return listing, changes


def _check_sources(session: Session, names: list[str]) -> None:
    """Refuse a source no price came from and no provider or file format is called."""
    from ..providers.prices import price_provider_names  # httpx: only when naming sources

    stored = {n.lower() for n in session.exec(select(MarketDataSource.name)).all()}
    known = stored | {p.lower() for p in price_provider_names()} | {"csv", "json", "broker"}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValidationError(
            f"--source-priority: unknown source(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )


def instrument_listings(session: Session, instrument_id: int) -> list[InstrumentListing]:
    """An instrument's listings, the primary one first."""
    return list(
        session.exec(
            select(InstrumentListing)
            .where(InstrumentListing.instrument_id == instrument_id)
            .order_by(col(InstrumentListing.is_primary).desc(), col(InstrumentListing.listing_id))
        ).all()
    )


def find_listing(session: Session, ticker: str, exchange: str) -> InstrumentListing | None:
    return session.exec(
        select(InstrumentListing).where(
            InstrumentListing.ticker == ticker.strip().upper(),
            InstrumentListing.exchange == exchange.strip().upper(),
        )
    ).first()


def get_listing(session: Session, ticker: str, exchange: str) -> InstrumentListing:
    listing = find_listing(session, ticker, exchange)
    if listing is None:
        raise NotFound(
            f"unknown listing {ticker.upper()} on {exchange.upper()}: add it with `tradeassist listing add`"
        )
    return listing


def listings_by_isin(session: Session, isin: str) -> list[InstrumentListing]:
    instrument = find_instrument(session, isin)
    if instrument is None or instrument.instrument_id is None:
        return []
    return instrument_listings(session, instrument.instrument_id)


def listing_row(session: Session, listing: InstrumentListing) -> dict[str, Any]:
    instrument = session.get(Instrument, listing.instrument_id)
    return {
        "listing_id": listing.listing_id,
        "ticker": listing.ticker,
        "exchange": listing.exchange,
        "isin": instrument.isin if instrument else None,
        "name": instrument.name if instrument else None,
        "instrument_type": instrument.instrument_type.value if instrument else None,
        "trading_currency": listing.trading_currency,
        "quote_scale": listing.quote_scale,
        "provider_symbol": listing.provider_symbol,
        "price_provider": listing.price_provider,
        "is_primary": listing.is_primary,
        "source_priority": listing.source_priority,
    }


def list_listings(session: Session) -> list[dict[str, Any]]:
    listings = session.exec(
        select(InstrumentListing).order_by(InstrumentListing.ticker, InstrumentListing.exchange)
    ).all()
    return [listing_row(session, listing) for listing in listings]
