"""Strategy versions: a policy and a manifesto archived under their SHA-256, the portfolios the
version governs (its scope), a DRAFT -> APPROVED -> RETIRED lifecycle, and the portfolio
constituents that implement the strategy's sleeves.

A portfolio is governed by the version most recently approved for it (a version whose scope
holds it), while that version stays APPROVED (``governing_strategy``). Approving a version
takes over the portfolios of its scope and nothing else: a portfolio outside its scope keeps
the version that governs it, and a previously approved version is RETIRED once it governs no
portfolio any more. ``approve`` documents how this stays one version per portfolio.

The policy a version is used with is its *effective* policy (``load_version``): the archived
policy with the manifesto's rule lines merged into its hard rules.

This module is the lifecycle's transitions (approve, retire) and the strategy's one entry
point: adding a version (``strategy_drafts``), reading versions (``strategy_versions``) and
mapping constituents (``constituents``) are importable from here too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from ..core.enums import StrategyStatus, Verdict
from ..core.errors import ValidationError
from ..core.timeutil import utcnow
from ..db.models import Portfolio, StrategyVersion, User
from . import audit
from .access import can_access, require_access
from .constituents import add_constituent, constituent_rows, move_constituent
from .reviews import ReviewFailed, fail_message, review_manifesto, verdict_row
from .strategy_drafts import add_strategy
from .strategy_versions import (
    archived_policy,
    effective_policy,
    get_version,
    governed_by,
    governing_strategy,
    governing_version,
    last_approved,
    scope_of,
    strategy_rows,
)

__all__ = [
    "Approval",
    "Retirement",
    "add_constituent",
    "add_strategy",
    "approve",
    "approve_strategy",
    "archived_policy",
    "constituent_rows",
    "effective_policy",
    "get_version",
    "governing_strategy",
    "governing_version",
    "move_constituent",
    "require_scope_access",
    "retire",
    "retire_strategy",
    "scope_of",
    "strategy_rows",
]


@dataclass(frozen=True)
class Approval:
    """What approving a version did: the versions it retired (labels: they govern no
    portfolio any more), and the versions it took a portfolio from that still govern others
    (label -> the names of those portfolios the actor may see)."""

    version: StrategyVersion
    retired: tuple[str, ...]
    still_governing: dict[str, tuple[str, ...]]


@dataclass(frozen=True)
class Retirement:
    """A retired version and the portfolios it governed, now without an approved strategy."""

    version: StrategyVersion
    left_without_strategy: tuple[str, ...]


# --------------------------------------------------------------------------------------------
# Approving and retiring
# --------------------------------------------------------------------------------------------
def require_scope_access(session: Session, actor: User, version: StrategyVersion, operation: str) -> None:
    """``AccessDenied`` (audited) unless the actor may use every portfolio of the version's scope."""
    for p in scope_of(session, version):
        require_access(session, actor, p, operation)


def _set_status(
    session: Session,
    actor: User,
    version: StrategyVersion,
    status: StrategyStatus,
    extra: dict[str, Any] | None = None,
    approved_at: datetime | None = None,
) -> None:
    previous = version.status
    version.status = status
    if status is StrategyStatus.APPROVED:
        version.approved_at = approved_at or utcnow()
    session.add(version)
    audit.record(
        session,
        actor=actor,
        action=f"STRATEGY_{status.value}",
        entity_type="strategy_version",
        entity_id=version.strategy_version_id,
        details={"label": version.version_label, "from": previous.value, "to": status.value, **(extra or {})},
    )


def _review_manifesto(
    session: Session, actor: User, version: StrategyVersion, override_reason: str | None
) -> dict[str, Any]:
    """The manifesto's verdict (what the approval's audit row records); a FAIL without an
    override reason refuses the approval."""
    verdict = review_manifesto(session, actor=actor, version=version)
    shown = {
        "manifesto_verdict": verdict.verdict.value,
        "llm_verdict_id": verdict.llm_verdict_id,
        "reviewer": verdict.provider_name,
    }
    if verdict.verdict is not Verdict.FAIL:
        return shown
    reason = (override_reason or "").strip()
    if not reason:
        raise ReviewFailed(fail_message(f"strategy {version.version_label!r}: its manifesto", verdict))
    audit.record(
        session,
        actor=actor,
        action="STRATEGY_FAIL_OVERRIDDEN",
        entity_type="strategy_version",
        entity_id=version.strategy_version_id,
        details={
            "label": version.version_label,
            "reason": reason,
            "llm_verdict_id": verdict.llm_verdict_id,
            "reasons": verdict_row(verdict)["reasons"],
        },
    )
    return {**shown, "override_reason": reason}


