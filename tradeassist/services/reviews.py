"""Reviews: a reviewer's verdict on a recommendation, or on a strategy version's manifesto.

A reviewer (``providers.reviewers``; default ``builtin-rules``, offline) is given a
``ReviewRequest``: for a recommendation, the recommendation with the policy and manifesto of
the strategy version it was computed under (the currently approved one when it came from no
run), the task kind and the portfolio's freeze flag; for a manifesto, the manifesto and its
policy. Each verdict is an ``llm_verdicts`` row under ``request_hash``: a request whose hash is
stored already is answered from the stored verdict and never sent again.

A networked reviewer should not be called inside a long write transaction:
``review_outside_transaction`` reads, calls the reviewer with no transaction open, then stores.
What a FAIL means is the caller's: approving a recommendation (``recommendations``) or a
strategy version (``strategy``) needs an override reason, else ``ReviewFailed``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from ..core.errors import ProviderError, ValidationError
from ..core.jsonutil import plain
from ..db.engine import unit_of_work
from ..db.models import (
    LLMVerdict,
    PortfolioConstituent,
    Recommendation,
    StrategyVersion,
    TaskDefinition,
    TaskRun,
    User,
)
from ..policy import policy_to_dict
from ..providers.reviewers import (
    MANIFESTO,
    RECOMMENDATION,
    Reviewer,
    ReviewRequest,
    ReviewVerdict,
    get_reviewer,
    request_hash,
)
from . import audit, governance
from .recommendation_records import OPEN, lines_of, load
from .strategy_versions import governing_strategy, load_version


class ReviewFailed(ValidationError):
    """The latest review FAILED: approval needs an override reason."""


def verdict_row(verdict: LLMVerdict) -> dict[str, Any]:
    response = verdict.response_json or {}
    return {
        "llm_verdict_id": verdict.llm_verdict_id,
        "provider": verdict.provider_name,
        "model": verdict.model_name,
        "verdict": verdict.verdict.value,
        "reasons": list(response.get("reasons") or []),
        "request_hash": verdict.request_hash,
        "created_at": verdict.created_at,
    }


def latest_verdict(session: Session, recommendation_id: int) -> LLMVerdict | None:
    return session.exec(
        select(LLMVerdict)
        .where(LLMVerdict.recommendation_id == recommendation_id)
        .order_by(col(LLMVerdict.llm_verdict_id).desc())
        .limit(1)
    ).first()


def fail_message(subject: str, verdict: LLMVerdict) -> str:
    reasons = "; ".join(verdict_row(verdict)["reasons"][:5]) or "no reasons given"
    return (
        f"{subject}: the review by {verdict.provider_name} ({verdict.model_name}) FAILED: {reasons}. "
        "Approve with an override reason to go ahead anyway"
    )


# --------------------------------------------------------------------------------------------
# What a reviewer is given
# --------------------------------------------------------------------------------------------
def _strategy_of(session: Session, reco: Recommendation) -> tuple[StrategyVersion, str | None]:
    """The strategy version the recommendation was computed under (the one that governed its
    run), and the run's task kind; without a run, the version governing its portfolio now."""
    run = session.get(TaskRun, reco.run_id) if reco.run_id is not None else None
    kind = None
    if run is not None:
        task = session.get(TaskDefinition, run.task_id)
        kind = task.task_kind.value if task is not None else None
        if run.strategy_version_id is not None:
            version = session.get(StrategyVersion, run.strategy_version_id)
            if version is not None:
                return version, kind
    return governing_strategy(session, reco.portfolio_id).version, kind


def _shown_lines(session: Session, reco: Recommendation) -> list[dict[str, Any]]:
    """The recommendation's lines, each with its sleeve when the portfolio maps the listing."""
    assert reco.recommendation_id is not None  # read from the database
    lines = lines_of(session, [reco.recommendation_id])[reco.recommendation_id]
    sleeves = dict(
        session.exec(
            select(PortfolioConstituent.listing_id, PortfolioConstituent.sleeve_code).where(
                PortfolioConstituent.portfolio_id == reco.portfolio_id
            )
        ).all()
    )
    shown = []
    for line in lines:
        item = {k: v for k, v in line.items() if k not in ("line_id", "listing_id")}
        if line["listing_id"] in sleeves:
            item["sleeve"] = sleeves[line["listing_id"]]
        shown.append(item)
    return shown


