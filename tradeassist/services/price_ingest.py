"""Price ingest: parse, normalise, check and store a provider's series for one listing.

(``import_price_file``, ``ingest_series``; ``price_refresh`` downloads): parse (provider) →
normalise (``engine.normalize``, with the GBP→X series from ``fx_rates`` for non-GBP
listings) → check (``engine.price_quality.check_points``, from the listing's accepted level,
with its recorded splits and acceptances: see ``price_checks``) → in the caller's
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
"""

from __future__ import annotations

import gc
import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from itertools import repeat
from pathlib import Path
from typing import Any, cast

from sqlalchemy import select
from sqlmodel import Session

from ..core import jsonutil
from ..core.errors import ValidationError
from ..core.timeutil import end_of_london_day
from ..db.models import InstrumentListing, User
from ..engine.normalize import BASE_CURRENCY, Listing, RawPrice, normalize_prices
from ..engine.normalize import PricePoint as CheckedPoint
from ..engine.price_quality import PriceIssue, check_points
from ..providers.prices import PriceBar, PriceSeries, parse_price_file
from . import access, audit
from .fx_series import fx_series
from .market import (
    bulk_insert_chunks,
    close_texts,
    day_start,
    decimal_texts,
    source_id,
)
from .price_alerts import Resolved, raise_disagreements, raise_for_issues, settle_disagreements
from .price_anchor import explain_scale_issues
from .price_checks import (
    POINTS,
    STORED,
    SUPERSEDED,
    engine_listing,
    listing_acceptances,
    listing_splits,
    starting_level,
)
from .price_replacements import PriceConflict, day_of, stored_time, supersede
from .registry import get_listing

PRICE_FORMATS = ("stooq", "twelvedata", "yahoo", "csv", "json")

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
    "revision",
)


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------
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
    replacements: tuple[PriceConflict, ...] = ()
    level_basis: str = "stored prices"
    resolved_alert_ids: tuple[int, ...] = ()
    unfrozen_portfolio_ids: tuple[int, ...] = ()

    def summary(self) -> dict[str, Any]:
        return {
            "listing": self.listing,
            "source": self.source,
            "file": self.file,
            "received": self.received,
            "inserted": self.inserted,
            "unchanged": self.unchanged,
            "replaced": len(self.replacements),
            "conflicts": len(self.conflicts),
            "level_basis": self.level_basis,
            "alerts_resolved": len(self.resolved_alert_ids),
            "portfolios_unfrozen": len(self.unfrozen_portfolio_ids),
            "flagged": dict(self.flagged),
            "alerts_raised": len(self.alert_ids),
            "portfolios_frozen": len(self.frozen_portfolio_ids),
        }


@dataclass(frozen=True)
class _Bars:
    """The bars to store, in date order: the bars, their stamps as given, their London dates."""

    bars: tuple[PriceBar, ...]
    stamps: list[date | datetime]
    days: list[date]

    def only(self, keep: Sequence[int]) -> _Bars:
        return _Bars(
            tuple(self.bars[k] for k in keep), [self.stamps[k] for k in keep], [self.days[k] for k in keep]
        )


@dataclass(frozen=True)
class _Verdicts:
    """The checked points as stored columns, and how many carry each flag."""

    flag_texts: list[str]
    usable: list[bool]
    flagged: dict[str, int]


