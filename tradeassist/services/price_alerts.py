"""Alerts on suspect prices: what a price check found, raised on every portfolio concerned.

Suspect points (``scale_suspect``, ``currency_mismatch``) raise one CRITICAL alert per
portfolio holding or mapping the listing (one open alert per portfolio, listing and code) and
freeze those portfolios; a listing nobody holds gets one alert with no portfolio.
``missing_fx`` and ``non_positive`` raise WARN alerts and freeze nothing.

When the user accepts a level (or records a split) and the re-check leaves no point of the
listing with the flag an alert was raised for, ``resolve_cleared`` resolves that alert and
ends the freezes price alerts set, where no other freezing price alert stays open.

Sources that disagree raise one WARN alert per portfolio (``raise_disagreements``); when a
later import leaves the sources agreeing on every day an open one named (a wrong close
replaced, say), ``settle_disagreements`` resolves it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, cast

from sqlmodel import Session

from ..core.enums import QualityFlag, Severity
from ..db.models import Alert, InstrumentListing, Portfolio, User
from ..engine.price_issues import ISSUE_CODES
from ..engine.price_quality import PriceIssue
from . import access, governance, price_sources
from .price_reads import day_candidates, holders

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


# --------------------------------------------------------------------------------------------
# Ending what a re-check resolved
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Resolved:
    """The alerts a re-check resolved and the portfolios whose freeze it ended."""

    alert_ids: tuple[int, ...] = ()
    unfrozen_portfolio_ids: tuple[int, ...] = ()


_FREEZING_CODES = frozenset(ISSUE_CODES[f] for f in _FREEZING)


def resolve_cleared(
    session: Session,
    actor: User,
    listing: InstrumentListing,
    flags_left: frozenset[str],
    note: str,
) -> Resolved:
    """After a re-check of ``listing``: resolve its open alerts whose flag no current point
    carries any more (``flags_left``: the flags its current points still carry), then end the
    freezes a price alert set on those portfolios where no freezing price alert stays open.
    A freeze set by hand or for another reason is left to the user."""
    resolved: list[int] = []
    portfolios: set[int | None] = set()
    for alert in governance.open_alerts(session, any_portfolio=True):
        context = alert.context or {}
        if context.get("listing_id") != listing.listing_id or "flag" not in context:
            continue
        if context["flag"] in flags_left or alert.code not in set(ISSUE_CODES.values()):
            continue
        governance.resolve_alert(session, actor=actor, alert_id=cast(int, alert.alert_id), note=note)
        resolved.append(cast(int, alert.alert_id))
        portfolios.add(alert.portfolio_id)
    unfrozen: list[int] = []
    for portfolio_id in sorted(p for p in portfolios if p is not None):
        status = governance.freeze_status(session, portfolio_id)
        if not status.is_frozen or status.reason_code not in _FREEZING_CODES:
            continue
        still_open = [
            a for a in governance.open_alerts(session, portfolio_id=portfolio_id) if a.code in _FREEZING_CODES
        ]
        if still_open:
            continue
        governance.clear_freeze(session, actor=actor, portfolio_id=portfolio_id, reason=note)
        unfrozen.append(portfolio_id)
    return Resolved(tuple(resolved), tuple(unfrozen))


# --------------------------------------------------------------------------------------------
# Sources that disagree
# --------------------------------------------------------------------------------------------
def raise_disagreements(
    session: Session,
    actor: User | None,
    listing: InstrumentListing,
    first: date,
    last: date,
    file: str,
) -> tuple[int, ...]:
    """One WARN alert (nothing frozen) per portfolio holding the listing when its sources'
    closes from ``first`` to ``last`` differ by more than the tolerance (``price_sources``)."""
    assert listing.listing_id is not None
    by_day = day_candidates(session, listing.listing_id, first, last)
    if not by_day:
        return ()
    found = price_sources.disagreements(
        by_day, provider=listing.price_provider, priority=listing.source_priority
    )
    if not found:
        return ()
    key = f"{listing.ticker}:{listing.exchange}"
    raised = governance.raise_and_freeze(
        session,
        actor=actor,
        portfolio_ids=holders(session, listing.listing_id),
        code=price_sources.DISAGREEMENT_CODE,
        severity=Severity.WARN,
        message=price_sources.disagreement_message(key, found),
        context={
            "listing": key,
            "listing_id": listing.listing_id,
            "file": file,
            "days": len(found),
            "first_date": found[0].day,
            "last_date": found[-1].day,
            "chosen_source": found[0].chosen.source,
            "largest_difference": max(d.spread for d in found),
        },
        freeze=False,
    )
    return raised.created


def settle_disagreements(
    session: Session, actor: User | None, listing: InstrumentListing, file: str
) -> tuple[int, ...]:
    """Resolve the listing's open disagreement alerts whose days (``first_date`` to
    ``last_date``) its sources now agree on; the others stay open. An import with no acting
    user (none is recorded) leaves them to the next one that has one, and an alert of a
    portfolio the user may not see is left to its owner."""
    if actor is None:
        return ()
    settled = []
    for alert in governance.open_alerts(session, any_portfolio=True, code=price_sources.DISAGREEMENT_CODE):
        context = alert.context or {}
        if context.get("listing_id") != listing.listing_id or not _may_resolve(session, actor, alert):
            continue
        first, last = _day(context["first_date"]), _day(context["last_date"])
        by_day = day_candidates(session, cast(int, listing.listing_id), first, last)
        if price_sources.disagreements(
            by_day, provider=listing.price_provider, priority=listing.source_priority
        ):
            continue
        note = f"the sources agree again on {first} to {last} (after {file})"
        governance.resolve_alert(session, actor=actor, alert_id=cast(int, alert.alert_id), note=note)
        settled.append(cast(int, alert.alert_id))
    return tuple(settled)


def _day(value: date | str) -> date:
    """A date from an alert's context: as stored (ISO text), or as raised in this session."""
    return value if isinstance(value, date) else date.fromisoformat(value)


def _may_resolve(session: Session, actor: User, alert: Alert) -> bool:
    if alert.portfolio_id is None:
        return True
    portfolio = session.get(Portfolio, alert.portfolio_id)
    return portfolio is not None and access.can_access(session, actor, portfolio)
