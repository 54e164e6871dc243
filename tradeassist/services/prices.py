"""Prices: ingest with normalisation and quality checks, and the latest good prices.

**Ingest** (``import_price_file``, ``ingest_series``; ``price_refresh`` downloads): parse
(provider) → normalise (``engine.normalize``, with the GBP→X series from ``fx_rates`` for
non-GBP listings) → check (``engine.price_quality.check_points``, from the listing's accepted
level, with its recorded splits and acceptances: see ``price_checks``) → in the caller's
transaction: the new points in one bulk insert, alerts and freezes for suspect points, one
``PRICES_IMPORTED`` audit row with the counts.

* Points already stored under the same key (listing, as_of, source, is_close) are not inserted
  again: identical ones are counted as unchanged; one whose raw value differs is reported as a
  conflict (in the result and the audit row) and the stored one is kept.
* A flagged point is stored (nothing is lost) with ``usable`` False and never feeds the latest
  good price. Suspect points (``scale_suspect``, ``currency_mismatch``) raise one CRITICAL
  alert per portfolio holding or mapping the listing (one open alert per portfolio, listing and
  code) and freeze those portfolios; a listing nobody holds gets one alert with no portfolio.
  ``missing_fx`` and ``non_positive`` raise WARN alerts and freeze nothing.

**Latest good close** (``latest_good_prices``): one statement; per listing, the index
``ix_price_points_latest`` is read backwards from the date to the first close whose current
verdict (``price_point_rechecks`` over the ingest-time one) is usable. Several sources on the
same day: the latest stored wins. Staleness is judged at read time against the policy's
``max_price_age_business_days`` (weekdays; no holiday calendar yet).
"""

from __future__ import annotations

import gc
import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import bindparam, func, select, true
from sqlmodel import Session

from ..core import jsonutil
from ..core.enums import QualityFlag, Severity
from ..core.errors import ValidationError
from ..core.timeutil import end_of_london_day, ensure_utc, utcnow
from ..db.models import (
    HoldingSnapshot,
    InstrumentListing,
    MarketDataSource,
    User,
)
from ..db.models.strategy import PortfolioConstituent
from ..engine.normalize import (
    BASE_CURRENCY,
    RawPrice,
    normalize_prices,
)
from ..engine.normalize import PricePoint as CheckedPoint
from ..engine.price_quality import (
    PriceIssue,
    check_points,
    staleness,
)
from ..policy import Policy
from ..providers.prices import PriceSeries, parse_price_file
from . import audit, governance
from .access import portfolio_for
from .fx import fx_series
from .market import (
    bulk_insert_chunks,
    close_day,
    close_texts,
    close_time,
    day_start,
    decimal_texts,
    source_id,
    source_names,
)
from .price_checks import (
    POINTS,
    RECHECKS,
    engine_listing,
    listing_acceptances,
    listing_splits,
    prior_level,
    stored_points_query,
    verdicts,
)
from .registry import get_listing

PRICE_FORMATS = ("stooq", "twelvedata", "yahoo", "csv", "json")
DEFAULT_MAX_AGE_BUSINESS_DAYS: int = Policy.model_fields["max_price_age_business_days"].default

# Issues that raise a CRITICAL alert and freeze the holding portfolios; the others only warn.
_FREEZING = frozenset({QualityFlag.SCALE_SUSPECT, QualityFlag.CURRENCY_MISMATCH})
_REPORTED_CONFLICTS = 50
POINT_COLUMNS = (
    "listing_id",
    "as_of",
    "source_id",
    "is_close",
    "raw_price",
    "raw_currency",
    "raw_quote_scale",
    "normalized_price_base",
    "quality_flags",
    "usable",
)


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PriceConflict:
    """A stored point and a new one with the same key and a different raw value."""

    as_of: date | datetime
    is_close: bool
    stored: tuple[Decimal, str, str]  # raw_price, raw_currency, raw_quote_scale
    new: tuple[Decimal, str, str]

    def row(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of,
            "is_close": self.is_close,
            "stored_raw_price": self.stored[0],
            "stored_unit": self.stored[2],
            "new_raw_price": self.new[0],
            "new_unit": self.new[2],
        }


