"""Reading prices: who holds a listing, the latest good close, and a listing's stored points.

**Latest good close** (``latest_good_prices``): one statement; per listing, the index
``ix_price_points_latest`` is read backwards from the date to the first close whose current
verdict (``price_point_rechecks`` over the ingest-time one) is usable. Several sources on the
same day: the latest stored wins. Staleness is judged at read time against the policy's
``max_price_age_business_days`` (weekdays; no holiday calendar yet).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, bindparam, func, select, true
from sqlmodel import Session, SQLModel, col

from ..core.timeutil import business_days_between, end_of_london_day, ensure_utc, utcnow
from ..db.models import HoldingSnapshot, InstrumentListing, User
from ..db.models.strategy import PortfolioConstituent
from ..engine.price_quality import staleness
from ..policy import Policy
from .access import portfolio_for
from .market import close_day, day_start, source_names
from .price_checks import POINTS, RECHECKS, stored_points_query, verdicts
from .registry import get_listing

DEFAULT_MAX_AGE_BUSINESS_DAYS: int = Policy.model_fields["max_price_age_business_days"].default


@dataclass(frozen=True)
class LatestPrice:
    """The latest usable close of a listing as of a moment, and how old it is then."""

    listing_id: int
    price_gbp: Decimal
    as_of: date
    as_of_time: datetime
    source: str
    age_days: int
    age_business_days: int
    is_stale: bool
    max_age_business_days: int
    price_point_id: int


# --------------------------------------------------------------------------------------------
# Who holds a listing
# --------------------------------------------------------------------------------------------
def holders(session: Session, listing_id: int | None) -> list[int]:
    """Portfolios holding units of the listing or mapping it as a constituent."""
    held = session.execute(
        select(col(HoldingSnapshot.portfolio_id), col(HoldingSnapshot.units)).where(
            col(HoldingSnapshot.listing_id) == listing_id
        )
    ).all()
    mapped = session.execute(
        select(col(PortfolioConstituent.portfolio_id)).where(
            col(PortfolioConstituent.listing_id) == listing_id
        )
    ).scalars()
    return sorted({pid for pid, units in held if units != 0} | set(mapped))


def portfolio_listings(
    session: Session, portfolio_id: int | None
) -> list[tuple[InstrumentListing, bool, bool]]:
    """(listing, held, constituent) for every listing the portfolio holds or maps."""
    held = {
        lid
        for lid, units in session.execute(
            select(col(HoldingSnapshot.listing_id), col(HoldingSnapshot.units)).where(
                col(HoldingSnapshot.portfolio_id) == portfolio_id
            )
        )
        if units != 0
    }
    mapped = set(
        session.execute(
            select(col(PortfolioConstituent.listing_id)).where(
                col(PortfolioConstituent.portfolio_id) == portfolio_id
            )
        ).scalars()
    )
    ids = held | mapped
    if not ids:
        return []
    listings = session.scalars(
        select(InstrumentListing)
        .where(col(InstrumentListing.listing_id).in_(ids))
        .order_by(col(InstrumentListing.ticker), col(InstrumentListing.exchange))
    ).all()
    return [(lst, lst.listing_id in held, lst.listing_id in mapped) for lst in listings]


# --------------------------------------------------------------------------------------------
# The latest good close
# --------------------------------------------------------------------------------------------
def _as_of_time(as_of: date | datetime | None) -> datetime:
    if as_of is None:
        return utcnow()
    if isinstance(as_of, datetime):
        return ensure_utc(as_of)
    return end_of_london_day(as_of)


def _latest_query() -> Select[Any]:
    """The latest-good statement, built once; ``moment`` and ``ids`` are bound per call.

    Per listing a correlated subquery walks ``ix_price_points_latest`` backwards from
    ``moment`` to the first close whose current verdict is usable (a re-check row, when there
    is one, overrides the ingest-time ``usable``); the outer query reads those points.
    """
    p2, r2 = POINTS.alias("p2"), RECHECKS.alias("r2")
    listings = SQLModel.metadata.tables["instrument_listings"]
    sources = SQLModel.metadata.tables["market_data_sources"]
    best = (
        select(p2.c.price_point_id)
        .select_from(p2.outerjoin(r2, r2.c.price_point_id == p2.c.price_point_id))
        .where(
            p2.c.listing_id == listings.c.listing_id,
            p2.c.is_close == true(),
            p2.c.as_of <= bindparam("moment", type_=POINTS.c.as_of.type),
            func.coalesce(r2.c.usable, p2.c.usable) == true(),
        )
        .order_by(p2.c.as_of.desc(), p2.c.price_point_id.desc())
        .limit(1)
        .correlate(listings)
        .scalar_subquery()
    )
    chosen = (
        select(best).select_from(listings).where(listings.c.listing_id.in_(bindparam("ids", expanding=True)))
    )
    return (
        select(
            POINTS.c.listing_id,
            POINTS.c.price_point_id,
            POINTS.c.as_of,
            sources.c.name,
            func.coalesce(RECHECKS.c.normalized_price_base, POINTS.c.normalized_price_base),
        )
        .select_from(
            POINTS.join(sources, sources.c.source_id == POINTS.c.source_id).outerjoin(
                RECHECKS, RECHECKS.c.price_point_id == POINTS.c.price_point_id
            )
        )
        .where(POINTS.c.price_point_id.in_(chosen))
    )


_LATEST = _latest_query()


def latest_good_prices(
    session: Session,
    listing_ids: Iterable[int],
    as_of: date | datetime | None = None,
    *,
    max_age_business_days: int = DEFAULT_MAX_AGE_BUSINESS_DAYS,
) -> dict[int, LatestPrice]:
    """The latest usable close of each listing as of ``as_of`` (a date: the end of that day in
    London; None: now), with its age. Listings without one are left out. One statement.

    Staleness is ``price_quality.staleness`` (weekdays, no holiday calendar yet).
    """
    ids = sorted(set(listing_ids))
    if not ids:
        return {}
    moment = _as_of_time(as_of)
    rows = session.execute(_LATEST, {"moment": moment, "ids": ids}).all()
    today = close_day(moment)
    ages: dict[date, tuple[int, bool]] = {}
    result = {}
    for listing_id, point_id, when, source, price in rows:
        day = close_day(when)
        if day not in ages:
            ages[day] = (business_days_between(day, today), staleness(day, today, max_age_business_days))
        result[listing_id] = LatestPrice(
            listing_id=listing_id,
            price_gbp=price,
            as_of=day,
            as_of_time=when,
            source=source,
            age_days=(today - day).days,
            age_business_days=ages[day][0],
            is_stale=ages[day][1],
            max_age_business_days=max_age_business_days,
            price_point_id=point_id,
        )
    return result


def portfolio_latest(
    session: Session,
    *,
    actor: User,
    portfolio: str,
    as_of: date | datetime | None = None,
    max_age_business_days: int = DEFAULT_MAX_AGE_BUSINESS_DAYS,
) -> list[dict[str, Any]]:
    """The latest good close of every listing the portfolio holds or maps, with its age."""
    chosen = portfolio_for(session, actor, portfolio, "read prices")
    entries = portfolio_listings(session, chosen.portfolio_id)
    latest = latest_good_prices(
        session,
        [lst.listing_id for lst, _, _ in entries if lst.listing_id is not None],
        as_of,
        max_age_business_days=max_age_business_days,
    )
    rows = []
    for listing, held, constituent in entries:
        price = latest.get(listing.listing_id) if listing.listing_id is not None else None
        rows.append(
            {
                "ticker": listing.ticker,
                "exchange": listing.exchange,
                "held": held,
                "constituent": constituent,
                "as_of": price.as_of if price else None,
                "price_gbp": price.price_gbp if price else None,
                "source": price.source if price else None,
                "age_days": price.age_days if price else None,
                "age_business_days": price.age_business_days if price else None,
                "is_stale": price.is_stale if price else True,
                "max_age_business_days": max_age_business_days,
            }
        )
    return rows


# --------------------------------------------------------------------------------------------
# A listing's stored points
# --------------------------------------------------------------------------------------------
def list_prices(
    session: Session,
    *,
    ticker: str,
    exchange: str,
    start: date | None = None,
    end: date | None = None,
) -> list[dict[str, Any]]:
    """Every stored point of a listing, oldest first, with its current verdict.

    ``quality_flags`` and ``normalized_price_base`` are the current ones (a re-check may have
    changed them); ``ingest_quality_flags`` are the flags set when the point arrived.
    """
    listing = get_listing(session, ticker, exchange)
    query = stored_points_query(listing.listing_id).add_columns(POINTS.c.is_close, POINTS.c.source_id)
    if start is not None:
        query = query.where(POINTS.c.as_of >= day_start(start))
    if end is not None:
        query = query.where(POINTS.c.as_of <= end_of_london_day(end))
    names = source_names(session)
    rows = []
    for row in session.execute(query.order_by(POINTS.c.as_of, POINTS.c.source_id, POINTS.c.is_close)):
        _, current = verdicts(row)
        rows.append(
            {
                "as_of": close_day(row.as_of) if row.is_close else row.as_of,
                "source": names.get(row.source_id),
                "is_close": bool(row.is_close),
                "raw_price": row.raw_price,
                "raw_currency": row.raw_currency,
                "raw_quote_scale": row.raw_quote_scale,
                "normalized_price_base": current[1],
                "quality_flags": current[0],
                "usable": current[2],
                "ingest_quality_flags": sorted(row.quality_flags),
            }
        )
    return rows
