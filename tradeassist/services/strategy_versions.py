"""Reading strategy versions: which version governs a portfolio, and a version with its
effective policy.

A portfolio is governed by the version most recently approved for it (a version whose scope
holds it), while that version stays APPROVED (``governing_version``). The policy a version is
used with is its *effective* policy (``load_version``): the archived policy (the file as
written, its hash unchanged) with the manifesto's rule lines merged into its hard rules
(``policy.with_manifesto_rules``). Recommendations, their input snapshots, the review request
and ``strategy show`` all read that one policy.

Adding, approving and retiring versions is ``strategy``; reviewing a manifesto ``reviews``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from ..core.enums import StrategyStatus
from ..core.errors import NotFound, ValidationError
from ..db.models import (
    ManifestoArchive,
    PolicyArchive,
    Portfolio,
    SleeveTarget,
    StrategyVersion,
    StrategyVersionPortfolio,
    User,
)
from ..manifesto import parse_manifesto_rules
from ..policy import Policy, parse_policy, with_manifesto_rules
from .access import can_access


@dataclass(frozen=True)
class ApprovedStrategy:
    """A version with its effective policy (manifesto rules merged) and its manifesto."""

    version: StrategyVersion
    policy: Policy
    manifesto: str


def canonical_manifesto(text: str) -> str:
    """Line endings normalised, trailing blanks removed, one final newline: the text hashed."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    return "\n".join(lines).strip("\n") + "\n"


def manifesto_sha256(text: str) -> str:
    return hashlib.sha256(canonical_manifesto(text).encode("utf-8")).hexdigest()


def effective_policy(policy: Policy, manifesto: str) -> Policy:
    """``policy`` with the manifesto's rule lines merged into its hard rules; a rule that
    contradicts the policy raises ``ValidationError`` naming the manifesto line."""
    text = canonical_manifesto(manifesto)
    return with_manifesto_rules(policy, parse_manifesto_rules(text), manifesto=text)


def get_version(session: Session, label: str) -> StrategyVersion:
    version = session.exec(select(StrategyVersion).where(StrategyVersion.version_label == label)).first()
    if version is None:
        raise NotFound(f"no strategy version {label!r}")
    return version


def scope_of(session: Session, version: StrategyVersion) -> list[Portfolio]:
    """The portfolios of ``version``'s scope (written with it, never changed), by id."""
    return list(
        session.exec(
            select(Portfolio)
            .join(
                StrategyVersionPortfolio,
                col(StrategyVersionPortfolio.portfolio_id) == col(Portfolio.portfolio_id),
            )
            .where(StrategyVersionPortfolio.strategy_version_id == version.strategy_version_id)
            .order_by(col(Portfolio.portfolio_id))
        ).all()
    )


def last_approved(session: Session, portfolio_id: int) -> StrategyVersion | None:
    """The version most recently approved for the portfolio, whatever its status now."""
    return session.exec(
        select(StrategyVersion)
        .join(
            StrategyVersionPortfolio,
            col(StrategyVersionPortfolio.strategy_version_id) == col(StrategyVersion.strategy_version_id),
        )
        .where(
            StrategyVersionPortfolio.portfolio_id == portfolio_id,
            col(StrategyVersion.approved_at).is_not(None),
        )
        .order_by(col(StrategyVersion.approved_at).desc(), col(StrategyVersion.strategy_version_id).desc())
        .limit(1)
    ).first()


def governing_version(session: Session, portfolio_id: int) -> StrategyVersion | None:
    """The version governing the portfolio: the one most recently approved for it, if it is
    still APPROVED (retiring it leaves the portfolio without one; an older version does not
    come back)."""
    last = last_approved(session, portfolio_id)
    return last if last is not None and last.status is StrategyStatus.APPROVED else None


def governed_by(session: Session, version: StrategyVersion) -> list[Portfolio]:
    """The portfolios of ``version``'s scope that it governs now."""
    governed = []
    for p in scope_of(session, version):
        assert p.portfolio_id is not None  # read from the database
        governing = governing_version(session, p.portfolio_id)
        if governing is not None and governing.strategy_version_id == version.strategy_version_id:
            governed.append(p)
    return governed