@dataclass(frozen=True)
class IngestResult:
    listing: str
    listing_id: int
    source: str
    file: str
    received: int
    inserted: int
    unchanged: int
    conflicts: tuple[PriceConflict, ...] = ()
    flagged: Mapping[str, int] = field(default_factory=dict)
    issues: tuple[PriceIssue, ...] = ()
    alert_ids: tuple[int, ...] = ()
    frozen_portfolio_ids: tuple[int, ...] = ()

    def summary(self) -> dict[str, Any]:
        return {
            "listing": self.listing,
            "source": self.source,
            "file": self.file,
            "received": self.received,
            "inserted": self.inserted,
            "unchanged": self.unchanged,
            "conflicts": len(self.conflicts),
            "flagged": dict(self.flagged),
            "alerts_raised": len(self.alert_ids),
            "portfolios_frozen": len(self.frozen_portfolio_ids),
        }


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
def holders(session: Session, listing_id: int) -> list[int]:
    """Portfolios holding units of the listing or mapping it as a constituent."""
    held = session.execute(
        select(HoldingSnapshot.portfolio_id, HoldingSnapshot.units).where(  # type: ignore[call-overload]
            HoldingSnapshot.listing_id == listing_id
        )
    ).all()
    mapped = session.execute(
        select(PortfolioConstituent.portfolio_id).where(  # type: ignore[call-overload]
            PortfolioConstituent.listing_id == listing_id
        )
    ).scalars()
    return sorted({pid for pid, units in held if units != 0} | set(mapped))


def portfolio_listings(session: Session, portfolio_id: int) -> list[tuple[InstrumentListing, bool, bool]]:
    """(listing, held, constituent) for every listing the portfolio holds or maps."""
    held = {
        lid
        for lid, units in session.execute(
            select(HoldingSnapshot.listing_id, HoldingSnapshot.units).where(  # type: ignore[call-overload]
                HoldingSnapshot.portfolio_id == portfolio_id
            )
        )
        if units != 0
    }
    mapped = set(
        session.execute(
            select(PortfolioConstituent.listing_id).where(  # type: ignore[call-overload]
                PortfolioConstituent.portfolio_id == portfolio_id
            )
        ).scalars()
    )
    ids = held | mapped
    if not ids:
        return []
    listings = session.scalars(
        select(InstrumentListing)
        .where(InstrumentListing.listing_id.in_(ids))  # type: ignore[union-attr]
        .order_by(InstrumentListing.ticker, InstrumentListing.exchange)  # type: ignore[arg-type]
    ).all()
    return [(lst, lst.listing_id in held, lst.listing_id in mapped) for lst in listings]


# --------------------------------------------------------------------------------------------
# Ingest
# --------------------------------------------------------------------------------------------
def import_price_file(
    session: Session, *, actor: User | None, path: str | Path, ticker: str, exchange: str, fmt: str
) -> IngestResult:
    """Import a price file for one listing. A malformed file changes nothing."""
    if fmt not in PRICE_FORMATS:
        raise ValidationError(f"price format {fmt!r}: expected one of {', '.join(PRICE_FORMATS)}")
    series = parse_price_file(fmt, path)
    listing = get_listing(session, ticker, exchange)
    _check_symbol(series, listing)
    return ingest_series(session, actor=actor, listing=listing, series=series)


def _check_symbol(series: PriceSeries, listing: InstrumentListing) -> None:
    """Refuse a file that declares another instrument's symbol (e.g. AZN.L into VWRL)."""
    symbol = (series.symbol or "").strip().upper()
    if not symbol:
        return
    known = {listing.ticker.upper()}
    if listing.provider_symbol:
        known.add(listing.provider_symbol.strip().upper())
    if symbol in known or symbol.split(".")[0] in known:
        return
    raise ValidationError(
        f"{series.source_name}: the file is for symbol {series.symbol}, not for {listing.ticker} on "
        f"{listing.exchange} (provider symbol {listing.provider_symbol or 'not set'})"
    )


def _day_of(as_of: date | datetime) -> date:
    """A bar's date: its own for daily bars, the London date of an intraday timestamp."""
    return close_day(ensure_utc(as_of)) if isinstance(as_of, datetime) else as_of


