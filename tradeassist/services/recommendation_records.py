"""Stored recommendations: one loaded with its portfolio (access-checked), their lines, and the
status changes of the lifecycle (``recommendations`` tells the lifecycle itself).

Shared by the lifecycle (``recommendations``, ``executions``), the reviews (``reviews``), the
run history (``run_history``) and the after-run workflow (``workflows``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from sqlmodel import Session, col, select

from ..core.enums import RecommendationStatus
from ..core.errors import NotFound, ValidationError
from ..db.models import InstrumentListing, Portfolio, Recommendation, RecommendationLine, User
from .access import require_access

DRAFT, REVIEWED = RecommendationStatus.DRAFT, RecommendationStatus.REVIEWED
EXECUTED, IGNORED = RecommendationStatus.EXECUTED, RecommendationStatus.IGNORED
OPEN = (DRAFT, REVIEWED)


def load(
    session: Session, actor: User | None, recommendation_id: int, operation: str, *, lock: bool = False
) -> tuple[Recommendation, Portfolio]:
    """The recommendation and its portfolio; ``actor`` None is the system (no access check)."""
    query = select(Recommendation).where(Recommendation.recommendation_id == recommendation_id)
    if lock:  # PostgreSQL: two approvals of one recommendation wait for each other
        query = query.with_for_update().execution_options(populate_existing=True)
    reco = session.exec(query).first()
    if reco is None:
        raise NotFound(f"no recommendation {recommendation_id}")
    portfolio = session.get(Portfolio, reco.portfolio_id)
    assert portfolio is not None
    if actor is not None:
        require_access(session, actor, portfolio, operation)
    return reco, portfolio


def stored_lines(session: Session, ids: Sequence[int]) -> list[tuple[RecommendationLine, InstrumentListing]]:
    """The lines of these recommendations with their listings, in line order."""
    if not ids:
        return []
    return list(
        session.exec(
            select(RecommendationLine, InstrumentListing)
            .join(InstrumentListing, col(InstrumentListing.listing_id) == col(RecommendationLine.listing_id))
            .where(col(RecommendationLine.recommendation_id).in_(ids))
            .order_by(col(RecommendationLine.line_id))
        ).all()
    )


def line_json(line: RecommendationLine, listing: InstrumentListing) -> dict[str, Any]:
    """A stored line with the keys of the engine's ``lines`` (``recommend --json``)."""
    return {
        "ticker": listing.ticker,
        "exchange": listing.exchange,
        "action": line.action.value,
        "amount_base": line.amount_base,
        "estimated_units": line.estimated_units,
        "suppressed_by_min_trade": line.suppressed_by_min_trade,
        "reason_code": line.reason_code,
    }


def lines_of(session: Session, ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
    """Each recommendation's lines (``line_json`` with ``line_id`` and ``listing_id``); a SELL
    in a general account with its ``estimated_gain_base`` (kept in the rationale's ``tax``)."""
    found: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    gains = _estimated_gains(session, ids)
    for line, listing in stored_lines(session, ids):
        row = {"line_id": line.line_id, "listing_id": line.listing_id, **line_json(line, listing)}
        gain = gains.get((line.recommendation_id, listing.ticker, listing.exchange))
        if gain is not None:
            row["estimated_gain_base"] = gain
        found[line.recommendation_id].append(row)
    return found


def _estimated_gains(session: Session, ids: Sequence[int]) -> dict[tuple[int, str, str], Decimal]:
    if not ids:
        return {}
    rows = session.exec(
        select(Recommendation.recommendation_id, Recommendation.rationale).where(
            col(Recommendation.recommendation_id).in_(ids)
        )
    ).all()
    gains: dict[tuple[int, str, str], Decimal] = {}
    for rec_id, rationale in rows:
        assert rec_id is not None
        for est in ((rationale or {}).get("tax") or {}).get("lines") or []:
            gains[(rec_id, est["ticker"], est["exchange"])] = Decimal(str(est["estimated_gain_base"]))
    return gains


def refuse_state(reco: Recommendation, action: str, allowed: Iterable[RecommendationStatus]) -> None:
    """A ``ValidationError`` naming the state unless the recommendation is in one of ``allowed``."""
    if reco.status not in allowed:
        names = " or ".join(s.value for s in allowed)
        raise ValidationError(
            f"recommendation {reco.recommendation_id} is {reco.status.value}: "
            f"only a {names} recommendation can be {action}"
        )


def set_status(
    session: Session, reco: Recommendation, status: RecommendationStatus, reason: str | None
) -> None:
    reco.status = status
    reco.status_reason = reason
    session.add(reco)
    session.flush()