# --------------------------------------------------------------------------------------------
# Ingest
# --------------------------------------------------------------------------------------------
def import_price_file(
    session: Session,
    *,
    actor: User | None,
    path: str | Path,
    ticker: str,
    exchange: str,
    fmt: str,
    replace: bool = False,
    reason: str | None = None,
) -> IngestResult:
    """Import a price file for one listing. A malformed file changes nothing.

    ``replace`` (with a ``reason``): a point of the file whose stored point (same date, source
    and kind) says otherwise supersedes it (see ``ingest_series``)."""
    if replace and not (reason and reason.strip()):
        raise ValidationError("replacing stored prices needs a reason (--reason), kept in the audit trail")
    if fmt not in PRICE_FORMATS:
        raise ValidationError(f"price format {fmt!r}: expected one of {', '.join(PRICE_FORMATS)}")
    series = parse_price_file(fmt, path)
    listing = get_listing(session, ticker, exchange)
    if actor is not None and listing.listing_id is not None:
        touched = access.portfolios_using(session, [listing.listing_id])
        access.require_every(
            session, actor, touched, f"import prices for {listing.ticker} on {listing.exchange}"
        )
    _check_symbol(series, listing)
    return ingest_series(session, actor=actor, listing=listing, series=series, replace=replace, reason=reason)


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
    replace: bool = False,
    reason: str | None = None,
) -> IngestResult:
    """Normalise, check and store a provider's series for ``listing`` (see the module docstring).

    ``replace``: each new point whose stored point of the same key says otherwise is stored as
    the key's next revision and supersedes it (``price_supersessions``, audited as
    ``PRICES_REPLACED`` with ``reason``); the listing's points from the first replaced date on
    are then checked again, and alerts and freezes the check clears are ended.

    The per-point work is done column by column (comprehensions, ``map``), with the garbage
    collector paused: it runs a million times on a bulk import.
    """
    with _bulk_objects():
        return _ingest(
            session,
            actor=actor,
            listing=listing,
            series=series,
            source=source,
            replace=replace,
            reason=(reason or "").strip(),
        )


def _ingest(
    session: Session,
    *,
    actor: User | None,
    listing: InstrumentListing,
    series: PriceSeries,
    source: str | None,
    replace: bool = False,
    reason: str = "",
) -> IngestResult:
    elisting = engine_listing(listing)
    source_name = source or series.source
    src = source_id(session, source_name)
    lid = listing.listing_id
    assert src is not None and lid is not None
    given = _in_date_order(series.bars)
    normalized = _normalize(session, elisting, series, given)
    fresh, unchanged, conflicts = _partition(session, lid, src, given.bars, given.days, normalized)
    replacing = conflicts if replace else []
    if replacing:
        conflicts = []
    keep = sorted([*fresh, *(c.position for c in replacing)])
    revisions = [0] * len(keep)
    if replacing:
        by_position = {c.position: c.stored_revision + 1 for c in replacing}
        revisions = [by_position.get(k, 0) for k in keep]
    kept = given
    if len(keep) < len(given.bars):
        normalized = tuple(normalized[k] for k in keep)
        kept = given.only(keep)
    prior, basis, anchor = (
        starting_level(session, listing, elisting, normalized[0].as_of)
        if normalized
        else (None, STORED, None)
    )
    checked, _, issues = check_points(
        normalized,
        listing=elisting,
        prior_level=prior,
        splits=listing_splits(session, listing.instrument_id),
        acceptances=listing_acceptances(session, elisting),
    )
    issues = explain_scale_issues(issues, anchor, basis, listing)
    verdicts = _verdict_columns(checked)
    inserted = bulk_insert_chunks(
        session,
        "price_points",
        POINT_COLUMNS,
        _row_chunks(
            lid, src, kept.stamps, kept.bars, checked, verdicts.flag_texts, verdicts.usable, revisions
        ),
        timestamp_columns=("as_of",),
    )
    alert_ids, frozen = raise_for_issues(session, actor, listing, source_name, series.source_name, issues)
    resolved = Resolved()
    if replacing:
        resolved = supersede(session, actor, listing, src, replacing, reason)
    settled = settle_disagreements(session, actor, listing, series.source_name)
    if kept.days:
        alert_ids += raise_disagreements(
            session, actor, listing, kept.days[0], kept.days[-1], series.source_name
        )
    result = IngestResult(
        listing=elisting.key,
        listing_id=lid,
        source=source_name,
        file=series.source_name,
        received=len(given.bars),
        inserted=inserted - len(replacing),
        unchanged=unchanged,
        conflicts=tuple(conflicts),
        flagged=verdicts.flagged,
        issues=issues,
        alert_ids=alert_ids,
        frozen_portfolio_ids=frozen,
        replacements=tuple(replacing),
        level_basis=basis,
        resolved_alert_ids=resolved.alert_ids + settled,
        unfrozen_portfolio_ids=resolved.unfrozen_portfolio_ids,
    )
    _record_import(session, actor, result, given.days)
    return result


