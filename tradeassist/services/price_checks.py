"""Verdicts on stored prices: the accepted level, and re-checks after the fact.

**The accepted level** is derived from the stored points, not kept in a table of its own: it is
the local price of the listing's last stored point before a date whose current verdict has
none of ``scale_suspect``/``non_positive``/``currency_mismatch`` (the rule of
``engine.price_quality.check_points``: such points never move the level, however long they
last). Points appended after the stored ones (a refresh, a longer file) are therefore checked
exactly as one long series would be; points filling a gap before stored ones are checked from
the level before them, and the stored points after them keep their verdicts.

**Re-checks.** ``price_points`` rows never change: their ``quality_flags`` and ``usable`` are
the verdict at ingest. When the user accepts a new level from a date (``accept_level``) or
records a split (``market_workflows.record_split``), the listing's stored points from that date on are checked
again from the level before it, with every recorded split and acceptance; when FX rates
arrive after prices were stored ``missing_fx``, those prices are normalised again
(``renormalize_missing_fx``). A point whose verdict changes gets a ``price_point_rechecks``
row (flags, GBP price, usable), which every reader takes over the ingest-time values; a point
whose verdict returns to the ingest-time one loses its row.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, Table, func, select
from sqlmodel import Session, SQLModel, col

from ..core.enums import CorporateActionType, EntryType, QualityFlag
from ..core.errors import ValidationError
from ..core.timeutil import utcnow
from ..db.models import CorporateAction, InstrumentListing, LedgerEntry, PriceLevelAcceptance, User
from ..db.models.market import PricePointRecheck
from ..engine.normalize import (
    BASE_CURRENCY,
    BLOCKING_FLAGS,
    Listing,
    QuoteUnit,
    RawPrice,
    normalize_price,
    parse_quote_unit,
)
from ..engine.normalize import PricePoint as CheckedPoint
from ..engine.price_quality import Acceptance, LevelState, Split, check_points
from . import access, audit
from .fx_series import fx_series
from .market import close_day, close_time, day_start
from .registry import get_listing

POINTS: Table = SQLModel.metadata.tables["price_points"]
RECHECKS: Table = SQLModel.metadata.tables["price_point_rechecks"]
SUPERSEDED: Table = SQLModel.metadata.tables["price_supersessions"]
# Flags that keep a point from becoming the accepted level (see price_quality._LevelWalk).
NOT_LEVEL = frozenset({QualityFlag.SCALE_SUSPECT, QualityFlag.NON_POSITIVE, QualityFlag.CURRENCY_MISMATCH})

Verdict = tuple[list[str], Decimal | None, bool]  # (sorted flag names, GBP price, usable)


@dataclass(frozen=True)
class RecheckResult:
    listing: str
    from_date: date
    rechecked: int
    now_usable: int
    now_flagged: int


class _EngineListing(Listing):
    """The engine's ``Listing``, its quote unit parsed once: normalisation reads it per point."""

    __slots__ = ("_parsed_unit",)
    _parsed_unit: QuoteUnit

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        object.__setattr__(self, "_parsed_unit", parse_quote_unit(self.quote_scale))

    @property
    def unit(self) -> QuoteUnit:
        return self._parsed_unit


def engine_listing(listing: InstrumentListing) -> Listing:
    return _EngineListing(
        listing.ticker,
        listing.exchange,
        listing.trading_currency,
        listing.quote_scale,
        listing.listing_id,
    )


def listing_splits(session: Session, instrument_id: int) -> list[Split]:
    actions = session.scalars(
        select(CorporateAction).where(
            col(CorporateAction.instrument_id) == instrument_id,
            col(CorporateAction.action_type).in_([CorporateActionType.SPLIT, CorporateActionType.MERGE]),
        )
    ).all()
    return [
        Split(a.effective_date, a.ratio_num, a.ratio_den)
        for a in actions
        if a.ratio_num is not None and a.ratio_den is not None
    ]


def listing_acceptances(session: Session, listing: Listing) -> list[Acceptance]:
    dates = session.execute(
        select(col(PriceLevelAcceptance.effective_date)).where(
            col(PriceLevelAcceptance.listing_id) == listing.listing_id
        )
    ).scalars()
    return [Acceptance(listing.key, d) for d in dates]


def local_price(listing: Listing, day: date, raw_price: Decimal, raw_quote_scale: str) -> Decimal | None:
    """The stored raw price in the listing's major unit (None: another currency)."""
    return normalize_price(listing, RawPrice(day, raw_price, raw_quote_scale)).price_local


def flag_set(flags: Iterable[str]) -> frozenset[QualityFlag]:
    return frozenset(QualityFlag(f) for f in flags)


