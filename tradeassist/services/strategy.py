"""Strategy versions: a policy and a manifesto archived under their SHA-256, a DRAFT ->
APPROVED -> RETIRED lifecycle (approving one retires the previously approved one), and the
portfolio constituents that implement the strategy's sleeves."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, select

from ..db.models import (
    InstrumentListing,
    ManifestoArchive,
    PolicyArchive,
    Portfolio,
    PortfolioConstituent,
    Sleeve,
    SleeveTarget,
    StrategyVersion,
    User,
)
from ..enums import StrategyStatus, Verdict
from ..errors import AlreadyExists, NotFound, ValidationError
from ..policy import Policy, parse_policy, policy_sha256, policy_to_dict
from ..timeutil import utcnow
from . import audit
from .access import portfolio_for
from .registry import get_listing


@dataclass(frozen=True)
class ApprovedStrategy:
    version: StrategyVersion
    policy: Policy
    manifesto: str


def canonical_manifesto(text: str) -> str:
    """Line endings normalised, trailing blanks removed, one final newline: the text hashed."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    return "\n".join(lines).strip("\n") + "\n"


def manifesto_sha256(text: str) -> str:
    return hashlib.sha256(canonical_manifesto(text).encode("utf-8")).hexdigest()


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


def add_strategy(
    session: Session, *, actor: User, label: str, policy_text: str | bytes | dict[str, Any], manifesto: str
) -> StrategyVersion:
    """Archive the policy and manifesto (the same content is never archived twice) and add a
    DRAFT version with its sleeve targets, creating sleeves the policy names for the first time."""
    label = label.strip()
    if not label:
        raise ValidationError("strategy label: empty")
    if session.exec(select(StrategyVersion).where(StrategyVersion.version_label == label)).first():
        raise AlreadyExists(f"strategy version {label!r} exists already")
    policy = parse_policy(policy_text)
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
    for code in policy.sleeve_targets:
        if session.get(Sleeve, code) is None:
            session.add(Sleeve(sleeve_code=code, name=code.replace("_", " ").title()))
    version = StrategyVersion(
        version_label=label,
        status=StrategyStatus.DRAFT,
        policy_sha256=policy_hash,
        manifesto_sha256=manifesto_hash,
        created_by_user_id=actor.user_id,
    )
    session.add(version)
    session.flush()
    for code, weight in policy.sleeve_targets.items():
        session.add(
            SleeveTarget(
                strategy_version_id=version.strategy_version_id, sleeve_code=code, target_weight=weight
            )
        )
    audit.record(
        session,
        actor=actor,
        action="STRATEGY_ADDED",
        entity_type="strategy_version",
        entity_id=version.strategy_version_id,
        details={"label": label, "policy_sha256": policy_hash, "manifesto_sha256": manifesto_hash},
    )
    session.flush()
    return version


def get_version(session: Session, label: str) -> StrategyVersion:
    version = session.exec(select(StrategyVersion).where(StrategyVersion.version_label == label)).first()
    if version is None:
        raise NotFound(f"no strategy version {label!r}")
    return version


def _set_status(
    session: Session,
    actor: User,
    version: StrategyVersion,
    status: StrategyStatus,
    extra: dict[str, Any] | None = None,
) -> None:
    previous = version.status
    version.status = status
    if status is StrategyStatus.APPROVED:
        version.approved_at = utcnow()
    session.add(version)
    audit.record(
        session,
        actor=actor,
        action=f"STRATEGY_{status.value}",
        entity_type="strategy_version",
        entity_id=version.strategy_version_id,
        details={"label": version.version_label, "from": previous.value, "to": status.value, **(extra or {})},
    )


def approve_strategy(
    session: Session, *, actor: User, label: str, override_reason: str | None = None
) -> StrategyVersion:
    """DRAFT -> APPROVED; the previously approved version becomes RETIRED. Both audited.

    The manifesto is reviewed first (the default reviewer; a verdict stored with the version):
    a FAIL refuses approval unless ``override_reason`` is given (audited).
    """
    version = get_version(session, label)
    if version.status is not StrategyStatus.DRAFT:
        raise ValidationError(f"strategy {label!r} is {version.status.value}: only a DRAFT can be approved")
    review = _review_manifesto(session, actor, version, override_reason)
    current = session.exec(
        select(StrategyVersion).where(StrategyVersion.status == StrategyStatus.APPROVED).with_for_update()
    ).all()
    for old in current:
        _set_status(session, actor, old, StrategyStatus.RETIRED)
    _set_status(session, actor, version, StrategyStatus.APPROVED, review)
    session.flush()
    return version


