"""Alerts on suspect prices: what a price check found, raised on every portfolio concerned.

Suspect points (``scale_suspect``, ``currency_mismatch``) raise one CRITICAL alert per
portfolio holding or mapping the listing (one open alert per portfolio, listing and code) and
freeze those portfolios; a listing nobody holds gets one alert with no portfolio.
``missing_fx`` and ``non_positive`` raise WARN alerts and freeze nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlmodel import Session

from ..core.enums import QualityFlag, Severity
from ..db.models import InstrumentListing, User
from ..engine.price_quality import PriceIssue
from . import governance
from .price_reads import holders

# Issues that raise a CRITICAL alert and freeze the holding portfolios; the others only warn.
_FREEZING = frozenset({QualityFlag.SCALE_SUSPECT, QualityFlag.CURRENCY_MISMATCH})


def raise_for_issues(
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
    portfolio_ids = holders(session, listing.listing_id)
    created: list[int] = []
    frozen: list[int] = []
    for issue in issues:
        freezing = issue.flag in _FREEZING
        raised = governance.raise_and_freeze(
            session,
            actor=actor,
            portfolio_ids=portfolio_ids,
            code=issue.code,
            severity=Severity.CRITICAL if freezing else Severity.WARN,
            message=issue.message,
            context=_issue_context(issue, listing, source_name, file),
            freeze=freezing,
        )
        created += raised.created
        frozen += raised.frozen
    return tuple(created), tuple(sorted(set(frozen)))


def _issue_context(
    issue: PriceIssue, listing: InstrumentListing, source_name: str, file: str
) -> dict[str, Any]:
    """What an alert on a price issue records: the listing, the flag, where and when."""
    return {
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
