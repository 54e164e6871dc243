"""Adding a strategy version: a DRAFT, its policy and manifesto archived under their SHA-256.

The same content is never archived twice, and the same (policy, manifesto) pair is one version
only. The version governs the portfolios named (its scope, written once), by default every
portfolio its author owns; it has a sleeve target per sleeve of its policy, and a sleeve the
policy names for the first time is created. The manifesto's rule lines are checked against the
policy now: a rule that contradicts it refuses the version, naming the line.

Approving and retiring versions is ``strategy``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlmodel import Session, col, select

from ..core.enums import StrategyStatus
from ..core.errors import AlreadyExists, ValidationError
from ..db.models import (
    ManifestoArchive,
    PolicyArchive,
    Portfolio,
    Sleeve,
    SleeveTarget,
    StrategyVersion,
    StrategyVersionPortfolio,
    User,
)
from ..policy import Policy, parse_policy, policy_sha256, policy_to_dict
from . import audit
from .access import portfolio_for
from .strategy_versions import canonical_manifesto, effective_policy, manifesto_sha256


def _archive_policy(session: Session, policy: Policy) -> str:
    sha = policy_sha256(policy)
    if session.get(PolicyArchive, sha) is None:
        session.add(PolicyArchive(policy_sha256=sha, policy_json=policy_to_dict(policy)))
    return sha


def _archive_manifesto(session: Session, text: str) -> str:
    canonical = canonical_manifesto(text)
    if not canonical.strip():
        raise ValidationError("manifesto: empty")
    sha = manifesto_sha256(canonical)
    if session.get(ManifestoArchive, sha) is None:
        session.add(ManifestoArchive(manifesto_sha256=sha, manifesto_md=canonical))
    return sha


def _archive(session: Session, policy: Policy, manifesto: str) -> tuple[str, str]:
    """Archive the policy and the manifesto (the same content never twice); their hashes. The
    same pair is one version only."""
    policy_hash = _archive_policy(session, policy)
    manifesto_hash = _archive_manifesto(session, manifesto)
    session.flush()
    twin = session.exec(
        select(StrategyVersion).where(
            StrategyVersion.policy_sha256 == policy_hash, StrategyVersion.manifesto_sha256 == manifesto_hash
        )
    ).first()
    if twin is not None:
        raise AlreadyExists(f"the same policy and manifesto are version {twin.version_label!r} already")
    return policy_hash, manifesto_hash


def _scope(session: Session, actor: User, label: str, names: Sequence[str] | None) -> list[Portfolio]:
    """The portfolios a new version governs: those named (the actor needs access to each),
    else every portfolio the actor owns."""
    chosen: dict[int, Portfolio] = {}
    for name in names or ():
        p = portfolio_for(session, actor, name.strip(), "set a strategy")
        assert p.portfolio_id is not None  # read from the database
        chosen[p.portfolio_id] = p
    if not names:
        owned = session.exec(
            select(Portfolio)
            .where(Portfolio.owner_user_id == actor.user_id)
            .order_by(col(Portfolio.portfolio_id))
        ).all()
        chosen = {p.portfolio_id: p for p in owned if p.portfolio_id is not None}
    if not chosen:
        raise ValidationError(
            f"strategy {label!r}: no portfolio to govern: {actor.email} owns none; "
            "name the portfolios with --portfolio NAME"
        )
    return [chosen[k] for k in sorted(chosen)]


def _add_version(
    session: Session, actor: User, label: str, policy: Policy, hashes: tuple[str, str], scope: list[Portfolio]
) -> StrategyVersion:
    """The DRAFT version with its sleeve targets and its scope; sleeves the policy names for the
    first time are created."""
    for code in policy.sleeve_targets:
        if session.get(Sleeve, code) is None:
            session.add(Sleeve(sleeve_code=code, name=code.replace("_", " ").title()))
    assert actor.user_id is not None  # read from the database
    version = StrategyVersion(
        version_label=label,
        status=StrategyStatus.DRAFT,
        policy_sha256=hashes[0],
        manifesto_sha256=hashes[1],
        created_by_user_id=actor.user_id,
    )
    session.add(version)
    session.flush()
    assert version.strategy_version_id is not None  # flushed
    for code, weight in policy.sleeve_targets.items():
        session.add(
            SleeveTarget(
                strategy_version_id=version.strategy_version_id, sleeve_code=code, target_weight=weight
            )
        )
    for p in scope:
        assert p.portfolio_id is not None  # read from the database
        session.add(
            StrategyVersionPortfolio(
                strategy_version_id=version.strategy_version_id, portfolio_id=p.portfolio_id
            )
        )
    return version


def add_strategy(
    session: Session,
    *,
    actor: User,
    label: str,
    policy_text: str | bytes | dict[str, Any],
    manifesto: str,
    portfolios: Sequence[str] | None = None,
) -> StrategyVersion:
    """Archive the policy and manifesto (the same content is never archived twice) and add a
    DRAFT version with its sleeve targets, creating sleeves the policy names for the first time.

    The version governs ``portfolios`` (names; the actor needs access to each), by default
    every portfolio the actor owns. The manifesto's rule lines are merged into the policy's
    hard rules now, once: a rule that contradicts the policy refuses the version, naming the
    manifesto line. The archive keeps the policy as written.
    """
    label = label.strip()
    if not label:
        raise ValidationError("strategy label: empty")
    if session.exec(select(StrategyVersion).where(StrategyVersion.version_label == label)).first():
        raise AlreadyExists(f"strategy version {label!r} exists already")
    policy = parse_policy(policy_text)
    effective_policy(policy, manifesto)
    scope = _scope(session, actor, label, portfolios)
    hashes = _archive(session, policy, manifesto)
    version = _add_version(session, actor, label, policy, hashes, scope)
    audit.record(
        session,
        actor=actor,
        action="STRATEGY_ADDED",
        entity_type="strategy_version",
        entity_id=version.strategy_version_id,
        details={
            "label": label,
            "policy_sha256": hashes[0],
            "manifesto_sha256": hashes[1],
            "portfolios": [p.name for p in scope],
        },
    )
    session.flush()
    return version