def _lock_scope(session: Session, scope: list[Portfolio]) -> tuple[dict[int, StrategyVersion], datetime]:
    """Lock the scope's portfolio rows (in id order), then find the APPROVED versions that govern
    them and an approval time strictly later than every earlier approval for any of them."""
    scope_ids = [p.portfolio_id for p in scope if p.portfolio_id is not None]
    session.exec(
        select(Portfolio.portfolio_id)
        .where(col(Portfolio.portfolio_id).in_(scope_ids))
        .order_by(col(Portfolio.portfolio_id))
        .with_for_update()
    ).all()
    before: dict[int, StrategyVersion] = {}
    approved_at = utcnow()
    for pid in scope_ids:
        last = last_approved(session, pid)
        if last is None:
            continue
        assert last.approved_at is not None and last.strategy_version_id is not None
        approved_at = max(approved_at, last.approved_at + timedelta(microseconds=1))
        if last.status is StrategyStatus.APPROVED:
            before[last.strategy_version_id] = last
    return before, approved_at


def _hand_over(
    session: Session, actor: User, label: str, before: dict[int, StrategyVersion]
) -> tuple[list[str], dict[str, tuple[str, ...]]]:
    """Retire each earlier version that governs no portfolio any more; the others, with the
    portfolios (the actor may see) they still govern."""
    retired: list[str] = []
    still: dict[str, tuple[str, ...]] = {}
    for old in before.values():
        governs = governed_by(session, old)
        if governs:
            still[old.version_label] = tuple(p.name for p in governs if can_access(session, actor, p))
        else:
            _set_status(session, actor, old, StrategyStatus.RETIRED, {"retired_by": label})
            retired.append(old.version_label)
    return retired, still


def approve(session: Session, *, actor: User, label: str, override_reason: str | None = None) -> Approval:
    """DRAFT -> APPROVED: the version governs the portfolios of its scope from now on. Every
    transition audited.

    The actor needs access to each portfolio of the version's scope (a denial is audited).
    The manifesto is reviewed first (the default reviewer; a verdict stored with the version):
    a FAIL refuses approval unless ``override_reason`` is given (audited).

    Only the APPROVED versions that governed one of these portfolios are touched: each keeps
    governing its other portfolios, and is RETIRED once it governs none. A portfolio outside
    the scope keeps the version governing it.

    One version per portfolio: a portfolio is governed by the version most recently approved
    for it (``governing_version``), so two approved versions can never both govern it. The
    order is made certain here: the scope's portfolio rows are locked first (``SELECT ... FOR
    UPDATE`` in portfolio id order, so approvals sharing a portfolio run one after the other
    and cannot deadlock; SQLite's write transactions are serialised by ``BEGIN IMMEDIATE``),
    and under that lock ``approved_at`` is made strictly later than that of every version
    approved before for any of these portfolios, whatever the clocks of the machines say.
    The approval then checks that it governs each portfolio of its scope.
    """
    version = get_version(session, label)
    if version.status is not StrategyStatus.DRAFT:
        raise ValidationError(f"strategy {label!r} is {version.status.value}: only a DRAFT can be approved")
    scope = scope_of(session, version)
    if not scope:
        raise ValidationError(
            f"strategy {label!r} governs no portfolio: add a version naming them with --portfolio"
        )
    require_scope_access(session, actor, version, "approve a strategy")
    review = _review_manifesto(session, actor, version, override_reason)
    before, approved_at = _lock_scope(session, scope)
    taken_from = sorted(old.version_label for old in before.values())
    extra = {**review, "portfolios": [p.name for p in scope], "taken_from": taken_from}
    _set_status(session, actor, version, StrategyStatus.APPROVED, extra, approved_at=approved_at)
    session.flush()
    retired, still = _hand_over(session, actor, label, before)
    session.flush()
    for p in scope:
        assert p.portfolio_id is not None  # read from the database
        governing = governing_version(session, p.portfolio_id)
        if governing is None or governing.strategy_version_id != version.strategy_version_id:
            raise ValidationError(
                f"strategy {label!r}: another approval for {p.name!r} came first; try again"
            )
    return Approval(version, tuple(sorted(retired)), still)


def approve_strategy(
    session: Session, *, actor: User, label: str, override_reason: str | None = None
) -> StrategyVersion:
    """``approve``, returning the approved version alone."""
    return approve(session, actor=actor, label=label, override_reason=override_reason).version


def retire(session: Session, *, actor: User, label: str) -> Retirement:
    """Retire a version (the actor needs access to each portfolio of its scope, as to approve
    it). The portfolios it governed are then without an approved strategy until one is
    approved for them: an older version does not come back."""
    version = get_version(session, label)
    if version.status is StrategyStatus.RETIRED:
        raise ValidationError(f"strategy {label!r} is retired already")
    require_scope_access(session, actor, version, "retire a strategy")
    governed = governed_by(session, version)
    _set_status(
        session, actor, version, StrategyStatus.RETIRED, {"left_without_strategy": [p.name for p in governed]}
    )
    session.flush()
    return Retirement(version, tuple(p.name for p in governed))


def retire_strategy(session: Session, *, actor: User, label: str) -> StrategyVersion:
    """``retire``, returning the retired version alone."""
    return retire(session, actor=actor, label=label).version
