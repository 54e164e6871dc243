"""What the approval view's fills grid starts with: each line of a recommendation as its fill
is expected to be (``fill_estimates``), the price in the listing's quote unit.

Pence and pounds go through ``core.units``: a line's GBP price per unit is the listing's quote
for a pounds listing and a hundred times it for a pence one; a listing quoted in another
currency starts from its latest good close as quoted, with the line's GBP amount as the
consideration.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlmodel import Session

from ..core.units import POUNDS, from_major, is_pence
from ..db.models import InstrumentListing
from . import prices, registry


def number(value: Any) -> Decimal | None:
    """A Decimal from a service value (Decimal, or its exact text as JSON columns hold it)."""
    if value is None or value == "":
        return None
    try:
        return value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation:
        return None


def word(value: Any) -> str:
    """An enum's value, or the text itself."""
    return str(getattr(value, "value", value))


def quoted_in_pounds_or_pence(quote_scale: str) -> bool:
    """A listing whose price is pounds or pence: its GBP amount is its consideration."""
    return quote_scale == POUNDS or is_pence(quote_scale)


@dataclass(frozen=True)
class FillEstimate:
    """One line of a recommendation as its fill is expected to be."""

    ticker: str
    exchange: str
    action: str
    units: Decimal | None
    price: Decimal | None  # a unit's price in the listing's quote unit; None when unknown
    quote_scale: str
    fee: Decimal | None  # the policy's fee per trade, GBP
    consideration: Decimal | None = None  # GBP, for a listing quoted in another currency


def fill_estimates(session: Session, recommendation: Mapping[str, Any]) -> list[FillEstimate]:
    """One per line to be done (suppressed lines are left out): the estimated units, the price
    per unit in the listing's quote unit (pence for GBX, from the line's own figures; a foreign
    listing's latest good close, with the line's GBP amount as the consideration) and the
    policy's fee per trade. ``recommendation`` is ``recommendations.pending_recommendations``'s."""
    fee = number((recommendation.get("constraints_report") or {}).get("fee_per_trade"))
    rows = []
    for line in recommendation.get("lines") or []:
        if line.get("suppressed_by_min_trade"):
            continue
        listing = registry.get_listing(session, line["ticker"], line["exchange"])
        units = number(line.get("estimated_units"))
        amount = number(line.get("amount_base"))
        price = quote_price(session, listing, amount / units if units and amount is not None else None)
        local = quoted_in_pounds_or_pence(listing.quote_scale)
        rows.append(
            FillEstimate(
                ticker=line["ticker"],
                exchange=line["exchange"],
                action=word(line["action"]),
                units=units,
                price=price,
                quote_scale=listing.quote_scale,
                fee=fee,
                consideration=None if local else amount,
            )
        )
    return rows


def quote_price(session: Session, listing: InstrumentListing, gbp_per_unit: Decimal | None) -> Decimal | None:
    """A unit's price in the listing's quote unit: the recommendation's own for pounds and
    pence, else the latest good close as quoted (None when there is none)."""
    if gbp_per_unit is not None and quoted_in_pounds_or_pence(listing.quote_scale):
        return from_major(gbp_per_unit, listing.quote_scale).quantize(Decimal("0.0001")).normalize()
    assert listing.listing_id is not None  # read from the database
    latest = prices.latest_good_prices(session, [listing.listing_id]).get(listing.listing_id)
    if latest is None:
        return None
    day = prices.list_prices(
        session, ticker=listing.ticker, exchange=listing.exchange, start=latest.as_of, end=latest.as_of
    )
    closes = [p["raw_price"] for p in day if p["is_close"] and p["usable"]]
    return closes[-1] if closes else None
