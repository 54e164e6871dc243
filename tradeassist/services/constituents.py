"""Portfolio constituents: the listings of a portfolio mapped to the strategy's sleeves.

Constituents are a snapshot (a row per portfolio and listing, updated in place); each change is
audited (``CONSTITUENT_ADDED``, ``CONSTITUENT_MOVED``). Sleeves come from a strategy's policy
(``strategy.add_strategy`` creates those it names for the first time).
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from ..core.errors import AlreadyExists, NotFound, ValidationError
from ..db.models import InstrumentListing, Portfolio, PortfolioConstituent, Sleeve, User
from . import audit
from .access import portfolio_for
from .registry import get_listing


def add_constituent(
    session: Session,
    *,
    actor: User,
    portfolio: str,
    ticker: str,
    exchange: str,
    sleeve: str,
    include_in_calcs: bool = True,
    is_monitored: bool = True,
) -> PortfolioConstituent:
    p = portfolio_for(session, actor, portfolio, "map constituents")
    listing = get_listing(session, ticker, exchange)
    code = _known_sleeve(session, sleeve)
    assert p.portfolio_id is not None and listing.listing_id is not None  # read from the database
    if session.get(PortfolioConstituent, (p.portfolio_id, listing.listing_id)) is not None:
        raise AlreadyExists(f"{listing.ticker} on {listing.exchange} is a constituent of {p.name!r} already")
    row = PortfolioConstituent(
        portfolio_id=p.portfolio_id,
        listing_id=listing.listing_id,
        sleeve_code=code,
        include_in_calcs=include_in_calcs,
        is_monitored=is_monitored,
    )
    session.add(row)
    audit.record(
        session,
        actor=actor,
        action="CONSTITUENT_ADDED",
        entity_type="portfolio",
        entity_id=p.portfolio_id,
        details={
            "ticker": listing.ticker,
            "exchange": listing.exchange,
            "sleeve": code,
            "include_in_calcs": include_in_calcs,
            "is_monitored": is_monitored,
        },
    )
    session.flush()
    return row


def _known_sleeve(session: Session, sleeve: str) -> str:
    code = sleeve.strip().upper()
    if session.get(Sleeve, code) is None:
        known = ", ".join(s.sleeve_code for s in session.exec(select(Sleeve)).all()) or "none yet"
        raise NotFound(f"unknown sleeve {code!r} (known: {known}); sleeves come from a strategy's policy")
    return code


def move_constituent(
    session: Session, *, actor: User, portfolio: str, ticker: str, exchange: str, sleeve: str
) -> PortfolioConstituent:
    """Map a constituent to another sleeve (constituents are a snapshot: the row is updated);
    audited as ``CONSTITUENT_MOVED`` with the sleeve it left and the one it joined."""
    p = portfolio_for(session, actor, portfolio, "map constituents")
    listing = get_listing(session, ticker, exchange)
    row = session.get(PortfolioConstituent, (p.portfolio_id, listing.listing_id))
    if row is None:
        raise NotFound(
            f"{listing.ticker} on {listing.exchange} is not a constituent of {p.name!r}: "
            "add it with `tradeassist constituent add`"
        )
    code = _known_sleeve(session, sleeve)
    previous = row.sleeve_code
    if previous == code:
        raise ValidationError(
            f"{listing.ticker} on {listing.exchange} is in sleeve {code} of {p.name!r} already"
        )
    row.sleeve_code = code
    session.add(row)
    audit.record(
        session,
        actor=actor,
        action="CONSTITUENT_MOVED",
        entity_type="portfolio",
        entity_id=p.portfolio_id,
        details={"ticker": listing.ticker, "exchange": listing.exchange, "from": previous, "to": code},
    )
    session.flush()
    return row


def constituent_rows(session: Session, portfolio: Portfolio) -> list[dict[str, Any]]:
    rows = session.exec(
        select(PortfolioConstituent, InstrumentListing)
        .join(InstrumentListing, col(InstrumentListing.listing_id) == col(PortfolioConstituent.listing_id))
        .where(PortfolioConstituent.portfolio_id == portfolio.portfolio_id)
        .order_by(col(PortfolioConstituent.sleeve_code), col(InstrumentListing.ticker))
    ).all()
    return [
        {
            "ticker": lst.ticker,
            "exchange": lst.exchange,
            "sleeve": c.sleeve_code,
            "include_in_calcs": c.include_in_calcs,
            "is_monitored": c.is_monitored,
        }
        for c, lst in rows
    ]
