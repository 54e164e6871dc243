"""Workflows across services: what happens, in order, when one event touches several of them.

* ``record_recommendation``: a run's recommendation is **stored** (``advice``) and **reviewed**
  with builtin-rules (``reviews``), in the run's recording transaction; it returns what the
  owner is to be told (``StoredRecommendation``: the lines, the verdict, the run's report).
* ``notify_ready``: the owner is **notified** (``notifications``), in the same transaction,
  with the message the caller composed from it (``presentation.run_email.ready_payload``:
  the trade table, the review verdict and where the report is), at the portfolio owner's
  email address.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlmodel import Session

from ..core.enums import Channel
from ..core.errors import TradeAssistError
from ..db.models import LLMVerdict, Notification, TaskRun, User
from ..engine.model import Recommendation as EngineRecommendation
from ..providers.reviewers import DEFAULT_REVIEWER
from . import advice, notifications
from .recommendation_records import lines_of, load
from .reviews import review_recommendation, verdict_row

log = logging.getLogger(__name__)

RECOMMENDATION_READY = "RECOMMENDATION_READY"


@dataclass(frozen=True)
class StoredRecommendation:
    """A run's recommendation as stored and reviewed: what its owner is told."""

    recommendation_id: int
    run_id: int | None
    portfolio_id: int
    portfolio: str
    status: str
    headline: str
    lines: tuple[Mapping[str, Any], ...]
    constraints_report: Mapping[str, Any]
    verdict: Mapping[str, Any] | None  # ``reviews.verdict_row``; None: not reviewed
    html_path: str | None = None
    notebook_path: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


def record_recommendation(
    session: Session,
    *,
    run_id: int,
    portfolio_id: int,
    recommendation: EngineRecommendation,
) -> StoredRecommendation | None:
    """Store the run's recommendation (DRAFT) and review it; None when it has no line
    (nothing is stored: the run's summary says so)."""
    stored = advice.store_recommendation(
        session, run_id=run_id, portfolio_id=portfolio_id, recommendation=recommendation
    )
    if stored is None:
        return None
    assert stored.recommendation_id is not None  # flushed
    verdict = review_after_run(session, recommendation_id=stored.recommendation_id)
    return stored_recommendation(session, stored.recommendation_id, verdict)


def review_after_run(session: Session, *, recommendation_id: int) -> LLMVerdict | None:
    """Review a stored recommendation with builtin-rules (offline, whatever
    ``TRADEASSIST_REVIEWER`` says: no network inside the recording transaction). A review that
    cannot be made leaves the recommendation DRAFT without a verdict (approving it reviews it
    then); it never loses the run."""
    try:
        with session.begin_nested():
            return review_recommendation(
                session, actor=None, recommendation_id=recommendation_id, reviewer=DEFAULT_REVIEWER
            )
    except TradeAssistError as exc:
        log.warning("recommendation %s: not reviewed after its run: %s", recommendation_id, exc)
        return None


def stored_recommendation(
    session: Session, recommendation_id: int, verdict: LLMVerdict | None
) -> StoredRecommendation:
    reco, portfolio = load(session, None, recommendation_id, "notify")
    run = session.get(TaskRun, reco.run_id) if reco.run_id is not None else None
    assert portfolio.portfolio_id is not None  # read from the database
    return StoredRecommendation(
        recommendation_id=recommendation_id,
        run_id=reco.run_id,
        portfolio_id=portfolio.portfolio_id,
        portfolio=portfolio.name,
        status=reco.status.value,
        headline=reco.headline,
        lines=tuple(lines_of(session, [recommendation_id])[recommendation_id]),
        constraints_report=dict(reco.constraints_report or {}),
        verdict=verdict_row(verdict) if verdict is not None else None,
        html_path=run.html_path if run is not None else None,
        notebook_path=run.notebook_path if run is not None else None,
    )


def notify_ready(
    session: Session, *, stored: StoredRecommendation, owner: User, payload: Mapping[str, Any]
) -> Notification:
    """Enqueue the RECOMMENDATION_READY email to ``owner`` (the portfolio's owner), at most
    once a day per recommendation."""
    assert owner.user_id is not None  # read from the database
    return notifications.enqueue(
        session,
        user_id=owner.user_id,
        portfolio_id=stored.portfolio_id,
        channel=Channel.EMAIL,
        target=owner.email,
        payload={"event": RECOMMENDATION_READY, **payload},
        dedup_key=f"{RECOMMENDATION_READY}:{stored.recommendation_id}",
        window=timedelta(days=1),
    )