def prior_level(session: Session, listing: Listing, before: date) -> LevelState | None:
    """The accepted level from the stored points dated before ``before`` (current verdicts)."""
    query = (
        select(
            POINTS.c.as_of,
            POINTS.c.raw_price,
            POINTS.c.raw_quote_scale,
            POINTS.c.quality_flags,
            RECHECKS.c.quality_flags,
        )
        .select_from(_with_verdicts())
        .where(
            POINTS.c.listing_id == listing.listing_id,
            POINTS.c.as_of < day_start(before),
            SUPERSEDED.c.price_point_id.is_(None),
        )
        .order_by(POINTS.c.as_of.desc(), POINTS.c.price_point_id.desc())
    )
    page, offset = 200, 0
    while True:
        rows = session.execute(query.limit(page).offset(offset)).all()
        for as_of, raw_price, raw_scale, flags, rechecked_flags in rows:
            verdict = flag_set(rechecked_flags if rechecked_flags is not None else flags)
            if verdict & NOT_LEVEL:
                continue
            day = close_day(as_of)
            local = local_price(listing, day, raw_price, raw_scale)
            if local is not None and local > 0:
                return LevelState(local, day)
        if len(rows) < page:
            return None
        offset += page


STORED = "stored prices"
ANCHORED = "your trades"
UNVERIFIED = "unverified (no trades to check it against)"
ANCHOR_WINDOW_DAYS = 31  # a trade this close to the first price (either side) anchors its level


@dataclass(frozen=True)
class TradeAnchor:
    """A trade of the listing in the book whose price anchors a first price level."""

    level: LevelState
    price: Decimal  # as the trade was booked, in the listing's quote unit
    quote_scale: str

    def describe(self) -> str:
        return f"your own trade on {self.level.as_of} at {self.price.normalize():f} {self.quote_scale}"


def trade_anchor(session: Session, listing: InstrumentListing, day: date) -> TradeAnchor | None:
    """The book's trade of ``listing`` nearest to ``day`` and at most ``ANCHOR_WINDOW_DAYS``
    from it, its price in the listing's major unit as a level; None without one.

    Trade prices are booked in the listing's quote unit (pence for a GBX listing), and the book
    checked units × price against the cash paid, so they are the one price of the listing
    known to be in the right unit. A trade years away says nothing of the first prices' unit
    (the price may have moved twentyfold since), so it is not used."""
    trades = (
        select(col(LedgerEntry.entry_time), col(LedgerEntry.price))
        .where(
            col(LedgerEntry.listing_id) == listing.listing_id,
            col(LedgerEntry.entry_type).in_([EntryType.BUY, EntryType.SELL]),
            col(LedgerEntry.price).is_not(None),
            col(LedgerEntry.price) > 0,
        )
        .limit(1)
    )
    moment = day_start(day + timedelta(days=1))
    before = session.execute(
        trades.where(col(LedgerEntry.entry_time) < moment).order_by(col(LedgerEntry.entry_time).desc())
    ).first()
    after = session.execute(
        trades.where(col(LedgerEntry.entry_time) >= moment).order_by(col(LedgerEntry.entry_time))
    ).first()
    near = [
        (abs((close_day(when) - day).days), close_day(when), price)
        for when, price in (row for row in (before, after) if row is not None)
    ]
    near = [n for n in near if n[0] <= ANCHOR_WINDOW_DAYS]
    if not near:
        return None
    _, traded, price = min(near)
    unit = parse_quote_unit(listing.quote_scale)
    level = price.scaleb(-unit.minor_exponent) if unit.minor_exponent else price
    return TradeAnchor(LevelState(level, traded), price, listing.quote_scale)


def starting_level(
    session: Session, listing: InstrumentListing, elisting: Listing, first: date
) -> tuple[LevelState | None, str, TradeAnchor | None]:
    """The level points from ``first`` on are checked from, what it rests on, and the trade
    behind it: the stored points' accepted level before ``first`` when there is one; else the
    price of the book's trade of the listing near ``first`` (``trade_anchor``: a first file in
    the wrong unit is then flagged like any other unit error); else none (the first point sets
    the level, unverified). Ingest and every re-check start from it."""
    prior = prior_level(session, elisting, first)
    if prior is not None:
        return prior, STORED, None
    anchor = trade_anchor(session, listing, first)
    if anchor is None:
        return None, UNVERIFIED, None
    level = anchor.level
    if level.as_of > first:
        # A trade after the first point: its price before the splits in between, dated then.
        price = level.level
        for split in listing_splits(session, listing.instrument_id):
            if first < split.effective_date <= level.as_of:
                price = price * split.ratio_num / split.ratio_den
        level = LevelState(price, first)
    return level, ANCHORED, anchor