@contextmanager
def _bulk_objects() -> Iterator[None]:
    """No cyclic garbage collection while a bulk import makes millions of small acyclic objects.

    Each collection walks every live object, and a million-point series triggers hundreds of
    them: with the collector paused, normalising runs about three times faster. It is turned
    back on (if it was on) however the block ends.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def ingest_series(
    session: Session,
    *,
    actor: User | None,
    listing: InstrumentListing,
    series: PriceSeries,
    source: str | None = None,
) -> IngestResult:
    """Normalise, check and store a provider's series for ``listing`` (see the module docstring).

    The per-point work is done column by column (comprehensions, ``map``), with the garbage
    collector paused: it runs a million times on a bulk import.
    """
    with _bulk_objects():
        return _ingest(session, actor=actor, listing=listing, series=series, source=source)


def _ingest(
    session: Session,
    *,
    actor: User | None,
    listing: InstrumentListing,
    series: PriceSeries,
    source: str | None,
) -> IngestResult:
    elisting = engine_listing(listing)
    source_name = source or series.source
    src = source_id(session, source_name)
    assert src is not None and listing.listing_id is not None
    bars = series.bars
    stamps_in = [b.as_of for b in bars]
    all_daily = all(type(a) is date for a in stamps_in)
    days: list[date] = stamps_in if all_daily else [_day_of(a) for a in stamps_in]  # type: ignore[assignment]
    order = list(range(len(bars)))
    if any(a > b for a, b in itertools.pairwise(days)):
        order.sort(key=days.__getitem__)
        bars = tuple(bars[i] for i in order)
        stamps_in = [stamps_in[i] for i in order]
        days = [days[i] for i in order]
    fallback = series.quote_scale or series.currency
    units = {b.quote_scale or b.currency for b in bars}
    declared: Iterable[str | None] = (
        repeat(fallback) if units <= {None} else [(b.quote_scale or b.currency or fallback) for b in bars]
    )
    raws = list(map(RawPrice, days, [b.close for b in bars], declared))
    fx = None
    if elisting.trading_currency != BASE_CURRENCY and raws:
        fx = fx_series(session, elisting.trading_currency, days[0], days[-1])
    normalized = normalize_prices(elisting, raws, fx=fx)

    fresh, unchanged, conflicts = _partition(session, listing.listing_id, src, bars, days, normalized)
    if len(fresh) < len(bars):
        normalized = tuple(normalized[k] for k in fresh)
        bars = tuple(bars[k] for k in fresh)
        stamps_in = [stamps_in[k] for k in fresh]
    prior = prior_level(session, elisting, normalized[0].as_of) if normalized else None
    checked, _, issues = check_points(
        normalized,
        listing=elisting,
        prior_level=prior,
        splits=listing_splits(session, listing.instrument_id),
        acceptances=listing_acceptances(session, elisting),
    )
    flagged: dict[str, int] = {}
    flag_texts = ["[]"] * len(checked)
    usable = [True] * len(checked)
    for k, point in enumerate(checked):
        if point.flags or point.normalized_price_base is None:
            names = sorted(f.value for f in point.flags)
            for name in names:
                flagged[name] = flagged.get(name, 0) + 1
            flag_texts[k] = jsonutil.dumps(names)
            usable[k] = point.usable_price is not None
    lid = listing.listing_id
    inserted = bulk_insert_chunks(
        session,
        "price_points",
        POINT_COLUMNS,
        _row_chunks(lid, src, stamps_in, bars, checked, flag_texts, usable),
        timestamp_columns=("as_of",),
    )
    raised = _raise_for_issues(session, actor, listing, source_name, series.source_name, issues)
    result = IngestResult(
        listing=elisting.key,
        listing_id=lid,
        source=source_name,
        file=series.source_name,
        received=len(bars),
        inserted=inserted,
        unchanged=unchanged,
        conflicts=tuple(conflicts),
        flagged=flagged,
        issues=issues,
        alert_ids=raised[0],
        frozen_portfolio_ids=raised[1],
    )
    audit.record(
        session,
        actor=actor,
        action="PRICES_IMPORTED",
        entity_type="instrument_listing",
        entity_id=lid,
        details={
            **result.summary(),
            "first_date": days[0] if days else None,
            "last_date": days[-1] if days else None,
            "conflict_examples": [c.row() for c in conflicts[:_REPORTED_CONFLICTS]],
        },
    )
    return result


def _row_chunks(
    lid: int,
    src: int,
    stamps: Sequence[date | datetime],
    bars: Sequence[Any],
    checked: Sequence[CheckedPoint],
    flag_texts: Sequence[str],
    usable: Sequence[bool],
    size: int = 50_000,
) -> Iterator[list[tuple[Any, ...]]]:
    """The rows to store, ``size`` at a time, built column by column."""
    for lo in range(0, len(checked), size):
        points = checked[lo : lo + size]
        yield list(
            zip(
                repeat(lid),
                close_texts(stamps[lo : lo + size]),
                repeat(src),
                [b.is_close for b in bars[lo : lo + size]],
                decimal_texts([p.raw_price for p in points]),
                [p.raw_currency for p in points],
                [p.raw_quote_scale for p in points],
                decimal_texts([p.normalized_price_base for p in points]),
                flag_texts[lo : lo + size],
                usable[lo : lo + size],
                strict=False,
            )
        )


def _partition(
    session: Session,
    listing_id: int,
    src: int,
    bars: Sequence[Any],
    days: Sequence[date],
    normalized: Sequence[CheckedPoint],
) -> tuple[list[int], int, list[PriceConflict]]:
    """Positions of the points not stored yet; how many are stored identically; and the stored
    points the new ones contradict (bars in date order)."""
    if not bars:
        return [], 0, []
    stored_rows = session.execute(
        select(
            POINTS.c.as_of,
            POINTS.c.is_close,
            POINTS.c.raw_price,
            POINTS.c.raw_currency,
            POINTS.c.raw_quote_scale,
        ).where(
            POINTS.c.listing_id == listing_id,
            POINTS.c.source_id == src,
            POINTS.c.as_of >= day_start(days[0]),
            POINTS.c.as_of <= end_of_london_day(days[-1]),
        )
    ).all()
    if not stored_rows:
        return list(range(len(bars))), 0, []
    stored = {(row[0], bool(row[1])): (row[2], row[3], row[4]) for row in stored_rows}
    fresh: list[int] = []
    unchanged = 0
    conflicts: list[PriceConflict] = []
    for k, (bar, point) in enumerate(zip(bars, normalized, strict=True)):
        when = close_time(bar.as_of) if type(bar.as_of) is date else ensure_utc(bar.as_of)
        existing = stored.get((when, bar.is_close))
        if existing is None:
            fresh.append(k)
            continue
        new = (point.raw_price, point.raw_currency, point.raw_quote_scale)
        if existing == new:
            unchanged += 1
        else:
            conflicts.append(PriceConflict(bar.as_of, bar.is_close, existing, new))
    return fresh, unchanged, conflicts


def _raise_for_issues(
    session: Session,
    actor: User | None,
    listing: InstrumentListing,
    source_name: str,
    file: str,
    issues: Sequence[PriceIssue],
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Alerts (and freezes, for suspect prices) on every portfolio holding or mapping the listing."""
    if not issues:
        return (), ()
    portfolio_ids = holders(session, listing.listing_id)  # type: ignore[arg-type]
    created: list[int] = []
    frozen: list[int] = []
    for issue in issues:
        freezing = issue.flag in _FREEZING
        context = {
            "listing": issue.listing_key,
            "listing_id": listing.listing_id,
            "ticker": listing.ticker,
            "exchange": listing.exchange,
            "flag": issue.flag.value,
            "source": source_name,
            "file": file,
            "first_date": issue.first_date,
            "last_date": issue.last_date,
            "count": issue.count,
            "ratio_min": issue.ratio_min,
            "ratio_max": issue.ratio_max,
        }
        raised = governance.raise_and_freeze(
            session,
            actor=actor,
            portfolio_ids=portfolio_ids,
            code=issue.code,
            severity=Severity.CRITICAL if freezing else Severity.WARN,
            message=issue.message,
            context=context,
            freeze=freezing,
        )
        created += raised.created
        frozen += raised.frozen
    return tuple(created), tuple(sorted(set(frozen)))


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------
def _as_of_time(as_of: date | datetime | None) -> datetime:
    if as_of is None:
        return utcnow()
    if isinstance(as_of, datetime):
        return ensure_utc(as_of)
    return end_of_london_day(as_of)


