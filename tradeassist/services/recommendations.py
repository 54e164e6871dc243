"""The recommendation lifecycle: review, approve (or ignore), execute.

A run stores its recommendation as a DRAFT. From there::

    DRAFT --approve--> REVIEWED --execute--> EXECUTED
      |                   |
      +------ignore-------+-----> IGNORED

* **Review** (``reviews``): a reviewer's verdict, stored under its request's hash; a request
  reviewed before is answered from the stored verdict.
* **Approve** (DRAFT -> REVIEWED): reviews first when there is no verdict yet; refused while the
  portfolio is frozen; refused when the latest verdict is FAIL unless an override reason is
  given (audited ``RECO_FAIL_OVERRIDDEN``; the reason is kept in ``status_reason``).
* **Ignore** (DRAFT or REVIEWED -> IGNORED) with a reason.
* **Execute** (REVIEWED -> EXECUTED, ``executions``): the fills the user made at the broker
  become one ``EXECUTION`` ledger batch linked to the recommendation, in the caller's
  transaction.

Every transition is audited and refused from the wrong state with a message naming the state.
Services never commit: the caller owns the transaction. This module is the lifecycle's one
entry point: the review and execution functions are importable from here too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlmodel import Session, col, select

from ..core.enums import TaskKind, Verdict
from ..core.errors import ValidationError
from ..db.models import AuditEvent, LLMVerdict, Recommendation, TaskDefinition, TaskRun, User
from . import audit, governance
from .access import accessible_portfolios, portfolio_for
from .executions import Fill, execute_recommendation
from .recommendation_records import (
    DRAFT,
    IGNORED,
    OPEN,
    REVIEWED,
    lines_of,
    load,
    refuse_state,
    set_status,
)
from .reviews import (
    ReviewFailed,
    fail_message,
    latest_verdict,
    review_manifesto,
    review_outside_transaction,
    review_recommendation,
    verdict_row,
)

__all__ = [
    "Fill",
    "ReviewFailed",
    "approve_recommendation",
    "execute_recommendation",
    "get_recommendation",
    "ignore_recommendation",
    "pending_recommendations",
    "review_manifesto",
    "review_outside_transaction",
    "review_recommendation",
    "verdict_row",
]

OVERRIDDEN = "RECO_FAIL_OVERRIDDEN"


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------
def _verdicts(session: Session, ids: Sequence[int]) -> dict[int, list[LLMVerdict]]:
    found: dict[int, list[LLMVerdict]] = {i: [] for i in ids}
    if not ids:
        return found
    rows = session.exec(
        select(LLMVerdict)
        .where(col(LLMVerdict.recommendation_id).in_(ids))
        .order_by(col(LLMVerdict.llm_verdict_id))
    ).all()
    for verdict in rows:
        assert verdict.recommendation_id is not None  # selected by it
        found[verdict.recommendation_id].append(verdict)
    return found


def _overridden(session: Session, ids: Sequence[int]) -> set[int]:
    """Ids of the verdicts whose FAIL was overridden (from the audit trail)."""
    if not ids:
        return set()
    events = session.exec(
        select(AuditEvent).where(
            AuditEvent.action == OVERRIDDEN,
            AuditEvent.entity_type == "recommendation",
            col(AuditEvent.entity_id).in_([str(i) for i in ids]),
        )
    ).all()
    return {int(e.details["llm_verdict_id"]) for e in events if e.details.get("llm_verdict_id") is not None}


def _run_kinds(session: Session, recos: Sequence[Recommendation]) -> dict[int, tuple[str, int | None]]:
    """The task kind of each run the recommendations came from, and its household's first run
    (None for a run of one portfolio)."""
    run_ids = [r.run_id for r in recos if r.run_id is not None]
    if not run_ids:
        return {}
    rows = session.exec(
        select(TaskRun.run_id, TaskDefinition.task_kind, TaskRun.household_run_id)
        .join(TaskDefinition, col(TaskDefinition.task_id) == col(TaskRun.task_id))
        .where(col(TaskRun.run_id).in_(run_ids))
    ).all()
    return {run_id: (TaskKind(kind).value, household) for run_id, kind, household in rows}


def _row(
    reco: Recommendation,
    portfolio: str,
    lines: list[dict[str, Any]],
    verdicts: list[LLMVerdict],
    overridden: set[int],
    frozen: bool,
    run: tuple[str, int | None] | None,
) -> dict[str, Any]:
    latest = verdicts[-1] if verdicts else None
    run_kind, household_run_id = run if run is not None else (None, None)
    return {
        "recommendation_id": reco.recommendation_id,
        "portfolio": portfolio,
        "run_id": reco.run_id,
        "kind": run_kind or (reco.rationale or {}).get("kind"),
        "created_at": reco.created_at,
        "status": reco.status.value,
        "status_reason": reco.status_reason,
        "headline": reco.headline,
        "rationale": reco.rationale,
        "constraints_report": reco.constraints_report,
        "lines": [{k: v for k, v in line.items() if k != "listing_id"} for line in lines],
        "verdicts": [verdict_row(v) for v in verdicts],
        "latest_verdict": latest.verdict.value if latest else None,
        "blocked": bool(
            latest is not None and latest.verdict is Verdict.FAIL and latest.llm_verdict_id not in overridden
        ),
        "frozen": frozen,
        "household_run_id": household_run_id,
    }


def _rows(
    session: Session, recos: Sequence[Recommendation], names: Mapping[int, str]
) -> list[dict[str, Any]]:
    ids = [r.recommendation_id for r in recos if r.recommendation_id is not None]
    lines, verdicts, overridden = lines_of(session, ids), _verdicts(session, ids), _overridden(session, ids)
    kinds = _run_kinds(session, recos)
    frozen = {pid: governance.is_frozen(session, pid) for pid in {r.portfolio_id for r in recos}}
    rows = []
    for r in recos:
        assert r.recommendation_id is not None  # read from the database
        rows.append(
            _row(
                r,
                names[r.portfolio_id],
                lines[r.recommendation_id],
                verdicts[r.recommendation_id],
                overridden,
                frozen[r.portfolio_id],
                kinds.get(r.run_id) if r.run_id is not None else None,
            )
        )
    return rows


def pending_recommendations(
    session: Session, *, actor: User, portfolio: str | None = None, include_closed: bool = False
) -> list[dict[str, Any]]:
    """Recommendations awaiting a decision (DRAFT, REVIEWED), newest first; with
    ``include_closed`` the EXECUTED and IGNORED ones too. Only portfolios the actor may use."""
    if portfolio is not None:
        chosen = portfolio_for(session, actor, portfolio, "read recommendations")
        assert chosen.portfolio_id is not None  # read from the database
        names = {chosen.portfolio_id: chosen.name}
    else:
        names = {
            p.portfolio_id: p.name
            for p in accessible_portfolios(session, actor)
            if p.portfolio_id is not None
        }
    if not names:
        return []
    query = select(Recommendation).where(col(Recommendation.portfolio_id).in_(list(names)))
    if not include_closed:
        query = query.where(col(Recommendation.status).in_(OPEN))
    recos = session.exec(query.order_by(col(Recommendation.recommendation_id).desc())).all()
    return _rows(session, recos, names)


def get_recommendation(session: Session, *, actor: User, recommendation_id: int) -> dict[str, Any]:
    reco, portfolio = load(session, actor, recommendation_id, "read recommendations")
    assert portfolio.portfolio_id is not None  # read from the database
    return _rows(session, [reco], {portfolio.portfolio_id: portfolio.name})[0]


# --------------------------------------------------------------------------------------------
# Transitions
# --------------------------------------------------------------------------------------------
def _override(session: Session, actor: User, recommendation_id: int, verdict: LLMVerdict, reason: str) -> str:
    """Go ahead despite a FAIL (audited); the status reason that says so."""
    audit.record(
        session,
        actor=actor,
        action=OVERRIDDEN,
        entity_type="recommendation",
        entity_id=recommendation_id,
        details={
            "reason": reason,
            "llm_verdict_id": verdict.llm_verdict_id,
            "provider": verdict.provider_name,
            "model": verdict.model_name,
            "reasons": verdict_row(verdict)["reasons"],
        },
    )
    return f"FAIL overridden: {reason}"


def approve_recommendation(
    session: Session, *, actor: User, recommendation_id: int, override_reason: str | None = None
) -> Recommendation:
    """DRAFT -> REVIEWED. Reviews first if there is no verdict yet; refused while the portfolio
    is frozen, and when the latest verdict is FAIL unless ``override_reason`` is given."""
    reco, portfolio = load(session, actor, recommendation_id, "approve recommendations", lock=True)
    refuse_state(reco, "approved", (DRAFT,))
    assert portfolio.portfolio_id is not None  # read from the database
    governance.require_not_frozen(
        session, portfolio.portfolio_id, f"approve recommendation {recommendation_id}"
    )
    verdict = latest_verdict(session, recommendation_id)
    if verdict is None:
        verdict = review_recommendation(session, actor=actor, recommendation_id=recommendation_id)
    reason = (override_reason or "").strip() or None
    status_reason = None
    if verdict.verdict is Verdict.FAIL:
        if reason is None:
            raise ReviewFailed(fail_message(f"recommendation {recommendation_id}", verdict))
        status_reason = _override(session, actor, recommendation_id, verdict, reason)
    set_status(session, reco, REVIEWED, status_reason)
    audit.record(
        session,
        actor=actor,
        action="RECO_APPROVED",
        entity_type="recommendation",
        entity_id=recommendation_id,
        details={
            "portfolio": portfolio.name,
            "llm_verdict_id": verdict.llm_verdict_id,
            "verdict": verdict.verdict.value,
            "overridden": status_reason is not None,
        },
    )
    return reco


def ignore_recommendation(
    session: Session, *, actor: User, recommendation_id: int, reason: str
) -> Recommendation:
    """DRAFT or REVIEWED -> IGNORED, with the reason."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError("ignoring a recommendation needs a reason")
    reco, portfolio = load(session, actor, recommendation_id, "ignore recommendations", lock=True)
    refuse_state(reco, "ignored", OPEN)
    previous = reco.status.value
    set_status(session, reco, IGNORED, reason)
    audit.record(
        session,
        actor=actor,
        action="RECO_IGNORED",
        entity_type="recommendation",
        entity_id=recommendation_id,
        details={"portfolio": portfolio.name, "from": previous, "reason": reason},
    )
    return reco