def recommendation_request(session: Session, reco: Recommendation) -> ReviewRequest:
    """What a reviewer is given for ``reco`` (each line with its sleeve when the portfolio maps it)."""
    version, kind = _strategy_of(session, reco)
    strategy = load_version(session, version)
    document = {
        "headline": reco.headline,
        "rationale": reco.rationale,
        "constraints_report": reco.constraints_report,
        "lines": _shown_lines(session, reco),
    }
    return ReviewRequest(
        RECOMMENDATION,
        policy_to_dict(strategy.policy),
        manifesto=strategy.manifesto,
        recommendation=plain(document),
        task_kind=kind or (reco.rationale or {}).get("kind"),
        portfolio_frozen=governance.is_frozen(session, reco.portfolio_id),
    )


def manifesto_request(session: Session, version: StrategyVersion) -> ReviewRequest:
    strategy = load_version(session, version)
    return ReviewRequest(MANIFESTO, policy_to_dict(strategy.policy), manifesto=strategy.manifesto)


# --------------------------------------------------------------------------------------------
# Making a review: plan, ask (or reuse), store
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PlannedReview:
    """A review to make: the request, who answers it, and the stored verdict if it was made."""

    request: ReviewRequest
    reviewer: Reviewer
    request_hash: str
    recommendation_id: int | None = None
    strategy_version_id: int | None = None

    @property
    def subject(self) -> str:
        if self.recommendation_id is not None:
            return f"recommendation {self.recommendation_id}"
        return f"strategy version {self.strategy_version_id}"

    def is_for(self, verdict: LLMVerdict) -> bool:
        """The verdict was stored for this plan's subject."""
        return (verdict.recommendation_id, verdict.strategy_version_id) == (
            self.recommendation_id,
            self.strategy_version_id,
        )


def stored_verdict(session: Session, plan: PlannedReview) -> LLMVerdict | None:
    """The verdict already stored for this request: this subject's own, else a copy (stored for
    this subject, without asking again) of another subject's verdict on the identical request."""
    rows = session.exec(
        select(LLMVerdict)
        .where(LLMVerdict.request_hash == plan.request_hash)
        .order_by(col(LLMVerdict.llm_verdict_id))
    ).all()
    for row in rows:
        if plan.is_for(row):
            return row
    return rows[0] if rows else None


def call_reviewer(plan: PlannedReview) -> ReviewVerdict:
    """Ask the reviewer; a failure is a ``ProviderError`` naming the reviewer and the subject."""
    try:
        return plan.reviewer.review(plan.request)
    except ProviderError as exc:
        raise ProviderError(
            f"the {plan.reviewer.name} reviewer ({plan.reviewer.model}) "
            f"could not review {plan.subject}: {exc}"
        ) from None


def store_verdict(
    session: Session,
    plan: PlannedReview,
    answer: ReviewVerdict | LLMVerdict,
    *,
    actor: User | None,
) -> LLMVerdict:
    """Store ``answer`` (a fresh verdict, or another subject's stored verdict on the same
    request) for the plan's subject, audited."""
    if isinstance(answer, LLMVerdict):
        provider, model, verdict = answer.provider_name, answer.model_name, answer.verdict
        response, reused = dict(answer.response_json), answer.llm_verdict_id
    else:
        provider, model, verdict = answer.provider, answer.model, answer.verdict
        response = {
            "verdict": answer.verdict.value,
            "reasons": list(answer.reasons),
            "response": answer.response_json,
            "request": plan.request.to_json_dict(),
        }
        reused = None
    row = LLMVerdict(
        recommendation_id=plan.recommendation_id,
        strategy_version_id=plan.strategy_version_id,
        provider_name=provider,
        model_name=model,
        verdict=verdict,
        request_hash=plan.request_hash,
        response_json=plain(response),
    )
    session.add(row)
    session.flush()
    if plan.recommendation_id is None:  # a manifesto's verdict is audited with the approval
        return row
    audit.record(
        session,
        actor=actor,
        action="RECO_REVIEWED",
        entity_type="recommendation",
        entity_id=plan.recommendation_id,
        details={
            "llm_verdict_id": row.llm_verdict_id,
            "provider": provider,
            "model": model,
            "verdict": verdict.value,
            "request_hash": plan.request_hash,
            "copied_from_verdict": reused,
        },
    )
    return row