def business_days_between(earlier: date, later: date) -> int:
    """Weekdays after ``earlier`` up to and including ``later`` (0 when not later)."""
    if later <= earlier:
        return 0
    return int(
        np.busday_count(
            np.datetime64(earlier + timedelta(days=1), "D"), np.datetime64(later + timedelta(days=1), "D")
        )
    )


def _latest_query():  # type: ignore[no-untyped-def]
    """The latest-good statement, built once; ``moment`` and ``ids`` are bound per call.

    Per listing a correlated subquery walks ``ix_price_points_latest`` backwards from
    ``moment`` to the first close whose current verdict is usable (a re-check row, when there
    is one, overrides the ingest-time ``usable``); the outer query reads those points.
    """
    p2, r2 = POINTS.alias("p2"), RECHECKS.alias("r2")
    listings = InstrumentListing.__table__  # type: ignore[attr-defined]
    sources = MarketDataSource.__table__  # type: ignore[attr-defined]
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
    entries = portfolio_listings(session, chosen.portfolio_id)  # type: ignore[arg-type]
    latest = latest_good_prices(
        session,
        [lst.listing_id for lst, _, _ in entries],
        as_of,
        max_age_business_days=max_age_business_days,  # type: ignore[misc]
    )
    rows = []
    for listing, held, constituent in entries:
        price = latest.get(listing.listing_id)  # type: ignore[arg-type]
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
    query = stored_points_query(listing.listing_id).add_columns(POINTS.c.is_close, POINTS.c.source_id)  # type: ignore[arg-type]
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
