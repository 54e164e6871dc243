"""Reading prices: who holds a listing, the latest good close, and a listing's stored points.

**Latest good close** (``latest_good_prices``): one statement; per listing, the unique key's
index (listing, as_of, ...) is read backwards from the date to the first close whose current
verdict (``price_point_rechecks`` over the ingest-time one) is usable and that no later
import superseded. Several sources on the same day: the listing's source priority chooses
(``price_sources``). Staleness is judged at read time against the policy's
``max_price_age_business_days``: trading days of the listing's exchange (for XLON, weekdays
that are not London Stock Exchange holidays: ``engine.market_calendar``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, and_, bindparam, func, select, true
from sqlmodel import Session, SQLModel, col

from ..core.timeutil import business_days_between, end_of_london_day, ensure_utc, utcnow
from ..db.models import HoldingSnapshot, InstrumentListing, User
from ..db.models.strategy import PortfolioConstituent
from ..engine.market_calendar import holidays_between
from ..engine.price_quality import staleness
from ..policy import Policy
from . import price_sources
from .access import portfolio_for
from .market import close_day, day_start, source_names
from .price_checks import POINTS, RECHECKS, SUPERSEDED, stored_points_query, verdicts
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

    Per listing a correlated subquery walks the unique key's index (listing, as_of, ...)
    backwards from ``moment`` to the first close whose current verdict is usable (a re-check
    row, when there is one, overrides the ingest-time ``usable``) and that no later import
    superseded; the outer query reads every such close of that listing at that moment (one per source, for
    ``price_sources.choose`` to pick from).
    """
    p2, r2, s2 = POINTS.alias("p2"), RECHECKS.alias("r2"), SUPERSEDED.alias("s2")
    listings = SQLModel.metadata.tables["instrument_listings"]
    sources = SQLModel.metadata.tables["market_data_sources"]
    best = (
        select(p2.c.as_of)
        .select_from(
            p2.outerjoin(r2, r2.c.price_point_id == p2.c.price_point_id).outerjoin(
                s2, s2.c.price_point_id == p2.c.price_point_id
            )
        )
        .where(
            p2.c.listing_id == listings.c.listing_id,
            p2.c.is_close == true(),
            p2.c.as_of <= bindparam("moment", type_=POINTS.c.as_of.type),
            func.coalesce(r2.c.usable, p2.c.usable) == true(),
            s2.c.price_point_id.is_(None),
        )
        .order_by(p2.c.as_of.desc())
        .limit(1)
        .correlate(listings)
        .scalar_subquery()
    )
    return (
        select(
            POINTS.c.listing_id,
            POINTS.c.price_point_id,
            POINTS.c.as_of,
            sources.c.name,
            func.coalesce(RECHECKS.c.normalized_price_base, POINTS.c.normalized_price_base),
            listings.c.price_provider,
            listings.c.source_priority,
            listings.c.exchange,
        )
        .select_from(
            listings.join(
                POINTS,
                and_(
                    POINTS.c.listing_id == listings.c.listing_id,
                    POINTS.c.is_close == true(),
                    POINTS.c.as_of == best,
                ),
            )
            .join(sources, sources.c.source_id == POINTS.c.source_id)
            .outerjoin(RECHECKS, RECHECKS.c.price_point_id == POINTS.c.price_point_id)
            .outerjoin(SUPERSEDED, SUPERSEDED.c.price_point_id == POINTS.c.price_point_id)
        )
        .where(
            listings.c.listing_id.in_(bindparam("ids", expanding=True)),
            func.coalesce(RECHECKS.c.usable, POINTS.c.usable) == true(),
            SUPERSEDED.c.price_point_id.is_(None),
        )
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

    Several sources on that day: the listing's source priority chooses (``price_sources``).
    Staleness is ``price_quality.staleness`` over the exchange's trading days (XLON holidays
    do not count; ``engine.market_calendar``).
    """
    ids = sorted(set(listing_ids))
    if not ids:
        return {}
    moment = _as_of_time(as_of)
    rows = session.execute(_LATEST, {"moment": moment, "ids": ids}).all()
    today = close_day(moment)
    by_listing: dict[int, list[Any]] = {}
    for row in rows:
        by_listing.setdefault(row[0], []).append(row)
    ages: dict[tuple[date, str], tuple[int, bool]] = {}
    result = {}
    for listing_id, found in by_listing.items():
        chosen = price_sources.choose(
            (price_sources.Candidate(r[1], r[3], r[4]) for r in found),
            provider=found[0][5],
            priority=found[0][6],
        )
        assert chosen is not None
        when = next(r[2] for r in found if r[1] == chosen.price_point_id)
        day, exchange = close_day(when), found[0][7]
        if (day, exchange) not in ages:
            closed = holidays_between(day, today, exchange)
            ages[day, exchange] = (
                business_days_between(day, today) - len(closed),
                staleness(day, today, max_age_business_days, holidays=closed),
            )
        result[listing_id] = LatestPrice(
            listing_id=listing_id,
            price_gbp=chosen.price_gbp,
            as_of=day,
            as_of_time=when,
            source=chosen.source,
            age_days=(today - day).days,
            age_business_days=ages[day, exchange][0],
            is_stale=ages[day, exchange][1],
            max_age_business_days=max_age_business_days,
            price_point_id=chosen.price_point_id,
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


def day_candidates(
    session: Session, listing_id: int, first: date, last: date
) -> dict[date, list[price_sources.Candidate]]:
    """The listing's usable, current closes from ``first`` to ``last`` by day, when more than
    one source has closes then (empty otherwise: each source is probed once, cheaply, first)."""
    low, high = day_start(first), end_of_london_day(last)
    in_range = (
        POINTS.c.listing_id == listing_id,
        POINTS.c.is_close == true(),
        POINTS.c.as_of >= low,
        POINTS.c.as_of <= high,
    )
    names = source_names(session)
    present = [
        sid
        for sid in names
        if session.execute(
            select(POINTS.c.price_point_id).where(*in_range, POINTS.c.source_id == sid).limit(1)
        ).first()
    ]
    if len(present) < 2:
        return {}
    rows = session.execute(
        stored_points_query(listing_id).add_columns(POINTS.c.source_id).where(*in_range)
    ).all()
    by_day: dict[date, list[price_sources.Candidate]] = {}
    for row in rows:
        _, current = verdicts(row)
        if current[2] and current[1] is not None:
            by_day.setdefault(close_day(row.as_of), []).append(
                price_sources.Candidate(row.price_point_id, names[row.source_id], current[1])
            )
    return by_day


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
    include_superseded: bool = False,
) -> list[dict[str, Any]]:
    """Every stored point of a listing, oldest first, with its current verdict.

    ``quality_flags`` and ``normalized_price_base`` are the current ones (a re-check may have
    changed them); ``ingest_quality_flags`` are the flags set when the point arrived.
    ``values_portfolio``: this close is the one that values the portfolio on its day (usable,
    current, first by the listing's source priority). ``superseded_by``: the point that
    replaced this one (only with ``include_superseded``; otherwise superseded points are left out).
    """
    listing = get_listing(session, ticker, exchange)
    query = stored_points_query(listing.listing_id, current_only=not include_superseded).add_columns(
        POINTS.c.is_close, POINTS.c.source_id, POINTS.c.revision
    )
    if start is not None:
        query = query.where(POINTS.c.as_of >= day_start(start))
    if end is not None:
        query = query.where(POINTS.c.as_of <= end_of_london_day(end))
    names = source_names(session)
    rows = []
    candidates: dict[date, list[price_sources.Candidate]] = {}
    for row in session.execute(query.order_by(POINTS.c.as_of, POINTS.c.source_id, POINTS.c.is_close)):
        _, current = verdicts(row)
        source = names.get(row.source_id, "")
        day = close_day(row.as_of)
        if row.is_close and current[2] and current[1] is not None and row.superseded_by is None:
            candidates.setdefault(day, []).append(
                price_sources.Candidate(row.price_point_id, source, current[1])
            )
        rows.append(
            {
                "as_of": day if row.is_close else row.as_of,
                "source": source,
                "is_close": bool(row.is_close),
                "raw_price": row.raw_price,
                "raw_currency": row.raw_currency,
                "raw_quote_scale": row.raw_quote_scale,
                "normalized_price_base": current[1],
                "quality_flags": current[0],
                "usable": current[2],
                "ingest_quality_flags": sorted(row.quality_flags),
                "values_portfolio": False,
                "revision": row.revision,
                "superseded_by": row.superseded_by,
                "price_point_id": row.price_point_id,
            }
        )
    chosen = {
        picked.price_point_id
        for found in candidates.values()
        if (
            picked := price_sources.choose(
                found, provider=listing.price_provider, priority=listing.source_priority
            )
        )
        is not None
    }
    for item in rows:
        item["values_portfolio"] = item["price_point_id"] in chosen
    return rows