def _in_date_order(bars: tuple[PriceBar, ...]) -> _Bars:
    """The bars sorted by London date (stable: a provider's order is kept within a day)."""
    stamps = [b.as_of for b in bars]
    all_daily = all(type(a) is date for a in stamps)
    days = cast("list[date]", list(stamps)) if all_daily else [day_of(a) for a in stamps]
    if any(a > b for a, b in itertools.pairwise(days)):
        order = sorted(range(len(bars)), key=days.__getitem__)
        return _Bars(tuple(bars[i] for i in order), [stamps[i] for i in order], [days[i] for i in order])
    return _Bars(bars, stamps, days)


def _normalize(
    session: Session, listing: Listing, series: PriceSeries, given: _Bars
) -> tuple[CheckedPoint, ...]:
    """Every bar normalised (the provider's declared unit, else the series', else the listing's)."""
    bars, days = given.bars, given.days
    fallback = series.quote_scale or series.currency
    units = {b.quote_scale or b.currency for b in bars}
    declared: Iterable[str | None] = (
        repeat(fallback) if units <= {None} else [(b.quote_scale or b.currency or fallback) for b in bars]
    )
    raws = map(RawPrice, days, [b.close for b in bars], declared)
    fx = None
    if listing.trading_currency != BASE_CURRENCY and days:
        fx = fx_series(session, listing.trading_currency, days[0], days[-1])
    return normalize_prices(listing, raws, fx=fx)


def _verdict_columns(checked: Sequence[CheckedPoint]) -> _Verdicts:
    """Each point's flags as stored JSON text and whether it is usable; counts per flag."""
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
    return _Verdicts(flag_texts, usable, flagged)


def _record_import(session: Session, actor: User | None, result: IngestResult, days: Sequence[date]) -> None:
    """The ``PRICES_IMPORTED`` audit row: the counts, the dates received, example conflicts."""
    audit.record(
        session,
        actor=actor,
        action="PRICES_IMPORTED",
        entity_type="instrument_listing",
        entity_id=result.listing_id,
        details={
            **result.summary(),
            "first_date": days[0] if days else None,
            "last_date": days[-1] if days else None,
            "conflict_examples": [c.row() for c in result.conflicts[:_REPORTED_CONFLICTS]],
        },
    )


def _row_chunks(
    lid: int,
    src: int,
    stamps: Sequence[date | datetime],
    bars: Sequence[PriceBar],
    checked: Sequence[CheckedPoint],
    flag_texts: Sequence[str],
    usable: Sequence[bool],
    revisions: Sequence[int],
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
                revisions[lo : lo + size],
                strict=False,
            )
        )


def _partition(
    session: Session,
    listing_id: int,
    src: int,
    bars: Sequence[PriceBar],
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
            POINTS.c.price_point_id,
            POINTS.c.revision,
        )
        .select_from(POINTS.outerjoin(SUPERSEDED, SUPERSEDED.c.price_point_id == POINTS.c.price_point_id))
        .where(
            POINTS.c.listing_id == listing_id,
            POINTS.c.source_id == src,
            POINTS.c.as_of >= day_start(days[0]),
            POINTS.c.as_of <= end_of_london_day(days[-1]),
            SUPERSEDED.c.price_point_id.is_(None),
        )
    ).all()
    if not stored_rows:
        return list(range(len(bars))), 0, []
    stored = {(row[0], bool(row[1])): row for row in stored_rows}
    fresh: list[int] = []
    unchanged = 0
    conflicts: list[PriceConflict] = []
    for k, (bar, point) in enumerate(zip(bars, normalized, strict=True)):
        when = stored_time(bar.as_of)
        row = stored.get((when, bar.is_close))
        if row is None:
            fresh.append(k)
            continue
        existing = (row[2], row[3], row[4])
        new = (point.raw_price, point.raw_currency, point.raw_quote_scale)
        if existing == new:
            unchanged += 1
        else:
            conflicts.append(PriceConflict(bar.as_of, bar.is_close, existing, new, k, row[5], row[6]))
    return fresh, unchanged, conflicts
