"""Replacing stored prices: an append-only supersede (``prices import --replace``).

A stored point is never changed or deleted. A later import with ``--replace`` and a reason
stores the file's value as the next ``revision`` of the same key (listing, date, source,
kind) and records in ``price_supersessions`` which point it supersedes; readers skip
superseded points, so valuations use the newest one. The listing's points from the first
replaced date on are then checked again (a later point flagged against a wrong first level
becomes usable), and alerts and freezes the check clears are ended. One ``PRICES_REPLACED``
audit row records the reason, the count and examples.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, select
from sqlmodel import Session

from ..core.timeutil import ensure_utc, utcnow
from ..db.models import InstrumentListing, User
from . import audit
from .market import close_day, close_time
from .price_alerts import Resolved, resolve_cleared
from .price_checks import POINTS, SUPERSEDED, flags_left, recheck_listing

_REPORTED = 50


@dataclass(frozen=True)
class PriceConflict:
    """A stored point and a new one with the same key and a different raw value."""

    as_of: date | datetime
    is_close: bool
    stored: tuple[Decimal, str, str]  # raw_price, raw_currency, raw_quote_scale
    new: tuple[Decimal, str, str]
    position: int = -1  # the new bar's place among the bars in date order
    stored_point_id: int | None = None
    stored_revision: int = 0

    def row(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of,
            "is_close": self.is_close,
            "stored_raw_price": self.stored[0],
            "stored_unit": self.stored[2],
            "new_raw_price": self.new[0],
            "new_unit": self.new[2],
        }


def stored_time(as_of: date | datetime) -> datetime:
    """A bar's stored ``as_of``: the instant of an intraday bar, the close time of a daily one."""
    return ensure_utc(as_of) if isinstance(as_of, datetime) else close_time(as_of)


def day_of(as_of: date | datetime) -> date:
    """A bar's date: its own for daily bars, the London date of an intraday timestamp."""
    return close_day(ensure_utc(as_of)) if isinstance(as_of, datetime) else as_of


def supersede(
    session: Session,
    actor: User | None,
    listing: InstrumentListing,
    src: int,
    replacing: Sequence[PriceConflict],
    reason: str,
) -> Resolved:
    """Link each replaced point to the point that supersedes it, audit, and check again."""
    assert listing.listing_id is not None
    lid = listing.listing_id
    keys = {(stored_time(c.as_of), c.is_close, c.stored_revision + 1): c.stored_point_id for c in replacing}
    times = [key[0] for key in keys]
    # The points just stored for these keys, read in one statement.
    rows = session.execute(
        select(POINTS.c.price_point_id, POINTS.c.as_of, POINTS.c.is_close, POINTS.c.revision).where(
            POINTS.c.listing_id == lid,
            POINTS.c.source_id == src,
            POINTS.c.as_of >= min(times),
            POINTS.c.as_of <= max(times),
            POINTS.c.revision > 0,
        )
    ).all()
    new_ids = {
        keys[key]: point_id
        for point_id, when, is_close, revision in rows
        if (key := (ensure_utc(when), bool(is_close), revision)) in keys
    }
    assert len(new_ids) == len(keys)  # every replacement was stored just now
    session.execute(
        insert(SUPERSEDED),
        [
            {
                "price_point_id": old,
                "superseded_by_point_id": new,
                "listing_id": lid,
                "reason": reason[:500],
                "replaced_by_user_id": actor.user_id if actor is not None else None,
                "created_at": utcnow(),
            }
            for old, new in new_ids.items()
        ],
    )
    first = min(day_of(c.as_of) for c in replacing)
    recheck = recheck_listing(session, listing, first, cause="prices replaced")
    audit.record(
        session,
        actor=actor,
        action="PRICES_REPLACED",
        entity_type="instrument_listing",
        entity_id=lid,
        details={
            "reason": reason,
            "replaced": len(replacing),
            "first_date": first,
            "examples": [c.row() for c in replacing[:_REPORTED]],
            "rechecked": recheck.rechecked,
            "now_usable": recheck.now_usable,
            "now_flagged": recheck.now_flagged,
        },
    )
    if actor is None:
        return Resolved()
    return resolve_cleared(
        session, actor, listing, flags_left(session, lid), f"prices of {listing.ticker} replaced: {reason}"
    )