def _with_verdicts() -> Any:
    """The points with their re-check rows and the supersession that replaced them (if any)."""
    return POINTS.outerjoin(RECHECKS, RECHECKS.c.price_point_id == POINTS.c.price_point_id).outerjoin(
        SUPERSEDED, SUPERSEDED.c.price_point_id == POINTS.c.price_point_id
    )


def stored_points_query(listing_id: int | None, *, current_only: bool = True) -> Select[Any]:
    """A listing's stored points with their current verdicts; ``current_only``: without the
    points a later import superseded (``superseded_by`` says which point replaced one)."""
    query = (
        select(
            POINTS.c.price_point_id,
            POINTS.c.as_of,
            POINTS.c.raw_price,
            POINTS.c.raw_currency,
            POINTS.c.raw_quote_scale,
            POINTS.c.normalized_price_base,
            POINTS.c.quality_flags,
            POINTS.c.usable,
            RECHECKS.c.price_point_id.label("rechecked"),
            RECHECKS.c.quality_flags.label("r_flags"),
            RECHECKS.c.normalized_price_base.label("r_price"),
            RECHECKS.c.usable.label("r_usable"),
            SUPERSEDED.c.superseded_by_point_id.label("superseded_by"),
        )
        .select_from(_with_verdicts())
        .where(POINTS.c.listing_id == listing_id)
    )
    return query.where(SUPERSEDED.c.price_point_id.is_(None)) if current_only else query


def verdicts(
    row: Any,
) -> tuple[Verdict, Verdict]:
    ingest = (sorted(row.quality_flags), row.normalized_price_base, bool(row.usable))
    if row.rechecked is None:
        return ingest, ingest
    return ingest, (sorted(row.r_flags), row.r_price, bool(row.r_usable))


def write_verdict(
    session: Session,
    point_id: int,
    ingest: Verdict,
    current: Verdict,
    new: Verdict,
    cause: str,
) -> bool:
    """Record ``new`` as the point's verdict; returns whether it changed."""
    if new == current:
        return False
    row = session.get(PricePointRecheck, point_id)
    if new == ingest:
        if row is not None:
            session.delete(row)
        return True
    if row is None:
        row = PricePointRecheck(price_point_id=point_id, cause=cause)
    row.quality_flags, row.normalized_price_base, row.usable = new
    row.cause = cause[:64]
    row.rechecked_at = utcnow()
    session.add(row)
    return True


def recheck_listing(
    session: Session, listing: InstrumentListing, from_date: date, *, cause: str
) -> RecheckResult:
    """Check the listing's stored points dated ``from_date`` or later again, from the level
    before that date, with every recorded split and acceptance; record changed verdicts."""
    elisting = engine_listing(listing)
    prior, _, _ = starting_level(session, listing, elisting, from_date)
    rows = session.execute(
        stored_points_query(listing.listing_id)
        .where(POINTS.c.as_of >= day_start(from_date))
        .order_by(POINTS.c.as_of, POINTS.c.price_point_id)
    ).all()
    points = []
    for row in rows:
        day = close_day(row.as_of)
        _, current = verdicts(row)
        points.append(
            CheckedPoint(
                day,
                row.raw_price,
                row.raw_currency,
                row.raw_quote_scale,
                local_price(elisting, day, row.raw_price, row.raw_quote_scale),
                current[1],
                None,
                flag_set(current[0]),
            )
        )
    checked, _, _ = check_points(
        points,
        listing=elisting,
        prior_level=prior,
        splits=listing_splits(session, listing.instrument_id),
        acceptances=listing_acceptances(session, elisting),
    )
    now_usable = now_flagged = 0
    for row, point in zip(rows, checked, strict=True):
        ingest, current = verdicts(row)
        new = (
            sorted(f.value for f in point.flags),
            point.normalized_price_base,
            point.usable_price is not None,
        )
        if write_verdict(session, row.price_point_id, ingest, current, new, cause):
            if new[2] and not current[2]:
                now_usable += 1
            elif current[2] and not new[2]:
                now_flagged += 1
    session.flush()
    return RecheckResult(elisting.key, from_date, len(rows), now_usable, now_flagged)


