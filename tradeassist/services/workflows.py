"""Workflows across services: what happens, in order, when one event touches several of them.

* ``record_recommendation``: a run's recommendation is **stored** (``advice``), **reviewed**
  with builtin-rules (``reviews``) and the portfolio's owner **notified** (``notifications``),
  all in the run's recording transaction.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlmodel import Session

from ..core.enums import Channel
from ..core.errors import TradeAssistError
from ..db.models import LLMVerdict, Portfolio, Recommendation, User
from ..engine.model import Recommendation as EngineRecommendation
from ..providers.reviewers import DEFAULT_REVIEWER
from . import advice, notifications
from .recommendation_records import load
from .reviews import review_recommendation, verdict_row

log = logging.getLogger(__name__)

RECOMMENDATION_READY = "RECOMMENDATION_READY"


def record_recommendation(
    session: Session,
    *,
    run_id: int,
    portfolio_id: int,
    recommendation: EngineRecommendation,
    owner: User,
) -> int | None:
    """Store the run's recommendation (DRAFT), review it and tell the owner; its id, or None
    when it has no line (nothing is stored: the run's summary says so)."""
    stored = advice.store_recommendation(
        session, run_id=run_id, portfolio_id=portfolio_id, recommendation=recommendation
    )
    if stored is None:
        return None
    assert stored.recommendation_id is not None  # flushed
    review_and_notify(session, recommendation_id=stored.recommendation_id, owner=owner)
    return stored.recommendation_id


def review_and_notify(session: Session, *, recommendation_id: int, owner: User) -> LLMVerdict | None:
    """Review a stored recommendation with builtin-rules (offline, whatever
    ``TRADEASSIST_REVIEWER`` says: no network inside the recording transaction) and enqueue an
    email to ``owner`` with the headline, the verdict and the run. A review that cannot be made
    leaves the recommendation DRAFT without a verdict (approving it reviews it then); it never
    loses the run."""
    verdict = None
    try:
        with session.begin_nested():
            verdict = review_recommendation(
                session, actor=None, recommendation_id=recommendation_id, reviewer=DEFAULT_REVIEWER
            )
    except TradeAssistError as exc:
        log.warning("recommendation %s: not reviewed after its run: %s", recommendation_id, exc)
    reco, portfolio = load(session, None, recommendation_id, "notify")
    assert owner.user_id is not None  # read from the database
    notifications.enqueue(
        session,
        user_id=owner.user_id,
        portfolio_id=portfolio.portfolio_id,
        channel=Channel.EMAIL,
        target=owner.email,
        payload=_ready_payload(reco, portfolio, verdict),
        dedup_key=f"{RECOMMENDATION_READY}:{recommendation_id}",
        window=timedelta(days=1),
    )
    return verdict


def _ready_payload(reco: Recommendation, portfolio: Portfolio, verdict: LLMVerdict | None) -> dict[str, Any]:
    """The RECOMMENDATION_READY email: headline, review and what to do next."""
    reasons = verdict_row(verdict)["reasons"] if verdict is not None else []
    shown = verdict.verdict.value if verdict is not None else "not reviewed"
    body = [
        f"Recommendation {reco.recommendation_id} for {portfolio.name} (run {reco.run_id}): {reco.headline}",
        f"Review: {shown}" + (f" ({verdict.provider_name})" if verdict is not None else ""),
        *[f"- {reason}" for reason in reasons[:10]],
        "Approve, ignore or execute it with `tradeassist reco` or the approval notebook.",
    ]
    return {
        "event": RECOMMENDATION_READY,
        "subject": f"tradeassist: {portfolio.name}: {reco.headline}",
        "body": "\n".join(body),
        "run_id": reco.run_id,
        "recommendation_id": reco.recommendation_id,
        "portfolio": portfolio.name,
        "headline": reco.headline,
        "verdict": verdict.verdict.value if verdict is not None else None,
        "reasons": reasons,
    }
