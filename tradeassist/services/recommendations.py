"""The recommendation lifecycle: review, approve (or ignore), execute.

A run stores its recommendation as a DRAFT. From there::

    DRAFT --approve--> REVIEWED --execute--> EXECUTED
      |                   |
      +------ignore-------+-----> IGNORED

* **Review**: a reviewer (``providers.reviewers``; default ``builtin-rules``, offline) is given
  the recommendation, the policy and manifesto of the strategy version it was computed under
  (the currently approved one when it came from no run), the task kind and the portfolio's
  freeze flag. Each verdict is an ``llm_verdicts`` row under ``request_hash``: a request whose
  hash is stored already is answered from the stored verdict and never sent again.
* **Approve** (DRAFT -> REVIEWED): reviews first when there is no verdict yet; refused while the
  portfolio is frozen; refused when the latest verdict is FAIL unless an override reason is
  given (audited ``RECO_FAIL_OVERRIDDEN``; the reason is kept in ``status_reason``).
* **Ignore** (DRAFT or REVIEWED -> IGNORED) with a reason.
* **Execute** (REVIEWED -> EXECUTED): the fills the user made at the broker become one
  ``EXECUTION`` ledger batch linked to the recommendation, in the caller's transaction: if the
  ledger refuses a fill (selling more than is held, cash below zero) nothing is changed.

Every transition is audited and refused from the wrong state with a message naming the state.
Services never commit: the caller owns the transaction. A networked reviewer should not be
called inside a long write transaction: ``review_outside_transaction`` reads, calls the
reviewer with no transaction open, then stores.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from ..core.enums import BatchType, Channel, EntryType, RecommendationStatus, TradeAction, Verdict
from ..core.errors import LedgerError, NotFound, ProviderError, TradeAssistError, ValidationError
from ..core.jsonutil import dumps as json_dumps
from ..core.jsonutil import loads_decimal
from ..core.money import ZERO, decimal_str, round_cash, to_decimal
from ..core.timeutil import ensure_utc, utcnow
from ..db.engine import unit_of_work
from ..db.models import (
    AuditEvent,
    InstrumentListing,
    LLMVerdict,
    Portfolio,
    PortfolioConstituent,
    Recommendation,
    RecommendationLine,
    StrategyVersion,
    TaskDefinition,
    TaskRun,
    User,
)
from ..engine import book as bk
from ..policy import policy_to_dict
from ..providers.reviewers import (
    DEFAULT_REVIEWER,
    MANIFESTO,
    RECOMMENDATION,
    Reviewer,
    ReviewRequest,
    ReviewVerdict,
    get_reviewer,
    request_hash,
)
from . import audit, governance, ledger
from .access import accessible_portfolios, portfolio_for, require_access
from .strategy import governing_strategy, load_version

log = logging.getLogger(__name__)

DRAFT, REVIEWED = RecommendationStatus.DRAFT, RecommendationStatus.REVIEWED
EXECUTED, IGNORED = RecommendationStatus.EXECUTED, RecommendationStatus.IGNORED
OPEN = (DRAFT, REVIEWED)
OVERRIDDEN = "RECO_FAIL_OVERRIDDEN"
RECOMMENDATION_READY = "RECOMMENDATION_READY"
# A fill whose GBP price per unit is this many times off the line's estimate is a typing
# mistake (pence typed as pounds, or the reverse), not a market move.
PRICE_SANITY_FACTOR = Decimal(10)
_ENTRY_NUMBER = re.compile(r"(?<!ledger )\bentry (\d+)\b")  # a new entry, not a stored one


class ReviewFailed(ValidationError):
    """The latest review FAILED: approval needs an override reason."""


# --------------------------------------------------------------------------------------------
# Fills
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Fill:
    """One execution at the broker, as on the contract note.

    ``price`` is in the listing's quote scale (pence for a GBX listing, dollars for a USD one);
    ``fees_base`` in GBP. A listing quoted in another currency than GBP needs
    ``consideration_base``, the GBP value the broker charged or paid before fees (V1 keeps no
    FX on entries); for a GBP or GBX listing it is units x price, rounded to the penny.
    """

    ticker: str
    exchange: str
    action: TradeAction | str
    units: Decimal | str
    price: Decimal | str
    fees_base: Decimal | str = ZERO
    executed_at: datetime | None = None
    consideration_base: Decimal | str | None = None

    @classmethod
    def parse(cls, text: str, executed_at: datetime | None = None) -> Fill:
        """``TICKER:EXCHANGE:ACTION:UNITS:PRICE:FEES[:CONSIDERATION_GBP]`` (the CLI's ``--fill``)."""
        parts = [part.strip() for part in text.split(":")]
        if len(parts) not in (6, 7) or not all(parts[:6]):
            raise ValidationError(
                f"--fill {text!r}: expected TICKER:EXCHANGE:ACTION:UNITS:PRICE:FEES "
                "(and :CONSIDERATION_GBP for a listing not quoted in GBP or pence)"
            )
        return cls(
            ticker=parts[0],
            exchange=parts[1],
            action=parts[2],
            units=parts[3],
            price=parts[4],
            fees_base=parts[5],
            executed_at=executed_at,
            consideration_base=parts[6] if len(parts) == 7 and parts[6] else None,
        )


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------
def _get(
    session: Session, actor: User | None, recommendation_id: int, operation: str, *, lock: bool = False
) -> tuple[Recommendation, Portfolio]:
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
            .join(InstrumentListing, InstrumentListing.listing_id == RecommendationLine.listing_id)
            .where(RecommendationLine.recommendation_id.in_(ids))  # type: ignore[union-attr]
            .order_by(RecommendationLine.line_id)  # type: ignore[arg-type]
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


def _lines(session: Session, ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
    found: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    for line, listing in stored_lines(session, ids):
        found[line.recommendation_id].append(
            {"line_id": line.line_id, "listing_id": line.listing_id, **line_json(line, listing)}
        )
    return found


def _verdicts(session: Session, ids: Sequence[int]) -> dict[int, list[LLMVerdict]]:
    found: dict[int, list[LLMVerdict]] = {i: [] for i in ids}
    if not ids:
        return found
    rows = session.exec(
        select(LLMVerdict)
        .where(LLMVerdict.recommendation_id.in_(ids))  # type: ignore[union-attr]
        .order_by(LLMVerdict.llm_verdict_id)  # type: ignore[arg-type]
    ).all()
    for verdict in rows:
        found[verdict.recommendation_id].append(verdict)  # type: ignore[index]
    return found


def _overridden(session: Session, ids: Sequence[int]) -> set[int]:
    """Ids of the verdicts whose FAIL was overridden (from the audit trail)."""
    if not ids:
        return set()
    events = session.exec(
        select(AuditEvent).where(
            AuditEvent.action == OVERRIDDEN,
            AuditEvent.entity_type == "recommendation",
            AuditEvent.entity_id.in_([str(i) for i in ids]),  # type: ignore[union-attr]
        )
    ).all()
    return {int(e.details["llm_verdict_id"]) for e in events if e.details.get("llm_verdict_id") is not None}


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


def _row(
    reco: Recommendation,
    portfolio: str,
    lines: list[dict[str, Any]],
    verdicts: list[LLMVerdict],
    overridden: set[int],
    frozen: bool,
    run_kind: str | None,
) -> dict[str, Any]:
    latest = verdicts[-1] if verdicts else None
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
    }


def _rows(
    session: Session, recos: Sequence[Recommendation], names: Mapping[int, str]
) -> list[dict[str, Any]]:
    ids = [r.recommendation_id for r in recos if r.recommendation_id is not None]
    lines, verdicts, overridden = _lines(session, ids), _verdicts(session, ids), _overridden(session, ids)
    run_ids = [r.run_id for r in recos if r.run_id is not None]
    kinds: dict[int, str] = {}
    if run_ids:
        for run_id, kind in session.exec(
            select(TaskRun.run_id, TaskDefinition.task_kind)
            .join(TaskDefinition, TaskDefinition.task_id == TaskRun.task_id)
            .where(TaskRun.run_id.in_(run_ids))  # type: ignore[attr-defined]
        ).all():
            kinds[run_id] = kind.value
    frozen = {pid: governance.is_frozen(session, pid) for pid in {r.portfolio_id for r in recos}}
    return [
        _row(
            r,
            names[r.portfolio_id],
            lines[r.recommendation_id],  # type: ignore[index]
            verdicts[r.recommendation_id],  # type: ignore[index]
            overridden,
            frozen[r.portfolio_id],
            kinds.get(r.run_id) if r.run_id is not None else None,
        )
        for r in recos
    ]


def pending_recommendations(
    session: Session, *, actor: User, portfolio: str | None = None, include_closed: bool = False
) -> list[dict[str, Any]]:
    """Recommendations awaiting a decision (DRAFT, REVIEWED), newest first; with
    ``include_closed`` the EXECUTED and IGNORED ones too. Only portfolios the actor may use."""
    if portfolio is not None:
        chosen = portfolio_for(session, actor, portfolio, "read recommendations")
        names = {chosen.portfolio_id: chosen.name}
    else:
        names = {p.portfolio_id: p.name for p in accessible_portfolios(session, actor)}
    if not names:
        return []
    query = select(Recommendation).where(Recommendation.portfolio_id.in_(list(names)))  # type: ignore[attr-defined]
    if not include_closed:
        query = query.where(Recommendation.status.in_(OPEN))  # type: ignore[attr-defined]
    recos = session.exec(query.order_by(Recommendation.recommendation_id.desc())).all()  # type: ignore[union-attr]
    return _rows(session, recos, names)  # type: ignore[arg-type]


def get_recommendation(session: Session, *, actor: User, recommendation_id: int) -> dict[str, Any]:
    reco, portfolio = _get(session, actor, recommendation_id, "read recommendations")
    return _rows(session, [reco], {portfolio.portfolio_id: portfolio.name})[0]  # type: ignore[dict-item]


def latest_verdict(session: Session, recommendation_id: int) -> LLMVerdict | None:
    return session.exec(
        select(LLMVerdict)
        .where(LLMVerdict.recommendation_id == recommendation_id)
        .order_by(LLMVerdict.llm_verdict_id.desc())  # type: ignore[union-attr]
        .limit(1)
    ).first()


# --------------------------------------------------------------------------------------------
# Reviews (recommendations and manifestos)
# --------------------------------------------------------------------------------------------
def _plain(value: Any) -> Any:
    """As a JSON column gives it back: decimals as exact strings."""
    return loads_decimal(json_dumps(value)) if value is not None else None


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


def recommendation_request(session: Session, reco: Recommendation) -> ReviewRequest:
    """What a reviewer is given for ``reco`` (each line with its sleeve when the portfolio maps it)."""
    version, kind = _strategy_of(session, reco)
    strategy = load_version(session, version)
    lines = _lines(session, [reco.recommendation_id])[reco.recommendation_id]  # type: ignore[list-item,index]
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
    document = {
        "headline": reco.headline,
        "rationale": reco.rationale,
        "constraints_report": reco.constraints_report,
        "lines": shown,
    }
    return ReviewRequest(
        RECOMMENDATION,
        policy_to_dict(strategy.policy),
        manifesto=strategy.manifesto,
        recommendation=_plain(document),
        task_kind=kind or (reco.rationale or {}).get("kind"),
        portfolio_frozen=governance.is_frozen(session, reco.portfolio_id),
    )


def manifesto_request(session: Session, version: StrategyVersion) -> ReviewRequest:
    strategy = load_version(session, version)
    return ReviewRequest(MANIFESTO, policy_to_dict(strategy.policy), manifesto=strategy.manifesto)


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


def _stored(session: Session, plan: PlannedReview) -> LLMVerdict | None:
    """The verdict already stored for this request: this subject's own, else a copy (stored for
    this subject, without asking again) of another subject's verdict on the identical request."""
    rows = session.exec(
        select(LLMVerdict)
        .where(LLMVerdict.request_hash == plan.request_hash)
        .order_by(LLMVerdict.llm_verdict_id)  # type: ignore[arg-type]
    ).all()
    for row in rows:
        if (row.recommendation_id, row.strategy_version_id) == (
            plan.recommendation_id,
            plan.strategy_version_id,
        ):
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
        response_json=_plain(response),
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
    found = _stored(session, plan)
    if found is not None and (found.recommendation_id, found.strategy_version_id) == (
        plan.recommendation_id,
        plan.strategy_version_id,
    ):
        return found
    return store_verdict(session, plan, found if found is not None else call_reviewer(plan), actor=actor)


def _reviewer(name: str | None) -> Reviewer:
    return get_reviewer(name)


def plan_recommendation_review(
    session: Session, *, actor: User | None, recommendation_id: int, reviewer: str | None = None
) -> PlannedReview:
    reco, _portfolio = _get(session, actor, recommendation_id, "review recommendations")
    if reco.status not in OPEN:
        raise ValidationError(
            f"recommendation {recommendation_id} is {reco.status.value}: "
            "only a DRAFT or REVIEWED recommendation is reviewed"
        )
    request = recommendation_request(session, reco)
    chosen = _reviewer(reviewer)
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
        found = _stored(session, plan)
    answer: ReviewVerdict | LLMVerdict | None = found
    if found is None:
        answer = call_reviewer(plan)
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
        stored = _stored(session, plan)
        if stored is not None and stored.recommendation_id == recommendation_id:
            return stored
        assert answer is not None
        return store_verdict(session, plan, stored or answer, actor=actor)


def review_manifesto(
    session: Session, *, actor: User | None, version: StrategyVersion, reviewer: str | None = None
) -> LLMVerdict:
    """Review a strategy version's manifesto (against its policy); stored with the version."""
    request = manifesto_request(session, version)
    chosen = _reviewer(reviewer)
    plan = PlannedReview(
        request,
        chosen,
        request_hash(request, chosen.name, chosen.model),
        strategy_version_id=version.strategy_version_id,
    )
    return _review(session, plan, actor)


def fail_message(subject: str, verdict: LLMVerdict) -> str:
    reasons = "; ".join(verdict_row(verdict)["reasons"][:5]) or "no reasons given"
    return (
        f"{subject}: the review by {verdict.provider_name} ({verdict.model_name}) FAILED: {reasons}. "
        "Approve with an override reason to go ahead anyway"
    )


# --------------------------------------------------------------------------------------------
# Transitions
# --------------------------------------------------------------------------------------------
def _refuse_state(reco: Recommendation, action: str, allowed: Iterable[RecommendationStatus]) -> None:
    if reco.status not in allowed:
        names = " or ".join(s.value for s in allowed)
        raise ValidationError(
            f"recommendation {reco.recommendation_id} is {reco.status.value}: "
            f"only a {names} recommendation can be {action}"
        )


def _set(session: Session, reco: Recommendation, status: RecommendationStatus, reason: str | None) -> None:
    reco.status = status
    reco.status_reason = reason
    session.add(reco)
    session.flush()


def approve_recommendation(
    session: Session, *, actor: User, recommendation_id: int, override_reason: str | None = None
) -> Recommendation:
    """DRAFT -> REVIEWED. Reviews first if there is no verdict yet; refused while the portfolio
    is frozen, and when the latest verdict is FAIL unless ``override_reason`` is given."""
    reco, portfolio = _get(session, actor, recommendation_id, "approve recommendations", lock=True)
    _refuse_state(reco, "approved", (DRAFT,))
    governance.require_not_frozen(
        session, portfolio.portfolio_id, f"approve recommendation {recommendation_id}"
    )  # type: ignore[arg-type]
    verdict = latest_verdict(session, recommendation_id)
    if verdict is None:
        verdict = review_recommendation(session, actor=actor, recommendation_id=recommendation_id)
    reason = (override_reason or "").strip() or None
    status_reason = None
    if verdict.verdict is Verdict.FAIL:
        if reason is None:
            raise ReviewFailed(fail_message(f"recommendation {recommendation_id}", verdict))
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
        status_reason = f"FAIL overridden: {reason}"
    _set(session, reco, REVIEWED, status_reason)
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
    reco, portfolio = _get(session, actor, recommendation_id, "ignore recommendations", lock=True)
    _refuse_state(reco, "ignored", OPEN)
    previous = reco.status.value
    _set(session, reco, IGNORED, reason)
    audit.record(
        session,
        actor=actor,
        action="RECO_IGNORED",
        entity_type="recommendation",
        entity_id=recommendation_id,
        details={"portfolio": portfolio.name, "from": previous, "reason": reason},
    )
    return reco


def _fill_entries(
    session: Session, reco: Recommendation, lines: list[dict[str, Any]], fills: Sequence[Fill], now: datetime
) -> tuple[list[ledger.NewEntry], list[str]]:
    """The ledger entries for ``fills`` in book order, and which fill each one is; every problem
    named at once."""
    listings = ledger.load_listings(session)
    by_key = {(line["ticker"], line["exchange"]): line for line in lines}
    problems: list[str] = []
    entries: list[tuple[datetime, int, ledger.NewEntry, str]] = []
    for index, fill in enumerate(fills, start=1):
        where = f"fill {index} ({fill.ticker}:{fill.exchange})"
        try:
            entry = _fill_entry(fill, by_key, listings, reco, now, where)
        except ValidationError as exc:
            problems.append(str(exc))
            continue
        # At one moment, sells first: their proceeds pay for the buys.
        entries.append((entry.entry_time, 0 if entry.entry_type is EntryType.SELL else 1, entry, where))
    if problems:
        raise ValidationError(
            f"recommendation {reco.recommendation_id}: {len(problems)} fill(s) refused: "
            + "; ".join(problems)
        )
    ordered = sorted(entries, key=lambda item: (item[0], item[1]))
    return [item[2] for item in ordered], [item[3] for item in ordered]


def _fill_entry(
    fill: Fill,
    by_key: Mapping[tuple[str, str], dict[str, Any]],
    listings: Mapping[int, ledger.ListingInfo],
    reco: Recommendation,
    now: datetime,
    where: str,
) -> ledger.NewEntry:
    key = (str(fill.ticker).strip().upper(), str(fill.exchange).strip().upper())
    line = by_key.get(key)
    if line is None:
        listed = ", ".join(f"{t}:{e}" for t, e in by_key) or "none"
        raise ValidationError(f"{where}: not a listing of the recommendation (its listings: {listed})")
    try:
        action = TradeAction(str(getattr(fill.action, "value", fill.action)).strip().upper())
    except ValueError:
        raise ValidationError(f"{where}: action {fill.action!r} is not BUY or SELL") from None
    if action.value != line["action"]:
        raise ValidationError(
            f"{where}: the recommendation says {line['action']}, the fill says {action.value}"
        )
    units = to_decimal(fill.units, what=f"{where}: units")
    price = to_decimal(fill.price, what=f"{where}: price")
    fees = to_decimal(fill.fees_base, what=f"{where}: fees")
    if units <= ZERO or price <= ZERO:
        raise ValidationError(f"{where}: units and price must be positive")
    if fees < ZERO:
        raise ValidationError(f"{where}: fees must not be negative")
    when = ensure_utc(fill.executed_at) if fill.executed_at is not None else now
    info = listings[line["listing_id"]]
    if fill.consideration_base is not None:
        value = round_cash(to_decimal(fill.consideration_base, what=f"{where}: consideration"))
    elif info.quote.currency == "GBP":
        value = round_cash(bk.consideration(units, price, info.quote))
    else:
        raise ValidationError(
            f"{where}: the listing is quoted in {info.quote.currency}: give the GBP consideration "
            "the broker charged (TICKER:EXCHANGE:ACTION:UNITS:PRICE:FEES:CONSIDERATION_GBP)"
        )
    _check_price(where, value, units, line, info)
    cash = -(value + fees) if action is TradeAction.BUY else value - fees
    return ledger.NewEntry(
        entry_time=when,
        entry_type=EntryType(action.value),
        cash_amount_base=cash,
        fees_base=fees,
        listing_id=line["listing_id"],
        units=units,
        price=price,
        notes=f"recommendation {reco.recommendation_id}",
    )


def _check_price(
    where: str, value: Decimal, units: Decimal, line: Mapping[str, Any], info: ledger.ListingInfo
) -> None:
    """Refuse a price ten times off the line's estimate: pence typed as pounds (or the reverse)."""
    estimated_units, amount = line["estimated_units"], line["amount_base"]
    if not estimated_units or not amount or not value:
        return
    expected = amount / estimated_units
    actual = value / units
    ratio = actual / expected
    if ratio > PRICE_SANITY_FACTOR or ratio * PRICE_SANITY_FACTOR < 1:
        scale = "pence" if info.quote.exponent == 2 else info.quote.currency
        raise ValidationError(
            f"{where}: £{decimal_str(round_cash(actual))} a unit is more than {PRICE_SANITY_FACTOR}x off "
            f"the £{decimal_str(round_cash(expected))} the recommendation estimated; "
            f"the price is in the listing's quote scale ({scale})"
        )


def _contribution_hint(reco: Recommendation, portfolio: Portfolio, message: str) -> str:
    """A monthly allocation spends a contribution the ledger may not hold yet."""
    raw = (reco.constraints_report or {}).get("contribution")
    try:
        amount = to_decimal(raw, what="contribution") if raw is not None else ZERO
    except ValidationError:
        return ""
    if amount <= ZERO or "below zero" not in message:
        return ""
    return (
        f" (the recommendation spends a £{decimal_str(amount)} contribution: record it in the ledger "
        f"first, e.g. `tradeassist ledger add --portfolio {portfolio.name!r} --type CONTRIBUTION "
        f"--amount {decimal_str(amount)}`)"
    )


def _name_fills(message: str, labels: Sequence[str]) -> str:
    def label(match: re.Match[str]) -> str:
        number = int(match.group(1))
        return labels[number - 1] if 0 < number <= len(labels) else match.group(0)

    return _ENTRY_NUMBER.sub(label, message)


def execute_recommendation(
    session: Session,
    *,
    actor: User,
    recommendation_id: int,
    fills: Sequence[Fill],
    now: datetime | None = None,
) -> ledger.PostResult:
    """REVIEWED -> EXECUTED: post the fills as one EXECUTION batch linked to the recommendation.

    All in the caller's transaction: a fill the ledger refuses leaves everything unchanged
    once the caller rolls back (nothing is committed here)."""
    reco, portfolio = _get(session, actor, recommendation_id, "execute recommendations", lock=True)
    if reco.status is DRAFT:
        raise ValidationError(f"recommendation {recommendation_id} is DRAFT: approve it before executing it")
    _refuse_state(reco, "executed", (REVIEWED,))
    governance.require_not_frozen(
        session,
        portfolio.portfolio_id,  # type: ignore[arg-type]
        f"execute recommendation {recommendation_id} (trades made anyway belong in the ledger: "
        "`tradeassist ledger add`)",
    )
    if not fills:
        raise ValidationError(f"recommendation {recommendation_id}: executing needs at least one fill")
    now = ensure_utc(now) if now is not None else utcnow()
    lines = _lines(session, [recommendation_id])[recommendation_id]
    entries, labels = _fill_entries(session, reco, lines, fills, now)
    try:
        result = ledger.post_entries(
            session,
            actor=actor,
            portfolio=portfolio,
            entries=entries,
            label=f"Execution of recommendation {recommendation_id}",
            batch_type=BatchType.EXECUTION,
            recommendation_id=recommendation_id,
            now=now,
        )
    except LedgerError as exc:
        # The ledger numbers entries in book order; the user knows the fills as typed.
        named = _name_fills(exc.message.removeprefix("refused: "), labels)
        raise LedgerError(
            f"recommendation {recommendation_id}: the ledger refused the fills: {named}"
            + _contribution_hint(reco, portfolio, named)
        ) from None
    _set(session, reco, EXECUTED, reco.status_reason)
    audit.record(
        session,
        actor=actor,
        action="RECO_EXECUTED",
        entity_type="recommendation",
        entity_id=recommendation_id,
        details={
            "portfolio": portfolio.name,
            "ledger_batch_id": result.batch_id,
            "fills": len(entries),
            "cash_movement": sum((e.cash_amount_base for e in entries), ZERO),
            "cash_balance": result.cash_balance,
        },
    )
    return result


# --------------------------------------------------------------------------------------------
# After a run
# --------------------------------------------------------------------------------------------
def review_and_notify(session: Session, *, recommendation_id: int, owner: User) -> LLMVerdict | None:
    """What the runner does once it stored a recommendation, in its recording transaction:
    review it with builtin-rules (offline, whatever ``TRADEASSIST_REVIEWER`` says: no network
    inside that transaction) and enqueue an email to the portfolio's owner with the headline,
    the verdict and the run. A review that cannot be made leaves the recommendation DRAFT
    without a verdict (approving it reviews it then); it never loses the run."""
    from . import notifications

    verdict = None
    try:
        with session.begin_nested():
            verdict = review_recommendation(
                session, actor=None, recommendation_id=recommendation_id, reviewer=DEFAULT_REVIEWER
            )
    except TradeAssistError as exc:
        log.warning("recommendation %s: not reviewed after its run: %s", recommendation_id, exc)
    reco, portfolio = _get(session, None, recommendation_id, "notify")
    reasons = verdict_row(verdict)["reasons"] if verdict is not None else []
    shown = verdict.verdict.value if verdict is not None else "not reviewed"
    body = [
        f"Recommendation {recommendation_id} for {portfolio.name} (run {reco.run_id}): {reco.headline}",
        f"Review: {shown}" + (f" ({verdict.provider_name})" if verdict is not None else ""),
        *[f"- {reason}" for reason in reasons[:10]],
        "Approve, ignore or execute it with `tradeassist reco` or the approval notebook.",
    ]
    notifications.enqueue(
        session,
        user_id=owner.user_id,  # type: ignore[arg-type]
        portfolio_id=portfolio.portfolio_id,
        channel=Channel.EMAIL,
        target=owner.email,
        payload={
            "event": RECOMMENDATION_READY,
            "subject": f"tradeassist: {portfolio.name}: {reco.headline}",
            "body": "\n".join(body),
            "run_id": reco.run_id,
            "recommendation_id": recommendation_id,
            "portfolio": portfolio.name,
            "headline": reco.headline,
            "verdict": verdict.verdict.value if verdict is not None else None,
            "reasons": reasons,
        },
        dedup_key=f"{RECOMMENDATION_READY}:{recommendation_id}",
        window=timedelta(days=1),
    )
    return verdict