def _review_manifesto(
    session: Session, actor: User, version: StrategyVersion, override_reason: str | None
) -> dict[str, Any]:
    """The manifesto's verdict (what the approval's audit row records); a FAIL without an
    override reason refuses the approval."""
    from .recommendations import ReviewFailed, fail_message, review_manifesto, verdict_row

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


def retire_strategy(session: Session, *, actor: User, label: str) -> StrategyVersion:
    version = get_version(session, label)
    if version.status is StrategyStatus.RETIRED:
        raise ValidationError(f"strategy {label!r} is retired already")
    _set_status(session, actor, version, StrategyStatus.RETIRED)
    session.flush()
    return version


def load_version(session: Session, version: StrategyVersion) -> ApprovedStrategy:
    policy_row = session.get(PolicyArchive, version.policy_sha256)
    manifesto_row = session.get(ManifestoArchive, version.manifesto_sha256)
    assert policy_row is not None and manifesto_row is not None  # foreign keys guarantee both
    return ApprovedStrategy(version, parse_policy(policy_row.policy_json), manifesto_row.manifesto_md)


def approved_strategy(session: Session) -> ApprovedStrategy:
    """The one version that drives recommendations and runs."""
    version = session.exec(
        select(StrategyVersion).where(StrategyVersion.status == StrategyStatus.APPROVED)
    ).first()
    if version is None:
        raise NotFound("no approved strategy: add one with `tradeassist strategy add` and approve it")
    return load_version(session, version)


def strategy_rows(session: Session) -> list[dict[str, Any]]:
    rows = []
    for v in session.exec(select(StrategyVersion).order_by(StrategyVersion.strategy_version_id)).all():
        targets = session.exec(
            select(SleeveTarget).where(SleeveTarget.strategy_version_id == v.strategy_version_id)
        ).all()
        rows.append(
            {
                "strategy_version_id": v.strategy_version_id,
                "version_label": v.version_label,
                "status": v.status.value,
                "policy_sha256": v.policy_sha256,
                "manifesto_sha256": v.manifesto_sha256,
                "created_at": v.created_at,
                "approved_at": v.approved_at,
                "sleeve_targets": {t.sleeve_code: t.target_weight for t in targets},
            }
        )
    return rows


def add_constituent(
    session: Session,
    *,
    actor: User,
    portfolio: str,
    ticker: str,
    exchange: str,
    sleeve: str,
    include_in_calcs: bool = True,
    is_monitored: bool = True,
) -> PortfolioConstituent:
    p = portfolio_for(session, actor, portfolio, "map constituents")
    listing = get_listing(session, ticker, exchange)
    code = sleeve.strip().upper()
    if session.get(Sleeve, code) is None:
        known = ", ".join(s.sleeve_code for s in session.exec(select(Sleeve)).all()) or "none yet"
        raise NotFound(f"unknown sleeve {code!r} (known: {known}); sleeves come from a strategy's policy")
    if session.get(PortfolioConstituent, (p.portfolio_id, listing.listing_id)) is not None:
        raise AlreadyExists(f"{listing.ticker} on {listing.exchange} is a constituent of {p.name!r} already")
    row = PortfolioConstituent(
        portfolio_id=p.portfolio_id,
        listing_id=listing.listing_id,
        sleeve_code=code,
        include_in_calcs=include_in_calcs,
        is_monitored=is_monitored,
    )
    session.add(row)
    audit.record(
        session,
        actor=actor,
        action="CONSTITUENT_ADDED",
        entity_type="portfolio",
        entity_id=p.portfolio_id,
        details={
            "ticker": listing.ticker,
            "exchange": listing.exchange,
            "sleeve": code,
            "include_in_calcs": include_in_calcs,
            "is_monitored": is_monitored,
        },
    )
    session.flush()
    return row


def constituent_rows(session: Session, portfolio: Portfolio) -> list[dict[str, Any]]:
    rows = session.exec(
        select(PortfolioConstituent, InstrumentListing)
        .join(InstrumentListing, InstrumentListing.listing_id == PortfolioConstituent.listing_id)
        .where(PortfolioConstituent.portfolio_id == portfolio.portfolio_id)
        .order_by(PortfolioConstituent.sleeve_code, InstrumentListing.ticker)
    ).all()
    return [
        {
            "ticker": lst.ticker,
            "exchange": lst.exchange,
            "sleeve": c.sleeve_code,
            "include_in_calcs": c.include_in_calcs,
            "is_monitored": c.is_monitored,
        }
        for c, lst in rows
    ]
