"""What a scale issue says about the level it was judged against.

A listing's accepted level comes from its stored prices, else from the book's trade of the
listing near the first new price (``price_checks.starting_level``, ``trade_anchor``): a first
file in pounds for a pence listing used to become the level and flag every right price after
it. A scale issue found against a trade says so, and that either the file or the listing's
declared quote unit is wrong; one found against a level no trade verified says that level is
unverified and how to replace wrong first prices.
"""

from __future__ import annotations

import dataclasses

from ..core.enums import QualityFlag
from ..db.models import InstrumentListing
from ..engine.price_quality import PriceIssue
from .price_checks import TradeAnchor


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