def archived_policy(session: Session, version: StrategyVersion) -> Policy:
    """The version's policy as archived (the file as written): without the manifesto's rules."""
    row = session.get(PolicyArchive, version.policy_sha256)
    assert row is not None  # the foreign key guarantees it
    return parse_policy(row.policy_json)


def load_version(session: Session, version: StrategyVersion) -> ApprovedStrategy:
    """The version with its effective policy: the archived policy with the manifesto's rules
    merged (``effective_policy``); a version whose rules contradict its policy (stored before
    the rules were checked) is a ``ValidationError`` naming the version and the line."""
    manifesto_row = session.get(ManifestoArchive, version.manifesto_sha256)
    assert manifesto_row is not None  # the foreign key guarantees it
    try:
        policy = effective_policy(archived_policy(session, version), manifesto_row.manifesto_md)
    except ValidationError as exc:
        raise ValidationError(
            f"strategy {version.version_label!r}: {exc}; add a corrected version and approve it"
        ) from None
    return ApprovedStrategy(version, policy, manifesto_row.manifesto_md)


def governing_strategy(session: Session, portfolio_id: int | Portfolio) -> ApprovedStrategy:
    """The approved version governing the portfolio, with its effective policy: what drives
    the portfolio's recommendations, runs and previews."""
    portfolio = portfolio_id if isinstance(portfolio_id, Portfolio) else session.get(Portfolio, portfolio_id)
    if portfolio is None:
        raise NotFound(f"no portfolio with id {portfolio_id}")
    assert portfolio.portfolio_id is not None  # read from the database
    version = governing_version(session, portfolio.portfolio_id)
    if version is None:
        raise NotFound(
            f"no approved strategy governs portfolio {portfolio.name!r}: add one with "
            f"`tradeassist strategy add --label LABEL --policy FILE --manifesto FILE "
            f"--portfolio {portfolio.name!r}` and approve it with `tradeassist strategy approve LABEL`"
        )
    return load_version(session, version)


def strategy_rows(
    session: Session, *, actor: User | None = None, portfolio: Portfolio | None = None
) -> list[dict[str, Any]]:
    """Every version (``portfolio``: those whose scope holds it), oldest first, with its
    status, its scope (``portfolios``) and the part of it it governs now (``governs``: a later
    approval may have taken some over), as names of the portfolios ``actor`` may see (all
    without an actor), its sleeve targets and its hard rules (the effective policy's)."""
    query = select(StrategyVersion).order_by(col(StrategyVersion.strategy_version_id))
    if portfolio is not None:
        query = query.where(
            col(StrategyVersion.strategy_version_id).in_(
                select(StrategyVersionPortfolio.strategy_version_id).where(
                    StrategyVersionPortfolio.portfolio_id == portfolio.portfolio_id
                )
            )
        )
    return [_version_row(session, v, actor) for v in session.exec(query).all()]


def _version_row(session: Session, v: StrategyVersion, actor: User | None) -> dict[str, Any]:
    targets = session.exec(
        select(SleeveTarget).where(SleeveTarget.strategy_version_id == v.strategy_version_id)
    ).all()
    scope = [p for p in scope_of(session, v) if actor is None or can_access(session, actor, p)]
    governs = (
        {p.portfolio_id for p in governed_by(session, v)} if v.status is StrategyStatus.APPROVED else set()
    )
    return {
        "strategy_version_id": v.strategy_version_id,
        "label": v.version_label,
        "version_label": v.version_label,
        "status": v.status.value,
        "portfolios": [p.name for p in scope],
        "governs": [p.name for p in scope if p.portfolio_id in governs],
        "policy_sha256": v.policy_sha256,
        "manifesto_sha256": v.manifesto_sha256,
        "created_at": v.created_at,
        "approved_at": v.approved_at,
        "sleeve_targets": {t.sleeve_code: t.target_weight for t in targets},
        "hard_rules": _hard_rules(session, v),
    }


def _hard_rules(session: Session, version: StrategyVersion) -> dict[str, Any]:
    try:
        return load_version(session, version).policy.hard_rules()
    except ValidationError as exc:  # stored before rules were checked: shown, never used
        return {**archived_policy(session, version).hard_rules(), "problem": str(exc)}
