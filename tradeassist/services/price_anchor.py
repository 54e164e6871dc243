"""What a listing's first prices are checked against: the investor's own trades.

A listing's accepted level normally comes from its stored prices (``price_checks.prior_level``).
A listing with none yet used to take its first price as the level, so a first file in the wrong
unit (pounds for a pence listing) became the level and the right prices after it were flagged.
Now the book's trade of the listing nearest the first new price anchors the level: trade prices
are booked in the listing's quote unit and were checked against the cash paid, so a first file
20 to 200 times off them is flagged like any other unit error, and the message says that either
the file or the listing's declared quote unit is wrong. With no trade, the first price still
sets the level, and the import says the level is unverified.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from sqlmodel import Session, col, select

from ..core.enums import EntryType, QualityFlag
from ..db.models import InstrumentListing, LedgerEntry
from ..engine.normalize import Listing, parse_quote_unit
from ..engine.normalize import PricePoint as CheckedPoint
from ..engine.price_quality import LevelState, PriceIssue
from .market import close_day, day_start
from .price_checks import listing_splits, prior_level

UNVERIFIED = "unverified (no trades to check it against)"


@dataclass(frozen=True)
class TradeAnchor:
    """A trade of the listing in the book whose price anchors a first price level."""

    level: LevelState
    price: Decimal  # as the trade was booked, in the listing's quote unit
    quote_scale: str

    def describe(self) -> str:
        return f"your own trade on {self.level.as_of} at {self.price.normalize():f} {self.quote_scale}"


def trade_anchor(session: Session, listing: InstrumentListing, day: date) -> TradeAnchor | None:
    """The book's trade of ``listing`` nearest to ``day`` (the latest on or before it, else the
    earliest after), its price in the listing's major unit as a level; None with no trade.

    Trade prices are booked in the listing's quote unit (pence for a GBX listing), and the book
    checked units × price against the cash paid, so they are the one price of the listing
    known to be in the right unit."""
    trades = (
        select(col(LedgerEntry.entry_time), col(LedgerEntry.price))
        .where(
            col(LedgerEntry.listing_id) == listing.listing_id,
            col(LedgerEntry.entry_type).in_([EntryType.BUY, EntryType.SELL]),
            col(LedgerEntry.price).is_not(None),
        )
        .limit(1)
    )
    moment = day_start(day + timedelta(days=1))
    found = (
        session.execute(
            trades.where(col(LedgerEntry.entry_time) < moment).order_by(col(LedgerEntry.entry_time).desc())
        ).first()
        or session.execute(
            trades.where(col(LedgerEntry.entry_time) >= moment).order_by(col(LedgerEntry.entry_time))
        ).first()
    )
    if found is None or found[1] is None or found[1] <= 0:
        return None
    unit = parse_quote_unit(listing.quote_scale)
    level = found[1].scaleb(-unit.minor_exponent) if unit.minor_exponent else found[1]
    return TradeAnchor(LevelState(level, close_day(found[0])), found[1], listing.quote_scale)


def first_level(
    session: Session, listing: InstrumentListing, elisting: Listing, points: Sequence[CheckedPoint]
) -> tuple[LevelState | None, str, TradeAnchor | None]:
    """The level the new points are checked from, what it rests on, and the trade behind it.

    The stored points' accepted level when there is one; else the price of the book's trade of
    the listing nearest the first new point (a first file in the wrong unit is then flagged like
    any other unit error); else none: the first point sets the level, unverified."""
    if not points:
        return None, "stored prices", None
    prior = prior_level(session, elisting, points[0].as_of)
    if prior is not None:
        return prior, "stored prices", None
    first = points[0].as_of
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
    return level, "your trades", anchor


def explain_scale_issues(
    issues: tuple[PriceIssue, ...],
    anchor: TradeAnchor | None,
    basis: str,
    listing: InstrumentListing,
) -> tuple[PriceIssue, ...]:
    """Scale issues say what the level rests on: the investor's own trade, or nothing yet."""
    out = []
    for issue in issues:
        if issue.flag is QualityFlag.SCALE_SUSPECT and anchor is not None:
            issue = dataclasses.replace(
                issue,
                message=(
                    f"{issue.message} The level is {anchor.describe()}: if the file is right, the "
                    f"listing's quote unit ({listing.quote_scale}) is wrong."
                ),
            )
        elif issue.flag is QualityFlag.SCALE_SUSPECT and basis.startswith("unverified"):
            issue = dataclasses.replace(
                issue,
                message=(
                    f"{issue.message} The level these prices are compared with was set by the first "
                    "prices of this file, with no trade of yours to check it against (unverified): if "
                    "those were in the wrong unit, import the right ones with `tradeassist prices import "
                    f"FILE --ticker {listing.ticker} --exchange {listing.exchange} --format FORMAT "
                    "--replace --reason TEXT`."
                ),
            )
        out.append(issue)
    return tuple(out)