def renormalize_missing_fx(session: Session, *, currencies: Iterable[str], start: date, end: date) -> int:
    """Normalise again the stored ``missing_fx`` prices of listings trading in ``currencies``
    dated ``start`` to a week after ``end`` (a rate serves a week); returns how many now have
    a GBP price."""
    wanted = sorted({c for c in currencies if c != BASE_CURRENCY})
    if not wanted:
        return 0
    listings = session.scalars(
        select(InstrumentListing).where(col(InstrumentListing.trading_currency).in_(wanted))
    ).all()
    fixed = 0
    for listing in listings:
        rows = session.execute(
            stored_points_query(listing.listing_id)
            .where(
                POINTS.c.as_of >= day_start(start),
                POINTS.c.as_of <= close_time(end + timedelta(days=7)),
                func.coalesce(RECHECKS.c.normalized_price_base, POINTS.c.normalized_price_base).is_(None),
            )
            .order_by(POINTS.c.as_of)
        ).all()
        candidates = [row for row in rows if QualityFlag.MISSING_FX.value in verdicts(row)[1][0]]
        if not candidates:
            continue
        elisting = engine_listing(listing)
        fx = fx_series(
            session, listing.trading_currency, close_day(candidates[0].as_of), close_day(candidates[-1].as_of)
        )
        for row in candidates:
            ingest, current = verdicts(row)
            point = normalize_price(
                elisting, RawPrice(close_day(row.as_of), row.raw_price, row.raw_quote_scale), fx=fx
            )
            if point.normalized_price_base is None:
                continue
            flags = flag_set(current[0]) - {QualityFlag.MISSING_FX}
            new = (sorted(f.value for f in flags), point.normalized_price_base, not (flags & BLOCKING_FLAGS))
            if write_verdict(session, row.price_point_id, ingest, current, new, "fx rates imported"):
                fixed += 1
    session.flush()
    return fixed


def accept_level(
    session: Session,
    *,
    actor: User,
    ticker: str,
    exchange: str,
    effective_date: date,
    reason: str,
) -> RecheckResult:
    """The user accepts the listing's price level from ``effective_date`` (audited); stored
    points from that date on are checked again."""
    if not reason or not reason.strip():
        raise ValidationError("accepting a new price level needs a reason")
    listing = get_listing(session, ticker, exchange)
    assert listing.listing_id is not None and actor.user_id is not None  # both read from the database
    touched = access.portfolios_using(session, [listing.listing_id])
    access.require_every(session, actor, touched, f"accept a new price level for {listing.ticker}")
    acceptance = PriceLevelAcceptance(
        listing_id=listing.listing_id,
        effective_date=effective_date,
        accepted_by_user_id=actor.user_id,
        reason=reason.strip(),
        details={"ticker": listing.ticker, "exchange": listing.exchange},
    )
    session.add(acceptance)
    session.flush()
    result = recheck_listing(
        session, listing, effective_date, cause=f"level accepted ({acceptance.acceptance_id})"
    )
    audit.record(
        session,
        actor=actor,
        action="PRICE_LEVEL_ACCEPTED",
        entity_type="instrument_listing",
        entity_id=listing.listing_id,
        details={
            "acceptance_id": acceptance.acceptance_id,
            "listing": result.listing,
            "effective_date": effective_date,
            "reason": reason.strip(),
            "rechecked": result.rechecked,
            "now_usable": result.now_usable,
            "now_flagged": result.now_flagged,
        },
    )
    return result


def flags_left(session: Session, listing_id: int) -> frozenset[str]:
    """The flags the listing's current points still carry (their current verdicts)."""
    rows = session.execute(
        stored_points_query(listing_id).where(func.coalesce(RECHECKS.c.usable, POINTS.c.usable).is_(False))
    ).all()
    return frozenset(flag for row in rows for flag in verdicts(row)[1][0])


def recheck_instrument(
    session: Session, *, actor: User | None, instrument_id: int, from_date: date, cause: str
) -> list[RecheckResult]:
    """Check every listing of an instrument again from ``from_date`` (audited): what the
    corporate action service should call after recording a SPLIT or MERGE."""
    listings = session.scalars(
        select(InstrumentListing)
        .where(col(InstrumentListing.instrument_id) == instrument_id)
        .order_by(col(InstrumentListing.listing_id))
    ).all()
    results = [recheck_listing(session, listing, from_date, cause=cause) for listing in listings]
    audit.record(
        session,
        actor=actor,
        action="PRICES_RECHECKED",
        entity_type="instrument",
        entity_id=instrument_id,
        details={
            "cause": cause,
            "from_date": from_date,
            "rechecked": {r.listing: r.rechecked for r in results},
            "now_usable": sum(r.now_usable for r in results),
            "now_flagged": sum(r.now_flagged for r in results),
        },
    )
    return results


def recheck_prices(
    session: Session, *, actor: User, ticker: str, exchange: str, from_date: date
) -> list[RecheckResult]:
    """A user asks for a listing's instrument to be checked again from a date (e.g. after
    recording a split with ``tradeassist corporate-action add``)."""
    listing = get_listing(session, ticker, exchange)
    return recheck_instrument(
        session,
        actor=actor,
        instrument_id=listing.instrument_id,
        from_date=from_date,
        cause="asked by a user",
    )