def _review(session: Session, plan: PlannedReview, actor: User | None) -> LLMVerdict:
    found = stored_verdict(session, plan)
    if found is not None and plan.is_for(found):
        return found
    return store_verdict(session, plan, found if found is not None else call_reviewer(plan), actor=actor)


def plan_recommendation_review(
    session: Session, *, actor: User | None, recommendation_id: int, reviewer: str | None = None
) -> PlannedReview:
    reco, _portfolio = load(session, actor, recommendation_id, "review recommendations")
    if reco.status not in OPEN:
        raise ValidationError(
            f"recommendation {recommendation_id} is {reco.status.value}: "
            "only a DRAFT or REVIEWED recommendation is reviewed"
        )
    request = recommendation_request(session, reco)
    chosen = get_reviewer(reviewer)
    return PlannedReview(
        request, chosen, request_hash(request, chosen.name, chosen.model), recommendation_id=recommendation_id
    )


def review_recommendation(
    session: Session, *, actor: User | None, recommendation_id: int, reviewer: str | None = None
) -> LLMVerdict:
    """Review a DRAFT or REVIEWED recommendation with ``reviewer`` (default
    ``TRADEASSIST_REVIEWER``, else builtin-rules). A request reviewed before is answered from
    the stored verdict. ``actor`` None is the system (the runner): no access check."""
    plan = plan_recommendation_review(
        session, actor=actor, recommendation_id=recommendation_id, reviewer=reviewer
    )
    return _review(session, plan, actor)


def review_outside_transaction(
    engine: Engine, *, actor_id: int, recommendation_id: int, reviewer: str | None = None
) -> LLMVerdict:
    """The same review, with no transaction open while the reviewer thinks (an LLM may take a
    minute; a SQLite write transaction would block every other writer that long)."""
    with unit_of_work(engine, readonly=True) as session:
        actor = session.get(User, actor_id)
        assert actor is not None
        plan = plan_recommendation_review(
            session, actor=actor, recommendation_id=recommendation_id, reviewer=reviewer
        )
        found = stored_verdict(session, plan)
    answer: ReviewVerdict | LLMVerdict = found if found is not None else call_reviewer(plan)
    with unit_of_work(engine) as session:
        actor = session.get(User, actor_id)
        # Checked again: the recommendation may have moved on, or another process reviewed it.
        again = plan_recommendation_review(
            session, actor=actor, recommendation_id=recommendation_id, reviewer=reviewer
        )
        if again.request_hash != plan.request_hash:
            raise ValidationError(
                f"recommendation {recommendation_id} changed while it was reviewed (its strategy or "
                "freeze state): review it again"
            )
        stored = stored_verdict(session, plan)
        if stored is not None and stored.recommendation_id == recommendation_id:
            return stored
        return store_verdict(session, plan, stored or answer, actor=actor)


def review_manifesto(
    session: Session, *, actor: User | None, version: StrategyVersion, reviewer: str | None = None
) -> LLMVerdict:
    """Review a strategy version's manifesto (against its policy); stored with the version."""
    request = manifesto_request(session, version)
    chosen = get_reviewer(reviewer)
    plan = PlannedReview(
        request,
        chosen,
        request_hash(request, chosen.name, chosen.model),
        strategy_version_id=version.strategy_version_id,
    )
    return _review(session, plan, actor)
